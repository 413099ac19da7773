"""Simulation-layer timings on this machine: world building, sim steps (per agent count; 32 learned agents in the full loop),
body mesh + compositing per frame, synthetic capture per photo. Prints a table and writes bench/results/sim.json.

    .venv/bin/python bench/sim.py [--quick]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import RESULTS, write_result


def _t(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bodies", action="store_true", help="only the agent-body rows (skinned vs tubes): sim_bodies.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from realsim.assets.cameras import CameraFrame
    from realsim.assets.frames import camera_center
    from realsim.sim.body import BodyModel
    from realsim.sim.tubes import TubeBody
    from realsim.sim.capture import CaptureConfig, build_street, render_view, sample_surface_points, walk_cameras
    from realsim.sim.loop import run_sim
    from realsim.sim.outputs import make_camera_path, render_frame
    from realsim.sim.scenario import default_scenario
    from realsim.sim.world import world_from_points

    rows = []
    cfg = CaptureConfig()
    scene = build_street(0)
    views = walk_cameras(cfg)
    K = np.array([[cfg.focal, 0, cfg.width / 2], [0, cfg.focal, cfg.height / 2], [0, 0, 1.0]])
    cams = np.array([camera_center(v) for v in views])
    P = sample_surface_points(scene, 30000)
    t_world = _t(lambda: world_from_points(P, cams))
    world = world_from_points(P, cams)
    rows.append(("world from 30k points (street 12x54 m)", t_world, "s"))
    t_cap = 0.0 if args.bodies else _t(lambda: render_view(scene, views[10], K, cfg.width, cfg.height, 2),
                                       1 if args.quick else 2)
    rows.append((f"synthetic photo {cfg.width}x{cfg.height} ssaa2 ({len(scene.faces)} tris)", t_cap, "s"))
    for n in ([] if args.bodies else [4] if args.quick else [4, 8, 16]):
        sc = default_scenario(n, 2.0, seed=0)
        t = time.perf_counter()
        r = run_sim(world, sc, motion="procedural")
        dt = time.perf_counter() - t
        rows.append((f"sim step, {n} agents (procedural motion, incl. planning)", dt / r.n_frames, "s/frame"))
    if not (args.quick or args.bodies):  # the whole sim loop, learned controller (crowd + diffusion + constraints + foot locks)
        import motion_human
        from _common import data_root

        from realsim.sim.motion.data import build_dataset
        from realsim.sim.motion.model import MotionModel, default_weights_path

        torch.set_num_threads(1)
        mdir = data_root() / "motion"  # real mocap only feeds the motion-matching row; absent: that row is skipped
        ds = build_dataset(mdir) if mdir.is_dir() else None
        rt = motion_human.realtime_part(MotionModel.load(default_weights_path()), ds, 32, 4.0)
        rows.append(("sim loop, 32 agents crossing (diffusion controller, 1 torch thread, no rendering)",
                     rt["sim_ms_per_frame"] / 1000, "s/frame"))
        rows.append(("  ... per agent step (CPU)", rt["cpu_ms_per_agent_step"] / 1000, "s/agent"))
        torch.set_num_threads(2)
    frames = [CameraFrame(f"{i:03d}", K, v, cfg.width, cfg.height) for i, v in enumerate(views)]
    path = make_camera_path("interp", frames, 2.0, 30, 1.0, 480, 360)
    r = run_sim(world, default_scenario(6, 2.0, seed=0), motion="procedural")
    body = BodyModel(r.skeleton)
    flat = lambda V, K, W, H: {"rgb": torch.full((H, W, 3), 0.5), "depth": torch.full((H, W, 1), 30.0),  # noqa: E731
                               "alpha": torch.ones(H, W, 1)}
    t_fr = _t(lambda: render_frame(flat, world, body, r, 30, path.viewmats[30], path.Ks[30], 480, 360, ssaa=2))
    rows.append((f"agents layer 480x360: 6 bodies ({6 * len(body.faces)} tris) ssaa2 + shadow + composite", t_fr, "s/frame"))
    # the skinned bodies (LBS from recovered joint rotations) against the earlier tubes re-framed by the heading
    tubes = TubeBody(r.skeleton)
    t_tb = _t(lambda: render_frame(flat, world, tubes, r, 30, path.viewmats[30], path.Ks[30], 480, 360, ssaa=2))
    rows.append((f"  ... same with the tube bodies ({6 * len(tubes.faces)} tris)", t_tb, "s/frame"))
    for name, b in (("skinned", body), ("tube", tubes)):
        t_v = _t(lambda: b.vertices(r.joints[30], r.heading[30], r.looks), 5)
        rows.append((f"  ... {name} body vertices alone, 6 agents ({b.n_verts} vertices each)", t_v, "s/frame"))
    print(f"{'what':78s} {'time':>9s}")
    for name, v, unit in rows:
        print(f"{name:78s} {v:9.3f} {unit}")
    if args.bodies:
        rows = [r for r in rows if "bod" in r[0]]
    out = RESULTS / ("sim_bodies.json" if args.bodies else "sim.json")
    p = write_result(out, {"results": [{"what": n, "value": v, "unit": u} for n, v, u in rows]})
    print(f"wrote {p}")


if __name__ == "__main__":
    main()
