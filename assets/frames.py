"""The one place that converts between realsim's frames (OpenCV cameras, +Z-up world) and OpenGL-style ones.

realsim cameras: world-to-camera `viewmat` [4,4], OpenCV axes (x right, y down, z forward).
OpenGL / nerfstudio / USD / RealityKit cameras: camera-to-world, axes (x right, y up, z backward).
"""
from __future__ import annotations

import numpy as np

# Flips camera y and z: OpenCV camera axes <-> OpenGL camera axes (its own inverse).
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


def viewmat_to_c2w_opengl(viewmat: np.ndarray) -> np.ndarray:
    """OpenCV world-to-camera [4,4] -> OpenGL camera-to-world [4,4] (nerfstudio transforms.json, USD)."""
    return np.linalg.inv(np.asarray(viewmat, dtype=np.float64)) @ CV_TO_GL


def c2w_opengl_to_viewmat(c2w: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world [4,4] -> OpenCV world-to-camera [4,4]."""
    c2w = np.asarray(c2w, dtype=np.float64)
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0.0, 0.0, 0.0, 1.0]])
    return np.linalg.inv(c2w @ CV_TO_GL)


def camera_center(viewmat):
    """World position [...,3] of cameras given world-to-camera [...,4,4] (-R^T t); numpy (float64) or torch alike."""
    v = viewmat if type(viewmat).__module__.startswith("torch") else np.asarray(viewmat, dtype=np.float64)
    if v.ndim == 2:
        return -v[:3, :3].T @ v[:3, 3]
    return -(v[..., :3, :3].swapaxes(-1, -2) @ v[..., :3, 3:])[..., 0]


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Quaternion(s) [...,4] in (w, x, y, z) order -> rotation matrices [...,3,3] acting on column vectors."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def rotmat_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrices [...,3,3] -> unit quaternions [...,4] (w, x, y, z) with w >= 0."""
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    out = np.empty((m.shape[0], 4))
    for i, r in enumerate(m):
        t = np.trace(r)
        if t > 0:
            s = np.sqrt(t + 1.0) * 2
            out[i] = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
            out[i] = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
        elif r[1, 1] > r[2, 2]:
            s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
            out[i] = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
        else:
            s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
            out[i] = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    out[out[:, 0] < 0] *= -1
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.reshape(R.shape[:-2] + (4,))
