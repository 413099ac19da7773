"""Linear blend skinning for the agents: joint rotations recovered from joint positions, and the skinned vertices.

The sim stores joint positions only ([..., J, 3]). Each joint's rotation from the bind pose is recovered from its bones,
as the motion retargeter and the USD rig do: a joint with several children takes the least-squares (Kabsch) rotation of
its child bones; a joint with one child turns with its parent, then by the smallest rotation (swing) that lays its bind
bone onto the posed one (so twist is inherited down a chain); a leaf turns with its parent. LBS then moves a bind
vertex v to sum_k w_k (R_k (v - jbar_k) + j_k) (R_k: joint k's rotation from the bind pose, jbar_k / j_k: its bind /
posed position).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["kabsch", "swing", "bone_rotations", "skin_matrices", "lbs"]


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations R [...,3,3] minimising sum_i |R src_i - dst_i|^2 for vectors src, dst [...,N,3] (det +1)."""
    H = np.swapaxes(src, -1, -2) @ dst
    U, _, Vt = np.linalg.svd(H)
    V = np.swapaxes(Vt, -1, -2)
    d = np.sign(np.linalg.det(V @ np.swapaxes(U, -1, -2)))
    S = np.broadcast_to(np.eye(3), H.shape).copy()
    S[..., 2, 2] = np.where(d == 0, 1.0, d)
    return V @ S @ np.swapaxes(U, -1, -2)


def swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations [...,3,3] taking the directions a [...,3] onto b [...,3] (any lengths)."""
    a = a / np.sqrt((a * a).sum(-1, keepdims=True)).clip(1e-12)
    b = b / np.sqrt((b * b).sum(-1, keepdims=True)).clip(1e-12)
    v = np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                  a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)  # a x b (np.cross is slow on small batches)
    c = (a * b).sum(-1)
    K = np.zeros(a.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    f = 1.0 / np.maximum(1.0 + c, 1e-6)
    return np.eye(3) + K + (K @ K) * f[..., None, None]


def bone_rotations(parents: Sequence[int], bind: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Each joint's rotation [...,J,3,3] from the bind pose bind [...,J,3] to the pose joints [...,J,3] (world)."""
    bind = np.asarray(bind, np.float64)
    P = np.asarray(joints, np.float64)
    J = P.shape[-2]
    kids: list[list[int]] = [[] for _ in range(J)]
    for j, p in enumerate(parents):
        if p >= 0:
            kids[int(p)].append(j)
    R = np.zeros(P.shape[:-1] + (3, 3))
    eye = np.broadcast_to(np.eye(3), P.shape[:-2] + (3, 3))
    for j in range(J):
        p = int(parents[j])
        Rp = R[..., p, :, :] if p >= 0 else eye
        # bones of zero bind length carry no direction
        ch = [c for c in kids[j] if (np.abs(bind[..., c, :] - bind[..., j, :]).sum(-1) > 1e-6).all()]
        if len(ch) >= 2:
            src = np.stack([bind[..., c, :] - bind[..., j, :] for c in ch], -2)
            dst = np.stack([P[..., c, :] - P[..., j, :] for c in ch], -2)
            R[..., j, :, :] = kabsch(src, dst)
        elif len(ch) == 1:
            c = ch[0]
            a = (Rp @ (bind[..., c, :] - bind[..., j, :])[..., None])[..., 0]
            R[..., j, :, :] = swing(a, P[..., c, :] - P[..., j, :]) @ Rp
        else:
            R[..., j, :, :] = Rp
    return R


def skin_matrices(R: np.ndarray, bind: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Skinning matrices [...,J,3,4] = [R_k | j_k - R_k jbar_k] from rotations R [...,J,3,3] and bind / posed joints [...,J,3]."""
    t = joints - (R @ bind[..., None])[..., 0]
    return np.concatenate([R, t[..., None]], -1)


def lbs(bind_verts: np.ndarray, M: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Linear blend skinning: vertices [...,V,3] from bind vertices [...,V,3], skinning matrices M [...,J,3,4] and per-vertex
    joint indices idx [V,K] / weights w [V,K] (rows sum to 1)."""
    B = M[..., idx[:, 0], :, :] * w[:, 0, None, None]  # [...,V,3,4] blended matrices
    for k in range(1, idx.shape[1]):
        B += M[..., idx[:, k], :, :] * w[:, k, None, None]
    return (B[..., :3] @ bind_verts[..., None])[..., 0] + B[..., 3]
