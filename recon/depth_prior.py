"""Geometry prior from SfM: sparse depth supervision. The COLMAP points each training photo observed (its tracks; without
tracks, the points in its frustum that are nearest in their image cell) give metric depths at a few hundred pixels;
a robust loss pulls the rendered expected depth there toward them, so sparse captures stop explaining the photos with
floaters at the wrong depth. SfM and the cameras share one scale, so the loss compares depths directly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import colmap_io
from .dataset import Dataset, View

__all__ = ["SparseDepth", "DepthPrior", "project_depths", "visible_nearest", "view_sfm_depths", "sparse_depth_loss",
           "observed_points"]

log = logging.getLogger("realsim.recon.depth_prior")


@dataclass
class SparseDepth:
    """SfM depths of one view: pixel positions normalised to [0,1) of the image size (any training resolution) and
    camera-space depths."""

    uv: torch.Tensor  # [M,2] (u / width, v / height)
    z: torch.Tensor  # [M] metres along the optical axis


def project_depths(points: np.ndarray, view: View, near: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel positions [M,2], depths [M] and the indices [M] of the points in front of `view` and inside its image."""
    V, K = view.viewmat.double().numpy(), view.K.double().numpy()
    cam = points.astype(np.float64) @ V[:3, :3].T + V[:3, 3]  # [P,3]
    z = cam[:, 2]
    uvw = cam @ K.T
    uv = uvw[:, :2] / np.maximum(z, 1e-9)[:, None]
    ok = (z > near) & (uv[:, 0] >= 0) & (uv[:, 0] < view.width) & (uv[:, 1] >= 0) & (uv[:, 1] < view.height)
    idx = np.nonzero(ok)[0]
    return uv[idx], z[idx], idx


def visible_nearest(uv: np.ndarray, z: np.ndarray, cell: float, slack: float = 1.05) -> np.ndarray:
    """Occlusion test without tracks: keep the points within `slack` of the nearest depth in their cell x cell pixel
    cell (a farther point behind a nearer one is hidden): bool [M]."""
    if len(z) == 0:
        return np.zeros(0, bool)
    cells = np.floor(uv / cell).astype(np.int64)
    key = cells[:, 0] * 1_000_003 + cells[:, 1]
    _, inv = np.unique(key, return_inverse=True)
    zmin = np.full(inv.max() + 1, np.inf)
    np.minimum.at(zmin, inv, z)
    return z <= slack * zmin[inv]


def view_sfm_depths(points: np.ndarray, view: View, tracks: dict[str, np.ndarray] | None,
                    cell_px: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """The SfM pixels [M,2] and depths [M] of a view: the points it observed (tracks), else the points in its frustum that
    are nearest in their cell_px cell."""
    if tracks is not None:
        uv, z, _ = project_depths(tracks[view.name], view)
        return uv, z
    uv, z, _ = project_depths(points, view)
    keep = visible_nearest(uv, z, cell_px)
    return uv[keep], z[keep]


def observed_points(root: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """Per image name, the xyz [M,3] of the SfM points it observed (COLMAP tracks); None when the model has no images."""
    model = colmap_io.find_model(root)
    if model is None or not (colmap_io._has(model, "images") and colmap_io._has(model, "cameras")):
        return None
    rec = colmap_io.read_model(model)
    by_name = {im.name: im for im in rec.images.values()}
    out: dict[str, np.ndarray] = {}
    for n in names:
        im = by_name.get(n)
        if im is None:
            return None  # names do not match: the caller falls back to the frustum test
        ids = [p.point3D_id for p in im.points2D if p.has_point3D()]
        out[n] = np.array([rec.points3D[i].xyz for i in ids], np.float64).reshape(-1, 3)
    return out


def sparse_depth_loss(depth: torch.Tensor, sd: SparseDepth, delta: float = 0.1) -> torch.Tensor:
    """Huber loss (threshold `delta`) of the relative depth error (d - z) / z at the SfM pixels (nearest pixel of the
    rendered depth [H,W] or [H,W,1], at whatever resolution it has): scalar, zero without points."""
    d = depth.reshape(depth.shape[0], depth.shape[1])
    H, W = d.shape
    if sd.z.numel() == 0:
        return d.sum() * 0.0
    u = (sd.uv[:, 0] * W).long().clamp(0, W - 1)
    v = (sd.uv[:, 1] * H).long().clamp(0, H - 1)
    z = sd.z.to(d)
    r = (d[v, u] - z) / z
    return torch.nn.functional.huber_loss(r, torch.zeros_like(r), delta=delta)


class DepthPrior:
    """The sparse SfM depths of every training view, and their loss on a rendered depth map."""

    def __init__(self, depths: list[SparseDepth], delta: float = 0.1) -> None:
        self.depths = depths
        self.delta = delta

    @classmethod
    def from_dataset(cls, ds: Dataset, weight: float, delta: float = 0.1, cell_px: float = 8.0) -> "DepthPrior | None":
        """The prior for ds.train (None when weight <= 0): tracks when the COLMAP model has them, else the frustum and
        nearest-in-cell test over all points."""
        if weight <= 0:
            return None
        tracks = None
        try:
            tracks = observed_points(ds.root, [v.name for v in ds.train])
        except Exception as e:  # an unreadable model: the frustum test still works from ds.points
            log.warning("no COLMAP tracks for the depth prior (%s); using the frustum test", e)
        out = []
        for v in ds.train:
            uv, z = view_sfm_depths(ds.points, v, tracks, cell_px)
            uvn = uv / np.array([v.width, v.height], np.float64)
            out.append(SparseDepth(torch.from_numpy(uvn).float(), torch.from_numpy(z).float()))
        n = [len(s.z) for s in out]
        log.info("depth prior: %d-%d SfM depths per view (%s)", min(n), max(n), "tracks" if tracks else "frustum test")
        return cls(out, delta)

    def loss(self, depth: torch.Tensor, vi: int) -> torch.Tensor:
        """Loss of training view vi's rendered expected depth [H,W(,1)] against its SfM depths."""
        return sparse_depth_loss(depth, self.depths[vi], self.delta)
