"""How sharp a splat render can be at all: the photos blurred by the rasterizer's own 2-D widening, scored with the issue's
sharpness figure (variance of the Laplacian over the photo's, recon/metrics.py).

Every projected Gaussian is widened by eps2d px^2 (a Gaussian low-pass of that variance), so even a perfect model draws the
scene at least that blurred. Two bounds per widening: the photo blurred by all of it (the photo's own pixel box kept), and by
eps2d - 1/12 (a 1-px box has variance 1/12: the widening replaces it). The blur is exact, in the Fourier domain.

    python bench/sharpness_ceiling.py --scene build/lund/poses --downscale 2

Prints a table and writes bench/results/sharpness_ceiling.json.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from _common import RESULTS, write_result


def fourier_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """img [H,W,3] convolved (periodically) with an isotropic Gaussian of std `sigma` px: [H,W,3]."""
    H, W = img.shape[:2]
    fy, fx = torch.fft.fftfreq(H)[:, None], torch.fft.fftfreq(W)[None, :]
    T = torch.exp(-2 * math.pi ** 2 * sigma ** 2 * (fx ** 2 + fy ** 2)).to(torch.float64)  # the Gaussian's transfer [H,W]
    F = torch.fft.fft2(img.permute(2, 0, 1).to(torch.float64))
    return torch.fft.ifft2(F * T).real.permute(1, 2, 0).float()


def main() -> int:
    from realsim.recon.dataset import load_dataset
    from realsim.recon.train_device import image_float
    from realsim.recon.metrics import laplacian_variance

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, required=True, help="a poses WORKDIR or scene bundle (its photos)")
    ap.add_argument("--downscale", type=float, default=2.0, help="photo size the figure is taken at (lund: 2 = 513x384)")
    ap.add_argument("--eps2d", default="0.1,0.3", help="widenings (px^2) to score")
    ap.add_argument("--json", type=Path, default=RESULTS / "sharpness_ceiling.json")
    a = ap.parse_args()
    ds = load_dataset(a.scene, downscale=a.downscale)
    photos = [image_float(v.image) for v in ds.train + ds.test]
    rows = []
    print(f"{len(photos)} photos at {ds.train[0].width}x{ds.train[0].height}")
    print(f"{'eps2d':>6} {'blur':>14} {'sigma px':>9} {'mean':>6} {'min':>6} {'max':>6}")
    for eps in (float(x) for x in a.eps2d.split(",")):
        for label, var in (("all of it", eps), ("minus 1px box", eps - 1.0 / 12.0)):
            s = math.sqrt(max(var, 0.0))
            r = [laplacian_variance(fourier_blur(p, s)) / laplacian_variance(p) for p in photos]
            row = {"eps2d": eps, "blur": label, "sigma_px": round(s, 4), "mean": round(sum(r) / len(r), 4),
                   "min": round(min(r), 4), "max": round(max(r), 4)}
            rows.append(row)
            print(f"{eps:>6} {label:>14} {s:>9.3f} {row['mean']:>6.3f} {row['min']:>6.3f} {row['max']:>6.3f}")
    write_result(a.json, {"scene": str(a.scene), "size": [ds.train[0].width, ds.train[0].height], "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
