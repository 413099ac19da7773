"""`realsim demo` end to end at a tiny size: SYNTHETIC capture -> poses -> Scaffold-GS -> sim -> video + streams.

Also checks the pose stage against the capture's exact cameras, and that re-running reuses finished stages.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


pytestmark = pytest.mark.slow  # the whole pipeline: about a minute on an idle 2-core machine

SECONDS, FPS = 2, 10  # the demo clip: 20 frames at the capture size (320x240), the default (diffusion) motion controller


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from realsim.cli.main import main

    out = tmp_path_factory.mktemp("demo") / "d"
    rc = main(["-q", "demo", "-o", str(out), "--capture-size", "320x240", "--images-count", "14", "--iterations", "30",
               "--seconds", str(SECONDS), "--fps", str(FPS), "--agents", "3"])
    assert rc == 0
    return out


def _agents_in_masks(sim_dir) -> tuple[float, float]:
    """(fraction of frames whose agent mask is non-empty, mean number of agents shown per frame) from sim/masks/*.png."""
    from PIL import Image

    A = json.loads((sim_dir / "sim.json").read_text())["agents"]  # ids 1..A are agents, A+1.. props
    masks = [np.asarray(Image.open(p)) for p in sorted((sim_dir / "masks").glob("*.png"))]
    assert masks
    agent = [m[(m > 0) & (m <= A)] for m in masks]
    return float(np.mean([len(a) > 0 for a in agent])), float(np.mean([len(np.unique(a)) for a in agent]))


def test_demo_outputs(demo_dir):
    from realsim.render.video import read_video

    summary = json.loads((demo_dir / "demo.json").read_text())
    assert summary["synthetic"] is True
    cap = json.loads((demo_dir / "capture" / "capture.json").read_text())
    assert cap["synthetic"] is True and "SYNTHETIC" in cap["label"]
    assert all(p.name.startswith("SYNTHETIC_") for p in (demo_dir / "capture" / "images").iterdir())
    # poses: every synthetic photo registers and matches the exact cameras to centimetres after a similarity
    gt = summary["poses"]["vs_ground_truth"]
    assert gt["matched"] >= 12
    assert gt["centre_rmse_m"] < 0.05 and gt["rotation_max_deg"] < 1.0
    assert abs(gt["scale_to_gt"] - 1) < 0.05  # metric from the known camera height
    # video and streams: at the capture's size, the default motion controller, agents in view in (nearly) every frame
    T = SECONDS * FPS
    video, fps = read_video(demo_dir / "sim" / "rgb.mp4")
    assert video.shape == (T, 240, 320, 3) and fps == pytest.approx(FPS)
    assert video.std() > 5  # not a blank frame
    sim = json.loads((demo_dir / "sim" / "sim.json").read_text())
    assert sim["provenance"]["synthetic"] is True
    assert sim["motion_backend"] == "controller" and summary["sim"]["motion_backend"] == "controller"
    frac, mean = _agents_in_masks(demo_dir / "sim")
    assert frac >= 0.8 and mean >= 1.0, (frac, mean)
    # trained where it is rendered: the video's width, coarse to fine (no upsampled blur)
    tcfg = json.loads((demo_dir / "scene" / "scene.json").read_text())["metadata"]["train"]["config"]
    assert tcfg["max_width"] == 320 and tcfg["res_schedule"] == [[0.3, 4], [0.6, 2]] and tcfg["iterations"] == 30
    # held-out views 0 and 8 of 14: the walk's first photo is extrapolated, view 8 interpolated; the all-views mean kept
    tr = summary["train"]
    assert tr["views_extrap"] == ["SYNTHETIC_street_0000.jpg"] and tr["views_interp"] == ["SYNTHETIC_street_0008.jpg"]
    assert tr["psnr_all_views"] == pytest.approx((tr["psnr_interp"] + tr["psnr_extrap"]) / 2, abs=1e-3)
    assert tr["psnr_all_views"] == pytest.approx(tr["psnr"], abs=1e-3) and 0 < tr["ssim_interp"] <= 1  # per-view: 3 decimals
    m = sim["metrics"]
    assert m["frames_with_agent_fraction"] == pytest.approx(frac) and m["visible_agents_mean"] == pytest.approx(mean)
    assert summary["sim"]["metrics"]["frames_with_agent_fraction"] == pytest.approx(frac)
    assert m["off_walkable_fraction"] == 0 and m["in_obstacle_fraction"] == 0 and m["foot_error_m_max"] < 0.03
    assert m["min_body_gap_m"] >= -1e-6
    print(f"\n[demo tiny] timings {summary['timings']}, min agent distance {m['min_agent_distance_m']:.2f} m, "
          f"pose rmse {100 * gt['centre_rmse_m']:.2f} cm, agents in view in {100 * frac:.0f}% of frames ({mean:.1f} per frame)")
    kp = json.loads((demo_dir / "sim" / "keypoints.json").read_text())
    assert len(kp["images"]) == T
    # the demo's props (a ball kicked across the view, boxes in an agent's way): in props.json and in most frames' masks
    props = json.loads((demo_dir / "sim" / "props.json").read_text())
    A, P = sim["agents"], len(props["props"])
    assert P == 3 and [p["shape"] for p in props["props"]] == ["sphere", "box", "box"]
    assert sim["mask_ids"]["props"] == [A + 1, A + P]
    from PIL import Image

    masks = [np.asarray(Image.open(p)) for p in sorted((demo_dir / "sim" / "masks").glob("*.png"))]
    shown = np.mean([(m > A).any() for m in masks])
    assert shown >= 0.6, shown
    ball = np.array(props["props"][0]["position"])
    rolled = float(np.linalg.norm(ball[-1, :2] - ball[0, :2]))
    hit = [c for c in props["contacts"] if c["prop"] == 0 and c["with"] not in ("ground", "floor")]
    # kicked: it rolls across the street (>= 1.5 m/s for the clip), unless an agent or a wall stops it on the way
    assert rolled > 1.0 or (rolled > 0.2 and hit), (rolled, hit)
    print(f"[demo tiny] props in {100 * shown:.0f}% of the frames' masks; contacts {[c['with'] for c in props['contacts']]}")
    for name in ("depth.mp4", "masks.mp4", "cameras.json", "camera_path.json", "trajectories.json", "motion.safetensors"):
        assert (demo_dir / "sim" / name).is_file(), name
    assert len(list((demo_dir / "sim" / "depth").glob("*.png"))) == T


@pytest.mark.parametrize("seed,threads", [(1, 1), (2, 2), (3, 1)])
def test_demo_sim_shows_agents_for_other_seeds_and_threads(demo_dir, tmp_path, seed, threads):
    """The demo's own sim settings on its trained scene (training is the slow part): agents in view for every seed."""
    import torch

    from realsim.sim.pipeline import DemoOptions, demo_simulate_options, simulate_scene

    opts = DemoOptions(agents=3, seconds=1.5, fps=FPS, seed=seed, capture_width=320, capture_height=240)
    sopts = demo_simulate_options(opts, demo_dir / "poses")
    assert sopts.camera == "follow" and (sopts.width, sopts.height) == (320, 240)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        summary = simulate_scene(demo_dir / "scene", tmp_path / "sim", sopts)
    finally:
        torch.set_num_threads(before)
    frac, mean = _agents_in_masks(tmp_path / "sim")
    assert summary["frames"] == 15 and summary["motion_backend"] == "controller"
    assert frac >= 0.8 and mean >= 1.0, (seed, threads, frac, mean)
    assert summary["metrics"]["frames_with_agent_fraction"] == pytest.approx(frac)
    print(f"\n[demo sim seed {seed}, {threads} thread(s)] agents in view in {100 * frac:.0f}% of frames ({mean:.1f} per frame)")


@pytest.mark.parametrize("camera", ["follow", "interp", "static"])
def test_simulate_cli_camera_paths(demo_dir, tmp_path, capsys, camera):
    """`realsim simulate --camera ...` on the demo's scene: the run says how often agents are in view, and it is true."""
    from realsim.cli.main import main

    out = tmp_path / camera
    rc = main(["-q", "simulate", str(demo_dir / "scene"), "-o", str(out), "--camera", camera, "--agents", "3", "--seconds", "1",
               "--fps", "8", "--width", "160", "--height", "120"])
    printed = capsys.readouterr().out
    assert rc == 0 and "agents in view in" in printed
    frac, _ = _agents_in_masks(out)
    assert json.loads((out / "sim.json").read_text())["metrics"]["frames_with_agent_fraction"] == pytest.approx(frac)
    assert f"{100 * frac:.0f}% of the frames" in printed
    if camera == "follow":
        assert frac >= 0.8


def test_demo_rerun_reuses_stages_and_bad_images_dir(demo_dir, tmp_path, capsys):
    from realsim.cli.main import main

    before = (demo_dir / "scene" / "model.safetensors").stat().st_mtime_ns
    rc = main(["-q", "demo", "-o", str(demo_dir), "--capture-size", "320x240", "--images-count", "14", "--seconds", "0.5",
               "--fps", "10", "--agents", "2"])
    assert rc == 0
    assert (demo_dir / "scene" / "model.safetensors").stat().st_mtime_ns == before  # not retrained
    assert json.loads((demo_dir / "demo.json").read_text())["train"] == {"reused": True}
    rc = main(["demo", "-o", str(tmp_path / "x"), "--images", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "missing" in err
    rc = main(["demo", "-o", str(tmp_path / "y"), "--capture-size", "big"])
    err = capsys.readouterr().err
    assert rc == 2 and "capture-size" in err


def test_demo_depth_order_against_the_scene(demo_dir):
    """Where the instance mask shows an agent or prop, its written depth is in front of the Gaussian scene's own depth there,
    except where that surface is the ground (within GROUND_BAND_M of the World's): bodies stand on the World's ground, and
    the rendered ground's view-dependent noise must not hide their feet (sim.outputs._ground_occluder_depth)."""
    from PIL import Image

    from realsim.assets.cameras import load_cameras
    from realsim.recon import load_scene
    from realsim.render.composite import unproject_depth
    from realsim.render.video import load_depth_png16
    from realsim.sim.outputs import GROUND_BAND_M
    from realsim.sim.world import world_from_scene

    sim = json.loads((demo_dir / "sim" / "sim.json").read_text())
    scene = load_scene(demo_dir / "scene")
    world = world_from_scene(scene)
    cams = load_cameras(demo_dir / "sim" / "cameras.json")
    shown = 0
    for t in range(0, sim["frames"], 3):
        mask = np.asarray(Image.open(demo_dir / "sim" / "masks" / f"{t:06d}.png")) > 0
        if not mask.any():
            continue
        shown += 1
        depth = load_depth_png16(demo_dir / "sim" / "depth" / f"{t:06d}.png", sim["depth_png_scale_m"])[..., 0]
        f = cams.frames[t]
        r = scene.render(f.viewmat, f.K, f.width, f.height)
        sd = r["depth"][..., 0].numpy()
        pts = unproject_depth(r["depth"], f.viewmat, f.K).numpy().astype(np.float64)  # [H,W,3] world
        ground = np.abs(pts[..., 2] - world.height(pts[..., :2])) < GROUND_BAND_M
        solid = mask & (r["alpha"][..., 0].numpy() > 0.9) & (sd > 0) & ~ground
        if solid.any():
            assert (depth[solid] <= sd[solid] + 0.05).mean() > 0.98
    assert shown > 0


def test_demo_training_recipe_follows_the_photos():
    """60 epochs of the training photos (600..3000 iterations) at the video's width; explicit options win."""
    from realsim.recon import preset_config
    from realsim.sim.pipeline import DemoOptions, demo_train_config

    cfg = demo_train_config(DemoOptions(), 480, 26)
    assert (cfg.iterations, cfg.max_width, cfg.max_seconds) == (1560, 480, 600.0)
    assert (cfg.dense_init_stride, cfg.scaffold.n_offsets) == (8, 5)  # the synthetic walk starts from denser points
    real = demo_train_config(DemoOptions(images=Path("photos")), 512, 25)
    assert (real.preset, real.dense_init_stride, real.scaffold.n_offsets) == ("real", 0, 10)  # sparse photos: not
    assert real.res_schedule == preset_config("real", "scaffold").res_schedule == [[0.15, 4], [0.3, 2]]  # the preset's own
    assert cfg.res_schedule == [[0.3, 4], [0.6, 2]]
    assert demo_train_config(DemoOptions(images=Path("photos"), max_width=300), 298, 25).max_width == 298  # the video's
    assert demo_train_config(DemoOptions(), 480, 5).iterations == 600
    assert demo_train_config(DemoOptions(), 640, 400).iterations == 3000
    cfg = demo_train_config(DemoOptions(iterations=50, train_minutes=None, preset="cpu", max_width=256), 480, 26)
    assert (cfg.iterations, cfg.max_width, cfg.max_seconds) == (50, 256, 0.0)


def test_simulate_props_scenario_end_to_end(demo_dir, tmp_path, capsys):
    """`realsim simulate SCENE --scenario props.yaml` with agents and props on the demo's trained scene: props.json per
    frame, prop ids in the masks, the physics block in sim.json; bad props input is exit 2, one line, nothing written."""
    from PIL import Image

    from realsim.cli.main import main
    from realsim.recon import load_scene
    from realsim.sim.physics import collider_boxes
    from realsim.sim.world import world_from_scene

    def scenario(props) -> str:
        import yaml

        p = tmp_path / f"s{len(list(tmp_path.glob('s*.yaml')))}.yaml"
        p.write_text(yaml.safe_dump({"agents": [{"count": 2}], "duration": 1.0, "fps": 8, "seed": 3,
                                     "camera": {"path": "follow", "width": 160, "height": 120}, "props": props}))
        return str(p)

    good = scenario([{"shape": "sphere", "size": [0.15], "position": "auto", "velocity": [1.5, 0, 0], "restitution": 0.8},
                     {"shape": "box", "size": [0.4, 0.3, 0.3], "position": "auto", "mass": 3.0},
                     {"shape": "cylinder", "size": [0.1, 0.4], "position": "auto", "density": 300}])
    out = tmp_path / "ok"
    assert main(["-q", "simulate", str(demo_dir / "scene"), "-o", str(out), "--scenario", good]) == 0
    sim = json.loads((out / "sim.json").read_text())
    props = json.loads((out / "props.json").read_text())
    T, A = sim["frames"], sim["agents"]
    assert T == 8 and A == 2 and props["fps"] == 8 and props["frames"] == T and props["quat_order"] == "wxyz"
    assert sim["physics"]["substeps"] == 500 and sim["physics"]["dt_s"] == pytest.approx(1 / 4000)
    assert sim["mask_ids"]["props"] == [3, 5]
    for i, p in enumerate(props["props"]):
        assert p["id"] == i and len(p["position"]) == len(p["quat"]) == len(p["velocity"]) == T
        assert all(len(q) == 4 for q in p["quat"]) and all(len(x) == 3 for x in p["position"])
    assert [p["size"] for p in props["props"]] == [[0.15], [0.4, 0.3, 0.3], [0.1, 0.4]]
    assert props["props"][0]["velocity"][0][0] == pytest.approx(1.5, abs=0.05)
    ids = set()
    for f in sorted((out / "masks").glob("*.png")):
        ids |= set(np.unique(np.asarray(Image.open(f))).tolist())
    assert ids & {3, 4, 5}, ids  # props are drawn and masked with ids A+1..A+P
    assert ids <= set(range(0, 6))
    # bad props: one clear line, exit 2, nothing written
    world = world_from_scene(load_scene(demo_dir / "scene"))
    boxes = collider_boxes(world)
    assert len(boxes)
    b = boxes[int(np.argmax(np.prod(boxes[:, 3:5] - boxes[:, :2], 1)))]  # the largest footprint
    wall = [float((b[0] + b[3]) / 2), float((b[1] + b[4]) / 2), float(world.height(((b[:2] + b[3:5]) / 2)[None])[0] + 0.5)]
    capsys.readouterr()
    for bad, msg in (({"shape": "torus"}, "torus"), ({"shape": "sphere", "mass": -1.0}, "mass must be positive"),
                     ({"shape": "box", "size": [0.3, 0.3, 0.3], "position": wall}, "inside a wall")):
        o = tmp_path / f"bad_{bad['shape']}_{len(bad)}"
        rc = main(["-q", "simulate", str(demo_dir / "scene"), "-o", str(o), "--scenario", scenario([bad])])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
        assert not o.exists() or not any(o.iterdir()), list(o.iterdir())
