"""Fused SH kernels (render/csrc/cpu_sh.cpp, cuda_sh.cu) against the unfused torch ops of render/sh.py: forward +
backward time of the SH stage of a training step (degree 3, one camera, float32) at 100k / 1M Gaussians, and their parity.

    python bench/sh_fused.py [--sizes 100000 1000000] [--reps 5] [--threads N]   # CPU, plus CUDA where a GPU is

Writes bench/results/sh_fused.json (merged per device) and prints a table. gpu.py uses sh_parity() for its CUDA check.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from _common import RESULTS, read_result, stamp, write_result

DEGREE = 3


def sh_inputs(n: int, device: str, dtype, cams: int = 1, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(cams, n, 3, generator=g, dtype=torch.float64) * 3.0
    coeffs = 0.3 * torch.randn(n, 16, 3, generator=g, dtype=torch.float64)
    w = torch.randn(cams, n, 3, generator=g, dtype=torch.float64)
    return [t.to(device, dtype) for t in (dirs, coeffs, w)]


def sh_stage(kind: str, ops: Any, dirs, coeffs, w):
    """The SH stage as rasterization() runs it: colours = clamp(SH + 0.5, 0), then backward of a weighted sum.
    Returns (colours, d dirs, d coeffs)."""
    import torch

    from realsim.render import _functions
    from realsim.render.sh import spherical_harmonics

    d, c = dirs.detach().requires_grad_(True), coeffs.detach().requires_grad_(True)
    if kind == "fused":
        out = _functions.spherical_harmonics(ops, DEGREE, d, c)
    else:
        out = spherical_harmonics(DEGREE, d, c[None].expand(d.shape[0], -1, -1, -1))
    col = torch.clamp(out + 0.5, min=0)
    (col * w).sum().backward()
    return col.detach(), d.grad, c.grad


def sh_parity(device: str) -> dict[str, Any]:
    """Fused kernel vs render/sh.py on `device` (float64 and float32, 3 cameras): relative L2 error of values and both
    gradients; passes under 1e-10 (float64) and 1e-5 (float32)."""
    import torch

    ops = _ops(device)
    out: dict[str, Any] = {}
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        ins = sh_inputs(5000, device, dtype, cams=3, seed=1)
        got, want = sh_stage("fused", ops, *ins), sh_stage("torch", ops, *ins)
        errs = {k: float((a.double() - b.double()).norm() / b.double().norm())
                for k, a, b in zip(("colors", "d_dirs", "d_coeffs"), got, want)}
        out[str(dtype).replace("torch.", "")] = {"rel_err": errs, "tolerance": tol,
                                                 "passed": all(e <= tol for e in errs.values())}
    out["passed"] = all(v["passed"] for v in out.values() if isinstance(v, dict))
    return out


def _ops(device: str):
    from realsim.render import _cpu, _cuda

    return _cuda.load() if device == "cuda" else _cpu.load()


def time_sh(n: int, device: str, reps: int) -> dict[str, Any]:
    """Median ms of the SH stage, fused and unfused (float32, one camera), after one warm-up."""
    import torch

    ops = _ops(device)
    ins = sh_inputs(n, device, torch.float32)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    row: dict[str, Any] = {}
    for kind in ("fused", "torch"):
        times = []
        for i in range(reps + 1):
            sync()
            t0 = time.perf_counter()
            sh_stage(kind, ops, *ins)
            sync()
            if i:
                times.append(1e3 * (time.perf_counter() - t0))
        row[f"{kind}_ms"] = round(statistics.median(times), 3)
    row["speedup"] = round(row["torch_ms"] / row["fused_ms"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch / OpenMP threads on CPU (0: torch's default)")
    ap.add_argument("--json", default=str(RESULTS / "sh_fused.json"))
    args = ap.parse_args(argv)
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    result = read_result(args.json, {})
    print(f"{'device':6s} {'gaussians':>10s} {'fused ms':>9s} {'torch ms':>9s} {'speedup':>8s}   (SH deg 3 fwd+bwd, f32)")
    ok = True
    for dev in devices:
        parity = sh_parity(dev)
        ok = ok and parity["passed"]
        rows = {}
        for n in args.sizes:
            rows[str(n)] = r = time_sh(n, dev, args.reps)
            print(f"{dev:6s} {n:>10,d} {r['fused_ms']:9.2f} {r['torch_ms']:9.2f} {r['speedup']:7.2f}x")
        print(f"{dev:6s} parity vs render/sh.py: {'passed' if parity['passed'] else 'FAILED'} "
              f"(worst f32 {max(parity['float32']['rel_err'].values()):.1e})")
        result[dev] = {"threads": torch.get_num_threads() if dev == "cpu" else None, "timings": rows,
                       "parity": parity, **stamp()}
    write_result(args.json, result, stamp_it=False)
    print(f"written {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
