"""Camera paths for video: smooth interpolation through posed cameras, orbits and spirals around the scene's focus
point, and nerfstudio `camera_path.json` import/export.

All cameras are OpenCV world-to-camera `viewmat` [4,4] + pixel intrinsics `K` [3,3]; the world is +Z up (CONVENTIONS).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from realsim.assets import frames as F
from realsim.assets.atomic import write_text_atomic
from realsim.assets.cameras import CameraFrame
from realsim.assets.errors import InputError

from .limits import check_frame_size

WORLD_UP = np.array([0.0, 0.0, 1.0])


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
        R = self.viewmats[:, :3, :3]
        return -np.einsum("tji,tj->ti", R, self.viewmats[:, :3, 3])


# ----------------------------------------------------------------------------------------------------- quaternions
def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def _qconj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _qlog(q: np.ndarray) -> np.ndarray:
    """Unit quaternion -> pure quaternion (0, theta/2 * axis)."""
    v = q[..., 1:]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    ang = np.arctan2(n, np.clip(q[..., :1], -1, 1))
    scale = np.where(n > 1e-12, ang / np.maximum(n, 1e-12), 1.0)
    return np.concatenate([np.zeros_like(q[..., :1]), v * scale], -1)


def _qexp(p: np.ndarray) -> np.ndarray:
    v = p[..., 1:]
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    s = np.where(n > 1e-12, np.sin(n) / np.maximum(n, 1e-12), 1.0)
    return np.concatenate([np.cos(n), v * s], -1)


def slerp(q0: np.ndarray, q1: np.ndarray, u: np.ndarray | float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (w,x,y,z) along the shorter arc; broadcasts over u."""
    q0 = np.asarray(q0, np.float64)
    q1 = np.asarray(q1, np.float64)
    u = np.asarray(u, np.float64)[..., None]
    d = np.sum(q0 * q1, -1, keepdims=True)
    q1 = np.where(d < 0, -q1, q1)
    d = np.abs(d)
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    sin_t = np.sin(theta)
    small = sin_t < 1e-8
    w0 = np.where(small, 1 - u, np.sin((1 - u) * theta) / np.where(small, 1.0, sin_t))
    w1 = np.where(small, u, np.sin(u * theta) / np.where(small, 1.0, sin_t))
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def _squad_controls(q: np.ndarray) -> np.ndarray:
    """Inner control quaternions s_i of Shoemake's squad (C1-continuous rotation spline) for keys q [n,4]."""
    n = len(q)
    s = q.copy()
    for i in range(1, n - 1):
        qi_inv = _qconj(q[i])
        t = -0.25 * (_qlog(_qmul(qi_inv, q[i + 1])) + _qlog(_qmul(qi_inv, q[i - 1])))
        s[i] = _qmul(q[i], _qexp(t))
    return s


def _continuous_signs(q: np.ndarray) -> np.ndarray:
    q = q.copy()
    for i in range(1, len(q)):
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q


# ----------------------------------------------------------------------------------------------------- splines
def _catmull_rom(p: np.ndarray, seg: np.ndarray, u: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Centripetal (alpha=0.5) Catmull-Rom through points p [n,3], evaluated at segment index seg [S], fraction u [S]."""
    n = len(p)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]], 0)  # phantom end points
    P0, P1, P2, P3 = ext[seg], ext[seg + 1], ext[seg + 2], ext[seg + 3]
    eps = 1e-9

    def knot(a, b):
        return np.maximum(np.linalg.norm(b - a, axis=-1) ** alpha, eps)[:, None]

    t0 = np.zeros((len(seg), 1))
    t1 = t0 + knot(P0, P1)
    t2 = t1 + knot(P1, P2)
    t3 = t2 + knot(P2, P3)
    t = t1 + u[:, None] * (t2 - t1)
    A1 = ((t1 - t) * P0 + (t - t0) * P1) / (t1 - t0)
    A2 = ((t2 - t) * P1 + (t - t1) * P2) / (t2 - t1)
    A3 = ((t3 - t) * P2 + (t - t2) * P3) / (t3 - t2)
    B1 = ((t2 - t) * A1 + (t - t0) * A2) / (t2 - t0)
    B2 = ((t3 - t) * A2 + (t - t1) * A3) / (t3 - t1)
    C = ((t2 - t) * B1 + (t - t1) * B2) / (t2 - t1)
    assert n >= 2
    return C


@dataclass
class _Keys:
    centers: np.ndarray  # [n,3]
    quats: np.ndarray  # [n,4] camera-to-world rotations, sign-continuous
    kn: np.ndarray  # [n,4] normalised intrinsics (fx/H, fy/H, cx/W, cy/H)


def _eval_keys(keys: _Keys, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate the spline at global parameters g in [0, n-1] -> centers [S,3], c2w rotations [S,3,3], kn [S,4]."""
    n = len(keys.centers)
    if n == 1:
        S = len(g)
        return (np.repeat(keys.centers, S, 0), np.repeat(F.quat_to_rotmat(keys.quats), S, 0), np.repeat(keys.kn, S, 0))
    seg = np.clip(np.floor(g).astype(int), 0, n - 2)
    u = np.clip(g - seg, 0.0, 1.0)
    pos = _catmull_rom(keys.centers, seg, u) if n > 2 else keys.centers[0] * (1 - u[:, None]) + keys.centers[1] * u[:, None]
    s = _squad_controls(keys.quats)
    q1, q2, s1, s2 = keys.quats[seg], keys.quats[seg + 1], s[seg], s[seg + 1]
    q = slerp(slerp(q1, q2, u), slerp(s1, s2, u), 2 * u * (1 - u))
    kn = keys.kn[seg] * (1 - u[:, None]) + keys.kn[seg + 1] * u[:, None]
    return pos, F.quat_to_rotmat(q), kn


def _compose(pos: np.ndarray, R_c2w: np.ndarray, kn: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    S = len(pos)
    V = np.tile(np.eye(4), (S, 1, 1))
    V[:, :3, :3] = np.swapaxes(R_c2w, 1, 2)
    V[:, :3, 3] = -np.einsum("sij,sj->si", V[:, :3, :3], pos)
    K = np.zeros((S, 3, 3))
    K[:, 0, 0] = kn[:, 0] * height
    K[:, 1, 1] = kn[:, 1] * height
    K[:, 0, 2] = kn[:, 2] * width
    K[:, 1, 2] = kn[:, 3] * height
    K[:, 2, 2] = 1.0
    return V, K


def _keys_from(viewmats: np.ndarray, Ks: np.ndarray, sizes: np.ndarray) -> _Keys:
    viewmats = np.asarray(viewmats, np.float64)
    c2w = np.linalg.inv(viewmats)
    q = _continuous_signs(F.rotmat_to_quat(c2w[:, :3, :3]).reshape(-1, 4))
    W, H = sizes[:, 0].astype(float), sizes[:, 1].astype(float)
    kn = np.stack([Ks[:, 0, 0] / H, Ks[:, 1, 1] / H, Ks[:, 0, 2] / W, Ks[:, 1, 2] / H], 1)
    return _Keys(c2w[:, :3, 3].copy(), q, kn)


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


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


def _default_size(sizes: np.ndarray, width: int | None, height: int | None) -> tuple[int, int]:
    w0, h0 = float(sizes[0, 0]), float(sizes[0, 1])
    if width is None and height is None:
        return _even(w0), _even(h0)
    if width is None:
        return _even(height * w0 / h0), int(height)  # type: ignore[operator]
    if height is None:
        return int(width), _even(width * h0 / w0)
    return int(width), int(height)


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


def smooth_keys(keys: "_Keys", sigma: float) -> "_Keys":
    """Gaussian smoothing (sigma in keyframes) of camera centres and rotations: steadier video from handheld captures."""
    n = len(keys.centers)
    if sigma <= 0 or n < 3:
        return keys
    r = int(np.ceil(3 * sigma))
    idx = np.clip(np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :], 0, n - 1)  # [n, 2r+1], edges repeated
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    w = w / w.sum()
    centers = np.einsum("k,nkd->nd", w, keys.centers[idx])
    quats = np.einsum("k,nkd->nd", w, keys.quats[idx])  # keys are sign-continuous, so the mean is well defined
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    kn = np.einsum("k,nkd->nd", w, keys.kn[idx])
    return _Keys(centers, _continuous_signs(quats), kn)


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
    file = Path(file)
    if not file.is_file():
        raise InputError(f"camera path file {file} not found")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"camera path file {file} is not valid JSON: {e}") from None
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
