"""Recover balls' 3D centres and velocities from a written sim output folder (masks + 16-bit depth + cameras.json only).

Centre per frame: the mask's interior pixels (the mask eroded by one pixel: edge pixels blend the ball's depth with what is
behind it) are unprojected with the depth PNG, and a sphere of the known radius is fitted to them (Gauss-Newton on
|X - c| - r with Huber weights), started from the mean surface point pushed 2/3 r back along the ray (the projected-area mean
depth of a hemisphere cap). The fit uses the curvature of the visible cap, so it does not care which part is seen.

Velocity: the analytic law's form, x(t) = x0 + v0 t + a t^2 / 2 per axis with all of x0, v0, a free, fitted to every frame of
a free-flight segment by iteratively reweighted least squares (Huber on the 3-D residual), then differentiated. Central
differences of consecutive frames are kept beside it for comparison.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["recover_centres", "fit_segment", "central_diff", "rel_err"]


def _sphere_fit(X: np.ndarray, c0: np.ndarray, r: float, iters: int = 12, huber: float = 0.002) -> np.ndarray:
    """Centre [3] of a sphere of radius r through points X [N,3] (robust Gauss-Newton from c0)."""
    c = c0.copy()
    for _ in range(iters):
        d = X - c
        n = np.linalg.norm(d, axis=1)
        res = n - r
        u = d / np.maximum(n[:, None], 1e-12)
        w = np.where(np.abs(res) <= huber, 1.0, huber / np.maximum(np.abs(res), 1e-12))
        J = -u  # d res / d c
        A = (J * w[:, None]).T @ J
        b = (J * w[:, None]).T @ res
        step = np.linalg.solve(A + 1e-12 * np.eye(3), -b)
        c = c + step
        if np.linalg.norm(step) < 1e-7:
            break
    return c


def recover_centres(out: Path, radii: list[float], first_id: int = 1, min_pixels: int = 12,
                    method: str = "sphere") -> tuple[np.ndarray, np.ndarray]:
    """Centres [T,P,3] (nan where a ball touches the image border or shows too few pixels) and mask areas [T,P] from the
    files in `out`. method: "sphere" (fit) or "mean" (mean surface point + 2/3 r along the ray: the earlier estimator)."""
    from PIL import Image

    from realsim.assets.cameras import load_cameras

    cams = load_cameras(out / "cameras.json").frames
    import json

    scale = json.loads((out / "sim.json").read_text())["depth_png_scale_m"]
    T, P = len(cams), len(radii)
    rec = np.full((T, P, 3), np.nan)
    area = np.zeros((T, P))
    for t in range(T):
        ids = np.asarray(Image.open(out / "masks" / f"{t:06d}.png"))
        dep = np.asarray(Image.open(out / "depth" / f"{t:06d}.png")).astype(np.float64) * scale
        H, W = ids.shape
        V, K = np.asarray(cams[t].viewmat, np.float64), np.asarray(cams[t].K, np.float64)
        Rw = V[:3, :3].T
        C = -Rw @ V[:3, 3]
        for p in range(P):
            m = (ids == first_id + p) & (dep > 0)
            ys, xs = np.nonzero(m)
            if len(xs) < min_pixels or xs.min() == 0 or ys.min() == 0 or xs.max() == W - 1 or ys.max() == H - 1:
                continue
            area[t, p] = len(xs)
            if method == "sphere":
                inner = m.copy()
                inner[1:] &= m[:-1]
                inner[:-1] &= m[1:]
                inner[:, 1:] &= m[:, :-1]
                inner[:, :-1] &= m[:, 1:]
                if inner.sum() >= min_pixels // 2:
                    ys, xs = np.nonzero(inner)
            d = dep[ys, xs]
            pc = np.stack([(xs + 0.5 - K[0, 2]) / K[0, 0] * d, (ys + 0.5 - K[1, 2]) / K[1, 1] * d, d], 1)
            pw = (pc - V[:3, 3]) @ V[:3, :3]  # camera -> world
            mean = pw.mean(0)
            ray = (mean - C) / np.linalg.norm(mean - C)
            c0 = mean + (2.0 / 3.0) * radii[p] * ray
            rec[t, p] = _sphere_fit(pw, c0, radii[p]) if method == "sphere" else c0
    return rec, area


def central_diff(x: np.ndarray, fps: float) -> np.ndarray:
    """Velocities [T,3] by central differences of positions [T,3] (nan at the ends and next to missing frames)."""
    v = np.full_like(x, np.nan)
    v[1:-1] = (x[2:] - x[:-2]) * fps / 2
    return v


def fit_segment(t: np.ndarray, x: np.ndarray, iters: int = 10, huber: float = 0.003) -> tuple[np.ndarray, np.ndarray]:
    """Fit x(t) = x0 + v0 t + a t^2 / 2 (per axis) to positions x [N,3] at times t [N] (nan rows skipped) by IRLS with a
    Huber weight on the 3-D residual (metres). Returns the coefficients [3,3] (x0, v0, a rows) and velocities [N,3]."""
    ok = np.isfinite(x).all(1)
    t0 = t[ok]
    A = np.stack([np.ones_like(t0), t0, 0.5 * t0 ** 2], 1)
    w = np.ones(len(t0))
    coef = np.zeros((3, 3))
    for _ in range(iters):
        sw = np.sqrt(w)[:, None]
        coef = np.linalg.lstsq(A * sw, x[ok] * sw, rcond=None)[0]
        r = np.linalg.norm(A @ coef - x[ok], axis=1)
        w = np.where(r <= huber, 1.0, huber / np.maximum(r, 1e-12))
    v = coef[1][None] + np.outer(t, coef[2])
    v[~ok] = np.nan
    return coef, v


def rel_err(v: np.ndarray, vt: np.ndarray) -> tuple[float, int]:
    """Mean relative velocity error |v - v_law| / |v_law| over rows where v is known, and how many rows."""
    ok = np.isfinite(v).all(-1)
    if not ok.any():
        return float("nan"), 0
    e = np.linalg.norm(v[ok] - vt[ok], axis=-1) / np.linalg.norm(vt[ok], axis=-1)
    return float(e.mean()), int(ok.sum())
