"""Held-out evaluation of trained models and bundles (PSNR / SSIM / LPIPS, render time) and the training curves plot."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .bundle import render_splats
from .dataset import View, load_dataset
from .metrics import lpips_fn, psnr, ssim

__all__ = ["evaluate_views", "evaluate_scene", "plot_curves", "model_counts"]


def model_counts(model: nn.Module) -> dict[str, int]:
    """Anchors (Scaffold-GS) or Gaussians (3DGS) of a model."""
    if model.kind == "scaffold":
        return {"anchors": model.n_anchors}
    return {"gaussians": model.n_gaussians}


def evaluate_views(model: nn.Module, views: list[View], backend: str = "auto",
                   background: tuple[float, float, float] = (0.0, 0.0, 0.0), progress: Any = None) -> dict[str, Any]:
    """Mean PSNR / SSIM (/ LPIPS when available) over views, render seconds per frame, Gaussians per view."""
    lp = lpips_fn()
    ps, ss, ls, times, ng = [], [], [], [], []
    for i, v in enumerate(views):
        t = time.perf_counter()
        with torch.no_grad():
            splats, _ = model.decode(v.viewmat, v.K, v.width, v.height, backend=backend)
        out = render_splats(splats, v.viewmat, v.K, v.width, v.height, backend, background)
        times.append(time.perf_counter() - t)
        ng.append(len(splats))
        ps.append(psnr(out["rgb"], v.image))
        ss.append(float(ssim(out["rgb"], v.image)))
        if lp is not None:
            ls.append(lp(out["rgb"], v.image))
        if progress is not None:
            progress(i + 1)
    res: dict[str, Any] = {"n_views": len(views)}
    if views:
        res.update({"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "per_view_psnr": [round(x, 3) for x in ps],
                    "render_s_per_frame": float(np.mean(times)), "gaussians_per_view": int(np.mean(ng)),
                    "resolution": [views[0].width, views[0].height]})
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
    res = evaluate_views(scene.model, views, backend, bg, progress=lambda i: report(progress, "evaluate", i, len(views)))
    root = Path(scene.root)
    res.update({"scene": str(root), "model": scene.kind, "split": split, "downscale": ds.downscale,
                "model_bytes": (root / "model.safetensors").stat().st_size,
                "bundle_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()), **model_counts(scene.model)})
    return res
