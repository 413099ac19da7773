"""Block partition of a large scene on the ground plane (+Z up): cores that tile the plane, expanded regions that overlap,
and cameras assigned to blocks by what they see (their SfM points), not only where they stand (VastGaussian-style).

The plan is written as `partition.json` (readable, and loadable to re-run the same blocks).
"""
from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.atomic import write_text_atomic
from realsim.assets.cameras import CameraSet
from realsim.assets.config import ConfigDict, read_json
from realsim.assets.errors import InputError, RealsimError
from realsim.assets.frames import camera_center

__all__ = ["PartitionConfig", "Block", "Partition", "partition_scene", "load_partition", "camera_visibility", "tracks_by_camera",
           "write_points_bin", "PARTITION_FORMAT"]

PARTITION_FORMAT = "realsim-partition-1"


@dataclass
class PartitionConfig(ConfigDict):
    """How a scene is split. blocks 0 = auto (about `cameras_per_block` training cameras per block)."""

    blocks: int = 0
    cameras_per_block: int = 60
    overlap: float = 0.2  # each side of a block's core grows by this fraction of the core's size
    min_visible_fraction: float = 0.25  # a camera joins a block when this share of its visible points lies in the region
    min_visible_points: int = 10
    max_depth: float = 0.0  # frustum visibility (no SfM tracks): points farther than this are not seen; 0 = a block's length
    straddle_fraction: float = 0.2  # a test view straddles a boundary when its second core holds this share of its points


@dataclass
class Block:
    """One block: core [lo, hi) and expanded bounds in the partition frame (u, v; +-inf = unbounded), its cameras."""

    id: int
    core: np.ndarray  # [2,2] (u lo/hi, v lo/hi)
    expanded: np.ndarray  # [2,2]
    cameras: list[str] = field(default_factory=list)
    n_train: int = 0
    n_points: int = 0

    @property
    def name(self) -> str:
        return f"b{self.id:02d}"


@dataclass
class Partition:
    """Blocks in a ground-plane frame: uv = (xy - origin) @ axes.T."""

    origin: np.ndarray  # [2]
    axes: np.ndarray  # [2,2] rows u, v (world XY unit vectors)
    grid: tuple[int, int]
    blocks: list[Block]
    config: PartitionConfig
    bounds: np.ndarray  # [2,2] scene bounds in uv (cameras and robust point extent)
    straddling: list[str] = field(default_factory=list)  # held-out views that straddle a core boundary
    source: str = ""
    depth: float = 0.0  # the frustum visibility range used (no SfM tracks)

    def to_uv(self, xyz: np.ndarray) -> np.ndarray:
        """World points [N,2+] -> partition-frame coordinates [N,2]."""
        return (np.asarray(xyz, np.float64)[:, :2] - self.origin) @ self.axes.T

    def core_of(self, xyz: np.ndarray) -> np.ndarray:
        """Index of the block whose core holds each point: [N] int (cores tile the plane: exactly one each)."""
        return self.core_of_uv(self.to_uv(xyz))

    def core_of_uv(self, uv: np.ndarray) -> np.ndarray:
        out = np.full(len(uv), -1, np.int64)
        for b in self.blocks:
            out[_inside(uv, b.core)] = b.id
        return out

    def to_dict(self) -> dict[str, Any]:
        def bounds(a: np.ndarray) -> dict[str, list]:
            return {"u": [_num(a[0, 0]), _num(a[0, 1])], "v": [_num(a[1, 0]), _num(a[1, 1])]}

        blocks = [{"id": b.id, "name": b.name, "core": bounds(b.core), "expanded": bounds(b.expanded),
                   "core_xy": self.corners_xy(b.core), "expanded_xy": self.corners_xy(b.expanded),
                   "n_cameras": len(b.cameras), "n_train": b.n_train, "n_points": b.n_points, "cameras": b.cameras}
                  for b in self.blocks]
        return {"format": PARTITION_FORMAT, "source": self.source, "settings": self.config.to_dict(),
                "frame": {"origin_xy": self.origin.tolist(), "u_xy": self.axes[0].tolist(), "v_xy": self.axes[1].tolist(),
                          "note": "uv = (xy - origin_xy) @ [u_xy, v_xy]^T; cores are [lo, hi), null = unbounded"},
                "grid": list(self.grid), "bounds_uv": bounds(self.bounds), "visibility_depth": self.depth, "blocks": blocks,
                "straddling_test_views": self.straddling}

    def corners_xy(self, box: np.ndarray) -> list[list[float]]:
        """The box (clipped to the scene bounds) as 4 world XY corners, for inspection."""
        b = np.clip(box, self.bounds[:, :1], self.bounds[:, 1:])
        uv = np.array([[b[0, 0], b[1, 0]], [b[0, 1], b[1, 0]], [b[0, 1], b[1, 1]], [b[0, 0], b[1, 1]]])
        return np.round(uv @ self.axes + self.origin, 4).tolist()

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))


def _num(x: float) -> float | None:
    return None if not math.isfinite(float(x)) else round(float(x), 6)


def _inside(uv: np.ndarray, box: np.ndarray) -> np.ndarray:
    return (uv[:, 0] >= box[0, 0]) & (uv[:, 0] < box[0, 1]) & (uv[:, 1] >= box[1, 0]) & (uv[:, 1] < box[1, 1])


def load_partition(path: str | os.PathLike) -> Partition:
    """A partition.json written by Partition.save (InputError for a foreign or malformed file)."""
    d = read_json(path, "partition plan")
    if not isinstance(d, dict) or d.get("format") != PARTITION_FORMAT:
        raise InputError(f"{path} is not a realsim partition plan (format {PARTITION_FORMAT!r})")

    def box(b: dict) -> np.ndarray:
        lo_hi = [[-math.inf if b[k][0] is None else b[k][0], math.inf if b[k][1] is None else b[k][1]] for k in "uv"]
        return np.array(lo_hi, np.float64)

    try:
        blocks = [Block(int(b["id"]), box(b["core"]), box(b["expanded"]), list(b["cameras"]), int(b["n_train"]),
                        int(b["n_points"])) for b in d["blocks"]]
        f = d["frame"]
        return Partition(np.array(f["origin_xy"], np.float64), np.array([f["u_xy"], f["v_xy"]], np.float64),
                         tuple(d["grid"]), blocks, PartitionConfig.from_dict(d["settings"]), box(d["bounds_uv"]),
                         list(d.get("straddling_test_views", [])), str(d.get("source", "")),
                         float(d.get("visibility_depth", 0.0)))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise InputError(f"{path}: malformed partition plan ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------------------------------- visibility
def camera_visibility(cams: CameraSet, xyz: np.ndarray, tracks: list[np.ndarray] | None, max_depth: float) -> list[np.ndarray]:
    """Indices of the points each camera sees: its SfM track observations when known, else the points inside its
    frustum nearer than max_depth (no occlusion test)."""
    if tracks is not None:
        return tracks
    out = []
    P = np.asarray(xyz, np.float64)
    for f in cams.frames:
        V = np.asarray(f.viewmat, np.float64)
        pc = P @ V[:3, :3].T + V[:3, 3]  # [P,3] camera frame
        z = pc[:, 2]
        ok = (z > 1e-3) & (z < max_depth)
        uvw = pc[ok] @ np.asarray(f.K, np.float64).T
        px = uvw[:, :2] / uvw[:, 2:3]
        inimg = (px[:, 0] >= 0) & (px[:, 0] < f.width) & (px[:, 1] >= 0) & (px[:, 1] < f.height)
        out.append(np.nonzero(ok)[0][inimg])
    return out


def tracks_by_camera(root: Path, cams: CameraSet, n_points: int) -> list[np.ndarray] | None:
    """Per camera, the point indices (file order) its SfM track observations name; None when the model has no tracks."""
    from .colmap_io import _has, find_model, read_model

    model = find_model(root)
    if model is None or not (_has(model, "cameras") and _has(model, "images")):
        return None
    rec = read_model(model)
    ids = sorted(rec.points3D.keys())
    if len(ids) != n_points:
        return None
    name_of = {im_id: im.name for im_id, im in rec.images.items()}
    index = {f.name: i for i, f in enumerate(cams.frames)}
    seen: list[list[int]] = [[] for _ in cams.frames]
    for pi, pid in enumerate(ids):
        for el in rec.points3D[pid].track.elements:
            ci = index.get(name_of.get(el.image_id, ""))
            if ci is not None:
                seen[ci].append(pi)
    if not any(seen):
        return None
    return [np.unique(np.asarray(s, np.int64)) for s in seen]


# ---------------------------------------------------------------------------------------------------------------- planning
def _frame(centres_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin and axes (rows u, v) of the camera centres' principal directions on the ground plane."""
    origin = centres_xy.mean(0)
    d = centres_xy - origin
    if len(d) < 2 or np.allclose(d, 0):
        return origin, np.eye(2)
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    u = vt[0] / np.linalg.norm(vt[0])
    if u[np.argmax(np.abs(u))] < 0:  # deterministic sign
        u = -u
    return origin, np.array([u, [-u[1], u[0]]])


def _grid(n: int, ext: np.ndarray) -> tuple[int, int]:
    """nu x nv = n with cells as square as the extent allows."""
    best = (n, 1)
    score = math.inf
    for nu in range(1, n + 1):
        if n % nu:
            continue
        nv = n // nu
        s = abs(math.log(max(ext[0] / nu, 1e-9) / max(ext[1] / nv, 1e-9)))
        if s < score - 1e-9:
            best, score = (nu, nv), s
    return best


def _splits(x: np.ndarray, k: int) -> np.ndarray:
    """k cells along one axis with equal camera counts: edges [k+1], outer ones unbounded."""
    q = np.quantile(x, np.arange(1, k) / k) if k > 1 else np.zeros(0)
    return np.concatenate([[-math.inf], q, [math.inf]])


def partition_scene(cams: CameraSet, xyz: np.ndarray, cfg: PartitionConfig, tracks: list[np.ndarray] | None = None,
                    source: str = "") -> Partition:
    """Split the scene into blocks and assign cameras (train and test) by visibility; RealsimError when a block is empty."""
    frames = cams.frames
    n_train = sum(f.split != "test" for f in frames)
    if n_train == 0:
        raise InputError("no training cameras to partition")
    n = cfg.blocks if cfg.blocks > 0 else max(1, round(n_train / max(cfg.cameras_per_block, 1)))
    if n > n_train:
        raise RealsimError(f"--blocks {n} is more than the {n_train} training cameras (each block needs its own): use "
                           "fewer blocks")
    C = camera_center(np.stack([f.viewmat for f in frames]))[:, :2]
    origin, axes = _frame(C)
    cuv = (C - origin) @ axes.T
    puv = (np.asarray(xyz, np.float64)[:, :2] - origin) @ axes.T
    lo = np.minimum(cuv.min(0), np.percentile(puv, 1, axis=0)) if len(puv) else cuv.min(0)
    hi = np.maximum(cuv.max(0), np.percentile(puv, 99, axis=0)) if len(puv) else cuv.max(0)
    bounds = np.stack([lo, hi], 1)  # [2,2]
    train_uv = cuv[[f.split != "test" for f in frames]]
    nu, nv = _grid(n, np.maximum(train_uv.max(0) - train_uv.min(0), 1e-6))
    ue = _splits(train_uv[:, 0], nu)
    boxes = []
    for i in range(nu):
        col = train_uv[(train_uv[:, 0] >= ue[i]) & (train_uv[:, 0] < ue[i + 1])]
        ve = _splits(col[:, 1], nv) if len(col) else _splits(train_uv[:, 1], nv)
        boxes += [np.array([[ue[i], ue[i + 1]], [ve[j], ve[j + 1]]]) for j in range(nv)]
    blocks = []
    for bi, core in enumerate(boxes):
        size = np.clip(core, bounds[:, :1], bounds[:, 1:])
        grow = cfg.overlap * np.maximum(size[:, 1] - size[:, 0], 0)
        blocks.append(Block(bi, core, core + np.stack([-grow, grow], 1)))
    part = Partition(origin, axes, (nu, nv), blocks, cfg, bounds, source=source)
    depth = cfg.max_depth
    if depth <= 0:
        sizes = [np.diff(np.clip(b.core, bounds[:, :1], bounds[:, 1:]), axis=1).max() for b in blocks]
        depth = max(float(np.max(sizes)), 1e-6)
    part.depth = depth
    seen = camera_visibility(cams, xyz, tracks, depth)
    _assign(part, frames, cuv, puv, seen)
    return part


def _assign(part: Partition, frames: list, cuv: np.ndarray, puv: np.ndarray, seen: list[np.ndarray]) -> None:
    cfg = part.config
    core_idx = part.core_of_uv(puv)
    for b in part.blocks:
        in_exp = _inside(puv, b.expanded)
        b.n_points = int(in_exp.sum())
        for ci, f in enumerate(frames):
            s = seen[ci]
            here = int(in_exp[s].sum()) if len(s) else 0
            stands = bool(_inside(cuv[ci:ci + 1], b.expanded)[0])
            sees = len(s) > 0 and here >= cfg.min_visible_points and here >= cfg.min_visible_fraction * len(s)
            if stands or sees:
                b.cameras.append(f.name)
                b.n_train += f.split != "test"
        desc = f"block {b.name} (u {_span(b.core[0])}, v {_span(b.core[1])} in the partition frame)"
        if b.n_train == 0:
            raise RealsimError(f"{desc} has no training cameras: use fewer blocks")
        if b.n_train < 2:
            raise RealsimError(f"{desc} has only {b.n_train} training camera (at least 2 are needed): use fewer blocks")
        if b.n_points < 10:
            raise RealsimError(f"{desc} holds only {b.n_points} SfM points (at least 10 are needed): use fewer blocks")
    for ci, f in enumerate(frames):
        if f.split != "test" or not len(seen[ci]):
            continue
        counts = np.sort(np.bincount(core_idx[seen[ci]], minlength=len(part.blocks)))
        if len(counts) > 1 and counts[-2] >= cfg.straddle_fraction * len(seen[ci]):
            part.straddling.append(f.name)


def _span(a: np.ndarray) -> str:
    f = (lambda x: "-inf" if x == -math.inf else "+inf" if x == math.inf else f"{x:.2f}")
    return f"{f(a[0])}..{f(a[1])}"


def write_points_bin(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """A COLMAP points3D.bin of bare points (no tracks), ids 1..N: what a block's WORKDIR gives the trainer."""
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    rgb = np.asarray(rgb, np.uint8).reshape(-1, 3)
    rec = np.zeros(len(xyz), dtype=np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("err", "<f8"),
                                             ("tl", "<u8")]))
    rec["id"] = np.arange(1, len(xyz) + 1)
    rec["xyz"] = xyz
    rec["rgb"] = rgb
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(struct.pack("<Q", len(xyz)) + rec.tobytes())
