"""Rendering at an output resolution other than the trained one: the rasterizer settings that keep it faithful.

A model is fitted with the classic kernel at one pixel scale (focal length in pixels, `f_train`), where every projected
Gaussian is widened by EPS2D px^2. Rendered at a coarser scale (f_out < f_train: a smaller video, a zoomed-out view) the
classic kernel aliases: sub-pixel Gaussians are drawn one pixel wide at full opacity. The kernels' antialiased mode keeps
the one-pixel low-pass but scales each opacity by sqrt(det(cov) / det(cov + EPS2D I)), so a Gaussian keeps its energy;
on lund it matches a 4x supersampled render to 38.5 dB against the classic kernel's 30.5 dB (docs/lund/README.md).
At a finer scale (f_out > f_train: the demo renders 1026 px from a 205-512 px model) the classic kernel with the fixed
EPS2D would shrink each Gaussian's trained widening; scaling it by (f_out / f_train)^2 draws every Gaussian with the
footprint it was trained with. A model trained with another widening (TrainConfig.eps2d, recorded in scene.json) is
drawn with that one the same way.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EPS2D", "raster_settings", "training_eps2d", "training_focal"]

EPS2D = 0.3  # the kernels' default 2-D widening (px^2) that training used


def training_focal(metadata: Any, focals: list[float]) -> float | None:
    """The trained pixel scale: the median focal (px) of the bundle's full-size cameras over the training downscale
    recorded in scene.json metadata["train"]["downscale"]; None when the bundle does not record one."""
    train = metadata.get("train", {}) if isinstance(metadata, dict) else {}
    ds = train.get("downscale") if isinstance(train, dict) else None
    if not ds or not focals:
        return None
    return float(np.median(np.asarray(focals, np.float64))) / float(ds)


def training_eps2d(metadata: Any) -> float:
    """The 2-D widening (px^2) a bundle was trained with: metadata["train"]["config"]["eps2d"], else EPS2D."""
    train = metadata.get("train", {}) if isinstance(metadata, dict) else {}
    cfg = train.get("config", {}) if isinstance(train, dict) else {}
    eps = cfg.get("eps2d") if isinstance(cfg, dict) else None
    return float(eps) if isinstance(eps, (int, float)) and eps > 0 else EPS2D


def raster_settings(train_fx: float | None, out_fx: float, tol: float = 0.02, eps2d: float = EPS2D) -> dict[str, Any]:
    """Rasterizer keywords for an output focal `out_fx` (px) of a model trained at `train_fx` with widening `eps2d`:
    that widening within `tol` of it (or unknown), the antialiased mode when coarser, eps2d * (out/train)^2 when finer."""
    same = {} if eps2d == EPS2D else {"eps2d": float(eps2d)}
    if not train_fx or train_fx <= 0 or out_fx <= 0:
        return same
    r = float(out_fx) / float(train_fx)
    if abs(r - 1.0) <= tol:
        return same
    if r < 1.0:
        return {"rasterize_mode": "antialiased", **same}
    return {"eps2d": float(eps2d) * r * r}
