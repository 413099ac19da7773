"""Foot locking at run time: a foot the motion model says is in contact stays where it touched down, on the terrain.

Per agent and foot: when the ankle is within `contact_h` of its planted height (and, with height_only off, the model's
contact flag is on), the ankle's ground position is locked; while locked the ankle is held there at the terrain height (+ its planted height) and
two-bone IK (hip fixed, knee bending in the pose's own leg plane) bends the leg to reach it; the toe moves with the ankle.
The lock is released when contact ends or the animated ankle has moved `release_m` away, and the foot then blends back
onto the animation over `blend_frames`: horizontally only (its height follows the animation at once), so the catch-up
happens as the foot lifts instead of dragging it along the floor. `root_pull` lets a held foot carry the body (the sim moves the root towards it,
a little each frame, and the controller keeps that). Learned skeletons only: the procedural walker plants its feet itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["FootLockConfig", "FootLock", "terrain_adapt", "two_bone_ik"]


@dataclass
class FootLockConfig:
    contact_h: float = 0.03  # m above the planted ankle height that still counts as on the ground
    release_m: float = 0.3  # m the animated ankle may drift from its lock before the lock lets go
    blend_frames: int = 4  # frames to blend a released foot back onto the animation
    height_only: bool = False  # lock only where the model predicts contact (and the ankle is low): 10-agent crossing
    # (bench/motion_human.py) with the controller's defaults, rendered skating 44.7 cm/s with the flags vs 57.0 on height
    # alone (26.3 vs 49.0 with the foot-term fine-tune); with the old controller defaults the flags lost (59.7 vs 51.4)
    blend_height: bool = False  # also blend a released foot's height back (it stays on the floor while it slides home):
    # most rendered skating was that slide (10-agent crossing: 29.1 -> 25.7 cm/s with height off, run-3 weights of the
    # model card; 44.7 -> 40.6 with run 1; the largest frame-to-frame ankle/toe height step is unchanged, 5.8 cm)


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knee and ankle [N,3] reaching `target` [N,3] from a fixed hip with the pose's bone lengths, bending in the plane of
    the pose's own knee (pole = where the knee sticks out of the hip-ankle line now); out-of-reach targets are approached along the line."""
    a = np.linalg.norm(knee - hip, axis=-1, keepdims=True)
    b = np.linalg.norm(ankle - knee, axis=-1, keepdims=True)
    v = target - hip
    D = np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)
    u = v / D
    D = np.clip(D, np.abs(a - b) + 1e-6, (a + b) * 0.9995)
    u0 = (ankle - hip) / np.linalg.norm(ankle - hip, axis=-1, keepdims=True).clip(1e-9)
    bend = (knee - hip) - ((knee - hip) * u0).sum(-1, keepdims=True) * u0  # where the knee sticks out of the leg's line
    pole = np.where(np.linalg.norm(bend, axis=-1, keepdims=True) > 1e-4, bend, knee - hip)
    w = pole - (pole * u).sum(-1, keepdims=True) * u
    w = w / np.linalg.norm(w, axis=-1, keepdims=True).clip(1e-9)
    cos_a = np.clip((a * a + D * D - b * b) / (2 * a * D), -1, 1)
    k = hip + a * (cos_a * u + np.sqrt(1 - cos_a ** 2) * w)
    return k, hip + u * D


def terrain_adapt(joints: np.ndarray, legs: list[tuple[int, int, int, int]], ground: Callable[[np.ndarray], np.ndarray],
                  base: np.ndarray) -> np.ndarray:
    """Flat-ground animation onto terrain: joints [A,J,3] stand on height base [A] (the ground under the root); each
    foot is lifted by the terrain under it (relative to base) with two-bone IK, after the body is lowered to the lower
    foot's ground so every target stays in reach. On level ground it changes nothing."""
    J = np.asarray(joints, np.float64).copy()
    dz = np.stack([ground(J[:, ank, :2]) - base for _, _, ank, _ in legs], 1)  # [A,F] terrain under each foot
    drop = np.minimum(dz.min(1), 0.0)  # [A] lower the body so the downhill foot reaches its ground
    J[..., 2] += drop[:, None]
    for f, (hip, knee, ank, toe) in enumerate(legs):
        up = dz[:, f] - drop  # >= 0: what this foot must rise above the lowered body's floor
        m = up > 1e-6
        if not m.any():
            continue
        a0 = J[m, ank].copy()
        k, a = two_bone_ik(J[m, hip], J[m, knee], a0, a0 + np.c_[np.zeros((m.sum(), 2)), up[m]])
        J[m, knee] = k
        if toe >= 0:
            J[m, toe] += a - a0
        J[m, ank] = a
    return J


class FootLock:
    """Locks for A agents' two feet; `apply(joints, contacts)` returns the joints with locked feet [A,J,3]."""

    def __init__(self, n_agents: int, legs: list[tuple[int, int, int, int]], planted_h: np.ndarray,
                 ground: Callable[[np.ndarray], np.ndarray], config: FootLockConfig | None = None) -> None:
        self.cfg = config or FootLockConfig()
        self.legs = legs  # per foot (left, right): hip, knee, ankle, toe (-1: none) joint indices
        self.planted_h = np.asarray(planted_h, np.float64)  # [2] ankle height above the ground when planted
        self.ground = ground
        self.locked = np.zeros((n_agents, len(legs)), bool)
        self.lock_xy = np.zeros((n_agents, len(legs), 2))
        self.offset = np.zeros((n_agents, len(legs), 3))  # released feet: what is left to blend back
        self.cool = np.zeros((n_agents, len(legs)), int)  # frames before a released foot may lock again (no snap)
        self.n_locks = 0

    def root_pull(self, joints: np.ndarray, gain: float, max_m: float = 0.015) -> np.ndarray:
        """Planar shift [A,2] that moves each body `gain` of the way to where its held feet are (at most max_m a frame):
        the stance foot carries the body instead of sliding under it."""
        d = np.zeros((len(joints), 2))
        n = np.zeros(len(joints))
        for f, (_, _, ank, _) in enumerate(self.legs):
            L = self.locked[:, f]
            d[L] += self.lock_xy[L, f] - joints[L, ank, :2]
            n[L] += 1
        d = gain * d / np.maximum(n, 1)[:, None]
        m = np.linalg.norm(d, axis=1, keepdims=True)
        return d * np.minimum(1.0, max_m / np.maximum(m, 1e-12))

    def apply(self, joints: np.ndarray, contacts: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        J = np.asarray(joints, np.float64).copy()
        for f, (hip, knee, ank, toe) in enumerate(self.legs):
            a0 = J[:, ank].copy()
            g0 = self.ground(a0[:, :2])
            low = a0[:, 2] - g0 - self.planted_h[f] < cfg.contact_h
            want = low if cfg.height_only else np.asarray(contacts[:, f], bool) & low
            drift = np.linalg.norm(a0[:, :2] - self.lock_xy[:, f], axis=1) > cfg.release_m
            release = self.locked[:, f] & (~want | drift)
            start = want & ~self.locked[:, f] & ~release & (self.cool[:, f] <= 0)
            target = a0.copy()
            # released feet blend from where they were held back onto the animation
            held = np.concatenate([self.lock_xy[:, f], (self.ground(self.lock_xy[:, f]) + self.planted_h[f])[:, None]], 1)
            self.offset[release, f] = held[release] - a0[release]
            if not cfg.blend_height:
                self.offset[release, f, 2] = 0.0
            self.locked[release, f] = False
            self.cool[release, f] = cfg.blend_frames
            self.cool[:, f] -= 1
            self.lock_xy[start, f] = a0[start, :2]
            self.locked[start, f] = True
            self.n_locks += int(start.sum())
            L = self.locked[:, f]
            target[L, :2] = self.lock_xy[L, f]
            target[L, 2] = self.ground(self.lock_xy[L, f]) + self.planted_h[f]
            free = ~L
            target[free] += self.offset[free, f]
            self.offset[:, f] *= max(0.0, 1.0 - 1.0 / max(cfg.blend_frames, 1))
            self.offset[L, f] = 0.0
            moved = np.linalg.norm(target - a0, axis=1) > 1e-9
            if not moved.any():
                continue
            k, a = two_bone_ik(J[moved, hip], J[moved, knee], a0[moved], target[moved])
            J[moved, knee] = k
            if toe >= 0:
                J[moved, toe] += a - a0[moved]
            J[moved, ank] = a
        return J
