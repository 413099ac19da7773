"""Issue 16's measures over several noise draws, for one or more motion models side by side: raw circle skating,
lateral / along-track / end tracking, diversity and style accuracy per seed, then mean and sample std per model. This
is how a weights change is judged (one seed's tracking differs by ~0.05 cm from the next).

    python bench/motion_seeds.py                                            # shipped weights, seeds 0-5
    python bench/motion_seeds.py --models shipped:1 ../build/motion_ft3.safetensors:1 --seeds 0,1,2,3,4,5

A model is WEIGHTS[:PLAN_SMOOTH] (`shipped` = the shipped file; the smoothing sigma in frames, default the
controller's). Prints a table and writes bench/results/motion_seeds.json (machine and load).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import motion_human as mh
import numpy as np
from _common import RESULTS, data_root, load_avg, write_result

MEASURES = (("skating", "diffusion_circle_2m_raw", "raw circle skating (cm/s)"),
            ("tracking", "lateral_cm", "lateral (cm)"), ("tracking", "along_cm", "along-track (cm)"),
            ("tracking", "end_cm", "end (cm)"), ("diversity", "diffusion_sim", "diversity (cm)"),
            ("style", "generated_sim", "style accuracy"))


def measure(model, ds, seed: int) -> dict[str, float]:
    """One seed's measures (the parts bench/motion.py runs, with every controller seed offset by `seed`)."""
    mh.SEED = seed
    parts = {"skating": mh.skating_part(model, ds), "tracking": mh.tracking_part(model, ds)["diffusion"]["mean"],
             "diversity": mh.diversity_part(model, ds), "style": mh.style_part(model, ds)}
    return {label: float(parts[p][k]) for p, k, label in MEASURES}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["shipped"], help="WEIGHTS[:PLAN_SMOOTH] each ('shipped' allowed)")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--out", type=Path, default=RESULTS / "motion_seeds.json")
    args = ap.parse_args()
    import torch

    from realsim.sim.motion import controller
    from realsim.sim.motion.data import build_dataset
    from realsim.sim.motion.model import MotionModel, default_weights_path

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    ds = build_dataset(data_root() / "motion")
    default_smooth = controller.PLAN_SMOOTH
    res: dict = {"seeds": seeds, "load_avg_start": load_avg(), "models": {}}
    for spec in args.models:
        path, _, smooth = spec.partition(":")
        controller.PLAN_SMOOTH = float(smooth) if smooth else default_smooth
        model = MotionModel.load(default_weights_path() if path == "shipped" else path)
        c0 = time.process_time()
        per = {s: measure(model, ds, s) for s in seeds}
        stats = {label: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                         "per_seed": v} for label in per[seeds[0]] for v in [[per[s][label] for s in seeds]]}
        res["models"][spec] = {"plan_smooth": controller.PLAN_SMOOTH, "cpu_s": round(time.process_time() - c0, 1), **stats}
        print(f"{spec}: {res['models'][spec]['cpu_s']:.0f} CPU s", file=sys.stderr)
    controller.PLAN_SMOOTH = default_smooth
    res["load_avg_end"] = load_avg()
    labels = [m[2] for m in MEASURES]
    lines = ["| model | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for spec, st in res["models"].items():
        cells = [f"{st[lb]['mean']:.3f} +- {st[lb]['std']:.3f}" for lb in labels]
        lines.append(f"| {spec} (smooth {st['plan_smooth']:g}) | " + " | ".join(cells) + " |")
    res["table"] = "\n".join(lines)
    print(f"seeds {seeds}, mean +- sample std\n" + res["table"])
    write_result(args.out, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
