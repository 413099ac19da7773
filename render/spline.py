"""Spline and quaternion maths for camera paths: unit quaternions (w,x,y,z), slerp, Shoemake's squad, centripetal
Catmull-Rom, and keyframes of camera centres / rotations / normalised intrinsics evaluated into viewmats and Ks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realsim.assets import frames as F


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

