"""Physics (MuJoCo props): analytic laws, colliders from the World, agents pushing props, scenario errors, rendering."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from realsim.assets.errors import InputError
from realsim.sim.physics import simulate_props
from realsim.sim.physics.model import collider_boxes, contact_restitution, damping_ratio
from realsim.sim.scenario import PropSpec, Scenario, AgentSpec, parse_scenario
from realsim.sim.world import World

G = 9.81


def flat_world(n: int = 40, cell: float = 0.25, wall_x: float | None = None) -> World:
    """A flat z = 0 world, x, y in [-5, 5); optionally an obstacle stripe (a wall) of one cell at x = wall_x."""
    walk = np.ones((n, n), bool)
    obst = np.zeros((n, n), bool)
    if wall_x is not None:
        i = int((wall_x + 5.0) / cell)
        obst[i, :] = True
        walk[max(i - 2, 0):i + 3, :] = False
    return World(np.array([0, 0, 1.0, 0]), np.array([-5.0, -5.0]), cell, walk, obst, np.ones((n, n), bool))


def test_restitution_mapping_inverts():
    for e in (0.2, 0.5, 0.8, 0.95):
        z = damping_ratio(e)
        got = np.mean([contact_restitution(z, phase=p) for p in (np.arange(8) + 0.5) / 8])
        assert abs(got - e) < 1e-3
    assert damping_ratio(1.0) == 0.0


@pytest.mark.parametrize("e", [1.0, 0.8])
def test_drop_lands_on_time_and_bounces_to_e2h(e):
    r, h = 0.1, 2.0
    p = PropSpec("sphere", (r,), (0.0, 0.0, h + r), restitution=e, friction=0.0, mass=0.5)
    res = simulate_props(flat_world(), [p], 400, 200.0)  # 2 s sampled at 200 fps; physics at >= 4 kHz
    land = [c["time"] for c in res.contacts if c["with"] == "ground"][0]
    assert abs(land - math.sqrt(2 * h / G)) <= res.dt  # first contact within one physics step
    z = res.position[:, 0, 2] - r
    vz = res.velocity[:, 0, 2]
    up = int(np.argmax(vz > 0))  # after the bounce
    down = up + int(np.argmax(vz[up:] < 0))
    peak = z[up:down + 1].max()
    assert abs(peak / (e * e * h) - 1) < 0.02, (peak, e * e * h)


def test_contacts_have_hysteresis_one_event_per_touch():
    from realsim.sim.physics.contacts import ContactTracker

    # a resting ball chatters in and out of MuJoCo contact every few ms (micrometre bounces): one event, never ended
    for e in (1.0, 0.5):
        p = PropSpec("sphere", (0.1,), (0.0, 0.0, 0.1), velocity=(1.0, 0, 0), restitution=e, friction=0.0, mass=0.5)
        res = simulate_props(flat_world(), [p], 60, 30.0)
        assert len(res.contacts) == 1 and res.contacts[0]["end_time"] is None, res.contacts[:3]
    # a 2 m drop with e = 0.8 touches the ground twice in 2 s (landings at 0.64 s and 1.66 s), each touch one 10 ms contact
    p = PropSpec("sphere", (0.1,), (0.0, 0.0, 2.1), restitution=0.8, friction=0.0, mass=0.5)
    res = simulate_props(flat_world(), [p], 60, 30.0)
    ev = [c for c in res.contacts if c["with"] == "ground"]
    t1 = math.sqrt(2 * 2.0 / G)
    assert len(ev) == 2, ev
    assert abs(ev[0]["time"] - t1) < 2 * res.dt and abs(ev[1]["time"] - (t1 + 2 * 0.8 * G * t1 / G)) < 0.01
    assert 0.005 < ev[0]["end_time"] - ev[0]["time"] < 0.015 and ev[0]["end_frame"] == round(ev[0]["end_time"] * 30 - 0.5)
    # the tracker itself: a gap shorter than hold_s continues the event, a longer one starts a new one
    tr = ContactTracker(fps=10.0, hold_s=0.05)
    on = {(0, "ground"): np.zeros(3)}
    for k, state in enumerate([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]):  # steps of 10 ms
        tr.update(0.01 * k, on if state else {})
    assert [(e["time"], e["end_time"]) for e in tr.events] == [(0.0, 0.05), (0.13, None)]


def test_elastic_collision_conserves_momentum_and_energy():
    r = 0.1
    a = PropSpec("sphere", (r,), (-1.0, 0.0, r), velocity=(3.0, 0, 0), mass=1.0, friction=0.0, restitution=1.0)
    b = PropSpec("sphere", (r,), (1.0, 0.0, r), velocity=(-0.5, 0, 0), mass=3.0, friction=0.0, restitution=1.0)
    res = simulate_props(flat_world(), [a, b], 60, 60.0)
    m = res.masses
    v0, v1 = res.velocity[0, :, :2], res.velocity[-1, :, :2]
    p0, p1 = (m[:, None] * v0).sum(0), (m[:, None] * v1).sum(0)
    k0, k1 = 0.5 * (m * (v0 ** 2).sum(1)).sum(), 0.5 * (m * (v1 ** 2).sum(1)).sum()
    assert any(c["with"] == "prop:1" for c in res.contacts)
    assert np.linalg.norm(p1 - p0) / np.linalg.norm(p0) < 0.01
    assert abs(k1 / k0 - 1) < 0.02
    # and the analytic 1-D outcome of an elastic collision
    u = (m[0] * 3 + m[1] * -0.5) / m.sum()
    assert abs(v1[0, 0] - (2 * u - 3)) < 0.03 and abs(v1[1, 0] - (2 * u + 0.5)) < 0.03


def test_ball_does_not_pass_through_a_wall():
    world = flat_world(wall_x=2.0)
    boxes = collider_boxes(world)
    assert len(boxes) >= 1 and boxes[:, 5].min() > 1.0  # one merged box per grid row run, up to obstacle_max
    x_wall = boxes[:, 0].min()
    for e in (0.7, 0.0):
        p = PropSpec("sphere", (0.11,), (0.0, 0.0, 0.11), velocity=(4.0, 0, 0), friction=0.0, restitution=e)
        res = simulate_props(world, [p], 90, 30.0, boxes=boxes)
        x = res.position[:, 0, 0]
        assert x.max() < x_wall, (x.max(), x_wall)
        assert any(c["with"] == "static" for c in res.contacts)
        assert res.velocity[-1, 0, 0] <= 0.05  # bounced back (e > 0) or stopped at the wall


def test_voxel_colliders_fit_a_wall_and_stop_a_ball():
    from realsim.sim.physics.colliders import ColliderConfig, voxel_boxes
    from realsim.sim.physics.model import collider_fit

    world = flat_world(wall_x=2.0)  # obstacle cells x in [2.0, 2.25)
    rng = np.random.default_rng(0)
    wall = np.stack([np.full(4000, 2.12), rng.uniform(-4.9, 4.9, 4000), rng.uniform(0.3, 2.0, 4000)], 1)  # a facade
    floater = np.array([[0.0, 0.0, 1.0]])  # over free ground: never a collider
    P = np.vstack([wall, floater])
    boxes = voxel_boxes(world, P, np.ones(len(P)), ColliderConfig(voxel=0.1))
    assert len(boxes) >= 1 and np.allclose(boxes[:, [0, 3]], [2.1, 2.2]) and (boxes[:, 5] >= 1.8).all() and (boxes[:, 5] <= 2.0).all()
    assert boxes[:, 1].min() <= -4.8 and boxes[:, 4].max() >= 4.8 and boxes[:, 2].max() < 0  # from below the ground
    fit_vox = collider_fit(world, boxes, wall)
    fit_grid = collider_fit(world, collider_boxes(world), wall)
    assert fit_vox["within_5cm"] == 1.0 and fit_grid["within_5cm"] == 0.0 and fit_grid["within_25cm"] == 1.0
    p = PropSpec("sphere", (0.11,), (0.0, 0.0, 0.11), velocity=(4.0, 0, 0), friction=0.0, restitution=0.7)
    res = simulate_props(world, [p], 60, 30.0, boxes=boxes)
    assert res.position[:, 0, 0].max() < 2.1 - 0.1 and res.velocity[-1, 0, 0] < 0  # bounced off the fitted wall


def test_collider_cache_hit_and_invalidation(tmp_path, monkeypatch):
    import json

    from viewer_helpers import make_scene

    from realsim.assets.colliders import COLLIDER_FILE
    from realsim.recon import load_scene
    from realsim.sim.physics import colliders as C
    from realsim.sim.world import world_from_scene

    root = make_scene(tmp_path / "scene", sfm_points=True, photos=False)  # a ground with a 0.8 m box and Gaussian blobs
    scene = load_scene(root)
    world = world_from_scene(scene)
    boxes, info = C.scene_colliders(world, scene, root)
    assert info["cache"] == "built" and len(boxes) > 0 and 0 < info["fit"]["within_5cm"] <= 1
    cached = json.loads((root / COLLIDER_FILE).read_text())
    assert cached["format"] == "realsim-colliders" and len(cached["boxes"]) == len(boxes)

    def no_build(*a, **k):
        raise AssertionError("colliders rebuilt on a cache hit")

    with monkeypatch.context() as m:  # the second simulate of the same scene: read back, not rebuilt
        m.setattr(C, "build_colliders", no_build)
        m.setattr(C, "gaussian_points", no_build)
        again, info2 = C.scene_colliders(world, scene, root)
    assert info2["cache"] == "hit" and np.allclose(again, boxes, atol=1e-5)
    # other settings: rebuilt and the sidecar replaced; back to the first settings: rebuilt again (one sidecar per bundle)
    coarse, info3 = C.scene_colliders(world, scene, root, C.ColliderConfig(voxel=0.2))
    assert info3["cache"] == "built" and json.loads((root / COLLIDER_FILE).read_text())["key"] != cached["key"]
    assert C.scene_colliders(world, scene, root, C.ColliderConfig(voxel=0.2))[1]["cache"] == "hit"
    # the scene changed (retrained: new model bytes): the key no longer matches
    data = (root / "cameras.json").read_text()
    (root / "cameras.json").write_text(data + "\n")
    assert C.scene_colliders(world, scene, root, C.ColliderConfig(voxel=0.2))[1]["cache"] == "built"
    # a corrupt sidecar is rebuilt, never an error
    (root / COLLIDER_FILE).write_text("{not json")
    assert C.scene_colliders(world, scene, root)[1]["cache"] == "built"


def test_prop_inside_wall_or_bad_shape_is_one_clear_error():
    world = flat_world(wall_x=2.0)
    x = collider_boxes(world)[0, :3] + 0.1
    with pytest.raises(InputError, match="inside a wall"):
        simulate_props(world, [PropSpec("box", (0.2, 0.2, 0.2), (x[0], 0.0, 0.5))], 5, 30.0)
    for bad, msg in (({"shape": "torus"}, "shape 'torus'"), ({"shape": "sphere", "mass": -1}, "mass must be positive"),
                     ({"shape": "box", "size": [1, 2]}, "size must be a list of 3"), ({"restitution": 1.5}, "restitution")):
        with pytest.raises(InputError, match=msg) as ei:
            parse_scenario({"agents": [], "props": [bad]}, "s.yaml")
        assert "\n" not in str(ei.value)


def test_scenario_props_parse_and_auto_position():
    sc = parse_scenario({"agents": [], "props": [{"shape": "box", "size": [0.5, 0.4, 0.3], "position": "auto", "mass": 4},
                                                 {"shape": "sphere", "size": 0.2, "position": [1, 1, 0.5],
                                                  "velocity": [1, 0, 0], "color": [1, 0, 0]}]}, "s.yaml")
    assert sc.n_agents == 0 and len(sc.props) == 2 and sc.props[0].position is None and sc.props[1].size == (0.2,)
    res = simulate_props(flat_world(), sc.props, 10, 30.0)
    assert abs(res.position[0, 0, 2] - 0.15) < 0.01  # auto: resting on the ground
    js = res.to_json()
    assert js["frames"] == 10 and len(js["props"][0]["position"]) == 10 and len(js["props"][1]["quat"][0]) == 4


def test_agent_walking_into_a_box_moves_it():
    from realsim.sim.loop import run_sim

    world = flat_world()
    sc = Scenario(agents=[AgentSpec(start=(-3.0, 0.0), goals=[(4.0, 0.0)], speed=(1.4, 1.4))], duration=5.0, fps=30.0, seed=1)
    sim = run_sim(world, sc, motion="procedural")
    box = PropSpec("box", (0.4, 0.4, 0.4), (0.0, 0.0, 0.2), mass=3.0, friction=0.4, restitution=0.2)
    res = simulate_props(world, [box], sim.n_frames, 30.0, sim=sim)
    moved = np.linalg.norm(res.position[-1, 0, :2] - res.position[0, 0, :2])
    assert moved > 0.3, moved
    assert any(c["with"].startswith("agent:0:") for c in res.contacts)
    assert res.position[-1, 0, 0] > 0.2  # pushed forward, the way the agent walks


def test_props_rendered_with_instance_ids_and_depth():
    from realsim.sim.body import BodyModel
    from realsim.sim.outputs import render_frame
    from realsim.sim.physics.mesh import PropMeshes

    world = flat_world()
    sc = Scenario(agents=[], props=[PropSpec("sphere", (0.3,), (0.0, 0.0, 1.0), friction=0.0)], duration=1.0)
    from realsim.sim.loop import run_sim

    sim = run_sim(world, sc)
    res = simulate_props(world, sc.props, 2, 30.0)
    W, H = 64, 48
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    V = np.eye(4)  # camera at (0, -5, 1) looking +y: x right, y down = -z, z forward = +y
    V[:3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    V[:3, 3] = -V[:3, :3] @ np.array([0.0, -5.0, 1.0])

    def empty(viewmat, K_, w, h):
        return {"rgb": torch.zeros(h, w, 3), "depth": torch.zeros(h, w, 1), "alpha": torch.zeros(h, w, 1)}

    fr = render_frame(empty, world, BodyModel(sim.skeleton), sim, 0, V, K, W, H, ssaa=1, props=res,
                      prop_meshes=PropMeshes(res.props))
    inst = fr["instance"].numpy()
    assert inst[H // 2, W // 2] == 0  # A = 0 agents: prop 0 has instance 0 (mask id A + 1 + p = 1)
    assert abs(float(fr["depth"][H // 2, W // 2, 0]) - (5.0 - 0.3)) < 0.05
    area = math.pi * (50.0 * 0.3 / math.sqrt(5.0 ** 2 - 0.3 ** 2)) ** 2  # the sphere's projected disc
    assert abs((inst == 0).sum() / area - 1) < 0.3


@pytest.fixture(scope="module")
def box_scene(tmp_path_factory):
    """A 3DGS bundle (no training) whose sparse points hold a 0.8 m box at x, y in [0.8, 1.6]: a scene with an obstacle."""
    from viewer_helpers import make_scene

    return make_scene(tmp_path_factory.mktemp("boxscene") / "scene", sfm_points=True, photos=False)


def _simulate(scene, out, props, capsys):
    import yaml

    from realsim.cli.main import main

    sc = out.parent / f"{out.name}.yaml"
    sc.write_text(yaml.safe_dump({"agents": [], "duration": 0.5, "fps": 8, "props": props}))
    try:
        rc = main(["-q", "simulate", str(scene), "-o", str(out), "--scenario", str(sc), "--width", "64", "--height", "48"])
    except SystemExit as e:
        rc = int(e.code)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, err


def test_simulate_caches_colliders_and_refuses_bad_props(box_scene, tmp_path, capsys):
    import json

    ball = [{"shape": "sphere", "size": [0.1], "position": [-1.5, -1.5, 0.101], "velocity": [1, 0, 0]}]
    for k, want in enumerate(("built", "hit")):  # the second simulate of the same scene reads the bundle's colliders
        rc, err = _simulate(box_scene, tmp_path / f"ok{k}", ball, capsys)
        assert rc == 0, err
        phys = json.loads((tmp_path / f"ok{k}" / "sim.json").read_text())["physics"]
        assert phys["colliders"]["cache"] == want and phys["colliders"]["method"] == "voxels"
        props = json.loads((tmp_path / f"ok{k}" / "props.json").read_text())
        assert len(props["static_colliders"]["boxes"]) == phys["colliders"]["boxes"] > 0
    # bad input: one clear line, exit 2, no output folder (nor a temporary) left behind
    for bad, msg in (({"shape": "torus"}, "shape 'torus' is not one of"), ({"shape": "sphere", "mass": -1}, "mass must be positive"),
                     ({"shape": "box", "size": [0.3, 0.3, 0.3], "position": [1.2, 1.2, 0.4]}, "inside a wall"),
                     ({"shape": "sphere", "size": [0.3], "position": [1.95, 1.2, 0.4]}, "inside a wall")):
        out = tmp_path / f"bad{len(list(tmp_path.glob('bad*')))}"
        rc, err = _simulate(box_scene, out, [bad], capsys)
        assert rc == 2 and msg in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
        assert not out.exists() and not list(tmp_path.glob(f".{out.name}*"))
