"""Block-wise training on Ray (issue 20): wall time, memory and per-block cost for 1, 2 and 4 blocks with local workers on a
SYNTHETIC street, merged-scene held-out PSNR against one-block training at equal total iterations, and the projection
to a cluster of N machines from those measurements.

    python bench/scale.py [--quick] [--blocks 1,2,4] [--iterations 400] [--workers 2]
    python bench/scale.py --lengths 50,100,200 --width 64   # per-block cost vs scene length -> scale_length.json
    python bench/scale.py --lengths 400 --width 64 --no-one-block --append   # one more length, the others kept

One block is the reference: the same trainer on the whole scene (all cameras, no crop). Each block count trains with
the same total iterations, shared in proportion to the blocks' training photos. Results: bench/results/scale.json.
"""
from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import RESULTS, load_avg, write_result


def street_workdir(root: Path, n_images: int, width: int, walk: float, n_points: int, street_m: float | None = None) -> Path:
    """A posed WORKDIR of the SYNTHETIC street (street_m: a longer one): exact cameras, surface samples for the SfM points."""
    from realsim.assets.cameras import CameraSet, load_cameras, save_cameras
    from realsim.recon.partition import write_points_bin
    from realsim.sim.capture import CaptureConfig, build_street, make_capture, sample_surface_points

    cap = make_capture(root / "capture", CaptureConfig(n_images=n_images, width=width, height=width * 3 // 4,
                                                       focal=400 * width / 480, walk_length=walk, ssaa=1,
                                                       street_length_m=street_m))
    work = root / "work"
    work.mkdir()
    save_cameras(work / "cameras.json", CameraSet(load_cameras(cap / "cameras_gt.json").frames, "../capture/images"))
    pts = sample_surface_points(build_street(0, street_m), n_points, seed=1)
    write_points_bin(work / "sparse" / "0" / "points3D.bin", pts, np.full((len(pts), 3), 128, np.uint8))
    return work


def ray_system_rss_mb() -> float:
    """Resident memory of this process's children (the Ray runtime: GCS, raylet, workers), MiB."""
    import psutil

    total = 0
    for c in psutil.Process().children(recursive=True):
        try:
            total += c.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_one(work: Path, out: Path, blocks: int, iterations: int, workers: int, width: int) -> dict:
    import ray

    from realsim.recon.blocks import train_blocks
    from realsim.recon.partition import PartitionConfig
    from realsim.recon.trainer import preset_config

    cfg = preset_config("cpu-fast", "scaffold", iterations)
    cfg.max_width = width
    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False,
             configure_logging=False)
    t_init = time.perf_counter() - t0
    peak_sys = [0.0]

    def poll(_state: dict) -> None:
        peak_sys[0] = max(peak_sys[0], ray_system_rss_mb())

    try:
        res = train_blocks(work, out, cfg, PartitionConfig(blocks=blocks), num_cpus=workers, overwrite=True, on_poll=poll)
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t0
    bl = [{"name": b["name"], "iterations": b["iterations"], "seconds": b["seconds"],
           "s_per_iteration": round(b["seconds"] / max(b["iterations"], 1), 4), "cameras": len(p.cameras),
           "anchors_trained": b["anchors_block"], "anchors_kept": b["anchors_kept"], "psnr_own": b["metrics"].get("psnr"),
           "worker_peak_rss_mb": b.get("worker_peak_rss_mb"), "cpu_seconds": b.get("cpu_seconds"),
           "cpu_s_per_iteration": round((b.get("cpu_seconds") or 0) / max(b["iterations"], 1), 4)}
          for b, p in zip(res.blocks, res.partition.blocks)]
    m = res.metrics
    return {"blocks": blocks, "wall_s": round(wall, 1), "ray_init_s": round(t_init, 1),
            "train_and_merge_s": round(res.seconds, 1), "timings": res.timings, "block_seconds_sum": round(sum(b["seconds"] for b in bl), 1),
            "block_seconds_max": round(max(b["seconds"] for b in bl), 1), "per_block": bl,
            "psnr": m.get("psnr"), "ssim": m.get("ssim"), "straddling_psnr": (m.get("straddling") or {}).get("psnr"),
            "n_test_views": m.get("n_views"), "anchors": m.get("anchors"), "render_s_per_frame": m.get("render_s_per_frame"),
            "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "ray_processes_peak_rss_mb": round(peak_sys[0], 1), "load_avg_after": load_avg()}


def projection(rows: list[dict], workers: int) -> dict:
    """T(B blocks on N machines of `workers` slots) ~ setup + ceil(B / (N slots)) x I x s_it + B x merge_per_block, from
    the measured seconds per training iteration (s_it), Ray start-up and merge time per block."""
    ref = max(rows, key=lambda r: r["blocks"])
    s_it = float(np.mean([b["s_per_iteration"] for r in rows for b in r["per_block"]]))
    setup = ref["ray_init_s"]
    merge_pb = ref["timings"]["merge"] / ref["blocks"]
    B, it = 64, 3000

    def t(n: int) -> float:
        return setup + math.ceil(B / (n * workers)) * it * s_it + B * merge_pb

    return {"seconds_per_iteration_measured": round(s_it, 4), "setup_s": setup, "merge_s_per_block": round(merge_pb, 2),
            "model": "T(N) = setup + ceil(B / (N x slots)) x iterations_per_block x s_per_iteration + B x merge_per_block "
                     "(merge and held-out evaluation run on the head; a shared filesystem holds the photos)",
            "example": f"{B} blocks x {it} iterations, {workers} slots per machine, at this benchmark's resolution",
            "example_hours": {n: round(t(n) / 3600, 2) for n in (1, 4, 16, 32)}}


def length_sweep(a: argparse.Namespace) -> int:
    """Per-block cost vs scene length: walks of each length (photos and iterations per metre fixed) trained as
    length / block_m blocks, and as one block, on the SYNTHETIC long street; writes bench/results/scale_length.json."""
    lengths = [float(x) for x in a.lengths.split(",")]
    out = a.out if a.out != RESULTS / "scale.json" else RESULTS / "scale_length.json"
    rows, earlier = [], []
    if a.append and out.is_file():  # a sweep run in parts: keep OUT's rows of the other lengths and its runs' stamps
        import json

        old = json.loads(out.read_text())
        rows = [r for r in old["rows"] if r["walk_m"] not in lengths]
        earlier = old.get("earlier_runs", []) + [{k: old[k] for k in ("command", "date", "machine", "note") if k in old}
                                                 | {"lengths": sorted({r["walk_m"] for r in rows})}]
    for L in lengths:
        n_img = max(8, int(round(L * a.photos_per_m)))
        iters = int(round(n_img * a.iters_per_photo))
        nb = max(1, int(round(L / a.block_m)))
        with tempfile.TemporaryDirectory() as td:
            t = time.perf_counter()
            work = street_workdir(Path(td), n_img, a.width, L, int(a.points_per_m * (L + 12)), street_m=L + 12.0)
            t_cap = time.perf_counter() - t
            for b in sorted({nb, 1} if a.one_block and L <= a.one_block_max_m else {nb}):
                r = run_one(work, Path(td) / f"scene{b}", b, iters, a.workers, a.width)
                r.update(walk_m=L, street_m=L + 12.0, images=n_img, iterations_total=iters, capture_s=round(t_cap, 1),
                         block_s_mean=round(float(np.mean([x["seconds"] for x in r["per_block"]])), 1),
                         block_cpu_s_mean=round(float(np.mean([x["cpu_seconds"] or 0 for x in r["per_block"]])), 1),
                         cpu_s_per_iteration=round(float(np.mean([x["cpu_s_per_iteration"] for x in r["per_block"]])), 4),
                         anchors_per_block=round(float(np.mean([x["anchors_trained"] for x in r["per_block"]]))),
                         s_per_iteration=round(float(np.mean([x["s_per_iteration"] for x in r["per_block"]])), 4))
                rows.append(r)
                print(f"{L:.0f} m, {n_img} photos, {iters} it, {b} blocks: wall {r['wall_s']:.0f} s, block s mean "
                      f"{r['block_s_mean']:.0f} / max {r['block_seconds_max']:.0f}, s/it {r['s_per_iteration']:.3f}, "
                      f"block CPU s {r['block_cpu_s_mean']:.0f} ({r['cpu_s_per_iteration']:.3f}/it), "
                      f"anchors/block {r['anchors_per_block']}, PSNR {r['psnr']:.2f}, load {r['load_avg_after']}", flush=True)
                write_result(out, {"partial": True, "rows": rows, "earlier_runs": earlier})  # a long sweep keeps its rows
    print("\n| walk m | photos | iterations | blocks | wall s | block s mean | block s max | block CPU s | CPU s/it | "
          "anchors/block | worker MiB | PSNR dB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        peak = max(x["worker_peak_rss_mb"] or 0 for x in r["per_block"])
        print(f"| {r['walk_m']:.0f} | {r['images']} | {r['iterations_total']} | {r['blocks']} | {r['wall_s']:.0f} | "
              f"{r['block_s_mean']:.0f} | {r['block_seconds_max']:.0f} | {r['block_cpu_s_mean']:.0f} | "
              f"{r['cpu_s_per_iteration']:.3f} | "
              f"{r['anchors_per_block']} | {peak:.0f} | {r['psnr']:.2f} |")
    proj = length_projection(rows, a.block_m, a.workers)
    print("per-block CPU seconds vs walk length (blocks of", a.block_m, "m):", proj["per_block_cpu_s_by_length"])
    print(f"projection ({proj['example']}), hours on N machines:", proj["example_hours"])
    write_result(out, {"scene": {"synthetic": True, "label": "SYNTHETIC long procedural street (sim.capture, street_length_m)",
                            "width": a.width, "photos_per_m": a.photos_per_m, "iterations_per_photo": a.iters_per_photo,
                            "points_per_m": a.points_per_m, "block_m": a.block_m},
                  "workers": a.workers, "rows": rows, "projection": proj, "earlier_runs": earlier})
    return 0


def length_projection(rows: list[dict], block_m: float, workers: int) -> dict:
    """Cost of a street of any length from the blocked rows: B = length / block_m blocks of measured mean cost c each,
    T(N machines) = setup + ceil(B / (N x slots)) x c + B x merge_per_block."""
    blocked = [r for r in rows if r["blocks"] == max(1, int(round(r["walk_m"] / block_m)))]
    c = float(np.mean([r["block_cpu_s_mean"] for r in blocked]))  # CPU seconds: a block's cost on an unshared core
    setup = float(np.mean([r["ray_init_s"] for r in rows]))
    merge_pb = float(np.median([r["timings"]["merge"] / r["blocks"] for r in blocked]))  # median: a stalled merge is noise
    xs = np.array([r["walk_m"] for r in blocked])
    ys = np.array([r["block_cpu_s_mean"] for r in blocked])
    slope = float(np.polyfit(xs, ys, 1)[0]) if len(set(xs.tolist())) > 1 else float("nan")
    km = 5.0

    def t(n: int) -> float:
        B = km * 1000 / block_m
        return setup + math.ceil(B / (n * workers)) * c + B * merge_pb

    return {"per_block_cpu_s_by_length": {f"{r['walk_m']:.0f}": r["block_cpu_s_mean"] for r in blocked},
            "per_block_wall_s_by_length": {f"{r['walk_m']:.0f}": r["block_s_mean"] for r in blocked},
            "per_block_cpu_s_slope_per_m": round(slope, 4), "block_cpu_s_mean": round(c, 1), "setup_s": round(setup, 1),
            "merge_s_per_block": round(merge_pb, 2),
            "one_block_cpu_s_by_length": {f"{r['walk_m']:.0f}": r["block_cpu_s_mean"] for r in rows if r["blocks"] == 1},
            "model": "T(N) = setup + ceil(B / (N x slots)) x block_cpu_s + B x merge_s_per_block, B = length / block_m "
                     "(a block's CPU seconds = its wall time on an unshared core; merge and held-out evaluation on the "
                     "head, photos on a shared filesystem)",
            "example": f"a {km:.0f} km street at this benchmark's photo density, resolution and iterations per photo, "
                       f"{workers} slots per machine",
            "example_hours": {n: round(t(n) / 3600, 2) for n in (1, 4, 16, 64)}}


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 photos at 64 px, 120 iterations")
    ap.add_argument("--blocks", default="1,2,4")
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    ap.add_argument("--lengths", help="per-block cost vs scene length: walk lengths in metres, e.g. 50,100,200 (SYNTHETIC "
                    "long street; --width 64 suits it)")
    ap.add_argument("--block-m", type=float, default=50.0, help="--lengths: metres of walk per block")
    ap.add_argument("--photos-per-m", type=float, default=0.5)
    ap.add_argument("--iters-per-photo", type=float, default=4.0)
    ap.add_argument("--points-per-m", type=float, default=200.0)
    ap.add_argument("--append", action="store_true", help="--lengths: keep OUT's rows of other lengths (a sweep in parts)")
    ap.add_argument("--no-one-block", dest="one_block", action="store_false", help="--lengths: skip the one-block rows")
    ap.add_argument("--one-block-max-m", type=float, default=math.inf, help="--lengths: one-block rows up to this length")
    a = ap.parse_args()
    if a.lengths:
        return length_sweep(a)
    if a.quick:
        a.images, a.width, a.iterations = 16, 64, 120
    counts = [int(x) for x in a.blocks.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as td:
        t = time.perf_counter()
        work = street_workdir(Path(td), a.images, a.width, 40.0, 12000)
        t_cap = time.perf_counter() - t
        for b in counts:
            rows.append(run_one(work, Path(td) / f"scene{b}", b, a.iterations, a.workers, a.width))
            r = rows[-1]
            print(f"{b} blocks: wall {r['wall_s']:.0f} s (ray init {r['ray_init_s']:.0f} s), blocks max "
                  f"{r['block_seconds_max']:.0f} s / sum {r['block_seconds_sum']:.0f} s, PSNR {r['psnr']:.2f} dB "
                  f"(straddling {_f(r['straddling_psnr'])}), anchors {r['anchors']}, driver {r['driver_peak_rss_mb']:.0f} MiB, "
                  f"ray {r['ray_processes_peak_rss_mb']:.0f} MiB, load {r['load_avg_after']}", flush=True)
    one = next((r for r in rows if r["blocks"] == 1), None)
    print("\n| blocks | wall s | block s max | block s sum | s/it | PSNR dB | vs 1 block | straddling | anchors | ray MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        d = r["psnr"] - one["psnr"] if one else float("nan")
        r["psnr_vs_one_block_db"] = round(d, 3)
        s_it = np.mean([b["s_per_iteration"] for b in r["per_block"]])
        print(f"| {r['blocks']} | {r['wall_s']:.0f} | {r['block_seconds_max']:.0f} | {r['block_seconds_sum']:.0f} | "
              f"{s_it:.3f} | {r['psnr']:.2f} | {d:+.2f} | {_f(r['straddling_psnr'])} | {r['anchors']} | "
              f"{r['ray_processes_peak_rss_mb']:.0f} |")
    proj = projection(rows, a.workers)
    print(f"projection ({proj['example']}), hours on N machines:", proj["example_hours"])
    write_result(a.out, {"scene": {"images": a.images, "width": a.width, "walk_m": 40.0, "points": 12000,
                                   "synthetic": True, "capture_s": round(t_cap, 1)},
                         "iterations_total": a.iterations, "workers": a.workers, "rows": rows, "projection": proj})
    return 0


if __name__ == "__main__":
    sys.exit(main())
