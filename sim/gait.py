"""A procedural walk cycle with the motion controller's interface: the fallback when no learned controller is available.

Feet are placed analytically (stance foot fixed to the ground while the body passes over it, swing foot lifted), knees by
two-bone IK, arms swing against the legs. The root follows the commanded path exactly; heading turns at a bounded rate.
This is not learned motion: `realsim simulate` uses the motion-diffusion controller when its weights are present.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from realsim.assets.skeleton import Skeleton

from .motion.controller import AgentPose

__all__ = ["ProceduralWalker", "BASIC_SKELETON"]


_J = ["pelvis", "spine", "chest", "neck", "head", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
      "right_elbow", "right_wrist", "left_hip", "left_knee", "left_ankle", "left_toe", "right_hip", "right_knee", "right_ankle",
      "right_toe"]
_P = [-1, 0, 1, 2, 3, 4, 2, 6, 7, 2, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18]
_IDX = {n: i for i, n in enumerate(_J)}


@dataclass
class _Dims:
    pelvis: float = 0.95
    hip_w: float = 0.10
    thigh: float = 0.44
    shin: float = 0.43
    ankle: float = 0.08
    spine: float = 0.12
    chest: float = 0.22
    neck: float = 0.20
    head: float = 0.12
    head_top: float = 0.13
    shoulder_w: float = 0.19
    shoulder_drop: float = 0.04
    upper_arm: float = 0.29
    forearm: float = 0.27
    toe: float = 0.15


def _rest(d: _Dims) -> np.ndarray:
    """Rest joint positions [J,3] (standing, facing +X, +Z up, pelvis at the origin's height)."""
    p = np.zeros((len(_J), 3))
    p[_IDX["pelvis"]] = [0, 0, d.pelvis]
    p[_IDX["spine"]] = [0, 0, d.pelvis + d.spine]
    p[_IDX["chest"]] = [0, 0, d.pelvis + d.spine + d.chest]
    p[_IDX["neck"]] = p[_IDX["chest"]] + [0, 0, d.neck]
    p[_IDX["head"]] = p[_IDX["neck"]] + [0.02, 0, d.head]
    p[_IDX["head_top"]] = p[_IDX["head"]] + [0, 0, d.head_top]
    for s, sg in (("left", 1), ("right", -1)):
        sh = p[_IDX["chest"]] + [0, sg * d.shoulder_w, d.neck - d.shoulder_drop]
        p[_IDX[f"{s}_shoulder"]] = sh
        p[_IDX[f"{s}_elbow"]] = sh + [0, 0, -d.upper_arm]
        p[_IDX[f"{s}_wrist"]] = sh + [0, 0, -d.upper_arm - d.forearm]
        hip = [0, sg * d.hip_w, d.pelvis]
        p[_IDX[f"{s}_hip"]] = hip
        p[_IDX[f"{s}_knee"]] = np.add(hip, [0, 0, -d.thigh])
        p[_IDX[f"{s}_ankle"]] = [0, sg * d.hip_w, d.ankle]
        p[_IDX[f"{s}_toe"]] = [d.toe, sg * d.hip_w, 0.02]
    return p


_REST = _rest(_Dims())
BASIC_SKELETON = Skeleton(list(_J), list(_P), np.array([_REST[i] - (_REST[_P[i]] if _P[i] >= 0 else 0) for i in range(len(_J))]))


def _two_bone(hip: np.ndarray, ankle: np.ndarray, a: float, b: float, fwd: np.ndarray) -> np.ndarray:
    """Knee position for hip/ankle [N,3], bending towards fwd [N,3]."""
    v = ankle - hip
    D = np.clip(np.linalg.norm(v, axis=-1, keepdims=True), 1e-6, (a + b) * 0.9999)
    u = v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)
    w = fwd - (fwd * u).sum(-1, keepdims=True) * u
    w = w / np.linalg.norm(w, axis=-1, keepdims=True).clip(1e-9)
    cos_a = np.clip((a * a + D * D - b * b) / (2 * a * D), -1, 1)
    return hip + a * (cos_a * u + np.sqrt(1 - cos_a ** 2) * w)


_AMP_TAU = -1.0 / (30 * math.log(0.85))  # s (~0.2): the swing amplitude eases to its target, x0.15 a frame at 30 Hz


class ProceduralWalker:
    """Batch of walking agents; same calls as the motion controller (reset, step(future_xy, dt), skeleton)."""

    def __init__(self, n_agents: int, ground_height: Callable[[np.ndarray], np.ndarray], scales: np.ndarray | None = None,
                 fps: float = 30.0, seed: int = 0, max_turn_rate: float = 5.0) -> None:
        self.n = int(n_agents)
        self.ground = ground_height
        self.scale = np.ones(self.n) if scales is None else np.asarray(scales, np.float64)
        self.dt = 1.0 / fps
        self.max_turn = max_turn_rate
        rng = np.random.default_rng(seed)
        self.phase = rng.uniform(0, 2 * math.pi, self.n)
        self.xy = np.zeros((self.n, 2))
        self.heading = np.zeros(self.n)
        self.amp = np.zeros(self.n)
        self.skeleton = BASIC_SKELETON

    def reset(self, xy: np.ndarray, heading: np.ndarray) -> None:
        self.xy = np.asarray(xy, np.float64).copy()
        self.heading = np.asarray(heading, np.float64).copy()
        self.amp[:] = 0.0

    def shift(self, d_xy: np.ndarray) -> None:
        """Move every root by world d_xy [A,2] (the crowd's constraint correction)."""
        self.xy = self.xy + np.asarray(d_xy, np.float64).reshape(self.n, 2)

    def step(self, future_xy: np.ndarray, dt: float | None = None) -> AgentPose:
        """Move each root to future_xy[:,0] (the target dt seconds ahead; point k at +(k+1) dt) and pose the body."""
        dt = self.dt if dt is None else float(dt)
        fut = np.asarray(future_xy, np.float64)
        new = fut[:, 0]
        vel = (new - self.xy) / dt
        speed = np.linalg.norm(vel, axis=1)
        # face where the path goes (about 1/3 s ahead), turning at a bounded rate
        look = fut[:, min(fut.shape[1] - 1, int(round(1.0 / (3 * dt))))] - self.xy
        want = np.where(np.linalg.norm(look, axis=1) > 0.05, np.arctan2(look[:, 1], look[:, 0]), self.heading)
        dh = (want - self.heading + math.pi) % (2 * math.pi) - math.pi
        self.heading = self.heading + np.clip(dh, -self.max_turn * dt, self.max_turn * dt)
        self.xy = new
        target_amp = np.clip(speed / 1.1, 0, 1.2)
        self.amp += (target_amp - self.amp) * (1.0 - math.exp(-dt / _AMP_TAU))
        stride = 1.35 * self.scale * np.clip(0.55 + 0.45 * speed / 1.3, 0.55, 1.3)  # full gait cycle length (m)
        self.phase = (self.phase + 2 * math.pi * speed * dt / stride) % (2 * math.pi)
        return self._pose(stride)

    def _pose(self, stride: np.ndarray) -> AgentPose:
        d = _Dims()
        A = self.n
        s = self.scale[:, None]
        J = np.repeat(_REST[None], A, 0) * s[..., None]  # local frame: x forward, y left, z up (above the ground)
        amp = self.amp[:, None]
        step = stride[:, None] / 2  # foot travel in local x over one stance (half cycle)
        c, sn = np.cos(self.heading), np.sin(self.heading)
        fwd_w = np.stack([c, sn, np.zeros(A)], 1)
        left_w = np.stack([-sn, c, np.zeros(A)], 1)

        def to_world_xy(local: np.ndarray) -> np.ndarray:
            return self.xy + local[..., 0:1] * fwd_w[:, :2] + local[..., 1:2] * left_w[:, :2]

        g_root = self.ground(self.xy)
        contacts = np.zeros((A, 2), bool)
        ankles = {}
        for k, (side, off) in enumerate((("left", 0.0), ("right", math.pi))):
            ph = (self.phase + off) % (2 * math.pi)
            stance = ph < math.pi
            u = ph / math.pi  # 0..1 in stance, 1..2 in swing
            fx = np.where(stance, 0.5 - u, u - 1.5) * step[:, 0] * (amp[:, 0] / 0.3).clip(0, 1)  # back in stance, forward in swing
            lift = np.where(stance, 0.0, 0.10 * np.sin((u - 1) * math.pi)) * amp[:, 0].clip(0, 1) * self.scale
            sg = 1 if side == "left" else -1
            loc = np.stack([fx, np.full(A, sg * d.hip_w) * self.scale], 1)
            gz = self.ground(to_world_xy(loc)) - g_root
            ankles[side] = np.stack([fx, loc[:, 1], d.ankle * self.scale + lift + gz], 1)
            contacts[:, k] = stance & (amp[:, 0] > 0.05) | (amp[:, 0] <= 0.05)
        # pelvis low enough that both legs reach, with a small bob
        a, b = d.thigh * self.scale, d.shin * self.scale
        reach = 0.985 * (a + b)
        zmax = np.minimum.reduce([ankles[sd][:, 2] + np.sqrt(np.clip(reach ** 2 - ankles[sd][:, 0] ** 2, 0, None))
                                  for sd in ("left", "right")])
        pz = np.minimum(d.pelvis * self.scale, zmax)
        dz = pz - J[:, _IDX["pelvis"], 2]
        upper = [_IDX[n] for n in ("pelvis", "spine", "chest", "neck", "head", "head_top", "left_shoulder", "right_shoulder",
                                   "left_hip", "right_hip")]
        J[:, upper, 2] += dz[:, None]
        lean = 0.04 * amp[:, 0]
        for n in ("chest", "neck", "head", "head_top", "left_shoulder", "right_shoulder"):
            J[:, _IDX[n], 0] += lean * (J[:, _IDX[n], 2] - pz) / 0.8
        fwd_l = np.repeat(np.array([[1.0, 0, 0]]), A, 0)
        for side in ("left", "right"):
            hip = J[:, _IDX[f"{side}_hip"]]
            ank = ankles[side]
            J[:, _IDX[f"{side}_ankle"]] = ank
            J[:, _IDX[f"{side}_knee"]] = _two_bone(hip, ank, a[:, None] if np.ndim(a) else a, b[:, None] if np.ndim(b) else b, fwd_l)
            J[:, _IDX[f"{side}_toe"]] = ank + np.stack([d.toe * self.scale, np.zeros(A), -(d.ankle - 0.02) * self.scale], 1)
            # arms swing against the same-side leg
            ph = (self.phase + (math.pi if side == "left" else 0.0)) % (2 * math.pi)
            th = math.radians(22) * amp[:, 0] * np.sin(ph + math.pi / 2)
            sh = J[:, _IDX[f"{side}_shoulder"]]
            ua = np.stack([np.sin(th), np.zeros(A), -np.cos(th)], 1) * (d.upper_arm * self.scale)[:, None]
            el = sh + ua
            th2 = th + math.radians(12) + math.radians(18) * amp[:, 0]
            fa = np.stack([np.sin(th2), np.zeros(A), -np.cos(th2)], 1) * (d.forearm * self.scale)[:, None]
            J[:, _IDX[f"{side}_elbow"]] = el
            J[:, _IDX[f"{side}_wrist"]] = el + fa
        # local -> world
        Wd = np.empty_like(J)
        Wd[..., :2] = to_world_xy(J[..., :2].transpose(1, 0, 2)).transpose(1, 0, 2)
        Wd[..., 2] = J[..., 2] + g_root[:, None]
        root = Wd[:, _IDX["pelvis"]].copy()
        return AgentPose(Wd, None, root, self.heading.copy(), contacts)
