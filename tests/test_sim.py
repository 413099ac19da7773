"""The sim on the synthetic street (ground-truth geometry sampled as scene points): agents stay on walkable cells, out of
obstacles, apart, with feet on the ground; scenarios validate; the written streams read back consistently.

Sim behaviour is tested on the default motion (`auto`: the motion-diffusion controller); the procedural walker, the fallback,
keeps its own test here."""
from __future__ import annotations

import json

import numpy as np
import pytest

from realsim.assets.errors import RealsimError
from realsim.sim.loop import _foot_joints, foot_heights, run_sim, track_metrics
from realsim.sim.scenario import AgentSpec, Scenario, default_scenario, load_scenario, parse_scenario
from realsim.sim.world import world_from_points


@pytest.fixture(scope="module")
def street():
    from realsim.assets.cameras import CameraFrame
    from realsim.assets.frames import camera_center
    from realsim.sim.capture import CaptureConfig, build_street, sample_surface_points, walk_cameras

    cfg = CaptureConfig()
    scene = build_street(0)
    views = walk_cameras(cfg)
    cams = np.array([camera_center(v) for v in views])
    world = world_from_points(sample_surface_points(scene, 30000, seed=3), cams)
    K = np.array([[cfg.focal, 0, cfg.width / 2], [0, cfg.focal, cfg.height / 2], [0, 0, 1.0]])
    frames = [CameraFrame(f"SYNTHETIC_{i:03d}", K, v, cfg.width, cfg.height) for i, v in enumerate(views)]
    return scene, world, frames


def _check_constraints(res, world, tag: str) -> dict:
    xy = res.joints[:, :, 0, :2]
    assert world.is_walkable(xy).all(), tag
    assert not world.is_obstacle(xy).any(), tag
    d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1) + np.eye(res.n_agents) * 1e9
    need = res.radii[:, None] + res.radii[None]
    assert (d >= need - 1e-6).all(), f"{tag}: bodies overlap (min distance {d.min():.3f} m)"
    fh = foot_heights(res.joints, world, _foot_joints(res.skeleton), res.rest_foot_heights)
    assert np.abs(fh).max() < 0.03, f"{tag}: feet {np.abs(fh).max():.3f} m off the ground"
    print(f"\n[{tag}] agents={res.n_agents} frames={res.n_frames} min distance={d.min():.3f} m "
          f"(min body gap {(d - need).min():.3f} m), feet error max={100 * np.abs(fh).max():.2f} cm, "
          f"raw feet p95={100 * res.metrics['foot_error_raw_m_p95']:.2f} cm, motion={res.motion_backend}")
    return {"min_distance": float(d.min())}


def test_short_sim_keeps_agents_walkable_apart_and_grounded(street):
    _, world, _ = street
    res = run_sim(world, default_scenario(10, 4.0, seed=1), motion="auto")
    assert res.motion_backend == "controller"
    _check_constraints(res, world, "default motion, synthetic street")
    # agents actually moved along their paths
    travelled = np.linalg.norm(np.diff(res.joints[:, :, 0, :2], axis=0), axis=-1).sum(0)
    assert (travelled > 2.0).all(), travelled


def test_procedural_walker_fallback(street):
    """The procedural walk cycle (used when no motion model loads): the same guarantees, and its root is the crowd's."""
    _, world, _ = street
    res = run_sim(world, default_scenario(10, 4.0, seed=1), motion="procedural")
    assert res.motion_backend == "procedural"
    _check_constraints(res, world, "procedural walk, synthetic street")
    travelled = np.linalg.norm(np.diff(res.joints[:, :, 0, :2], axis=0), axis=-1).sum(0)
    assert (travelled > 2.0).all(), travelled
    m = res.metrics
    assert m["traj_cross_m_max"] < 1e-6 and m["traj_along_rel_err"] < 1e-6  # the walker puts its root on the target


def test_metrics_before_and_after_the_constraints(street):
    """The motion model's own pose (raw) is measured as well as what is written (feet snapped, bodies held apart)."""
    _, world, _ = street
    res = run_sim(world, default_scenario(6, 3.0, seed=2), motion="controller")
    m = res.metrics
    print("\n" + ", ".join(f"{k}={v:.4g}" for k, v in m.items()))
    assert all(np.isfinite(v) for v in m.values())
    assert m["agents"] == m["agents_requested"] == 6
    # written: feet exactly on the ground; raw: the model's own feet, which float or sink by some millimetres to centimetres
    assert m["foot_error_m_max"] < 1e-6 and m["penetration_m_max"] < 1e-6
    assert 0.002 < m["foot_error_raw_m_max"] < 0.10 and m["foot_error_raw_m_max"] > m["foot_error_m_max"]
    assert m["foot_error_raw_m_p95"] <= m["foot_error_raw_m_max"] and 0 <= m["penetration_raw_m_max"] <= m["foot_error_raw_m_max"]
    raw_fh = np.abs(res.raw["foot"])  # [T,A]
    assert raw_fh.shape == (res.n_frames, 6) and m["foot_error_raw_m_max"] == pytest.approx(raw_fh.max())
    # the crowd's hard constraints moved bodies a little (raw roots may touch, written ones never overlap)
    assert 0 <= m["constraint_shift_m_mean"] <= m["constraint_shift_m_max"] < 0.5
    assert m["min_body_gap_m"] >= -1e-6 and m["min_body_gap_raw_m"] <= m["min_body_gap_m"] + 1e-9
    assert m["off_walkable_fraction"] == 0 and m["in_obstacle_fraction"] == 0
    # the bodies follow the crowd's commands: speed within 10 %, a few centimetres across the track
    assert m["traj_along_rel_err"] < 0.10 and m["traj_cross_m_mean"] < 0.03 and m["traj_end_m"] < 0.3


def test_track_metrics_on_known_tracks():
    """Cross-track, along-track and end errors against hand-made commands (one agent walking +X at 1 m per frame)."""
    T = 20
    start = np.zeros((T, 1, 2))
    start[:, 0, 0] = np.arange(T)  # the crowd steps from where the body stood
    target = start + [1.0, 0.0]
    body = start + [0.9, 0.05]  # 10 % short of each step, 5 cm to the left
    body[:, 0, 0] = 0.9 * np.arange(1, T + 1)  # ... a body that covers 0.9 m per frame
    m = track_metrics(body, target, start)
    assert m["traj_cross_m_mean"] == pytest.approx(0.05) and m["traj_cross_m_max"] == pytest.approx(0.05)
    travelled = np.linalg.norm(np.diff(np.concatenate([start[:1], body]), axis=0), axis=-1).sum()
    assert m["traj_along_rel_err"] == pytest.approx(abs(travelled - T) / T)
    assert m["traj_end_m"] == pytest.approx(np.hypot(20 - 18, 0.05))
    exact = track_metrics(target, target, start)
    assert exact["traj_cross_m_max"] == 0 and exact["traj_along_rel_err"] == pytest.approx(0) and exact["traj_end_m"] == 0


def test_same_seed_same_result_at_any_torch_thread_count(street):
    import torch

    _, world, _ = street
    prev = torch.get_num_threads()
    try:
        runs = []
        for th in (1, 2, 2):
            torch.set_num_threads(th)
            runs.append(run_sim(world, default_scenario(4, 1.5, seed=5), motion="auto"))
    finally:
        torch.set_num_threads(prev)
    for r in runs[1:]:
        assert np.array_equal(r.joints, runs[0].joints) and np.array_equal(r.targets, runs[0].targets)
        assert r.metrics == runs[0].metrics
    other = run_sim(world, default_scenario(4, 1.5, seed=6), motion="auto")
    assert not np.allclose(other.joints[-1], runs[0].joints[-1])  # the seed matters


def test_scenario_goals_are_reached(street):
    _, world, _ = street
    sc = Scenario(agents=[AgentSpec(start=(0.5, 8.0), goals=[(0.5, 14.0), (-4.5, 25.0)], speed=(1.4, 1.4)),
                          AgentSpec(start=(2.0, 26.0), goals=[(2.0, 12.0)], speed=(1.2, 1.2))], duration=16.0, seed=0)
    res = run_sim(world, sc, motion="auto")
    _check_constraints(res, world, "scenario with waypoints")
    end = res.joints[-1, :, 0, :2]
    assert np.linalg.norm(end[0] - [-4.5, 25.0]) < 0.6  # around the kiosk to the far side
    assert np.linalg.norm(end[1] - [2.0, 12.0]) < 0.6
    # the first agent passed its intermediate waypoint
    assert np.linalg.norm(res.joints[:, 0, 0, :2] - [0.5, 14.0], axis=1).min() < 0.8


def test_scenario_validation(tmp_path):
    good = tmp_path / "s.yaml"
    good.write_text("seed: 4\nduration: 3\nagents:\n  - start: [0.5, 8]\n    goals: [[0.5, 12]]\n    speed: 1.2\n  - count: 3\n"
                    "camera:\n  path: static\n  width: 320\n  height: 240\n")
    sc = load_scenario(good)
    assert sc.n_agents == 4 and sc.seed == 4 and sc.camera.path == "static" and sc.agents[0].goals == [(0.5, 12.0)]
    bad = {
        "agents: [{start: [1]}]": "start must be",
        "agents: [{speed: -1}]": "speed",
        "agents: [{colour: red}]": "unknown key",
        "duration: forever": "duration must be a number",
        "camera: {path: zoom}": "camera.path",
        "camera: {width: 321}": "even",
        "agents: [{count: 2, start: [0, 0]}]": "cannot share",
    }
    for text, msg in bad.items():
        with pytest.raises(RealsimError, match=msg):
            parse_scenario(__import__("yaml").safe_load(text), "x.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("agents: [unclosed\n")
    with pytest.raises(RealsimError, match="not valid YAML"):
        load_scenario(p)


def test_start_off_walkable_is_a_clear_error(street):
    _, world, _ = street
    sc = Scenario(agents=[AgentSpec(start=(-1.2, 19.0))], duration=1.0)  # inside the kiosk
    # an explicit start is the user's word: a clear error naming the nearest walkable place (goals are moved instead)
    with pytest.raises(RealsimError, match=r"agents\[0\].start \(-1.20, 19.00\) m is not on walkable ground \(the nearest"):
        run_sim(world, sc, motion="auto")


def test_cli_errors_are_one_line(tmp_path, capsys):
    from realsim.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: [{speed: fast}]\n")
    rc = main(["simulate", str(tmp_path / "nope"), "--scenario", str(bad), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "speed" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    rc = main(["simulate", str(tmp_path / "nope"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "not found" in err and "Traceback" not in err
    rc = main(["simulate", str(tmp_path / "nope"), "--agents", "0", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "no agents" in err
    assert not (tmp_path / "out").exists()


def test_outputs_read_back(street, tmp_path):
    """Write the streams for a short clip (scene layer = the exact synthetic mesh) and read every file back."""
    import torch

    from realsim.assets.cameras import load_cameras
    from realsim.assets.scene import load_tensors
    from realsim.render.video import load_depth_png16, read_video
    from realsim.sim.outputs import make_camera_path, mesh_layer, visible_mask, write_outputs

    torch.set_num_threads(2)
    scene, world, frames = street
    path = make_camera_path("interp", frames, 0.6, 10, 1.0, 128, 96)
    sc = default_scenario(3, 0.6, seed=0)
    sc.fps = 10
    res = run_sim(world, sc, motion="auto", spawn_mask=visible_mask(world, path))
    out = tmp_path / "sim"
    summary = write_outputs(out, mesh_layer(scene), world, res, path, ssaa=1, provenance={"synthetic": True})
    T = summary["frames"]
    assert T == 6
    video, fps = read_video(out / "rgb.mp4")
    assert video.shape == (6, 96, 128, 3) and fps == pytest.approx(10)
    cams = load_cameras(out / "cameras.json")
    assert len(cams.frames) == T
    np.testing.assert_allclose(cams.frames[3].viewmat, path.viewmats[3])
    coco = json.loads((out / "keypoints.json").read_text())
    assert coco["categories"][0]["keypoints"][0] == "nose" and len(coco["images"]) == T
    assert coco["info"].get("synthetic_scene") is True
    seen_any = 0
    from PIL import Image

    for t in range(T):
        mask = np.asarray(Image.open(out / "masks" / f"{t:06d}.png"))
        assert mask.shape == (96, 128) and mask.max() <= res.n_agents
        depth = load_depth_png16(out / "depth" / f"{t:06d}.png", summary["depth_png_scale_m"])
        assert (depth > 0).mean() > 0.5  # scene everywhere but the sky
        for ann in (a for a in coco["annotations"] if a["image_id"] == t):
            k = np.array(ann["keypoints"]).reshape(17, 3)
            vis = k[:, 2] == 2
            if ann["area"] > 0 and vis.sum() >= 8:
                seen_any += 1
                # visible keypoints lie on or next to the agent's own mask
                x0, y0, w, h = ann["bbox"]
                inside = (k[vis, 0] >= x0 - 6) & (k[vis, 0] <= x0 + w + 6) & (k[vis, 1] >= y0 - 6) & (k[vis, 1] <= y0 + h + 6)
                assert inside.mean() > 0.8
                assert (mask == ann["track_id"] + 1).sum() == ann["area"]
    assert seen_any > 0, "no agent was visible in the clip"
    mot, meta = load_tensors(out / "motion.safetensors")
    assert mot["joints"].shape[:2] == (T, res.n_agents)
    traj = json.loads((out / "trajectories.json").read_text())
    np.testing.assert_allclose(np.array(traj["agents"][1]["root"]), mot["root"][:, 1].numpy(), atol=1e-3)
    assert "skeleton" in meta


def _field_world(heights: np.ndarray):
    from realsim.sim.world import World

    walk = np.ones(heights.shape, bool)
    walk[:5], walk[-5:], walk[:, :5], walk[:, -5:] = False, False, False, False
    return World(np.array([0, 0, 1.0, 0]), np.zeros(2), 0.1, walk, np.zeros_like(walk), np.ones_like(walk), heights=heights)


def test_feet_on_a_slope_and_height_field_with_the_diffusion_controller():
    """An 8 % ramp with 10 cm waves as a height field: the default controller's feet rest on the terrain under each foot
    (the animation assumes level ground at the root), the IK keeps every bone its length, and skating as rendered (the
    shared metric against the local ground height) is what the same walk shows on level ground: measured 28.4 vs 28.3
    cm/s; 52.8 before each foot was put onto the terrain under it (sim/footlock.py terrain_adapt)."""
    n = 120  # 12 x 12 m, cell 0.1
    x = (np.arange(n) + 0.5) * 0.1
    sc = default_scenario(4, 4.0, seed=6)
    flat = run_sim(_field_world(np.zeros((n, n))), sc, motion="auto").metrics
    world = _field_world(0.08 * x[:, None] + 0.1 * np.sin(x[None, :] / 1.5))  # [NX,NY]
    res = run_sim(world, sc, motion="auto")
    assert res.motion_backend == "controller"
    m = res.metrics
    print(f"\nslope: skate {m['skate_cm_s']:.1f} cm/s (level {flat['skate_cm_s']:.1f}; raw {m['skate_raw_cm_s']:.1f})")
    assert m["foot_error_m_max"] < 1e-6 and m["penetration_m_max"] < 1e-6
    rise = np.ptp(world.height(res.joints[:, :, 0, :2]), axis=0)  # [A] metres of height each agent walked through
    assert rise.max() > 0.15  # the agents did walk up, down or across the slope
    sk = res.skeleton
    for child in range(len(sk.names)):  # every bone keeps its length through the IK (thigh, shin, foot included)
        p = int(sk.parents[child])
        if p >= 0:
            L = np.linalg.norm(res.joints[:, :, child] - res.joints[:, :, p], axis=-1)  # [T,A]
            assert np.abs(L - L[:1]).max() < 2e-3, (sk.names[child], np.abs(L - L[:1]).max())
    assert m["skate_cm_s"] < 1.15 * flat["skate_cm_s"] and m["skate_cm_s"] < 1.5 * 29.2  # 29.2: real mocap (bench)


def test_terrain_adapt_puts_each_foot_on_the_ground_under_it():
    """A standing pose on a 10 % ramp: after terrain_adapt each ankle is at the ground under it plus its level-ground
    height, the leg bones keep their length, the root drops to the lower foot's ground; on level ground nothing moves."""
    from realsim.sim.footlock import terrain_adapt

    hip, knee, ank = np.array([0.0, 0.1, 0.9]), np.array([0.25, 0.1, 0.5]), np.array([0.25, 0.1, 0.1])  # foot 25 cm ahead
    J = np.stack([np.array([0.0, 0.0, 1.0]), hip, knee, ank, hip * [-1, -1, 1], knee * [-1, -1, 1], ank * [-1, -1, 1]])[None]
    legs = [(1, 2, 3, -1), (4, 5, 6, -1)]
    assert np.array_equal(terrain_adapt(J, legs, lambda xy: np.zeros(len(xy)), np.zeros(1)), J)
    ramp = lambda xy: 0.1 * xy[:, 0]  # noqa: E731
    out = terrain_adapt(J, legs, ramp, np.zeros(1))[0]
    for h, k, a in ((1, 2, 3), (4, 5, 6)):
        assert out[a, 2] == pytest.approx(ramp(out[a:a + 1, :2])[0] + 0.1, abs=1e-9)
        for i, j in ((h, k), (k, a)):
            assert np.linalg.norm(out[i] - out[j]) == pytest.approx(np.linalg.norm(J[0, i] - J[0, j]), abs=1e-9)
    assert out[0, 2] == pytest.approx(1.0 - 0.025)  # the body lowered to the downhill foot's ground (x = -0.25)


def test_frames_come_in_order_and_errors_surface():
    """Frames rendered on worker threads are yielded in frame order whatever order they finish in; a failing frame raises."""
    import time

    from realsim.sim.outputs import _frames_in_order

    def render(t):  # early frames finish last
        time.sleep(0.01 * (5 - t % 5))
        return {"t": t}

    assert [(t, f["t"]) for t, f in _frames_in_order(render, 9, workers=3)] == [(t, t) for t in range(9)]

    def bad(t):
        if t == 4:
            raise ValueError("frame 4")
        return {"t": t}

    with pytest.raises(ValueError, match="frame 4"):
        list(_frames_in_order(bad, 9, workers=2))


def test_parallel_frames_write_what_serial_frames_write(street, tmp_path, monkeypatch):
    """The written streams do not depend on how many frames render at once (masks and 16-bit depth byte for byte)."""
    from realsim.sim import outputs
    from realsim.sim.outputs import make_camera_path, mesh_layer, visible_mask, write_outputs

    scene, world, frames = street
    path = make_camera_path("interp", frames, 0.6, 10, 1.0, 96, 72)
    sc = default_scenario(2, 0.6, seed=1)
    sc.fps = 10
    res = run_sim(world, sc, motion="auto", spawn_mask=visible_mask(world, path))
    for w in (1, 2):
        monkeypatch.setattr(outputs, "RENDER_WORKERS", w)
        write_outputs(tmp_path / f"w{w}", mesh_layer(scene), world, res, path, ssaa=2)
    for sub in ("masks", "depth"):
        names = sorted(p.name for p in (tmp_path / "w1" / sub).iterdir())
        assert len(names) == 6
        for n in names:
            assert (tmp_path / "w1" / sub / n).read_bytes() == (tmp_path / "w2" / sub / n).read_bytes(), (sub, n)
    assert json.loads((tmp_path / "w1" / "keypoints.json").read_text()) == json.loads((tmp_path / "w2" / "keypoints.json").read_text())
