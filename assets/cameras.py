"""`cameras.json`: one record per image (name, K, OpenCV world-to-camera viewmat, size, train/test split).

Layout (format_version 1):
    {"format_version": 1, "images_dir": "images",
     "frames": [{"name": "0001.jpg", "camera_id": 1, "width": W, "height": H,
                 "K": [[fx,0,cx],[0,fy,cy],[0,0,1]], "viewmat": [[4x4 world-to-camera, OpenCV]], "split": "train"}]}
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import write_text_atomic
from .config import read_json
from .errors import InputError

CAMERAS_FORMAT_VERSION = 1


@dataclass
class CameraFrame:
    """One posed image: intrinsics in pixels of the stored image, OpenCV world-to-camera pose."""

    name: str
    K: np.ndarray  # [3,3] float64
    viewmat: np.ndarray  # [4,4] float64, world-to-camera, OpenCV axes
    width: int
    height: int
    split: str = "train"  # "train" | "test"
    camera_id: int = 1

    def scaled(self, factor: float) -> "CameraFrame":
        """The same camera for an image resized by `factor` (e.g. 0.5 halves width and height)."""
        K = self.K.copy()
        K[:2] *= factor
        return CameraFrame(self.name, K, self.viewmat.copy(), int(round(self.width * factor)),
                           int(round(self.height * factor)), self.split, self.camera_id)


@dataclass
class CameraSet:
    """All posed images of a scene and where their pixels live (relative to the cameras.json folder)."""

    frames: list[CameraFrame] = field(default_factory=list)
    images_dir: str = "images"

    def split(self, which: str) -> list[CameraFrame]:
        return [f for f in self.frames if f.split == which]


def holdout_split(names: list[str], every: int = 8) -> list[str]:
    """NeRF/3DGS evaluation split over names sorted by name: every `every`-th (index % every == 0) is "test"."""
    order = sorted(range(len(names)), key=lambda i: names[i])
    split = ["train"] * len(names)
    if every > 0:
        for rank, i in enumerate(order):
            if rank % every == 0:
                split[i] = "test"
    return split


def save_cameras(path: str | os.PathLike, cams: CameraSet) -> None:
    data = {
        "format_version": CAMERAS_FORMAT_VERSION,
        "images_dir": cams.images_dir,
        "frames": [
            {
                "name": f.name,
                "camera_id": int(f.camera_id),
                "width": int(f.width),
                "height": int(f.height),
                "K": np.asarray(f.K, dtype=float).tolist(),
                "viewmat": np.asarray(f.viewmat, dtype=float).tolist(),
                "split": f.split,
            }
            for f in cams.frames
        ],
    }
    write_text_atomic(path, json.dumps(data, indent=1))


def load_cameras(path: str | os.PathLike) -> CameraSet:
    path = Path(path)
    data = read_json(path, "camera file")
    if not isinstance(data, dict) or data.get("format_version") != CAMERAS_FORMAT_VERSION:
        raise InputError(f"camera file {path} has unknown format_version {data.get('format_version') if isinstance(data, dict) else None!r} "
                         f"(this realsim reads {CAMERAS_FORMAT_VERSION})")
    frames = []
    try:
        for fr in data["frames"]:
            K = np.asarray(fr["K"], dtype=np.float64)
            V = np.asarray(fr["viewmat"], dtype=np.float64)
            if K.shape != (3, 3) or V.shape != (4, 4) or not np.isfinite(K).all() or not np.isfinite(V).all():
                raise ValueError(f"bad K or viewmat for {fr.get('name')}")
            split = fr.get("split", "train")
            if split not in ("train", "test"):
                raise ValueError(f"bad split {split!r}")
            frames.append(CameraFrame(str(fr["name"]), K, V, int(fr["width"]), int(fr["height"]), split, int(fr.get("camera_id", 1))))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"camera file {path} is malformed: {e}") from None
    return CameraSet(frames, str(data.get("images_dir", "images")))
