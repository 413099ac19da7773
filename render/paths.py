"""Camera paths for video: smooth interpolation through posed cameras, orbits and spirals around the scene's focus
point, and nerfstudio `camera_path.json` import/export.

All cameras are OpenCV world-to-camera `viewmat` [4,4] + pixel intrinsics `K` [3,3]; the world is +Z up (CONVENTIONS).

The maths lives in `spline`, the CameraPath type and its JSON I/O in `camera_path`; this module holds the generators
and re-exports both (`realsim.render.paths` is the import most callers use).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from realsim.assets import frames as F
from realsim.assets.cameras import CameraFrame
from realsim.assets.errors import InputError

from .camera_path import CameraPath, _default_size, camera_path_to_json, load_camera_path, save_camera_path
from .spline import _compose, _continuous_signs, _eval_keys, _keys_from, slerp, smooth_keys

__all__ = ["CameraPath", "WORLD_UP", "camera_path_to_json", "focus_point", "interp_path", "load_camera_path", "look_at",
           "order_by_nearest", "orbit_path", "resample_path", "save_camera_path", "slerp", "smooth_keys", "spiral_path"]

WORLD_UP = np.array([0.0, 0.0, 1.0])


def _frames_arrays(frames: Sequence[CameraFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(frames) == 0:
        raise InputError("no cameras to build a camera path from")
    V = np.stack([np.asarray(f.viewmat, np.float64) for f in frames])
    K = np.stack([np.asarray(f.K, np.float64) for f in frames])
    sizes = np.array([[f.width, f.height] for f in frames], dtype=np.int64)
    return V, K, sizes


def _n_frames(seconds: float, fps: float) -> int:
    if not (seconds > 0 and fps > 0 and math.isfinite(seconds) and math.isfinite(fps)):
        raise InputError(f"--seconds and --fps must be positive (got {seconds}, {fps})")
    return max(1, int(round(seconds * fps)))


def order_by_nearest(centers: np.ndarray, start: int = 0) -> list[int]:
    """Greedy nearest-neighbour chain through camera centres (for unordered photo collections)."""
    left = set(range(len(centers)))
    order = [start]
    left.remove(start)
    while left:
        last = centers[order[-1]]
        nxt = min(left, key=lambda i: float(np.sum((centers[i] - last) ** 2)))
        order.append(nxt)
        left.remove(nxt)
    return order


def interp_path(frames: Sequence[CameraFrame], seconds: float, fps: float, width: int | None = None,
                height: int | None = None, order: str = "name", rot_weight: float | None = None,
                samples_per_segment: int = 256, smooth: float = 0.0) -> CameraPath:
    """Smooth path through the given cameras at constant speed.

    Positions follow a centripetal Catmull-Rom spline, rotations Shoemake's squad (C1 slerp), intrinsics are blended
    linearly (vertical field of view kept when the output size differs). Speed is constant in the metric
    |d position| + rot_weight * |d angle| (rot_weight defaults to the median camera distance to the focus point,
    so turning on the spot still moves the video along). `order`: "name" (capture order), "nearest" (greedy chain), "given".
    `smooth` > 0 first low-passes the cameras (Gaussian, sigma in cameras) so a shaky capture gives a steady video.
    """
    V, K, sizes = _frames_arrays(frames)
    if order == "name":
        idx = sorted(range(len(frames)), key=lambda i: frames[i].name)
    elif order == "nearest":
        idx = order_by_nearest(np.stack([F.camera_center(v) for v in V]))
    elif order == "given":
        idx = list(range(len(frames)))
    else:
        raise InputError(f"unknown camera order {order!r} (name, nearest or given)")
    V, K, sizes = V[idx], K[idx], sizes[idx]
    width, height = _default_size(sizes, width, height)
    T = _n_frames(seconds, fps)
    keys = smooth_keys(_keys_from(V, K, sizes), smooth)
    n = len(V)
    if n == 1 or T == 1:
        g = np.zeros(T)
    else:
        if rot_weight is None:
            f = focus_point(V)
            rot_weight = float(np.median(np.linalg.norm(keys.centers - f, axis=1)))
        dense = np.linspace(0, n - 1, (n - 1) * samples_per_segment + 1)
        pos, R, _ = _eval_keys(keys, dense)
        dp = np.linalg.norm(np.diff(pos, axis=0), axis=1)
        rel = np.einsum("sji,sjk->sik", R[:-1], R[1:])  # R_a^T R_b
        dang = np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1))
        s = np.concatenate([[0.0], np.cumsum(dp + rot_weight * dang)])
        if s[-1] < 1e-12:
            g = np.linspace(0, n - 1, T)
        else:
            g = np.interp(np.linspace(0, s[-1], T), s, dense)
    pos, R, kn = _eval_keys(keys, g)
    Vout, Kout = _compose(pos, R, kn, width, height)
    return CameraPath(Vout, Kout, width, height, float(fps))


def resample_path(path: CameraPath, seconds: float, fps: float) -> CameraPath:
    """Same trajectory and timing shape, new duration / frame rate (spline through the path's own cameras)."""
    T = _n_frames(seconds, fps)
    sizes = np.tile([[path.width, path.height]], (len(path), 1))
    keys = _keys_from(path.viewmats, path.Ks, sizes)
    g = np.linspace(0, len(path) - 1, T) if T > 1 else np.zeros(1)
    pos, R, kn = _eval_keys(keys, g)
    V, K = _compose(pos, R, kn, path.width, path.height)
    return CameraPath(V, K, path.width, path.height, float(fps))


# ----------------------------------------------------------------------------------------------------- orbits
def focus_point(viewmats: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """World point [3] nearest (least squares) to all cameras' optical axes: what the capture looks at.

    When the axes are nearly parallel (forward-facing captures) the least-squares point is ill-posed; then the
    median depth of `points` (e.g. SfM points) in front of the mean camera is used, or failing that a point one
    camera-spread ahead of the mean camera.
    """
    V = np.asarray(viewmats, np.float64).reshape(-1, 4, 4)
    c2w = np.linalg.inv(V)
    C = c2w[:, :3, 3]
    D = c2w[:, :3, 2]  # OpenCV forward axis in the world
    D = D / np.linalg.norm(D, axis=1, keepdims=True)
    P = np.eye(3)[None] - D[:, :, None] * D[:, None, :]
    A = P.sum(0)
    b = np.einsum("nij,nj->i", P, C)
    mean_c = C.mean(0)
    mean_d = D.mean(0)
    mean_d = mean_d / max(np.linalg.norm(mean_d), 1e-12)
    eig_min = float(np.linalg.eigvalsh(A)[0]) / len(V)
    if len(V) >= 2 and eig_min > 0.01:  # axes spread by more than ~6 degrees
        x = np.linalg.solve(A, b)
        if np.mean(np.einsum("ni,ni->n", x[None] - C, D) > 0) > 0.5:  # in front of most cameras
            return x
    if points is not None and len(points):
        pts = np.asarray(points, np.float64).reshape(-1, 3)
        depth = (pts - mean_c) @ mean_d
        depth = depth[depth > 0]
        if len(depth):
            return mean_c + mean_d * float(np.median(depth))
    spread = float(np.max(np.linalg.norm(C - mean_c, axis=1))) if len(V) > 1 else 1.0
    return mean_c + mean_d * max(spread, 1e-3)


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """OpenCV world-to-camera [4,4] at `position` looking at `target`, image up aligned with `up` (x right, y down)."""
    position = np.asarray(position, np.float64)
    fwd = np.asarray(target, np.float64) - position
    fwd = fwd / max(np.linalg.norm(fwd), 1e-12)
    up = np.asarray(up, np.float64)
    right = np.cross(fwd, up)
    if np.linalg.norm(right) < 1e-6:  # looking straight along up: pick any perpendicular
        right = np.cross(fwd, np.array([1.0, 0.0, 0.0]) if abs(fwd[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    right = right / np.linalg.norm(right)
    down = np.cross(fwd, right)
    V = np.eye(4)
    V[:3, :3] = np.stack([right, down, fwd])
    V[:3, 3] = -V[:3, :3] @ position
    return V


def _mean_intrinsics(V: np.ndarray, K: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    return _keys_from(V, K, sizes).kn.mean(0, keepdims=True)


def orbit_path(frames: Sequence[CameraFrame], seconds: float, fps: float, width: int | None = None,
               height: int | None = None, focus: np.ndarray | None = None, radius: float | None = None,
               elevation: float | None = None, turns: float = 1.0, up: np.ndarray = WORLD_UP,
               points: np.ndarray | None = None) -> CameraPath:
    """Closed circle around the focus point, horizontal in the +Z-up world, starting at the first camera's azimuth.

    radius / elevation (height above the focus point) default to the cameras' median horizontal distance and height.
    """
    V, K, sizes = _frames_arrays(frames)
    width, height = _default_size(sizes, width, height)
    T = _n_frames(seconds, fps)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    f = focus_point(V, points) if focus is None else np.asarray(focus, np.float64)
    C = np.stack([F.camera_center(v) for v in V])
    d = C - f
    h = d @ up
    dh = d - h[:, None] * up
    r_h = np.linalg.norm(dh, axis=1)
    if radius is None:
        radius = float(np.median(r_h)) if np.median(r_h) > 1e-6 else float(np.median(np.linalg.norm(d, axis=1)))
    if elevation is None:
        elevation = float(np.median(h))
    if radius <= 0:
        raise InputError("orbit radius must be positive")
    if r_h[0] > 1e-6 * radius:  # start where the first camera is
        e1 = dh[0]
    else:
        e1 = np.cross(up, [1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.cross(up, [0.0, 1.0, 0.0])
    e1 = e1 / np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    theta = 2 * np.pi * turns * np.arange(T) / T
    pos = f + elevation * up + radius * (np.cos(theta)[:, None] * e1 + np.sin(theta)[:, None] * e2)
    Vout = np.stack([look_at(p, f, up) for p in pos])
    kn = np.repeat(_mean_intrinsics(V, K, sizes), T, 0)
    _, Kout = _compose(pos, np.zeros((T, 3, 3)), kn, width, height)
    return CameraPath(Vout, Kout, width, height, float(fps))


def spiral_path(frames: Sequence[CameraFrame], seconds: float, fps: float, width: int | None = None,
                height: int | None = None, focus: np.ndarray | None = None, rotations: float = 2.0,
                radius_scale: float = 1.0, up: np.ndarray = WORLD_UP, points: np.ndarray | None = None) -> CameraPath:
    """LLFF-style spiral around the mean camera, looking at the focus point (suits forward-facing captures).

    Radii along the mean camera's x / y / z axes are the 90th percentile of the cameras' offsets from their mean.
    """
    V, K, sizes = _frames_arrays(frames)
    width, height = _default_size(sizes, width, height)
    T = _n_frames(seconds, fps)
    c2w = np.linalg.inv(V)
    C = c2w[:, :3, 3]
    c_mean = C.mean(0)
    q = _continuous_signs(F.rotmat_to_quat(c2w[:, :3, :3]).reshape(-1, 4))
    q_mean = q.mean(0)
    R_mean = F.quat_to_rotmat(q_mean / np.linalg.norm(q_mean))
    f = focus_point(V, points) if focus is None else np.asarray(focus, np.float64)
    offs = (C - c_mean) @ R_mean  # offsets in the mean camera's axes
    rad = np.percentile(np.abs(offs), 90, axis=0) * radius_scale
    floor = 0.05 * np.linalg.norm(f - c_mean) * radius_scale
    rad = np.maximum(rad, floor)
    theta = 2 * np.pi * rotations * np.arange(T) / T
    local = np.stack([np.cos(theta) * rad[0], -np.sin(theta) * rad[1], -np.sin(0.5 * theta) * rad[2]], 1)
    pos = c_mean + local @ R_mean.T
    # keep the spiral's height within (1.5x) the cameras' own height range: a tilted mean camera on a long forward
    # walk would otherwise turn forward spread into metres of vertical motion
    upv = np.asarray(up, np.float64) / np.linalg.norm(up)
    v = (pos - c_mean) @ upv
    v_max = max(0.75 * float(np.ptp(C @ upv)), 0.02 * float(np.linalg.norm(f - c_mean)), 1e-9)
    if np.abs(v).max() > v_max:
        pos = pos - np.outer(v * (1 - v_max / np.abs(v).max()), upv)
    cam_up = -R_mean[:, 1]
    use_up = np.asarray(up, np.float64) if abs(np.dot(R_mean[:, 2], up)) < 0.95 else cam_up
    Vout = np.stack([look_at(p, f, use_up) for p in pos])
    kn = np.repeat(_mean_intrinsics(V, K, sizes), T, 0)
    _, Kout = _compose(pos, np.zeros((T, 3, 3)), kn, width, height)
    return CameraPath(Vout, Kout, width, height, float(fps))

