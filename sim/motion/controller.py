"""Batched motion controller for sim agents: desired future root positions in, full-body poses out.

The model runs at 30 Hz on its own clock; `step(future, dt)` advances by any sim time step (whole model frames, then a
linear blend towards the next one), resampling the commanded future to 30 Hz.

The model works in its own Y-up frame; the controller converts to the sim's +Z-up world with
world (x, y, z) = model (z, x, y), so world heading (about +Z, 0 = +X) equals the model yaw (about +Y, 0 = +Z).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from realsim.assets.errors import InputError
from realsim.assets.skeleton import Skeleton

from .canon import FOOT_IDX, FPS, SL_CONTACT, SL_H, SL_ROT, SL_VEL, SL_YAW, SOLE_HEIGHT, rot_y, sixd_to_mat, wrap_angle
from .data import style_index
from .model import MotionModel, default_weights_path

GroundFn = Callable[[np.ndarray], np.ndarray]
# model (x, y, z) -> world (x, y, z) = (z, x, y)
M_TO_WORLD = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
PLAN_SMOOTH = 0.0  # Gaussian sigma (frames) over each plan; 0 for the shipped (finetune_turn) weights: 1 blurs contact starts, more skating


@dataclass
class AgentPose:
    """One frame for A agents, world +Z up, metres."""

    joints: np.ndarray      # [A,J,3]
    global_rot: np.ndarray | None  # [A,J,3,3] joint-to-world rotations (None from the procedural walker, sim/gait.py)
    root: np.ndarray        # [A,3] root on the ground (x, y, ground z)
    heading: np.ndarray     # [A] radians about +Z, 0 = +X
    contacts: np.ndarray    # [A,2] bool (left, right foot)


def world_xy_to_model(xy: np.ndarray) -> np.ndarray:
    """World ground (x, y) -> model ground (x, z) = (y, x)."""
    return np.asarray(xy, dtype=np.float64)[..., ::-1].copy()


def model_xz_to_world(xz: np.ndarray) -> np.ndarray:
    return np.asarray(xz, dtype=np.float64)[..., ::-1].copy()


def facing_along(xz: np.ndarray, yaw0: np.ndarray, min_step: float = 0.01) -> np.ndarray:
    """Facing yaw [A,N] along a model-frame track xz [A,N,2] (start = current pose); holds the last yaw where it barely moves."""
    A, N, _ = xz.shape
    yaw = np.zeros((A, N))
    prev = np.asarray(yaw0, dtype=np.float64).copy()
    d = np.zeros_like(xz)
    d[:, 1:-1] = xz[:, 2:] - xz[:, :-2]
    if N > 1:
        d[:, 0] = xz[:, 1] - xz[:, 0]
        d[:, -1] = xz[:, -1] - xz[:, -2]
    step = np.linalg.norm(d, axis=-1)
    for i in range(N):
        ok = step[:, i] > 2 * min_step
        ang = np.arctan2(d[:, i, 0], d[:, i, 1])
        prev = np.where(ok, prev + wrap_angle(ang - prev), prev)
        yaw[:, i] = prev
    return yaw


@dataclass
class PlaybackConfig:
    """How the base controller plays plans: cross-fade into each new plan, floor clamp, per-agent start variation."""

    blend: int = 5              # frames cross-faded from what the old plan would have played into the new one
    floor_clamp: bool = True    # lift the body so no ankle/toe joint sinks below its standing height
    past_noise: float = 0.0     # per-agent start variation, in feature standard deviations (see reset; needs feat_std)


class BaseController:
    """Root integration, planning cadence and pose output shared by the diffusion controller and the baseline."""

    skeleton: Skeleton
    P: int
    F: int
    K: int
    stride: int

    rng: np.random.Generator   # only read when play.past_noise > 0 (the diffusion controller sets both)
    feat_std: np.ndarray       # [D]

    def __init__(self, n_agents: int, styles: list[str], ground_height: GroundFn | None, replan: int, correction: float,
                 idle: np.ndarray, play: PlaybackConfig | None = None):
        if n_agents < 1:
            raise InputError("need at least one agent")
        if len(styles) == 1:
            styles = styles * n_agents
        if len(styles) != n_agents:
            raise InputError(f"{len(styles)} styles for {n_agents} agents (give one, or one per agent)")
        self.A = n_agents
        self.style_names = list(styles)
        self.ground_height = ground_height
        self.replan = replan
        self.correction = correction
        self.idle = idle.astype(np.float64)
        self.play = play or PlaybackConfig()
        self.blend = self.play.blend
        self.floor_clamp = self.play.floor_clamp
        self.past_noise = self.play.past_noise
        self.reset(np.zeros((n_agents, 2)), np.zeros(n_agents))

    # ----------------------------------------------------------------------------------------------- subclasses
    def _plan(self, past: np.ndarray, traj: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Next F feature frames [A,F,D] from past [A,P,D], trajectory [A,K,4] and dense targets [A,F,4]."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------------------- API
    def reset(self, xy: np.ndarray, heading: np.ndarray) -> None:
        """Place agents standing at world xy [A,2] facing `heading` [A] (radians about +Z, 0 = +X)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(self.A, 2)
        self.xz = world_xy_to_model(xy)
        self.yaw = np.asarray(heading, dtype=np.float64).reshape(self.A).copy()
        self.past = np.broadcast_to(self.idle, (self.A, self.P, self.idle.shape[0])).copy()
        if self.past_noise > 0:  # each agent starts from its own slightly different stance, so first steps
            eps = self.rng.standard_normal((self.A, 1, self.idle.shape[0]))  # (and the gait phase after) differ
            self.past += self.past_noise * eps * self.feat_std[None, None]
        self.plan: np.ndarray | None = None
        self.ptr = 0
        self.frame = self.past[:, -1].copy()
        self.frac = 0.0  # model-time clock: fraction of the next model frame already shown (0 <= frac < 1)
        self.vis_xz, self.vis_yaw, self.vis_frame = self.xz.copy(), self.yaw.copy(), self.frame.copy()  # the shown pose
        self.last_lift = np.zeros(self.A)  # how far the floor clamp lifted each body in the last pose (m)

    def shift(self, d_xy: np.ndarray) -> None:
        """Move every agent's root by world d_xy [A,2] (the crowd's avoidance or constraint correction) in the controller's
        own state, so the next frames continue from there instead of snapping back."""
        d = world_xy_to_model(np.asarray(d_xy, dtype=np.float64).reshape(self.A, 2))
        self.xz = self.xz + d
        self.vis_xz = self.vis_xz + d

    def _targets(self, future_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sparse [A,K,4] and dense [A,F,4] trajectory conditions in each agent's root frame from world future_xy [A,N,2]
        sampled at the model's 30 Hz (first point = the next model frame)."""
        fut = np.asarray(future_xy, dtype=np.float64)
        if fut.ndim != 3 or fut.shape[0] != self.A or fut.shape[2] != 2 or fut.shape[1] < 1:
            raise InputError(f"future_xy must be [A={self.A},F,2], got {list(fut.shape)}")
        H = max(self.K * self.stride, self.F)
        if fut.shape[1] < H:  # hold the last point: the agent should stop there
            fut = np.concatenate([fut, np.repeat(fut[:, -1:], H - fut.shape[1], 1)], 1)
        track = world_xy_to_model(fut[:, :H])                                          # [A,H,2]
        full = np.concatenate([self.xz[:, None], track], 1)
        yaw = facing_along(full, self.yaw)[:, 1:]                                      # [A,H]
        d = track - self.xz[:, None]
        c, s = np.cos(self.yaw)[:, None], np.sin(self.yaw)[:, None]
        x, z = c * d[..., 0] - s * d[..., 1], s * d[..., 0] + c * d[..., 1]
        dy = wrap_angle(yaw - self.yaw[:, None])
        allc = np.stack([x, z, np.sin(dy), np.cos(dy)], -1).astype(np.float32)       # [A,H,4], offsets 1..H
        sparse = allc[:, np.arange(1, self.K + 1) * self.stride - 1]
        return sparse, allc[:, : self.F]

    def _resample(self, future_xy: np.ndarray, dt: float, frames: int) -> np.ndarray:
        """World targets [A,N,2] at +dt, +2dt, ... from now -> [A,frames,2] at model frames +1, +2, ... from the last whole
        model frame (now - frac/30 s); linear in time, the last point held."""
        fut = np.asarray(future_xy, dtype=np.float64)
        if fut.ndim != 3 or fut.shape[0] != self.A or fut.shape[2] != 2 or fut.shape[1] < 1:
            raise InputError(f"future_xy must be [A={self.A},F,2], got {list(fut.shape)}")
        N = fut.shape[1]
        now = 2 * fut[:, 0] - fut[:, 1] if N > 1 else fut[:, 0]  # the commanded position now (linear extrapolation)
        seq = np.concatenate([now[:, None], fut], 1)                 # [A,N+1,2]: index j at time j*dt
        ratio = FPS * dt
        u = np.clip((np.arange(1, frames + 1) - self.frac) / (1.0 if abs(ratio - 1) < 1e-9 else ratio), 0, N)
        i0 = np.minimum(np.floor(u + 1e-9).astype(np.int64), N)
        w = np.clip(u - i0, 0, 1)[None, :, None]
        return seq[:, i0] * (1 - w) + seq[:, np.minimum(i0 + 1, N)] * w

    def _advance(self, track: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next model frame's features [A,D], root xz [A,2] and yaw [A] towards world track [A,M,2] (30 Hz, first =
        that frame's target); replans when due. Does not move the clock."""
        if self.plan is None or self.ptr >= self.replan:
            sparse, dense = self._targets(track)
            new = self._plan(self.past, sparse, dense)
            if self.plan is not None and self.blend > 0:  # cross-fade from what the old plan would have played next
                old = self.plan[:, self.ptr: self.ptr + self.blend]
                n = old.shape[1]
                w = (np.arange(1, n + 1) / (n + 1))[None, :, None]
                new[:, :n] = (1 - w) * old + w * new[:, :n]
            self.plan = new
            self.ptr = 0
        f = self.plan[:, self.ptr].astype(np.float64)
        v = f[:, SL_VEL] / FPS
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        xz = self.xz + np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]], -1)
        yaw = wrap_angle(self.yaw + f[:, SL_YAW] / FPS)
        if self.correction > 0:  # pull gently onto the commanded track and its direction (bounded drift; costs a
            fut = world_xy_to_model(track[:, :10])                   # little foot sliding)
            xz = xz + self.correction * (fut[:, 0] - xz)
            d = fut[:, -1] - fut[:, 0]
            moving = np.linalg.norm(d, axis=-1) > 0.1
            err = wrap_angle(np.arctan2(d[:, 0], d[:, 1]) - yaw)
            yaw = wrap_angle(yaw + np.where(moving, self.correction * err, 0.0))
        return f, xz, yaw

    def step(self, future_xy: np.ndarray, dt: float | None = None) -> AgentPose:
        """Advance every agent by dt seconds (default one model frame, 1/30 s) towards its desired future root positions
        future_xy [A,N,2] (world; point k is the target at +(k+1) dt). Between model frames the pose is interpolated."""
        dt = 1.0 / FPS if dt is None else float(dt)
        if not (np.isfinite(dt) and dt > 0):
            raise InputError(f"dt must be a positive number of seconds, got {dt}")
        adv = self.frac + dt * FPS
        n_full = int(np.floor(adv + 1e-9))
        frac = adv - n_full if adv - n_full > 1e-9 else 0.0
        track = self._resample(future_xy, dt, n_full + max(self.K * self.stride, self.F) + 1)
        for m in range(n_full):
            f, self.xz, self.yaw = self._advance(track[:, m:])
            self.ptr += 1
            self.past = np.concatenate([self.past[:, 1:], f[:, None]], 1)
            self.frame = f
        self.frac = frac
        if frac > 0:  # part-way to the next model frame: root and yaw move linearly (exact distance), features blend
            f, xz, yaw = self._advance(track[:, n_full:])
            self.vis_xz = self.xz + frac * (xz - self.xz)
            self.vis_yaw = wrap_angle(self.yaw + frac * wrap_angle(yaw - self.yaw))
            self.vis_frame = (1 - frac) * self.frame + frac * f
        else:
            self.vis_xz, self.vis_yaw, self.vis_frame = self.xz.copy(), self.yaw.copy(), self.frame.copy()
        return self.pose()

    def model_pose(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Current (shown) pose in the model frame: local_rot [A,J,3,3] (hips in model world), hips [A,3], global_rot, joints."""
        f = self.vis_frame
        Lr = sixd_to_mat(f[:, SL_ROT].reshape(self.A, -1, 6))
        L = Lr.copy()
        L[:, 0] = rot_y(self.vis_yaw) @ Lr[:, 0]
        hips = np.stack([self.vis_xz[:, 0], f[:, SL_H], self.vis_xz[:, 1]], -1)
        G, pos = self.skeleton.fk(L, hips)
        self.last_lift = np.zeros(self.A)
        if self.floor_clamp:  # lift the body so no ankle/toe joint sinks below its standing height
            feet = np.array(FOOT_IDX).reshape(-1)
            sole = np.tile([SOLE_HEIGHT["Foot"], SOLE_HEIGHT["Toes"]], len(FOOT_IDX))
            lift = np.maximum(sole - pos[:, feet, 1], 0).max(1)                              # [A]
            hips[:, 1] += lift
            pos[..., 1] += lift[:, None]
            self.last_lift = lift
        return L, hips, G, pos

    def pose(self) -> AgentPose:
        _, _, G, pos = self.model_pose()
        joints = pos @ M_TO_WORLD.T
        groot = model_xz_to_world(self.vis_xz)
        gz = np.zeros(self.A) if self.ground_height is None else np.asarray(self.ground_height(groot), dtype=np.float64)
        joints[..., 2] += gz[:, None]
        return AgentPose(joints, M_TO_WORLD @ G, np.concatenate([groot, gz[:, None]], 1), self.vis_yaw.copy(),
                         self.vis_frame[:, SL_CONTACT] > 0.5)


class MotionController(BaseController):
    """Diffusion-driven agents: every `replan` frames the model generates the next F frames for all agents at once."""

    def __init__(self, model: MotionModel, n_agents: int, styles: list[str] | None = None,
                 ground_height: GroundFn | None = None, seed: int = 0, replan: int = 10, steps: int | None = 4,
                 w_style: float = 2.0, w_past: float = 0.0, correction: float = 0.1, threads: int | None = 1,
                 smooth: float | None = None, floor_clamp: bool = False, past_noise: float = 0.0, guide_steps: int | None = 1,
                 guide_reuse: bool = True):
        # defaults (bench/motion_human.py, issue 16): 4 of the 8 sampling steps (same skating and tracking, half the cost),
        # style guidance w=2 computed on the first step and its offset reused on the others (one extra batched pass per
        # plan; classifier accuracy 29 -> 35 %, 32 -> 59 % with the foot-term fine-tune), plan smoothing PLAN_SMOOTH (0 with
        # the shipped weights; sigma 1 blurred contact starts) and no floor clamp: heavier smoothing and the clamp pinned or
        # flattened the swing foot (2 m circle, skating 66 -> 26 cm/s with earlier weights); standalone samples can sink a
        # foot joint ~1.5 cm (the sim puts the feet on the terrain itself)
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.feat_std = model.std.numpy().astype(np.float64)
        self.skeleton = model.skeleton
        cfg = model.cfg
        self.P, self.F, self.K, self.stride = cfg.past, cfg.future, cfg.traj_points, cfg.traj_stride
        if not 1 <= replan <= cfg.future:
            raise InputError(f"replan must be in 1..{cfg.future}")
        self.steps, self.w_style, self.w_past = steps, w_style, w_past
        self.guide_steps, self.guide_reuse = guide_steps, guide_reuse
        self.gen = torch.Generator().manual_seed(seed)
        # Gaussian sigma (frames) over past+plan: damps the sampler's frame-to-frame jitter (None: PLAN_SMOOTH)
        self.smooth = PLAN_SMOOTH if smooth is None else smooth
        self.threads = threads  # torch threads while sampling (1: a busy shared CPU runs 2 OpenMP threads far slower)
        idle = (model.idle if model.idle is not None else model.mean).numpy()
        super().__init__(n_agents, list(styles or ["neutral"]), ground_height, replan, correction, idle,
                         PlaybackConfig(blend=5, floor_clamp=floor_clamp, past_noise=past_noise))
        self.style_ids = torch.tensor([style_index(model.styles, s) for s in self.style_names], dtype=torch.long)

    @classmethod
    def from_default(cls, n_agents: int, styles: list[str] | None = None, ground_height: GroundFn | None = None,
                     seed: int = 0, **kw) -> "MotionController":
        """Agents driven by the shipped weights (assets/weights/motion_default.safetensors)."""
        return cls(MotionModel.load(default_weights_path()), n_agents, styles, ground_height, seed, **kw)

    def _plan(self, past: np.ndarray, traj: np.ndarray, dense: np.ndarray) -> np.ndarray:
        prev = torch.get_num_threads()
        if self.threads and prev != self.threads:  # scoped: the caller's torch thread setting is restored
            torch.set_num_threads(self.threads)
        try:
            out = self.model.sample(torch.from_numpy(past).float(), torch.from_numpy(traj), torch.from_numpy(dense),
                                    self.style_ids, self.w_style, self.w_past, self.steps, self.gen, self.guide_steps,
                                    self.guide_reuse)
        finally:
            if self.threads and prev != self.threads:
                torch.set_num_threads(prev)
        plan = out.numpy().astype(np.float64)
        if self.smooth > 0:  # filter the plan in time, anchored on the frames already played (no jump at the seam)
            from scipy.ndimage import gaussian_filter1d

            k = min(self.P, 6)
            seq = np.concatenate([past[:, -k:], plan], 1)
            plan = gaussian_filter1d(seq, self.smooth, axis=1, mode="nearest")[:, k:]
        return plan
