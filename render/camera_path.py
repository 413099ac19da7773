"""CameraPath (one camera per video frame) and its nerfstudio `camera_path.json` import/export.

All cameras are OpenCV world-to-camera `viewmat` [4,4] + pixel intrinsics `K` [3,3]; the world is +Z up (CONVENTIONS).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from realsim.assets import frames as F
from realsim.assets.atomic import write_text_atomic
from realsim.assets.config import read_json
from realsim.assets.errors import InputError

from .limits import check_frame_size
from .spline import _compose, _keys_from


@dataclass
class CameraPath:
    """A rendered camera trajectory: one camera per video frame, all at the same image size."""

    viewmats: np.ndarray  # [T,4,4] float64, world-to-camera, OpenCV
    Ks: np.ndarray  # [T,3,3] float64, pixels of a width x height image
    width: int
    height: int
    fps: float

    def __post_init__(self) -> None:
        self.viewmats = np.asarray(self.viewmats, dtype=np.float64).reshape(-1, 4, 4)
        self.Ks = np.asarray(self.Ks, dtype=np.float64).reshape(-1, 3, 3)
        if len(self.viewmats) != len(self.Ks) or len(self.viewmats) == 0:
            raise ValueError(f"camera path needs matching, non-empty viewmats and Ks (got {len(self.viewmats)}, {len(self.Ks)})")
        if self.width <= 0 or self.height <= 0 or not self.fps > 0:
            raise ValueError(f"bad camera path size {self.width}x{self.height} or fps {self.fps}")

    def __len__(self) -> int:
        return int(self.viewmats.shape[0])

    @property
    def times(self) -> np.ndarray:
        """[T] seconds of each frame."""
        return np.arange(len(self)) / float(self.fps)

    @property
    def seconds(self) -> float:
        return len(self) / float(self.fps)

    def centers(self) -> np.ndarray:
        """[T,3] camera positions in the world."""
        return F.camera_center(self.viewmats)


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _default_size(sizes: np.ndarray, width: int | None, height: int | None) -> tuple[int, int]:
    w0, h0 = float(sizes[0, 0]), float(sizes[0, 1])
    if width is None and height is None:
        return _even(w0), _even(h0)
    if width is None:
        return _even(height * w0 / h0), int(height)  # type: ignore[operator]
    if height is None:
        return int(width), _even(width * h0 / w0)
    return int(width), int(height)


# ----------------------------------------------------------------------------------------------------- nerfstudio json
def camera_path_to_json(path: CameraPath) -> dict:
    """nerfstudio camera_path.json dict (OpenGL camera-to-world, row-major 4x4, vertical fov in degrees).

    realsim adds per-camera `realsim_K` (exact intrinsics) and `time`; other tools ignore unknown keys.
    """
    cams = []
    for t, (v, k) in enumerate(zip(path.viewmats, path.Ks)):
        c2w = F.viewmat_to_c2w_opengl(v)
        fov = math.degrees(2 * math.atan(path.height / (2 * k[1, 1])))
        cams.append({"camera_to_world": c2w.reshape(-1).tolist(), "fov": fov, "aspect": path.width / path.height,
                     "time": t / path.fps, "realsim_K": k.tolist()})
    return {
        "camera_type": "perspective", "render_height": int(path.height), "render_width": int(path.width),
        "fps": float(path.fps), "seconds": path.seconds, "is_cycle": False, "smoothness_value": 0.0,
        "keyframes": [], "crop": None, "camera_path": cams,
    }


def save_camera_path(file: str | os.PathLike, path: CameraPath) -> None:
    write_text_atomic(file, json.dumps(camera_path_to_json(path), indent=1))


def load_camera_path(file: str | os.PathLike, width: int | None = None, height: int | None = None,
                     max_pixels: int | None = None) -> CameraPath:
    """Read a nerfstudio camera_path.json (ours or nerfstudio's viewer export); InputError for anything else, and for
    frames above `max_pixels` (default $REALSIM_MAX_PIXELS or 4096x4096: see render.limits)."""
    data = read_json(file, "camera path file")
    if not isinstance(data, dict) or not isinstance(data.get("camera_path"), list) or not data["camera_path"]:
        raise InputError(f"{file} is not a nerfstudio camera_path.json (no non-empty 'camera_path' list)")
    ctype = str(data.get("camera_type", "perspective")).lower()
    if ctype != "perspective":
        raise InputError(f"{file}: camera_type {ctype!r} is not supported (perspective only)")
    try:
        H0 = int(data["render_height"])
        W0 = int(data["render_width"])
        fps = float(data.get("fps", 30.0))
        V, K = [], []
        for cam in data["camera_path"]:
            c2w = np.asarray(cam["camera_to_world"], np.float64).reshape(-1)
            if c2w.size not in (12, 16) or not np.isfinite(c2w).all():
                raise ValueError("camera_to_world must hold 12 or 16 finite numbers")
            c2w = c2w.reshape(-1, 4)
            R = c2w[:3, :3]
            if abs(abs(np.linalg.det(R)) - 1) > 1e-3:
                raise ValueError("camera_to_world rotation is not orthonormal (scaled poses are not supported)")
            V.append(F.c2w_opengl_to_viewmat(c2w))
            k = cam.get("realsim_K")
            if k is not None:
                k = np.asarray(k, np.float64).reshape(3, 3)
            else:
                fov = float(cam["fov"])
                if not 0 < fov < 180:
                    raise ValueError(f"fov {fov} out of range")
                fy = H0 / 2.0 / math.tan(math.radians(fov) / 2)
                k = np.array([[fy, 0, W0 / 2.0], [0, fy, H0 / 2.0], [0, 0, 1]])
            K.append(k)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{file} is a malformed camera_path.json: {e}") from None
    if W0 <= 0 or H0 <= 0 or not fps > 0:
        raise InputError(f"{file}: bad render size {W0}x{H0} or fps {fps}")
    V_arr, K_arr = np.stack(V), np.stack(K)
    W, H = (W0, H0) if width is None and height is None else _default_size(np.array([[W0, H0]]), width, height)
    check_frame_size(W, H, max_pixels, what=f"{file}: render size")
    if (W, H) != (W0, H0):
        kn = _keys_from(V_arr, K_arr, np.tile([[W0, H0]], (len(V_arr), 1))).kn
        _, K_arr = _compose(np.zeros((len(V_arr), 3)), np.zeros((len(V_arr), 3, 3)), kn, W, H)
    return CameraPath(V_arr, K_arr, W, H, fps)
