"""Denser starting points from the SfM depths alone: each training photo's sparse depths are interpolated over a
Delaunay triangulation of their pixels (inverse depth is affine in the image across a planar triangle) and sampled on a
pixel grid; a sample is kept only where another photo's own interpolation agrees in depth and colour, so sheets drawn
across a depth discontinuity (which shift with parallax) are dropped. Sparse captures get anchors where SfM found few
points (near ground, the far end of a walk) from the first iteration instead of waiting for growth.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from .dataset import Dataset, View
from .depth_prior import observed_points, project_depths, view_sfm_depths
from .train_device import image_float

__all__ = ["DenseInitConfig", "ViewDepth", "interpolate_view", "dense_points"]

log = logging.getLogger("realsim.recon.dense_init")


@dataclass
class DenseInitConfig:
    """Sampling and agreement thresholds (pixels at the training resolution)."""

    stride: int = 8  # grid step of the samples in each photo
    max_edge: float = 0.2  # longest triangle edge, as a fraction of the image width (larger ones span holes: sky, gaps)
    depth_tol: float = 0.03  # relative depth agreement with another photo's interpolation
    color_tol: float = 0.12  # mean absolute RGB difference (0..1) with that photo's pixel
    neighbours: int = 4  # photos checked for agreement: the nearest camera centres


@dataclass
class ViewDepth:
    """One photo's interpolated sparse depth: its triangulation, the inverse depth at the vertices and the good triangles."""

    tri: Delaunay | None
    inv_z: np.ndarray  # [M] 1/z at the triangulation's vertices
    good: np.ndarray  # [T] bool: triangles short enough to interpolate across

    def depth_at(self, uv: np.ndarray) -> np.ndarray:
        """Interpolated depth at pixels uv [N,2]; NaN outside the good triangles: [N]."""
        out = np.full(len(uv), np.nan)
        if self.tri is None or len(uv) == 0:
            return out
        s = self.tri.find_simplex(uv)
        ok = s >= 0
        ok[ok] = self.good[s[ok]]
        if not ok.any():
            return out
        T = self.tri.transform[s[ok]]  # [n,3,2]: barycentric affine map per triangle
        b = np.einsum("nij,nj->ni", T[:, :2], uv[ok] - T[:, 2])  # [n,2]
        w = np.concatenate([b, 1.0 - b.sum(1, keepdims=True)], 1)  # [n,3]
        iz = (w * self.inv_z[self.tri.simplices[s[ok]]]).sum(1)
        out[ok] = np.where(iz > 0, 1.0 / np.maximum(iz, 1e-12), np.nan)
        return out


def interpolate_view(uv: np.ndarray, z: np.ndarray, width: int, max_edge: float) -> ViewDepth:
    """Delaunay of the sparse pixels; triangles with an edge over max_edge x width are not interpolated across."""
    uv, idx = np.unique(uv, axis=0, return_index=True)
    z = z[idx]
    if len(uv) < 3:
        return ViewDepth(None, np.zeros(0), np.zeros(0, bool))
    try:
        tri = Delaunay(uv)
    except Exception:  # collinear or degenerate pixels: nothing to interpolate
        return ViewDepth(None, np.zeros(0), np.zeros(0, bool))
    p = uv[tri.simplices]  # [T,3,2]
    edge = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2).max(1)
    return ViewDepth(tri, 1.0 / z, edge <= max_edge * width)


def _pixels(v: View) -> np.ndarray:
    """The photo as float [H,W,3] in 0..1 on the CPU (uint8 or float storage)."""
    return image_float(v.image).detach().cpu().numpy()


def _backproject(v: View, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
    """World points [N,3] of pixels uv [N,2] at depths z [N]."""
    K, V = v.K.double().numpy(), v.viewmat.double().numpy()
    ray = np.concatenate([uv, np.ones((len(uv), 1))], 1) @ np.linalg.inv(K).T  # [N,3], z = 1
    cam = ray * z[:, None]
    return (cam - V[:3, 3]) @ V[:3, :3]  # R^T (x - t)


def _sample(v: View, img: np.ndarray, vd: ViewDepth, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid pixels [N,2] inside good triangles, their depths [N] and colours [N,3] (0..1)."""
    us, vs = np.meshgrid(np.arange(stride / 2, v.width, stride), np.arange(stride / 2, v.height, stride))
    uv = np.stack([us.ravel(), vs.ravel()], 1)
    z = vd.depth_at(uv)
    ok = np.isfinite(z)
    uv, z = uv[ok], z[ok]
    rgb = img[uv[:, 1].astype(int), uv[:, 0].astype(int)]
    return uv, z, rgb


def dense_points(ds: Dataset, cfg: DenseInitConfig | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Agreed samples of every training photo: xyz [N,3] float32, rgb [N,3] uint8, and counts for the log."""
    cfg = cfg or DenseInitConfig()
    views = ds.train
    tracks = None
    try:
        tracks = observed_points(ds.root, [v.name for v in views])
    except Exception as e:  # an unreadable model: the frustum test works from ds.points
        log.warning("no COLMAP tracks for the dense start (%s); using the frustum test", e)
    vds = [interpolate_view(*view_sfm_depths(ds.points, v, tracks), v.width, cfg.max_edge) for v in views]
    imgs = [_pixels(v) for v in views]  # [H,W,3] 0..1 each, converted once
    centres = np.stack([-(v.viewmat[:3, :3].T @ v.viewmat[:3, 3]).double().numpy() for v in views])  # [V,3]
    xs, cs, n_cand = [], [], 0
    for i, (v, vd) in enumerate(zip(views, vds)):
        uv, z, rgb = _sample(v, imgs[i], vd, cfg.stride)
        n_cand += len(z)
        if len(z) == 0:
            continue
        X = _backproject(v, uv, z)
        agree = np.zeros(len(z), bool)
        near = [j for j in np.argsort(np.linalg.norm(centres - centres[i], axis=1)) if j != i][: cfg.neighbours]
        for j in near:
            uvj, zj, idx = project_depths(X, views[j])
            if len(idx) == 0:
                continue
            dj = vds[j].depth_at(uvj)
            cj = imgs[j][uvj[:, 1].astype(int), uvj[:, 0].astype(int)]
            ok = (np.abs(zj - dj) <= cfg.depth_tol * dj) & (np.abs(cj - rgb[idx]).mean(1) <= cfg.color_tol)
            agree[idx[ok]] = True
        xs.append(X[agree])
        cs.append(rgb[agree])
    xyz = np.concatenate(xs, 0) if xs else np.zeros((0, 3))
    rgb = np.concatenate(cs, 0) if cs else np.zeros((0, 3))
    info = {"candidates": n_cand, "kept": len(xyz), "views": len(views), "tracks": tracks is not None}
    return xyz.astype(np.float32), np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8), info
