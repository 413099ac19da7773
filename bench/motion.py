"""Benchmark the human motion (issue 16): one table of skating (raw model on a 2 m circle and as rendered in the sim, by
the shared metric `sim.motion.metrics.skating`), lateral / along-track / end tracking error, diversity under identical
commands, style accuracy (classifier trained on real clips) and CPU time per agent step, for the diffusion controller
(the sim's settings), the motion-matching baseline and real mocap; plus along-track speed tracking (0.5-3 m/s) in the JSON.

    python bench/motion.py                                  # shipped weights, data from $REALSIM_DATA (../shared/data)
    python bench/motion.py --weights W.safetensors --parts skating,style --out /tmp/m.json
    python bench/motion.py --weights ../build/motion_ft5.safetensors --plan-smooth 0 --out results/motion_ft5_candidate.json

The parts live in bench/motion_human.py. Prints the table and writes bench/results/motion.json (machine and load).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import motion_human as mh
from _common import RESULTS, data_root, load_avg, write_result

PARTS = ("skating", "diversity", "tracking", "style", "speed", "realtime")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    ap.add_argument("--weights", default=None, help="motion model file (default: the shipped weights)")
    ap.add_argument("--agents", type=int, default=32, help="agents for the step-time part")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the sim's setting)")
    ap.add_argument("--data", default=None, help="motion data folder (default $REALSIM_DATA/motion)")
    ap.add_argument("--plan-smooth", type=float, default=None,
                    help="the controller's plan smoothing sigma in frames, everywhere incl. the sim (default: PLAN_SMOOTH)")
    ap.add_argument("--seed", type=int, default=0, help="added to every controller seed (other noise draws; 0: the table's)")
    ap.add_argument("--out", type=Path, default=RESULTS / "motion.json")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    bad = sorted(set(parts) - set(PARTS))
    if bad:
        ap.error(f"unknown parts {bad}; choose from {','.join(PARTS)}")
    import torch

    from realsim.sim.motion import controller
    from realsim.sim.motion.data import build_dataset
    from realsim.sim.motion.model import MotionModel, default_weights_path

    torch.set_num_threads(args.threads)
    mh.SEED = args.seed
    if args.plan_smooth is not None:
        controller.PLAN_SMOOTH = args.plan_smooth
    weights = args.weights
    model = MotionModel.load(weights or default_weights_path())
    data = Path(args.data) if args.data else data_root() / "motion"
    c0 = time.process_time()
    ds = build_dataset(data) if set(parts) - {"speed"} else None
    res: dict = {"weights": str(weights or "shipped"), "model_steps": model.meta.get("steps"), "torch_threads": args.threads, "seed": args.seed,
                 "plan_smooth": controller.PLAN_SMOOTH,
                 "load_avg_start": load_avg(), "cores": os.cpu_count(), "dataset_cpu_s": round(time.process_time() - c0, 1)}
    fns = {"skating": lambda: mh.skating_part(model, ds, weights), "diversity": lambda: mh.diversity_part(model, ds),
           "tracking": lambda: mh.tracking_part(model, ds), "style": lambda: mh.style_part(model, ds),
           "speed": lambda: mh.speed_part(model), "realtime": lambda: mh.realtime_part(model, ds, args.agents, weights=weights)}
    for p in parts:
        c0 = time.process_time()
        res[p] = fns[p]()
        res[p]["cpu_s"] = round(time.process_time() - c0, 1)
        print(f"{p} ({res[p]['cpu_s']:.0f} CPU s): {res[p]}", file=sys.stderr)
    res["load_avg_end"] = load_avg()
    res["table"] = mh.table(res)
    print(res["table"])
    la0, la1 = res["load_avg_start"] or [float("nan")], res["load_avg_end"] or [float("nan")]
    print(f"load avg {la0[0]:.1f} -> {la1[0]:.1f} on {os.cpu_count()} cores")
    write_result(args.out, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
