"""The sim's world from a reconstructed scene: ground (plane by RANSAC, optionally a height field), walkable grid, obstacles.

Everything is in metres in the scene's +Z-up world. A non-metric scene is refused unless a scale (metres per scene unit)
is given; then points are scaled to metres and `World.scale` remembers the factor so renders can be converted back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from realsim.assets.errors import RealsimError

from .ground import fit_ground_plane

__all__ = ["WorldConfig", "World", "fit_ground_plane", "world_from_points", "world_from_scene"]  # fit_ground_plane: sim.ground

log = logging.getLogger("realsim.sim.world")


@dataclass
class WorldConfig:
    """Grid resolution and the height band that counts as an obstacle (metres)."""

    cell: float = 0.25
    obstacle_min: float = 0.25  # above the ground: lower is ground clutter / noise
    obstacle_max: float = 2.2  # above this an agent walks under it (awnings, trees, roofs)
    obstacle_min_points: int = 2  # points in a cell (after a 3x3 box sum) to call it blocked
    agent_radius: float = 0.3  # obstacles are inflated by this for walkability
    ground_thresh: float = 0.08  # RANSAC inlier distance
    ransac_iters: int = 400
    max_tilt_deg: float = 15.0  # ground normal within this of +Z (the world is gravity-aligned; steeper is a wall or a bad fit)
    camera_height_range: tuple[float, float] = (1.0, 2.5)  # metres: ground planes that put the capture at a person's height win
    support_radius: float = 1.0  # ground points make the surrounding cells walkable within this radius
    camera_support_radius: float = 1.5  # the capture walk itself is walkable around each camera's ground point
    height_field: bool = False  # per-cell ground heights (smoothed) instead of one plane
    margin: float = 1.0
    max_cells: int = 400  # per axis; the cell grows for very large scenes
    seed: int = 0


@dataclass
class World:
    """Ground, walkable grid and obstacles in metres. Grid index (i, j) covers x in [x0 + i*cell, ...), y in [y0 + j*cell, ...)."""

    plane: np.ndarray  # [4] ground plane n, d (n.z > 0)
    origin: np.ndarray  # [2] x0, y0
    cell: float
    walkable: np.ndarray  # [NX,NY] bool: an agent's centre may be here
    obstacle: np.ndarray  # [NX,NY] bool: something stands above the ground here
    support: np.ndarray  # [NX,NY] bool: observed ground
    heights: np.ndarray | None = None  # [NX,NY] ground z per cell when a height field is used
    scale: float = 1.0  # metres per scene unit (1 for metric scenes)
    config: WorldConfig = field(default_factory=WorldConfig)
    clearance: np.ndarray | None = None  # [NX,NY] metres from each cell to the nearest non-walkable cell
    _labels: np.ndarray | None = field(default=None, init=False, repr=False)  # connected walkable regions, made on demand

    def __post_init__(self) -> None:
        if self.clearance is None:
            self.clearance = ndimage.distance_transform_edt(self.walkable) * self.cell

    @property
    def shape(self) -> tuple[int, int]:
        return self.walkable.shape  # type: ignore[return-value]

    def to_cell(self, xy: np.ndarray) -> np.ndarray:
        """World xy [...,2] -> integer cell indices [...,2] (may be out of range)."""
        return np.floor((np.asarray(xy, np.float64) - self.origin) / self.cell).astype(np.int64)

    def to_world(self, ij: np.ndarray) -> np.ndarray:
        """Cell indices [...,2] -> world xy of the cell centres [...,2]."""
        return self.origin + (np.asarray(ij, np.float64) + 0.5) * self.cell

    def in_grid(self, ij: np.ndarray) -> np.ndarray:
        ij = np.asarray(ij)
        return (ij[..., 0] >= 0) & (ij[..., 1] >= 0) & (ij[..., 0] < self.shape[0]) & (ij[..., 1] < self.shape[1])

    def _lookup(self, grid: np.ndarray, xy: np.ndarray, default) -> np.ndarray:
        ij = self.to_cell(xy)
        ok = self.in_grid(ij)
        out = np.full(ij.shape[:-1], default, dtype=grid.dtype)
        out[ok] = grid[ij[ok][:, 0], ij[ok][:, 1]]
        return out

    def is_walkable(self, xy: np.ndarray) -> np.ndarray:
        return self._lookup(self.walkable, xy, False)

    def is_obstacle(self, xy: np.ndarray) -> np.ndarray:
        return self._lookup(self.obstacle, xy, False)

    def clearance_at(self, xy: np.ndarray) -> np.ndarray:
        """Bilinear distance (m) to the nearest non-walkable cell (0 outside)."""
        return _bilinear(self.clearance, (np.asarray(xy, np.float64) - self.origin) / self.cell - 0.5)

    def clearance_grad(self, xy: np.ndarray) -> np.ndarray:
        """Gradient [...,2] of clearance (points away from obstacles and edges)."""
        xy = np.asarray(xy, np.float64)
        h = self.cell
        gx = (self.clearance_at(xy + [h, 0]) - self.clearance_at(xy - [h, 0])) / (2 * h)
        gy = (self.clearance_at(xy + [0, h]) - self.clearance_at(xy - [0, h])) / (2 * h)
        return np.stack([gx, gy], -1)

    def height(self, xy: np.ndarray) -> np.ndarray:
        """Ground z [...] at world xy [...,2] (metres)."""
        xy = np.asarray(xy, np.float64)
        n, d = self.plane[:3], self.plane[3]
        zp = -(n[0] * xy[..., 0] + n[1] * xy[..., 1] + d) / n[2]
        if self.heights is None:
            return zp
        return _bilinear(self.heights, (xy - self.origin) / self.cell - 0.5, fallback=zp)

    def place(self, n: int, rng: np.random.Generator, min_sep: float = 1.0, min_clearance: float = 0.3,
              avoid: np.ndarray | None = None, body_sep: float = 0.6) -> tuple[np.ndarray, float]:
        """Up to n walkable points [m,2] (m <= n) and the separation last tried; never raises on a cramped world.

        Greedy random placement that first keeps min_sep between points (and from `avoid`) on roomy cells, then relaxes
        clearance (min_clearance, half, 0) and separation (x0.6 steps, never below body_sep, the no-overlap floor).
        """
        if not self.walkable.any():
            raise RealsimError("the scene has no walkable ground for agents")
        taken: list[np.ndarray] = [] if avoid is None else list(np.asarray(avoid, np.float64).reshape(-1, 2))
        out: list[np.ndarray] = []
        if n <= 0:
            return np.zeros((0, 2)), min_sep
        seps = [min_sep]
        while seps[-1] * 0.6 > body_sep:
            seps.append(seps[-1] * 0.6)
        if seps[-1] > body_sep:
            seps.append(body_sep)
        clrs = [min_clearance, min_clearance / 2, 0.0] if min_clearance > 0 else [0.0]
        for sep in seps:
            for clr in clrs:
                cand = np.argwhere(self.walkable & (self.clearance >= clr))
                P = self.to_world(cand[rng.permutation(len(cand))]) + rng.uniform(-0.3, 0.3, (len(cand), 2)) * self.cell
                ok = self.is_walkable(P)  # [C]
                dmin = np.full(len(P), np.inf)
                for q in taken:
                    dmin = np.minimum(dmin, np.linalg.norm(P - q, axis=1))
                i = 0
                while len(out) < n:
                    free = ok[i:] & (dmin[i:] >= sep)
                    if not free.any():
                        break
                    i += int(np.argmax(free))  # the next candidate in random order that still fits
                    taken.append(P[i])
                    out.append(P[i])
                    dmin = np.minimum(dmin, np.linalg.norm(P - P[i], axis=1))
                if len(out) == n:
                    return np.array(out), sep
        # still short at the floor: farthest-point packing of cell centres from scratch can fit more than random greedy
        spread = self._spread(n, body_sep, [] if avoid is None else list(np.asarray(avoid, np.float64).reshape(-1, 2)))
        if len(spread) > len(out):
            out = list(spread)
        return np.array(out).reshape(-1, 2), body_sep

    def _spread(self, n: int, sep: float, fixed: list[np.ndarray]) -> np.ndarray:
        """Farthest-point placement on walkable cell centres [m,2] (m <= n), at least sep apart and from `fixed`."""
        pts = self.to_world(np.argwhere(self.walkable))  # [C,2]
        if len(pts) > 20000:  # the greedy pass already covered large worlds; keep this bounded
            pts = pts[:: int(np.ceil(len(pts) / 20000))]
        dmin = np.full(len(pts), np.inf)
        for q in fixed:
            dmin = np.minimum(dmin, np.linalg.norm(pts - q, axis=1))
        out = []
        for _ in range(n):
            if not out and not fixed:
                k = int(np.argmax(np.linalg.norm(pts - pts.mean(0), axis=1)))  # start at an extreme of the area
            else:
                k = int(np.argmax(dmin))
                if dmin[k] < sep:
                    break
            out.append(pts[k])
            dmin = np.minimum(dmin, np.linalg.norm(pts - pts[k], axis=1))
        return np.array(out).reshape(-1, 2)

    def sample_free(self, n: int, rng: np.random.Generator, min_sep: float = 1.0, min_clearance: float = 0.3,
                    avoid: np.ndarray | None = None, body_sep: float = 0.6) -> np.ndarray:
        """Up to n walkable points [m,2] apart (see `place`); one warning when fewer than n fit."""
        pts, sep = self.place(n, rng, min_sep, min_clearance, avoid, body_sep)
        if len(pts) < n:
            log.warning("placed %d of %d agents: the walkable ground holds no more at >= %.1f m apart", len(pts), n, sep)
        return pts

    def nearest_walkable(self, xy: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
        """The centre of the walkable cell (within `region` [NX,NY] if given) nearest to each point [...,2]."""
        free = self.walkable if region is None else self.walkable & region
        if not free.any():
            raise RealsimError("the scene has no walkable ground for agents")
        _, idx = ndimage.distance_transform_edt(~free, return_indices=True)
        ij = self.to_cell(xy)
        ij[..., 0] = np.clip(ij[..., 0], 0, self.shape[0] - 1)
        ij[..., 1] = np.clip(ij[..., 1], 0, self.shape[1] - 1)
        ni, nj = idx[0][ij[..., 0], ij[..., 1]], idx[1][ij[..., 0], ij[..., 1]]
        return self.to_world(np.stack([ni, nj], -1))

    def region_of(self, xy: np.ndarray) -> np.ndarray:
        """Walkable cells [NX,NY] connected to the walkable cell nearest to xy [2]: what a path from there can reach."""
        if self._labels is None:
            self._labels = ndimage.label(self.walkable)[0]  # 4-connected, as A* moves (no diagonal squeeze)
        ij = self.to_cell(self.nearest_walkable(np.asarray(xy, np.float64)[None])[0])
        return self._labels == self._labels[ij[0], ij[1]]

    def summary(self) -> dict:
        return {"cell_m": self.cell, "grid": list(self.shape), "origin": self.origin.tolist(), "plane": self.plane.tolist(),
                "walkable_m2": float(self.walkable.sum() * self.cell ** 2),
                "obstacle_m2": float(self.obstacle.sum() * self.cell ** 2), "scale": self.scale,
                "height_field": self.heights is not None}


def _bilinear(grid: np.ndarray, f: np.ndarray, fallback: np.ndarray | float = 0.0) -> np.ndarray:
    """Sample grid [NX,NY] at fractional indices f [...,2] (cell centres at integers); NaN cells and outside use fallback."""
    nx, ny = grid.shape
    fx = np.clip(f[..., 0], 0, nx - 1)
    fy = np.clip(f[..., 1], 0, ny - 1)
    i0 = np.clip(np.floor(fx).astype(np.int64), 0, max(nx - 2, 0))
    j0 = np.clip(np.floor(fy).astype(np.int64), 0, max(ny - 2, 0))
    i1, j1 = np.minimum(i0 + 1, nx - 1), np.minimum(j0 + 1, ny - 1)
    tx, ty = fx - i0, fy - j0
    v = (grid[i0, j0] * (1 - tx) * (1 - ty) + grid[i1, j0] * tx * (1 - ty) + grid[i0, j1] * (1 - tx) * ty + grid[i1, j1] * tx * ty)
    inside = (f[..., 0] >= -0.5) & (f[..., 1] >= -0.5) & (f[..., 0] <= nx - 0.5) & (f[..., 1] <= ny - 0.5)
    fb = np.broadcast_to(np.asarray(fallback, np.float64), v.shape)
    return np.where(inside & np.isfinite(v), v, fb)


def _disk(radius_cells: float) -> np.ndarray:
    r = int(np.ceil(radius_cells))
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y) <= radius_cells ** 2 + 1e-9


def world_from_points(xyz: np.ndarray, camera_centers: np.ndarray | None = None, metric: bool = True, scale: float | None = None,
                      config: WorldConfig | None = None) -> World:
    """Build the World from scene points [P,3] (SfM points and/or Gaussian centres) and the capture cameras' centres [C,3]."""
    cfg = config or WorldConfig()
    if not metric and scale is None:
        raise RealsimError("the scene is not metric (no GPS or scale was known when its poses were made): "
                           "pass --scale (metres per scene unit) to simulate in it")
    s = float(scale) if scale is not None else 1.0
    if not (np.isfinite(s) and s > 0):
        raise RealsimError(f"scale must be a positive number of metres per scene unit, got {scale!r}")
    P = np.asarray(xyz, np.float64).reshape(-1, 3) * s
    P = P[np.isfinite(P).all(1)]
    cams = None if camera_centers is None else np.asarray(camera_centers, np.float64).reshape(-1, 3) * s
    if len(P) < 20:
        raise RealsimError(f"the scene has too few points ({len(P)}) to find its ground")
    below = None if cams is None or len(cams) == 0 else float(np.median(cams[:, 2]))
    plane, inl = fit_ground_plane(P, cfg, below=below, cams=cams)
    n, d = plane[:3], plane[3]
    hgt = P @ n + d  # signed height above the plane
    # grid bounds: ground inliers and cameras (robust: 1st-99th percentile)
    # ground band: a height field may bend away from the plane by up to a metre (then the lowest point per cell is ground)
    near_ground = (hgt > -1.0) & (hgt < 1.0) if cfg.height_field else (hgt > -0.3) & (hgt < cfg.obstacle_min)
    ref = P[near_ground] if near_ground.sum() >= 10 else P
    if cams is not None:
        ref = np.vstack([ref, cams])
    lo = np.percentile(ref[:, :2], 1, axis=0) - cfg.margin
    hi = np.percentile(ref[:, :2], 99, axis=0) + cfg.margin
    if cams is not None:
        lo = np.minimum(lo, cams[:, :2].min(0) - cfg.margin)
        hi = np.maximum(hi, cams[:, :2].max(0) + cfg.margin)
    cell = max(cfg.cell, float((hi - lo).max()) / cfg.max_cells)
    shape = np.maximum(np.ceil((hi - lo) / cell).astype(int), 2)

    def cells(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ij = np.floor((pts[:, :2] - lo) / cell).astype(np.int64)
        ok = (ij >= 0).all(1) & (ij[:, 0] < shape[0]) & (ij[:, 1] < shape[1])
        return ij[ok], ok

    # obstacles: points standing in the body-height band above the ground
    band = (hgt > cfg.obstacle_min) & (hgt < cfg.obstacle_max)
    count = np.zeros(shape, np.float64)
    ij, _ = cells(P[band])
    np.add.at(count, (ij[:, 0], ij[:, 1]), 1)
    summed = ndimage.uniform_filter(count, size=3, mode="constant") * 9
    obstacle = (count > 0) & (summed >= cfg.obstacle_min_points)
    obstacle = ndimage.binary_closing(obstacle, np.ones((3, 3), bool)) | obstacle  # close gaps in walls and props
    # observed ground: near-ground points, dilated; plus the ground under the capture walk
    gcount = np.zeros(shape, bool)
    gij, _ = cells(P[np.abs(hgt) < max(cfg.ground_thresh * 2, 0.1)])
    gcount[gij[:, 0], gij[:, 1]] = True
    # geodesic dilation: observed ground spreads around but never through obstacles (walls)
    free = ~obstacle
    cross = ndimage.generate_binary_structure(2, 1)
    support = ndimage.binary_dilation(gcount & free, cross, iterations=max(1, int(round(cfg.support_radius / cell))), mask=free)
    if cams is not None:
        camg = np.zeros(shape, bool)
        # the capture walk itself: the ground along consecutive camera positions (ordered as captured)
        walk = [cams[:1]]
        for a, b in zip(cams[:-1], cams[1:]):
            if np.linalg.norm(b[:2] - a[:2]) < 15.0:  # skip jumps between separate sequences
                k = int(np.ceil(np.linalg.norm(b[:2] - a[:2]) / (cell * 0.5))) + 1
                walk.append(a + (b - a) * np.linspace(0, 1, k)[:, None])
            walk.append(b[None])
        cij, _ = cells(np.vstack(walk))
        camg[cij[:, 0], cij[:, 1]] = True
        support |= ndimage.binary_dilation(camg & free, cross, iterations=max(1, int(round(cfg.camera_support_radius / cell))),
                                           mask=free)
    support = ndimage.binary_fill_holes(support | obstacle) & (support | ~obstacle)
    heights = None
    if cfg.height_field:
        zmin = np.full(shape, np.inf)
        zcnt = np.zeros(shape)
        gi, ok = cells(P[near_ground])
        np.minimum.at(zmin, (gi[:, 0], gi[:, 1]), P[near_ground][ok][:, 2])  # the lowest surface in a cell is the ground
        np.add.at(zcnt, (gi[:, 0], gi[:, 1]), 1)
        zsum = np.where(zcnt > 0, zmin, 0.0) * np.maximum(zcnt, 1)
        ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
        cxy = np.stack([lo[0] + (ii + 0.5) * cell, lo[1] + (jj + 0.5) * cell], -1)
        zplane = -(n[0] * cxy[..., 0] + n[1] * cxy[..., 1] + d) / n[2]
        # smoothed residual against the plane (normalised convolution): holes fall back to the plane
        res = np.where(zcnt > 0, zsum / np.maximum(zcnt, 1) - zplane, 0.0)
        sig = max(1.0, 0.75 / cell)
        num = ndimage.gaussian_filter(res * (zcnt > 0), sig)
        den = ndimage.gaussian_filter((zcnt > 0).astype(float), sig)
        heights = zplane + np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0)
    blocked = ndimage.binary_dilation(obstacle, _disk(cfg.agent_radius / cell)) if obstacle.any() else obstacle
    walkable = support & ~blocked
    # keep only the largest connected walkable region (others are unreachable islands)
    lab, nlab = ndimage.label(walkable)
    if nlab > 1:
        sizes = ndimage.sum(walkable, lab, range(1, nlab + 1))
        walkable = lab == (1 + int(np.argmax(sizes)))
    if not walkable.any():
        raise RealsimError("no walkable ground found in the scene (is it a street or room seen from walking height?)")
    return World(plane, lo, cell, walkable, obstacle, support, heights, s, cfg)


def world_from_scene(scene, scale: float | None = None, config: WorldConfig | None = None, use_gaussians: bool = True) -> World:
    """World from a loaded scene bundle (realsim.recon Scene) or a poses workdir path: SfM points (+ Gaussian centres)."""
    from realsim.assets.frames import camera_center

    info = scene.info
    xyz, _ = scene.points()
    xyz = np.asarray(xyz, np.float64)
    if use_gaussians and getattr(scene, "model", None) is not None:
        g = _gaussian_centres(scene, scale if scale is not None else 1.0)
        if g is not None and len(g):
            xyz = np.vstack([xyz, g])
    cams = np.array([camera_center(f.viewmat) for f in sorted(scene.cameras.frames, key=lambda f: f.name)])  # capture order
    metric = bool(info.world.metric)
    if scale is None and not metric:
        raise RealsimError("the scene is not metric (no GPS or scale was known when its poses were made): "
                           "pass --scale (metres per scene unit) to simulate in it")
    return world_from_points(xyz, cams, metric=True, scale=scale, config=config)


def _gaussian_centres(scene, scale: float = 1.0, max_points: int = 200_000) -> np.ndarray | None:
    """Centres of the most opaque, small Gaussians decoded for the middle training camera (None without cameras or splats)."""
    import torch

    frames = sorted(scene.cameras.frames, key=lambda f: f.name)
    if not frames:
        return None
    fr = frames[len(frames) // 2]
    with torch.no_grad():
        sp = scene.model.splats(torch.as_tensor(fr.viewmat, dtype=torch.float32), torch.as_tensor(fr.K, dtype=torch.float32),
                                int(fr.width), int(fr.height))
    m = sp.means.detach().cpu().numpy().astype(np.float64)
    o = sp.opacities.detach().cpu().numpy().reshape(-1)
    sc = sp.scales.detach().cpu().numpy().max(-1) * scale
    if len(o) == 0:
        return None
    keep = (o >= min(0.5, float(np.quantile(o, 0.8)))) & (sc < 0.3)  # solid surface splats, not haze or floaters' blobs
    m = m[keep]
    if len(m) > max_points:
        m = m[np.random.default_rng(0).choice(len(m), max_points, replace=False)]
    return m
