"""Rasterization benchmark: forward and forward+backward time, peak memory and throughput per backend, plus a full
training step (forward + backward + Adam, SH degree 3) and the speed-up of the C++ kernels over the torch reference.

    python bench/rasterize.py                        # default matrix (see --sizes / --res), every backend present
    python bench/rasterize.py --sizes 10k,100k --res 256x256 --backends cpu --threads 2 --compare ''""
    python bench/rasterize.py --train 20k@256x192,100k@256x192 --sizes '' # training steps only
    python bench/rasterize.py --wait-policy active,passive --busy 0,1 --train 20k@256x192  # OpenMP wait policy study

The dense torch reference (an oracle, no tiling) only runs at the small --compare configs, beside cpu.
realsim sets OMP_WAIT_POLICY=PASSIVE when it is imported before torch (realsim.assets), unless the environment says
otherwise: with ACTIVE, torch's OpenMP threads spin at every barrier while their partner is descheduled by another job.
`--wait-policy P1,P2 --busy 0,1` measures training steps under each policy (active, passive, or default = libgomp's own
spin-then-sleep) with 0 or 1 background busy-loop processes (`yes > /dev/null`), each case in a fresh subprocess (libgomp
reads OMP_WAIT_POLICY once, when it loads), and writes bench/results/rasterize_wait_policy.json.
Each configuration runs in a fresh subprocess so the peak RSS (ru_maxrss) is its own. Throughput counts
Gaussian-pixel pairs inside the visible Gaussians' screen boxes (an upper bound of the alpha evaluations; early
termination skips some) per second of forward time. Timings are the minimum over --repeats after a warm-up (the
least disturbed run on a shared machine); medians are kept in the JSON too, with the process CPU time (all threads
summed), which time-slicing by other jobs inflates far less than wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from _common import REPO, RESULTS, load_avg, write_result


def parse_n(s: str) -> int:
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


def make_scene(n: int, width: int, height: int, seed: int = 0, sh: bool = False):
    """A fixed world-space scene (same for every resolution): N Gaussians filling a box 3-7 units in front of the camera,
    scale ~ N^(-1/3) so the depth complexity stays similar as N grows."""
    import torch
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=g) * torch.tensor([4.0, 3.0, 4.0]) + torch.tensor([-2.0, -1.5, 3.0])
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(torch.randn(n, 3, generator=g) * 0.5) * 1.2 * n ** (-1 / 3)
    opac = 0.1 + 0.8 * torch.rand(n, generator=g)
    colors = 0.3 * torch.randn(n, 16, 3, generator=g) if sh else torch.rand(n, 3, generator=g)
    f = 0.9 * width
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])[None]
    return means, quats, scales, opac, colors, torch.eye(4)[None], K


def _sync(dev: str) -> None:
    if dev == "cuda":
        import torch
        torch.cuda.synchronize()


def child_raster(cfg: dict) -> dict:
    """Forward and forward+backward timings of one (backend, N, resolution)."""
    import torch
    torch.set_num_threads(cfg["threads"])
    from realsim.render import rasterization
    dev = "cuda" if cfg["backend"] in ("cuda", "gsplat") else "cpu"
    W, H = cfg["width"], cfg["height"]
    scene = [t.to(dev) for t in make_scene(cfg["n"], W, H)]
    params = [t.clone().requires_grad_(True) for t in scene[:5]]
    vm, K = scene[5], scene[6]

    def fwd(grad: bool):
        with torch.set_grad_enabled(grad):
            return rasterization(*params, vm, K, W, H, backend=cfg["backend"])

    fwd(False)  # warm-up (builds / loads the kernels)
    t_f, t_fb, c_f, c_fb = [], [], [], []
    for _ in range(cfg["repeats"]):
        _sync(dev)
        t0, c0 = time.perf_counter(), time.process_time()
        fwd(False)
        _sync(dev)
        t_f.append(time.perf_counter() - t0)
        c_f.append(time.process_time() - c0)
    meta = None
    for _ in range(cfg["repeats"]):
        for p in params:
            p.grad = None
        _sync(dev)
        t0, c0 = time.perf_counter(), time.process_time()
        rc, ra, meta = fwd(True)
        (rc.sum() + ra.sum()).backward()
        _sync(dev)
        t_fb.append(time.perf_counter() - t0)
        c_fb.append(time.process_time() - c0)
    radii = meta["radii"][0].double().cpu()
    vis = radii[:, 0] > 0
    rx, ry = radii[vis, 0], radii[vis, 1]
    mx, my = meta["means2d"][0, vis, 0].detach().double().cpu(), meta["means2d"][0, vis, 1].detach().double().cpu()
    bw = (torch.minimum(mx + rx, torch.tensor(W * 1.0)) - torch.maximum(mx - rx, torch.tensor(0.0))).clamp(min=0)
    bh = (torch.minimum(my + ry, torch.tensor(H * 1.0)) - torch.maximum(my - ry, torch.tensor(0.0))).clamp(min=0)
    pairs = float((bw * bh).sum())
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    out = {"fwd_s": min(t_f), "fwd_bwd_s": min(t_fb), "fwd_median_s": med(t_f), "fwd_bwd_median_s": med(t_fb),
           "fwd_cpu_s": min(c_f), "fwd_bwd_cpu_s": min(c_fb), "visible": int(vis.sum()), "box_pairs": pairs, "pairs_per_s": pairs / min(t_f),
           "mean_alpha": float(ra.mean())}
    if dev == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def child_train(cfg: dict) -> dict:
    """Full training steps: SH degree 3 colours, L1 loss against a fixed target, Adam over all parameters."""
    import torch
    torch.set_num_threads(cfg["threads"])
    from realsim.render import rasterization
    dev = "cuda" if cfg["backend"] in ("cuda", "gsplat") else "cpu"
    W, H = cfg["width"], cfg["height"]
    means, quats, scales, opac, sh, vm, K = [t.to(dev) for t in make_scene(cfg["n"], W, H, sh=True)]
    params = {"means": means, "quats": quats, "log_scales": scales.log(), "logit_opac": torch.logit(opac), "sh": sh}
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(params.values(), lr=1e-3, fused=True)  # as realsim's trainer does
    yy, xx = torch.meshgrid(torch.linspace(0, 1, H, device=dev), torch.linspace(0, 1, W, device=dev), indexing="ij")
    target = torch.stack([xx, yy, 0.5 * (xx + yy)], -1)[None]

    def step():
        opt.zero_grad(set_to_none=True)
        rc, _, meta = rasterization(params["means"], params["quats"], params["log_scales"].exp(),
                                    torch.sigmoid(params["logit_opac"]), params["sh"], vm, K, W, H, sh_degree=3,
                                    backend=cfg["backend"])
        loss = (rc - target).abs().mean()
        loss.backward()
        opt.step()
        return meta

    for _ in range(2):
        step()
    times, cpu = [], []
    for _ in range(cfg["repeats"]):
        _sync(dev)
        t0, c0 = time.perf_counter(), time.process_time()
        meta = step()
        _sync(dev)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    times.sort()
    return {"step_s": times[0], "step_median_s": times[len(times) // 2], "step_cpu_s": min(cpu),
            "n_isects": int(meta["flatten_ids"].numel()) if "flatten_ids" in meta else None}


def run_child(cfg: dict, timeout: float, env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(cfg)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def backends_present() -> list[str]:
    import torch
    out = ["cpu", "torch"]
    if torch.cuda.is_available():
        out += ["cuda", "gsplat"]
    return out


POLICIES = ("active", "passive", "default")


def _policy_env(policy: str) -> dict:
    """The child's environment: OMP_WAIT_POLICY=ACTIVE / PASSIVE, or unset (libgomp's spin-then-sleep default; the child
    imports torch before realsim, so realsim's own default does not apply there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy.upper()
    return env


def wait_policy_study(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Training-step time per (wait policy, background busy processes), each case in a fresh subprocess."""
    policies = [p.strip().lower() for p in args.wait_policy.split(",") if p.strip()]
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise SystemExit(f"unknown --wait-policy {', '.join(bad)} (choose from {', '.join(POLICIES)})")
    busy_counts = [int(b) for b in args.busy.split(",") if b.strip()]
    specs = [s for s in args.train.split(",") if s.strip()]
    rows = []
    load0 = load_avg()
    print(f"{'config':>14} {'policy':8} {'busy':>4} {'step ms':>8} {'median':>8} {'cpu ms':>8} {'load 1m':>8}")
    for spec in specs:
        n_s, res = spec.split("@")
        w, h = (int(v) for v in res.lower().split("x"))
        for busy in busy_counts:
            for policy in policies:
                hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(busy)]
                try:
                    time.sleep(0.5 if busy else 0.0)
                    load = load_avg() or [0.0]
                    cfg = {"kind": "train", "backend": "cpu", "n": parse_n(n_s), "width": w, "height": h,
                           "threads": args.threads, "repeats": max(5, args.repeats)}
                    r = {**cfg, "policy": policy, "busy_processes": busy, "load_avg_before": load,
                         **run_child(cfg, args.timeout, _policy_env(policy))}
                finally:
                    for hp in hogs:
                        hp.kill()
                        hp.wait()
                rows.append(r)
                if "error" in r:
                    print(f"{spec:>14} {policy:8} {busy:>4} error: {r['error']}")
                else:
                    print(f"{spec:>14} {policy:8} {busy:>4} {1e3 * r['step_s']:8.1f} {1e3 * r['step_median_s']:8.1f} "
                          f"{1e3 * r['step_cpu_s']:8.1f} {load[0]:8.2f}")
                sys.stdout.flush()
    result = {
        "setup": {"threads": args.threads, "load_avg_at_start": load0, "load_avg_at_end": load_avg()},
        "note": "training step = forward + backward + fused Adam, SH degree 3, cpu backend; busy = that many `yes` "
                "processes running beside it; step ms is the minimum over repeats (medians too). The machine was shared "
                "with other jobs, so 'busy 0' is not an idle machine: see each row's load_avg_before.",
        "rows": rows,
    }
    out = write_result(args.out if args.out != str(RESULTS / "rasterize.json") else RESULTS / "rasterize_wait_policy.json",
                       result)
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k,1M", help="Gaussian counts (comma list, k/M suffixes)")
    ap.add_argument("--res", default="256x256,512x512,1024x768", help="resolutions WxH (comma list)")
    ap.add_argument("--backends", default="", help="comma list (default: every backend present)")
    ap.add_argument("--compare", default="2k@128x96,5k@192x144",
                    help="configs N@WxH where the dense torch reference runs beside cpu (speed-up); '' = none")
    ap.add_argument("--train", default="20k@256x192,100k@256x192", help="training-step configs N@WxH ('' = none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
    ap.add_argument("--out", default=str(RESULTS / "rasterize.json"))
    ap.add_argument("--wait-policy", default="", metavar="P1,P2",
                    help="OpenMP wait policies to compare on the --train configs: active, passive, default")
    ap.add_argument("--busy", default="0,1", help="with --wait-policy: background busy-loop processes per case (comma list)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        cfg = json.loads(args.child)
        res = child_train(cfg) if cfg["kind"] == "train" else child_raster(cfg)
        res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return 0
    if args.wait_policy:
        return wait_policy_study(args, argv)

    load_start = load_avg()
    backends = [b for b in args.backends.split(",") if b] or backends_present()
    sizes = [parse_n(s) for s in args.sizes.split(",") if s.strip()]
    resolutions = [tuple(int(v) for v in r.lower().split("x")) for r in args.res.split(",") if r.strip()]
    compare = []
    for spec in [s for s in args.compare.split(",") if s.strip()]:
        n_s, res = spec.split("@")
        compare.append((parse_n(n_s), tuple(int(v) for v in res.lower().split("x"))))
    plan = [(n, r, b) for n in sizes for r in resolutions for b in backends if b != "torch"]
    plan += [(n, r, b) for n, r in compare for b in backends if b in ("torch", "cpu")]
    rows = []
    header = f"{'kind':6} {'backend':7} {'N':>8} {'res':>9} {'fwd ms':>9} {'fwd+bwd ms':>11} {'(cpu ms)':>9} " \
             f"{'peak RSS MB':>11} {'Mpairs/s':>9}"
    print(header)
    print("-" * len(header))
    for n, (w, h), b in plan:
        cfg = {"kind": "raster", "backend": b, "n": n, "width": w, "height": h, "threads": args.threads,
               "repeats": 1 if b == "torch" else args.repeats}
        r = {**cfg, **run_child(cfg, args.timeout)}
        rows.append(r)
        if "error" in r:
            print(f"raster {b:7} {n:>8} {w}x{h:<5} error: {r['error']}")
        else:
            print(f"raster {b:7} {n:>8} {w}x{h:<5} {1e3 * r['fwd_s']:9.1f} {1e3 * r['fwd_bwd_s']:11.1f} "
                  f"{1e3 * r['fwd_bwd_cpu_s']:9.1f} {r['peak_rss_mb']:11.0f} {r['pairs_per_s'] / 1e6:9.1f}")
        sys.stdout.flush()
    for spec in [s for s in args.train.split(",") if s.strip()]:
        n_s, res = spec.split("@")
        w, h = (int(v) for v in res.lower().split("x"))
        for b in [b for b in backends if b != "torch"]:
            cfg = {"kind": "train", "backend": b, "n": parse_n(n_s), "width": w, "height": h, "threads": args.threads,
                   "repeats": max(5, args.repeats)}
            r = {**cfg, **run_child(cfg, args.timeout)}
            rows.append(r)
            if "error" in r:
                print(f"train  {b:7} {cfg['n']:>8} {w}x{h:<5} error: {r['error']}")
            else:
                print(f"train  {b:7} {cfg['n']:>8} {w}x{h:<5} step {1e3 * r['step_s']:.1f} ms (median "
                      f"{1e3 * r['step_median_s']:.1f}, process cpu {1e3 * r['step_cpu_s']:.1f} ms), peak RSS "
                      f"{r['peak_rss_mb']:.0f} MB")
            sys.stdout.flush()
    speedups = []
    for r in rows:
        if r.get("backend") == "torch" and "error" not in r:
            for o in rows:
                if (o.get("kind"), o.get("backend"), o.get("n"), o.get("width"), o.get("height")) == (
                        "raster", "cpu", r["n"], r["width"], r["height"]) and "error" not in o:
                    s = {"n": r["n"], "res": f"{r['width']}x{r['height']}", "fwd_x": r["fwd_s"] / o["fwd_s"],
                         "fwd_bwd_x": r["fwd_bwd_s"] / o["fwd_bwd_s"]}
                    speedups.append(s)
                    print(f"cpu vs torch reference, {s['n']} @ {s['res']}: forward {s['fwd_x']:.0f}x, "
                          f"forward+backward {s['fwd_bwd_x']:.0f}x")
    import torch
    result = {
        "setup": {"threads": args.threads, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                  "load_avg_at_start": load_start, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")},
        "note": "tables show the minimum over repeats, the JSON also has medians; a load average above the core "
                "count at start means other jobs shared the machine and timings are inflated",
        "rows": rows, "speedups_cpu_vs_torch": speedups,
    }
    out = write_result(args.out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
