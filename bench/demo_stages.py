"""The demo's non-training stages, each way it can run (issue 12: the demo within about 5 minutes on 2 cores):

- poses on the demo's synthetic capture: COLMAP calls of at least EXTRACT_CHUNK photos / MATCH_BLOCK pairs (now 10 / 80)
  against the former 1 / 20 (then 3 photos and 20 pairs a call), with the poses' error against the exact cameras;
- simulate + render of a trained demo scene with frames rendered one at a time and RENDER_WORKERS at once;
- the video encoder's x264 preset (per-frame CPU and PSNR against the frames it was given).

Needs a finished `realsim demo -o DIR` (its capture and scene are read, never changed). Prints a table and writes
bench/results/demo_stages.json.

    python bench/demo_stages.py --demo realsim_demo [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, load_avg, write_result


def _clock(fn) -> tuple[float, float]:
    """(wall s, process CPU s) of fn()."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def poses_rows(demo: Path, tmp: Path, repeat: int) -> list[dict]:
    from realsim.assets.cameras import load_cameras
    from realsim.recon import run_poses, sfm
    from realsim.sim.capture import pose_error_vs_ground_truth
    from realsim.sim.pipeline import DemoOptions, demo_poses_options

    cap = demo / "capture"
    popts = demo_poses_options(DemoOptions(), True, json.loads((cap / "capture.json").read_text())["camera_height"])
    rows, shipped = [], (sfm.EXTRACT_CHUNK, sfm.MATCH_BLOCK)
    for label, chunk, block in (("former: 3 photos / 20 pairs a call", 1, 20), ("now: 10 photos / 80 pairs a call", 10, 80)):
        sfm.EXTRACT_CHUNK, sfm.MATCH_BLOCK = chunk, block
        for r in range(repeat):
            out = tmp / f"poses_{chunk}_{r}"
            wall, cpu = _clock(lambda: run_poses(cap / "images", out, popts, overwrite=True))
            err = pose_error_vs_ground_truth(load_cameras(out / "cameras.json"), load_cameras(cap / "cameras_gt.json"))
            rows.append({"stage": "poses", "setting": label, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "centre_rmse_m": round(err["centre_rmse_m"], 4), "rotation_max_deg": round(err["rotation_max_deg"], 3)})
    sfm.EXTRACT_CHUNK, sfm.MATCH_BLOCK = shipped
    return rows


def sim_rows(demo: Path, tmp: Path, repeat: int) -> list[dict]:
    from realsim.sim import outputs
    from realsim.sim.pipeline import DemoOptions, demo_simulate_options, simulate_scene

    sopts = demo_simulate_options(DemoOptions(), demo / "poses")
    rows, shipped = [], outputs.RENDER_WORKERS
    for workers in (1, shipped):
        outputs.RENDER_WORKERS = workers
        for r in range(repeat):
            out = tmp / f"sim_{workers}_{r}"
            res: dict = {}
            wall, cpu = _clock(lambda: res.update(simulate_scene(demo / "scene", out, sopts)))
            rows.append({"stage": "simulate + render", "setting": f"{workers} frame(s) at once", "wall_s": round(wall, 2),
                         "cpu_s": round(cpu, 2), "frames": res["frames"], "size": f"{res['width']}x{res['height']}"})
            shutil.rmtree(out, ignore_errors=True)
    outputs.RENDER_WORKERS = shipped
    return rows


def encoder_rows(demo: Path, tmp: Path) -> list[dict]:
    from realsim.render.video import VideoWriter, read_video

    frames, fps = read_video(demo / "sim" / "rgb.mp4")
    frames = frames[:90].astype(np.float32) / 255.0  # [T,H,W,3]
    T, H, W, _ = frames.shape
    rows = []
    for preset in ("medium", "fast"):
        p = tmp / f"enc_{preset}.mp4"

        def enc() -> None:
            with VideoWriter(p, fps, W, H, preset=preset) as w:
                for f in frames:
                    w.write(f)

        wall, cpu = _clock(enc)
        back = read_video(p)[0].astype(np.float32) / 255.0
        psnr = float(10 * np.log10(1.0 / np.mean((back - frames) ** 2)))
        rows.append({"stage": "video encoder (x264, crf 18)", "setting": preset, "wall_s": round(wall / T, 4),
                     "cpu_s": round(cpu / T, 4), "per": "frame", "psnr_db": round(psnr, 2), "kb": p.stat().st_size // 1024})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", type=Path, required=True, help="a finished `realsim demo -o DIR`")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "demo_stages.json")
    a = ap.parse_args()
    if not (a.demo / "scene" / "model.safetensors").is_file() or not (a.demo / "capture" / "cameras_gt.json").is_file():
        raise SystemExit(f"{a.demo} is not a finished synthetic `realsim demo` output")
    load0 = load_avg()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        rows = poses_rows(a.demo, tmp, a.repeat) + sim_rows(a.demo, tmp, a.repeat) + encoder_rows(a.demo, tmp)
    print("| stage | setting | wall s | CPU s | notes |\n|---|---|---|---|---|")
    for r in rows:
        notes = {k: v for k, v in r.items() if k not in ("stage", "setting", "wall_s", "cpu_s")}
        print(f"| {r['stage']} | {r['setting']} | {r['wall_s']} | {r['cpu_s']} | {notes} |")
    write_result(a.out, {"demo": str(a.demo), "load_avg_start": load0, "load_avg_end": load_avg(), "rows": rows})


if __name__ == "__main__":
    main()
