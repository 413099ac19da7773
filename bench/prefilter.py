"""Anchor prefilter benchmark: time per call and anchors/s of every backend present (torch reference, C++ CPU, CUDA) for
10k / 100k / 1M anchors spread around a camera, plus the fraction kept and how many more the conservative plane test
would keep.

    python bench/prefilter.py                     # default sizes, 2 threads
    python bench/prefilter.py --sizes 10k,1m --threads 2 --repeats 5

Prints a table and writes bench/results/prefilter.json.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from _common import RESULTS, write_result


def parse_n(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


def scene(m: int, seed: int = 0):
    """Anchors in a 40 m box around a camera at the origin looking down +Z, neighbourhood radii 0.05-1 m."""
    g = torch.Generator().manual_seed(seed)
    anchors = (torch.rand(m, 3, generator=g) - 0.5) * 40.0
    radii = 0.05 + 0.95 * torch.rand(m, generator=g)
    K = torch.tensor([[400.0, 0, 320.0], [0, 400.0, 240.0], [0, 0, 1]])
    return anchors, radii, torch.eye(4), K


def time_call(fn, repeats: int, sync) -> float:
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k,1m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "prefilter.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from realsim.render import anchor_prefilter
    from realsim.render.prefilter import frustum_planes

    backends = ["torch", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for m in map(parse_n, args.sizes.split(",")):
        anchors, radii, vm, K = scene(m)
        mask_ref = None
        for be in backends:
            dev = "cuda" if be == "cuda" else "cpu"
            a, r, v, k = (t.to(dev) for t in (anchors, radii, vm, K))
            sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
            out = {}

            def call(a=a, r=r, v=v, k=k, be=be, out=out):
                out["mask"] = anchor_prefilter(a, r, v, k, 640, 480, 0.05, 0.0, backend=be)

            sec = time_call(call, args.repeats, sync)
            mask = out["mask"].cpu()
            if mask_ref is None:
                mask_ref = mask
            n, o = frustum_planes(K, 640, 480, 0.05, 0.0)
            plane = ((anchors @ n.T + o) >= -radii[:, None]).all(1)
            rows.append({"backend": be, "anchors": m, "ms": sec * 1e3, "anchors_per_s": m / sec,
                         "kept": float(mask.float().mean()), "plane_test_kept": float(plane.float().mean()),
                         "mismatch_vs_first": int((mask != mask_ref).sum())})
    print(f"{'backend':8} {'anchors':>9} {'ms':>9} {'Manchors/s':>11} {'kept':>7} {'plane kept':>10} {'mismatch':>8}")
    for r in rows:
        print(f"{r['backend']:8} {r['anchors']:9d} {r['ms']:9.2f} {r['anchors_per_s'] / 1e6:11.1f} {r['kept']:7.4f} "
              f"{r['plane_test_kept']:10.4f} {r['mismatch_vs_first']:8d}")
    write_result(args.out, {"threads": args.threads,
                            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
