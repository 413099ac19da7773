"""Benchmark the motion controller: commanded-path suite per style (diffusion, diffusion without path correction,
motion-matching baseline) against the real mocap as the floor, and how many agents run in real time at 30 Hz.

    python bench/motion.py                       # shipped weights, data from $REALSIM_DATA (../shared/data)
    python bench/motion.py --weights W.safetensors --seconds 10 --max-agents 64
    python bench/motion.py --human-only      # only issue 16's measures (bench/motion_human.py): shared skating metric,
                                             # diversity vs mocap, along-track speed tracking, 32-agent sim loop

Prints tables and writes bench/results/motion.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import REPO, RESULTS, load_avg, write_result

PATHS = ("straight", "circle", "zigzag", "stopgo")
KEYS = ("traj_mean_cm", "traj_max_cm", "heading_deg", "skate_cm_s", "penetration_mean_cm", "penetration_max_cm")


def mocap_floor(ds) -> dict[str, dict[str, float]]:
    """The same metrics on real locomotion clips: the commanded path is the clip's own root track smoothed over ~0.3 s."""
    from scipy.ndimage import gaussian_filter1d

    from realsim.sim.motion.controller import M_TO_WORLD, model_xz_to_world
    from realsim.sim.motion.data import features_to_poses
    from realsim.sim.motion.metrics import path_metrics
    from realsim.sim.motion.sample import Rollout

    per_style: dict[str, list[dict]] = {}
    for c in ds.clips:
        if c.action not in ("walk", "run") or len(c.feat) < 60:
            continue
        P = features_to_poses(c.feat, root_xz=c.root_xz, yaw=c.yaw)
        joints = P.joints @ M_TO_WORLD.T
        root_w = model_xz_to_world(c.root_xz)
        path = gaussian_filter1d(root_w, 10, axis=0, mode="nearest")
        path = np.concatenate([path[:1], path], 0)      # path[t+1] = command for frame t
        T = len(c.feat)
        ro = Rollout(path[1:], joints[None], np.concatenate([root_w, np.zeros((T, 1))], 1)[None], c.yaw[None],
                     P.contacts[None], P.local_rot[None], P.hips[None])
        m = path_metrics(ro, path)
        per_style.setdefault(c.style, []).append({k: m[k][0] for k in KEYS})
    return {s: {k: float(np.mean([r[k] for r in rows])) for k in KEYS} | {"clips": len(rows)}
            for s, rows in sorted(per_style.items())}


def run_suite(make_ctrl, styles, seconds, speed) -> dict[str, dict[str, dict[str, float]]]:
    from realsim.sim.motion.metrics import path_metrics
    from realsim.sim.motion.sample import make_path, rollout

    out: dict[str, dict[str, dict[str, float]]] = {}
    for p in PATHS:
        ctrl = make_ctrl()
        path = make_path(p, seconds, speed, 2.0)
        ro = rollout(ctrl, path, int(seconds * 30))
        m = path_metrics(ro, path)
        out[p] = {s: {k: float(m[k][i]) for k in KEYS} for i, s in enumerate(styles)}
    return out


def summarize(res: dict) -> dict[str, float]:
    rows = [v for per in res.values() for v in per.values()]
    return {k: float(np.mean([r[k] for r in rows])) for k in KEYS} | {"traj_max_cm": float(max(r["traj_max_cm"] for r in rows))}


def realtime_agents(model, max_agents: int, threads: int, frames: int = 60) -> list[dict]:
    """Mean wall time per 30 Hz frame (incl. the periodic diffusion re-plans) for growing agent counts."""
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.sample import make_path

    rows = []
    A = 1
    path = make_path("circle", frames / 30 + 2, 1.2, 2.0)
    while A <= max_agents:
        ctrl = MotionController(model, A, ["neutral"], seed=0, threads=threads)
        ctrl.reset(np.zeros((A, 2)), np.zeros(A))
        for t in range(10):                       # warm-up (includes one plan)
            ctrl.step(np.repeat(path[None, t + 1: t + 46], A, 0))
        t0 = time.perf_counter()
        for t in range(10, 10 + frames):
            ctrl.step(np.repeat(path[None, t + 1: t + 46], A, 0))
        dt = (time.perf_counter() - t0) / frames
        rows.append({"agents": A, "ms_per_frame": dt * 1000, "realtime": dt <= 1 / 30})
        if dt > 2 / 30:
            break
        A *= 2
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--data", default=None, help="motion data folder (default $REALSIM_DATA/motion)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--speed", type=float, default=1.2)
    ap.add_argument("--max-agents", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the controller")
    ap.add_argument("--out", type=Path, default=RESULTS / "motion.json")
    ap.add_argument("--human-only", action="store_true", help="only bench/motion_human.py's parts")
    args = ap.parse_args()
    if args.human_only:
        import motion_human

        sys.argv = [sys.argv[0]]
        return motion_human.main()

    from realsim.sim.motion.baseline import MotionMatchingController
    from realsim.sim.motion.controller import MotionController
    from realsim.sim.motion.data import build_dataset
    from realsim.sim.motion.model import MotionModel, default_weights_path

    data = Path(args.data) if args.data else Path(os.environ.get("REALSIM_DATA", REPO.parent / "shared" / "data")) / "motion"
    weights = Path(args.weights) if args.weights else default_weights_path()
    model = MotionModel.load(weights)
    t0 = time.time()
    ds = build_dataset(data)
    styles = list(model.styles)
    A = len(styles)
    t_load = time.time() - t0

    results: dict = {"weights": str(weights.relative_to(REPO) if weights.is_relative_to(REPO) else weights),
                     "model_steps": model.meta.get("steps"), "styles": styles, "seconds": args.seconds,
                     "speed_m_s": args.speed, "load_avg_start": load_avg(), "dataset_load_s": round(t_load, 2)}
    methods = {
        "diffusion": lambda: MotionController(model, A, styles, seed=0),
        "diffusion_no_correction": lambda: MotionController(model, A, styles, seed=0, correction=0.0),
        "diffusion_raw": lambda: MotionController(model, A, styles, seed=0, correction=0.0, smooth=0.0, floor_clamp=False),
        "diffusion_cfg_style2": lambda: MotionController(model, A, styles, seed=0, w_style=2.0),
        "motion_matching": lambda: MotionMatchingController(ds, A, styles),
        "motion_matching_no_correction": lambda: MotionMatchingController(ds, A, styles, correction=0.0),
    }
    results["suite"] = {}
    for name, mk in methods.items():
        t = time.time()
        results["suite"][name] = run_suite(mk, styles, args.seconds, args.speed)
        print(f"{name}: {time.time() - t:.1f} s", file=sys.stderr)
    results["mocap_floor"] = mocap_floor(ds)
    results["summary"] = {k: summarize(v) for k, v in results["suite"].items()}
    fl = list(results["mocap_floor"].values())
    results["summary"]["mocap_floor"] = {k: float(np.mean([r[k] for r in fl])) for k in KEYS}
    results["realtime"] = {f"threads_{th}": realtime_agents(model, args.max_agents, th) for th in sorted({1, args.threads, 2})}
    rt = [r["agents"] for rows in results["realtime"].values() for r in rows if r["realtime"]]
    results["max_realtime_agents"] = max(rt) if rt else 0
    results["load_avg_end"] = load_avg()

    # ---- tables
    hdr = f"{'method':32s} {'traj mean':>9s} {'traj max':>9s} {'heading':>8s} {'skate':>7s} {'pen mean':>8s} {'pen max':>8s}"
    print("\nAll paths x all styles (cm, deg, cm/s):")
    print(hdr)
    for k, s in results["summary"].items():
        print(f"{k:32s} {s['traj_mean_cm']:9.1f} {s['traj_max_cm']:9.1f} {s['heading_deg']:8.1f} {s['skate_cm_s']:7.1f} "
              f"{s['penetration_mean_cm']:8.2f} {s['penetration_max_cm']:8.2f}")
    print("\nPer path (diffusion | motion matching), mean over styles:")
    for p in PATHS:
        for name in ("diffusion", "diffusion_no_correction", "motion_matching"):
            rows = list(results["suite"][name][p].values())
            print(f"  {p:9s} {name:26s} traj {np.mean([r['traj_mean_cm'] for r in rows]):6.1f}/"
                  f"{max(r['traj_max_cm'] for r in rows):6.1f} cm  heading {np.mean([r['heading_deg'] for r in rows]):5.1f} deg"
                  f"  skate {np.mean([r['skate_cm_s'] for r in rows]):5.1f} cm/s")
    print("\nPer style (diffusion, mean over paths) vs mocap floor skate:")
    for s in styles:
        rows = [results["suite"]["diffusion"][p][s] for p in PATHS]
        fl = results["mocap_floor"].get(s, {})
        print(f"  {s:14s} traj {np.mean([r['traj_mean_cm'] for r in rows]):5.1f} cm  heading "
              f"{np.mean([r['heading_deg'] for r in rows]):5.1f} deg  skate {np.mean([r['skate_cm_s'] for r in rows]):5.1f}"
              f" (mocap {fl.get('skate_cm_s', float('nan')):5.1f}) cm/s")
    print("\nReal time (30 Hz):")
    for th, rows in results["realtime"].items():
        print("  " + th + ": " + ", ".join(f"{r['agents']} agents {r['ms_per_frame']:.1f} ms" for r in rows))
    la0, la1 = results["load_avg_start"] or [float("nan")], results["load_avg_end"] or [float("nan")]
    print(f"max agents in real time: {results['max_realtime_agents']} (load avg {la0[0]:.1f} -> {la1[0]:.1f} on "
          f"{os.cpu_count()} cores)")
    write_result(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
