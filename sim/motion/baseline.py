"""Non-diffusion baseline: nearest-neighbour motion matching on the same features, data and controller API."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from realsim.assets.errors import InputError

from .controller import BaseController, GroundFn, PlaybackConfig
from .canon import SKELETON, SL_POS, SL_VEL
from .data import MotionDataset, style_index
from .train import relative_track

_FEET = [SKELETON.index("Foot_L"), SKELETON.index("Foot_R")]
_TRAJ_OFF = np.array([10, 20, 30])


def _query_parts(cur: np.ndarray, traj: np.ndarray) -> np.ndarray:
    """Matching vector [A,20]: trajectory (x,z) + facing (sin,cos) at +10/+20/+30 frames, foot positions, root velocity."""
    pos = cur[:, SL_POS].reshape(len(cur), -1, 3)[:, _FEET].reshape(len(cur), -1)
    return np.concatenate([traj[..., :2].reshape(len(cur), -1), traj[..., 2:].reshape(len(cur), -1), pos,
                           cur[:, SL_VEL]], 1)


_WEIGHTS = np.array([1.0] * 6 + [1.5] * 6 + [0.5] * 6 + [1.0] * 2)


class MotionMatchingController(BaseController):
    """Every `replan` frames, jump to the database frame whose future trajectory and current feet best match
    (per-style KD-tree), and play the clip from there, cross-fading the first frames."""

    def __init__(self, ds: MotionDataset, n_agents: int, styles: list[str] | None = None,
                 ground_height: GroundFn | None = None, replan: int = 10, future: int = 20, blend: int = 5,
                 correction: float = 0.1, past: int = 10):
        self.skeleton = SKELETON
        self.P, self.F, self.K, self.stride = past, future, 9, 5
        feats, keys, sty, cur = [], [], [], []
        base = 0
        for c in ds.clips:
            T = len(c.feat)
            t = np.arange(0, T - 46)
            feats.append(c.feat)
            if len(t):
                tr = relative_track(c.root_xz, c.yaw, t, _TRAJ_OFF)
                keys.append(_query_parts(c.feat[t], tr))
                sty.append(np.full(len(t), ds.styles.index(c.style)))
                cur.append(base + t)
            base += T
        if not keys:
            raise InputError("motion matching needs clips longer than 46 frames")
        self.db = np.concatenate(feats).astype(np.float64)
        K = np.concatenate(keys)
        self.scale = _WEIGHTS / np.maximum(K.std(0), 1e-3)
        self.cur = np.concatenate(cur)
        S = np.concatenate(sty)
        self.trees = {}
        self.tree_idx = {}
        for s in np.unique(S):
            m = S == s
            self.trees[int(s)] = cKDTree(K[m] * self.scale)
            self.tree_idx[int(s)] = self.cur[m]
        self.styles = list(ds.styles)
        idle = self.db[np.argmin(np.linalg.norm(self.db[:, :2], axis=1) + 10 * (self.db[:, -2:] < 0.5).any(1))].copy()
        idle[:3] = 0
        super().__init__(n_agents, list(styles or ["neutral"]), ground_height, replan, correction, idle,
                         PlaybackConfig(blend=blend, floor_clamp=True))
        self.style_ids = [style_index(self.styles, s) for s in self.style_names]

    def _plan(self, past: np.ndarray, traj: np.ndarray, dense: np.ndarray) -> np.ndarray:
        sel = traj[:, _TRAJ_OFF // 5 - 1]
        q = _query_parts(past[:, -1], sel) * self.scale
        plan = np.zeros((self.A, self.F, self.db.shape[1]))
        for a in range(self.A):
            s = self.style_ids[a]
            _, i = self.trees[s].query(q[a])
            g = self.tree_idx[s][i]
            plan[a] = self.db[g + 1: g + 1 + self.F]
        return plan  # the base class cross-fades the first `blend` frames
