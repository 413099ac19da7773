"""Static colliders of a reconstructed scene: voxel-column boxes fitted to its Gaussians, cached in the scene bundle.

`voxels` (the default): the scene's Gaussian centres (decoded for the first, middle and last capture views, weighted by
opacity; and its SfM points, weight 0.5 each) that stand above the ground inside the World's obstacle cells are binned into
columns of `voxel` x `voxel` m; a column holding at least `min_mass` opacity becomes a solid box from 0.3 m below the ground up to its
highest point (at most `top` above the ground), and columns of equal height range are merged along y, then x. Solid
columns leave no holes under what is seen; their side faces sit within voxel / 2 of the points in them.
`grid`: the World's 0.25 m obstacle cells as columns up to obstacle_max (`physics.model.collider_boxes`), the earlier default.
The TSDF mesh split into convex pieces (coacd) is measured in bench/physics_colliders.py; it fits worse (README).

`scene_colliders` caches the boxes in the bundle (realsim.assets.colliders: keyed by the bundle's content hash and these
settings) so a second simulate of the same scene reuses them.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.colliders import collider_key, load_colliders, save_colliders, scene_content_hash
from realsim.assets.errors import InputError

from ..world import World
from .model import collider_boxes, collider_fit

__all__ = ["ColliderConfig", "gaussian_points", "voxel_boxes", "build_colliders", "scene_colliders"]

log = logging.getLogger("realsim.sim.physics")

COLLIDER_METHODS = ("voxels", "grid")
ALGORITHM = 3  # bump when the boxes a setting gives change: cached colliders of older code are then rebuilt


@dataclass
class ColliderConfig:
    """How static colliders are made from a reconstruction (lengths in metres)."""

    method: str = "voxels"  # voxels | grid (see the module doc)
    voxel: float = 0.10  # column side: points in a column lie within voxel / 2 of its side faces
    top: float = 8.0  # columns reach at most this far above the ground (roofs, canopies above are left out)
    min_mass: float = 1.0  # opacity summed over a column's Gaussians for it to be solid (a floater or two is not a wall)
    views: int = 3  # capture views the (view-dependent) Gaussians are decoded for: first, middle, last

    def settings(self, world: World) -> dict[str, Any]:
        """Everything the boxes depend on besides the bundle's files (the cache key's second half)."""
        return {**asdict(self), "world_config": asdict(world.config), "scale": float(world.scale), "algorithm": ALGORITHM}


def gaussian_points(scene, scale: float = 1.0, views: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian centres [N,3] in metres and their opacities [N], decoded for `views` capture cameras spread over the capture."""
    import torch

    frames = sorted(scene.cameras.frames, key=lambda f: f.name)
    if not frames or getattr(scene, "model", None) is None:
        return np.zeros((0, 3)), np.zeros(0)
    pick = sorted({int(round(k)) for k in np.linspace(0, len(frames) - 1, max(1, views))})
    P, W = [], []
    with torch.no_grad():
        for k in pick:
            fr = frames[k]
            sp = scene.model.splats(torch.as_tensor(fr.viewmat, dtype=torch.float32),
                                    torch.as_tensor(fr.K, dtype=torch.float32), int(fr.width), int(fr.height))
            P.append(sp.means.detach().cpu().numpy().astype(np.float64) * scale)
            W.append(sp.opacities.detach().cpu().numpy().astype(np.float64).reshape(-1))
    return np.concatenate(P), np.concatenate(W)


def _merge_columns(z0: np.ndarray, z1: np.ndarray, x0: float, y0: float, v: float) -> np.ndarray:
    """Boxes [N,6] from solid columns (z0, z1 [NX,NY], nan = none): runs of equal (z0, z1) along y, then equal runs along x."""
    runs: dict[tuple[int, int, float, float], list[int]] = {}  # (j0, j1, z0, z1) -> the i's that have this run
    for i in range(z0.shape[0]):
        j = 0
        while j < z0.shape[1]:
            if not np.isfinite(z1[i, j]):
                j += 1
                continue
            j1 = j
            while j1 + 1 < z0.shape[1] and z1[i, j1 + 1] == z1[i, j] and z0[i, j1 + 1] == z0[i, j]:
                j1 += 1
            runs.setdefault((j, j1, float(z0[i, j]), float(z1[i, j])), []).append(i)
            j = j1 + 1
    out = []
    for (j, j1, a, b), iis in runs.items():
        k = 0
        while k < len(iis):
            k1 = k
            while k1 + 1 < len(iis) and iis[k1 + 1] == iis[k1] + 1:
                k1 += 1
            out.append([x0 + iis[k] * v, y0 + j * v, a, x0 + (iis[k1] + 1) * v, y0 + (j1 + 1) * v, b])
            k = k1 + 1
    return np.array(out).reshape(-1, 6)


def voxel_boxes(world: World, points: np.ndarray, weights: np.ndarray, cfg: ColliderConfig | None = None) -> np.ndarray:
    """Solid voxel-column boxes [N,6] (x0, y0, z0, x1, y1, z1) fitted to weighted points [P,3] (metres; see the module doc)."""
    cfg = cfg or ColliderConfig()
    wc = world.config
    if not world.obstacle.any() or not len(points):
        return np.zeros((0, 6))
    P = np.asarray(points, np.float64).reshape(-1, 3)
    w = np.asarray(weights, np.float64).reshape(-1)
    ij = world.to_cell(P[:, :2])
    ok = world.in_grid(ij)
    ok[ok] = world.obstacle[ij[ok, 0], ij[ok, 1]]  # only where the World has an obstacle: agents and props keep off it
    g = world.height(P[:, :2])
    h = P[:, 2] - g
    ok &= (h > wc.obstacle_min) & (h < cfg.top) & (w > 0)
    P, w, g = P[ok], w[ok], g[ok]
    if not len(P):
        return np.zeros((0, 6))
    v = float(cfg.voxel)
    x0, y0 = np.floor(P[:, :2].min(0) / v) * v
    c = np.floor((P[:, :2] - [x0, y0]) / v).astype(np.int64)
    nx, ny = c.max(0) + 1
    flat = c[:, 0] * ny + c[:, 1]
    mass = np.bincount(flat, w, nx * ny)
    hi = np.full(nx * ny, -np.inf)
    np.maximum.at(hi, flat, P[:, 2])
    lo = np.full(nx * ny, np.inf)
    np.minimum.at(lo, flat, g - 0.3)
    solid = mass >= cfg.min_mass
    q = 0.05  # heights snapped outwards to 5 cm so neighbouring columns merge
    z1 = np.where(solid, np.ceil(hi / q) * q, np.nan).reshape(nx, ny)
    z0 = np.where(solid, np.floor(lo / q) * q, np.nan).reshape(nx, ny)
    return _merge_columns(z0, z1, float(x0), float(y0), v)


def build_colliders(world: World, scene=None, cfg: ColliderConfig | None = None,
                    points: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Static collider boxes [N,6] for a World (and its scene, whose Gaussians the voxel method fits)."""
    cfg = cfg or ColliderConfig()
    if cfg.method not in COLLIDER_METHODS:
        raise InputError(f"collider method {cfg.method!r} is not one of {', '.join(COLLIDER_METHODS)}")
    if cfg.method == "grid" or (scene is None and points is None):
        return collider_boxes(world)
    P, w = points if points is not None else gaussian_points(scene, world.scale, cfg.views)
    return voxel_boxes(world, P, w, cfg)


def scene_colliders(world: World, scene, scene_dir: str | Path | None, cfg: ColliderConfig | None = None,
                    measure: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """(boxes [N,6], info) for a loaded scene: from the bundle's collider cache when its key matches, else built (and the
    fit measured: Gaussian mass within 5 / 10 / 25 cm of a collider surface) and cached. info["cache"]: hit | built |
    uncached (no folder, or not writable)."""
    cfg = cfg or ColliderConfig()
    t0 = time.time()
    key = shash = None
    settings = cfg.settings(world)
    if scene_dir is not None and Path(scene_dir).is_dir():
        shash = scene_content_hash(scene_dir)
        key = collider_key(shash, settings)
        hit = load_colliders(scene_dir, key)
        if hit is not None:
            info = {**hit.get("info", {}), "cache": "hit", "seconds": round(time.time() - t0, 3)}
            return np.asarray(hit["boxes"], np.float64).reshape(-1, 6), info
    pts = gaussian_points(scene, world.scale, cfg.views) if cfg.method == "voxels" or measure else None
    build_pts = pts
    if pts is not None and cfg.method == "voxels":  # the SfM points too (half weight: two make a column), as the World has
        sfm = np.asarray(scene.points()[0], np.float64).reshape(-1, 3) * world.scale
        build_pts = (np.vstack([pts[0], sfm]), np.concatenate([pts[1], np.full(len(sfm), 0.5)]))
    boxes = build_colliders(world, scene, cfg, points=build_pts)
    info: dict[str, Any] = {"method": cfg.method, "voxel_m": cfg.voxel, "boxes": int(len(boxes))}
    if measure and pts is not None and len(pts[0]):
        info["fit"] = {k: round(v, 4) for k, v in collider_fit(world, boxes, pts[0], pts[1]).items()}
    info["build_s"] = round(time.time() - t0, 3)
    cached = key is not None and shash is not None and save_colliders(scene_dir, key, shash, settings, boxes.tolist(), info)
    info["cache"] = "built" if cached else "uncached"
    return boxes, info
