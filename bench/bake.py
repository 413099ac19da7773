"""Peak memory of Scaffold -> 3DGS export baking (recon/bake.py) for growing anchor counts, chunked vs all at once.

    python bench/bake.py [--anchors 4000 16000 64000] [--chunk 4096] [--views 6] [--threads 1]

Each bake runs in its own process (peak RSS is per process): a synthetic Scaffold model (10 offsets per anchor, random
features, anchors in front of a ring of training cameras), SH degree 3. Reported: peak RSS of the process, its rise
during the bake over the model-building peak, the accumulator bytes the bake reports, wall time. Writes
bench/results/bake.json and prints a table. check_bake() is gpu.py's chunked-vs-unchunked check on a device.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from _common import RESULTS, load_avg, stamp, write_result


def synthetic_model(n_anchors: int, device: str = "cpu", seed: int = 0):
    """A Scaffold model with n anchors in a 4 x 4 x 1.5 box and random features / offsets / scales."""
    import torch

    from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel

    torch.manual_seed(seed)
    m = ScaffoldModel(ScaffoldConfig(voxel_size=0.05, n_offsets=10), n_anchors)
    with torch.no_grad():
        m.anchors.copy_((torch.rand(n_anchors, 3) - 0.5) * torch.tensor([4.0, 4.0, 1.5]))
        m.offsets.normal_(0, 1.0)
        m.anchor_feat.normal_(0, 1.0)
        m.scaling.fill_(-3.0)
    return m.eval().to(device)


def ring_cameras(n: int, w: int = 160, h: int = 120):
    """n training cameras on a ring of radius 6 looking at the origin."""
    import numpy as np

    from realsim.assets import CameraFrame, CameraSet
    from realsim.render.paths import look_at

    K = np.array([[0.6 * w, 0, w / 2], [0, 0.6 * w, h / 2], [0, 0, 1]])
    frames = [CameraFrame(f"{i:03d}.png", K, look_at(np.array([6 * np.cos(a), 6 * np.sin(a), 1.5]), np.zeros(3)), w, h)
              for i, a in enumerate(np.linspace(0, 2 * np.pi, n, endpoint=False))]
    return CameraSet(frames)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child(n_anchors: int, chunk: int, views: int) -> dict[str, Any]:
    """One bake in this process: peak RSS before and after, accumulator bytes, time."""
    from realsim.recon.bake import ExportConfig, bake_scaffold, sample_views

    model = synthetic_model(n_anchors)
    vs = sample_views(ring_cameras(views), views_between=0)
    before = _rss_mb()
    t0 = time.perf_counter()
    cloud, info = bake_scaffold(model, vs, ExportConfig(sh_degree=3, chunk=chunk))
    return {"anchors": n_anchors, "chunk": chunk, "views": len(vs), "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_rss_mb(), 1), "rss_before_mb": round(before, 1),
            "bake_rise_mb": round(_rss_mb() - before, 1), "exported": len(cloud),
            "accumulator_mb": round(info["peak_accumulator_bytes"] / 2**20, 1), "chunks": info["chunks"]}


def check_bake(device: str, n_anchors: int = 3000, chunk: int = 256, views: int = 6) -> dict[str, Any]:
    """Chunked vs unchunked bake on `device`: largest difference of the baked arrays (passes under 1e-4) and, on CUDA,
    the peak device memory of each."""
    import numpy as np
    import torch

    from realsim.recon.bake import ExportConfig, bake_scaffold, sample_views

    model = synthetic_model(n_anchors, device)
    vs = sample_views(ring_cameras(views), views_between=1)
    out: dict[str, Any] = {"device": device, "anchors": n_anchors, "chunk": chunk, "views": len(vs)}
    clouds = {}
    for label, c in (("chunked", chunk), ("whole", 0)):
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        clouds[label], info = bake_scaffold(model, vs, ExportConfig(sh_degree=3, chunk=c))
        out[f"{label}_seconds"] = round(time.perf_counter() - t0, 2)
        out[f"{label}_accumulator_mb"] = round(info["peak_accumulator_bytes"] / 2**20, 2)
        if device == "cuda":
            out[f"{label}_peak_cuda_mb"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 1)
    a, b = clouds["chunked"], clouds["whole"]
    same = len(a) == len(b)
    out["exported"] = len(b)
    out["max_abs_diff"] = (max(float(np.abs(getattr(a, k) - getattr(b, k)).max()) for k in
                               ("means", "quats", "scales", "opacities", "sh")) if same and len(b) else None)
    out["passed"] = bool(same and len(b) > 0 and out["max_abs_diff"] <= 1e-4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--anchors", type=int, nargs="+", default=[4000, 16000, 64000])
    ap.add_argument("--chunk", type=int, default=4096, help="anchors per chunk of the chunked bake")
    ap.add_argument("--views", type=int, default=6, help="training cameras (no in-between views)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", type=int, nargs=2, metavar=("ANCHORS", "CHUNK"), help=argparse.SUPPRESS)
    ap.add_argument("--json", default=str(RESULTS / "bake.json"))
    args = ap.parse_args(argv)
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(child(args.child[0], args.child[1], args.views)))
        return 0
    load0 = load_avg()
    rows = []
    print(f"{'anchors':>8s} {'chunk':>7s} {'peak RSS MB':>12s} {'bake rise MB':>13s} {'accum MB':>9s} {'s':>7s}")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for n in args.anchors:
        for chunk in (args.chunk, 0):
            cmd = [sys.executable, __file__, "--child", str(n), str(chunk), "--views", str(args.views), "--threads",
                   str(args.threads)]
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
            if p.returncode != 0:
                print(p.stderr[-2000:], file=sys.stderr)
                return 1
            r = json.loads(p.stdout.strip().splitlines()[-1])
            rows.append(r)
            print(f"{n:>8d} {chunk or 'all':>7} {r['peak_rss_mb']:12.0f} {r['bake_rise_mb']:13.0f} "
                  f"{r['accumulator_mb']:9.1f} {r['seconds']:7.1f}")
    write_result(args.json, {"rows": rows, "sh_degree": 3, "n_offsets": 10, "threads": args.threads,
                             "load_avg_start": load0, "load_avg_end": load_avg(), **stamp()}, stamp_it=False)
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
