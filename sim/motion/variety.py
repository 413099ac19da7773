"""How different agents look when told the same thing: the mean pairwise joint distance between bodies in their own root
frames (heading and planar position removed, height kept), frame by frame. The same figure on real clips is the reference.
"""
from __future__ import annotations

import numpy as np


def root_frame_joints(joints: np.ndarray, root_xy: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """World joints [...,J,3] (+Z up) -> each body's root frame (x forward, y left, z up), root xy [...,2], heading [...]."""
    c, s = np.cos(heading)[..., None], np.sin(heading)[..., None]
    d = joints[..., :2] - root_xy[..., None, :]
    x = c * d[..., 0] + s * d[..., 1]
    y = -s * d[..., 0] + c * d[..., 1]
    return np.stack([x, y, joints[..., 2] - joints[..., :1, 2]], -1)


def pairwise_joint_distance(local: np.ndarray) -> float:
    """Mean over pairs of bodies, frames and joints of the distance between corresponding joints: local [N,T,J,3]."""
    N = local.shape[0]
    if N < 2:
        return 0.0
    tot, n = 0.0, 0
    for i in range(N):
        for j in range(i + 1, N):
            tot += float(np.linalg.norm(local[i] - local[j], axis=-1).mean())
            n += 1
    return tot / n


def mocap_diversity(clips, frames: int, n: int = 16, seed: int = 0, action: str = "walk") -> float:
    """The same figure on n real windows of `frames` frames from different clips of `action` (ClipFeatures list)."""
    from .controller import M_TO_WORLD
    from .data import features_to_poses

    rng = np.random.default_rng(seed)
    pool = [c for c in clips if c.action == action and len(c.feat) > frames]
    if len(pool) < 2:
        raise ValueError(f"need at least two {action} clips longer than {frames} frames")
    pick = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    out = []
    for k in pick:
        c = pool[k]
        t0 = int(rng.integers(0, len(c.feat) - frames))
        P = features_to_poses(c.feat, root_xz=c.root_xz, yaw=c.yaw)
        J = (P.joints @ M_TO_WORLD.T)[t0: t0 + frames]
        root = J[:, 0, :2]
        out.append(root_frame_joints(J, root, c.yaw[t0: t0 + frames]))
    return pairwise_joint_distance(np.stack(out))
