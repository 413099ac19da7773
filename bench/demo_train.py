"""The demo's training stage alone, for recipe experiments (issue 12): the synthetic capture and poses of a seed (made
once, as `realsim demo` makes them), then Scaffold-GS with `demo_train_config` plus overrides, one thread by default.

    python bench/demo_train.py --seed 0 --name base --work build/demo_train
    python bench/demo_train.py --seed 0 --name dense0 --set dense_init_stride=0 --set scaffold.n_offsets=10

Each run appends a row (held-out interpolated / extrapolated / all views, iterations, CPU s, load) to --json.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from _common import apply_sets, load_avg, read_result, stamp, write_result


def _prepare(seed: int, work: Path) -> Path:
    """capture + poses of the demo for a seed under work/seed{N} (the calls sim/pipeline._run_stages makes)."""
    from dataclasses import replace

    from realsim.sim.capture import CaptureConfig, make_capture
    from realsim.sim.demo_poses import run_demo_poses
    from realsim.sim.pipeline import DemoOptions, demo_poses_options

    out = work / f"seed{seed}"
    if (out / "poses" / "cameras.json").is_file():
        return out / "poses"
    o = DemoOptions(seed=seed)
    cap = out / "capture"
    make_capture(cap, CaptureConfig(n_images=o.n_images, width=o.capture_width, height=o.capture_height, seed=seed),
                 overwrite=True)
    cam_h = json.loads((cap / "capture.json").read_text())["camera_height"]
    popts = replace(demo_poses_options(o, True, cam_h), num_threads=1)
    run_demo_poses(cap / "images", out / "poses", popts, cap / "cameras_gt.json", None)
    return out / "poses"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", required=True)
    ap.add_argument("--iterations", type=int, help="DemoOptions.iterations (default: the demo's own count)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=JSON")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("build/demo_train"))
    ap.add_argument("--json", type=Path, default=Path("bench/results/demo_train.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from realsim.assets.cameras import load_cameras
    from realsim.recon import train
    from realsim.recon.metrics import heldout_split
    from realsim.sim.pipeline import DemoOptions, demo_train_config, demo_video_size

    poses = _prepare(a.seed, a.work)
    o = DemoOptions(seed=a.seed, train_minutes=None, iterations=a.iterations)
    cams = load_cameras(poses / "cameras.json")
    cfg = demo_train_config(o, demo_video_size(o, poses)[0], sum(f.split == "train" for f in cams.frames))
    over = apply_sets(cfg, a.set)
    load0, t0, c0 = load_avg(), time.time(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        r = train(poses, Path(tmp) / "scene", cfg, overwrite=True)
    m = r.metrics
    row = {"name": a.name, "seed": a.seed, "set": over, "iterations": r.iterations, "threads": a.threads,
           "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1), "load_start": load0,
           "load_end": load_avg(), **stamp()}
    row.update(heldout_split({k: m["per_view_" + k] for k in ("psnr", "ssim")},
                             [f.name for f in cams.frames if f.split == "test"], [f.name for f in cams.frames]))
    rows = [x for x in read_result(a.json, {}).get("rows", []) if (x["name"], x["seed"]) != (a.name, a.seed)]
    write_result(a.json, {"rows": rows + [row]}, stamp_it=False)
    print(f"{a.name} seed {a.seed}: interpolated {row['psnr_interp']:.2f} dB / {row['ssim_interp']:.3f}, extrapolated "
          f"{row['psnr_extrap']:.2f}, all {row['psnr_all_views']:.2f}; {r.iterations} it, {row['cpu_s']} CPU s")


if __name__ == "__main__":
    main()
