"""Held-out evaluation of trained models and bundles (PSNR / SSIM / LPIPS, render time) and the training curves plot."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .antialias import EPS2D, raster_settings
from .bundle import render_splats
from .dataset import View, load_dataset
from .appearance import NeighbourAppearance, apply_affine, fit_affine_color
from .metrics import laplacian_variance, lpips_fn, psnr, ssim, ssim_map

__all__ = ["evaluate_views", "evaluate_scene", "plot_curves", "model_counts"]


def model_counts(model: nn.Module) -> dict[str, int]:
    """Anchors (Scaffold-GS) or Gaussians (3DGS) of a model."""
    if model.kind == "scaffold":
        return {"anchors": model.n_anchors}
    return {"gaussians": model.n_gaussians}


def band_laplacian_variance(img: torch.Tensor, sigma: float = 1.0) -> float:
    """Laplacian variance after a Gaussian blur of sigma px ([H,W,3]): sharpness of the detail above pixel scale, less
    ruled by single-pixel noise and aliasing than the plain figure (a photo blurred by 0.5 px keeps ~0.4 of that)."""
    r = int(3 * sigma) + 1
    x = torch.arange(-r, r + 1, dtype=img.dtype)
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    t = img.permute(2, 0, 1)[:, None]  # [3,1,H,W]
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="replicate"), g.view(1, 1, -1, 1))
    return laplacian_variance(t[:, 0].permute(1, 2, 0))


def half_split_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The appearance-compensation protocol: fit a 3x4 colour affine on the left half, score the right half with it
    (psnr_affine / ssim_affine) and without it (psnr_right / ssim_right, the same pixels uncompensated)."""
    W = pred.shape[1]
    left = torch.zeros(pred.shape[:2], dtype=torch.bool)
    left[:, : W // 2] = True
    A = fit_affine_color(pred, target, left)
    comp = apply_affine(pred, A).clamp(0, 1)
    r = slice(W // 2, W)
    return {"psnr_affine": psnr(comp[:, r], target[:, r]), "ssim_affine": float(ssim_map(comp, target)[..., r].mean()),
            "psnr_right": psnr(pred[:, r], target[:, r]), "ssim_right": float(ssim_map(pred, target)[..., r].mean())}


def evaluate_views(model: nn.Module, views: list[View], backend: str = "auto",
                   background: tuple[float, float, float] = (0.0, 0.0, 0.0), progress: Any = None,
                   half_split: bool = False, train_fx: float | None = None,
                   appearance: NeighbourAppearance | None = None, eps2d: float = EPS2D) -> dict[str, Any]:
    """Mean PSNR / SSIM (/ LPIPS when available) over views, render seconds per frame, Gaussians per view, sharpness
    (variance of the Laplacian of the render over the photo's, both at the views' size); with half_split also the
    half_split_scores means; train_fx (the trained focal, px) and eps2d (the trained widening): drawn as trained, and
    anti-aliased at other sizes (recon/antialias.py).
    With `appearance` the views are scored as Scene.render draws them (the nearby photos' colour affine) and
    psnr_shared / ssim_shared score the shared appearance; half_split always fits on the shared render."""
    lp = lpips_fn()
    ps, ss, ls, times, ng, sharp, band = [], [], [], [], [], [], []
    shared: list[tuple[float, float]] = []
    halves: list[dict[str, float]] = []
    for i, v in enumerate(views):
        t = time.perf_counter()
        with torch.no_grad():
            splats, _ = model.decode(v.viewmat, v.K, v.width, v.height, backend=backend)
        out = render_splats(splats, v.viewmat, v.K, v.width, v.height, backend, background,
                            **raster_settings(train_fx, float(v.K[0, 0]), eps2d=eps2d))
        rgb, dt = out["rgb"], time.perf_counter() - t  # [H,W,3] shared appearance; render seconds
        if appearance is not None:
            shared.append((psnr(rgb, v.image), float(ssim(rgb, v.image))))
            t = time.perf_counter()
            rgb = appearance(rgb, v.viewmat)
            dt += time.perf_counter() - t  # the colour affine is part of rendering, scoring is not
        times.append(dt)
        ng.append(len(splats))
        ps.append(psnr(rgb, v.image))
        ss.append(float(ssim(rgb, v.image)))
        sharp.append(laplacian_variance(rgb) / max(laplacian_variance(v.image), 1e-12))
        band.append(band_laplacian_variance(rgb) / max(band_laplacian_variance(v.image), 1e-12))
        if half_split:
            halves.append(half_split_scores(out["rgb"], v.image))
        if lp is not None:
            ls.append(lp(rgb, v.image))
        if progress is not None:
            progress(i + 1)
    res: dict[str, Any] = {"n_views": len(views)}
    if views:
        res.update({"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "per_view_psnr": [round(x, 3) for x in ps],
                    "render_s_per_frame": float(np.mean(times)), "gaussians_per_view": int(np.mean(ng)),
                    "per_view_ssim": [round(x, 4) for x in ss], "sharpness": float(np.mean(sharp)),
                    "per_view_sharpness": [round(x, 3) for x in sharp], "resolution": [views[0].width, views[0].height],
                    "sharpness_band": float(np.mean(band)), "per_view_sharpness_band": [round(x, 3) for x in band]})
        for j, key in enumerate(("psnr_shared", "ssim_shared") if shared else ()):
            res[key] = float(np.mean([x[j] for x in shared]))
            res["per_view_" + key] = [round(x[j], 4) for x in shared]
        for key in halves[0] if halves else []:
            res[key] = float(np.mean([h[key] for h in halves]))
            res["per_view_" + key] = [round(h[key], 3) for h in halves]
        res["lpips"] = float(np.mean(ls)) if ls else None
    return res


def plot_curves(metrics_path: Path, png: Path) -> None:
    """Loss and held-out PSNR against iteration (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln.strip()]
    tr = [r for r in rows if "loss" in r]
    ev = [r for r in rows if "eval_psnr" in r]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr])
    ax[0].set_xlabel("iteration")
    ax[0].set_ylabel("loss")
    ax[0].set_yscale("log")
    ax[1].plot([r["step"] for r in ev], [r["eval_psnr"] for r in ev], "o-")
    ax[1].set_xlabel("iteration")
    ax[1].set_ylabel("held-out PSNR (dB)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png)


def _camera_base(src: Path) -> Path:
    from .dataset import load_camera_source

    return load_camera_source(src)[1]


def evaluate_scene(path: Any, downscale: float | None = None, backend: str = "auto", split: str = "test",
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """Held-out quality of a bundle at its training resolution (or `downscale`), its size on disk and render time."""
    from .bundle import Scene, load_scene

    scene = path if isinstance(path, Scene) else load_scene(path)
    train_meta = scene.info.metadata.get("train", {}) if isinstance(scene.info.metadata, dict) else {}
    ds_factor = downscale if downscale is not None else train_meta.get("downscale")
    ds = load_dataset(scene.root, downscale=ds_factor, max_width=None if ds_factor else 504)
    views = ds.test if split == "test" else ds.train
    if not views:
        raise InputError(f"{path} has no {split} views to evaluate")
    bg = tuple(train_meta.get("config", {}).get("background", (0.0, 0.0, 0.0)))
    res = evaluate_views(scene.model, views, backend, bg, progress=lambda i: report(progress, "evaluate", i, len(views)),
                         train_fx=scene.train_focal(), appearance=scene.appearance, eps2d=scene.train_eps2d())
    root = Path(scene.root)
    res.update({"scene": str(root), "model": scene.kind, "split": split, "downscale": ds.downscale,
                "model_bytes": (root / "model.safetensors").stat().st_size,
                "bundle_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()), **model_counts(scene.model)})
    return res
