"""antimatter15 `.splat` web format: 32 bytes per Gaussian, largest-and-most-opaque first (what web viewers stream).

Record (little endian): position float32 x3 | scale float32 x3 (linear) | RGBA uint8 x4 (DC colour, opacity) |
rotation uint8 x4 (w, x, y, z of the unit quaternion mapped by q*128+128). View-dependent colour is dropped (DC only).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError
from .ply import SH_C0, GaussianCloud

SPLAT_DTYPE = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
assert SPLAT_DTYPE.itemsize == 32


def cloud_to_splat_bytes(g: GaussianCloud) -> bytes:
    """Encode a cloud as .splat records sorted by descending volume x opacity."""
    scales = np.asarray(g.scales, np.float64)
    op = np.asarray(g.opacities, np.float64)
    order = np.argsort(-(scales.prod(axis=1) * op), kind="stable")
    rec = np.zeros(len(g), SPLAT_DTYPE)
    rec["pos"] = g.means[order]
    rec["scale"] = scales[order]
    rgb = 0.5 + SH_C0 * np.asarray(g.sh[:, 0, :], np.float64)
    rgba = np.concatenate([rgb, op[:, None]], 1)[order]
    rec["rgba"] = np.clip(np.round(rgba * 255), 0, 255).astype(np.uint8)
    q = np.asarray(g.quats, np.float64)[order]
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    rec["rot"] = np.clip(np.round(q * 128 + 128), 0, 255).astype(np.uint8)
    return rec.tobytes()


def write_splat(path: str | os.PathLike, g: GaussianCloud) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(cloud_to_splat_bytes(g))


def read_splat(path: str | os.PathLike) -> GaussianCloud:
    """Decode a .splat file into a degree-0 cloud (quantised colour, opacity and rotation)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"splat file {path} not found")
    raw = path.read_bytes()
    if len(raw) % SPLAT_DTYPE.itemsize:
        raise InputError(f"{path} is not a .splat file (size {len(raw)} is not a multiple of 32 bytes)")
    rec = np.frombuffer(raw, SPLAT_DTYPE)
    rgba = rec["rgba"].astype(np.float32) / 255.0
    q = (rec["rot"].astype(np.float32) - 128.0) / 128.0
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return GaussianCloud.from_rgb(rec["pos"].astype(np.float32), q, rec["scale"].astype(np.float32),
                                  rgba[:, 3], rgba[:, :3])
