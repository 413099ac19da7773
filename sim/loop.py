"""The sim loop at a fixed rate (default 30 Hz, any fps): plan paths, avoid each other, step the motion controller, keep feet
on the terrain.

Per frame: the crowd model moves every agent's planar target (ORCA avoidance along its path, sim/crowd.py), the motion
model turns the next ~1.5 s of targets into a full-body pose, the pose is held to the crowd's constraints (a small horizontal
shift if the body's root strayed onto a blocked cell or into another agent, written back into the controller's own root
state so the body continues from there, and the crowd restarts from the body's position), its lowest foot is put on the
ground and feet on the ground are locked in place (two-bone IK, sim/footlock.py).
Metrics measure both what is written and the motion model's raw pose before that shift and snap (`*_raw` keys).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realsim.assets.errors import RealsimError
from realsim.assets.progress import ProgressFn, report

from .body import AgentLook, _semantic, random_looks
from .crowd import Crowd, CrowdConfig
from .footlock import FootLock, FootLockConfig, terrain_adapt
from .gait import ProceduralWalker
from .motion.metrics import skating
from .planner import plan_path
from .scenario import Scenario
from .spawn import random_goal, spawn_agents
from .world import World

__all__ = ["SimResult", "run_sim", "make_motion", "foot_heights", "sim_metrics", "HORIZON_S"]

log = logging.getLogger("realsim.sim.loop")

PAST_NOISE = 1.0  # per-agent start variation of the learned controller (feature stds): agents do not step in lockstep
FOOT_LOCK = True  # lock feet in predicted contact (sim/footlock.py)
FOOT_LOCK_CONFIG = FootLockConfig()
ROOT_FROM_FEET = 0.0  # share of a held foot's drift moved into the body each frame, at most 1.5 cm. Off: at 1.0 rendered
# skating drops 51 -> 41 cm/s (bench/motion_human.py), but bodies then walk ~20 % slower than commanded and the 10-agent
# crossings in tests/test_crowd.py miss their arrival times
SPEED_JITTER = 0.04  # relative per-agent spread of the preferred walking speed (clipped at 2 sigma)
HORIZON_S = 1.5  # seconds of the crowd's future handed to the motion model each step (its trajectory condition spans 1.5 s)


@dataclass
class SimResult:
    """Everything the outputs need: per-frame poses of every agent and what the sim planned."""

    fps: float
    joints: np.ndarray  # [T,A,J,3] world metres
    root: np.ndarray  # [T,A,3]
    heading: np.ndarray  # [T,A]
    contacts: np.ndarray  # [T,A,2]
    targets: np.ndarray  # [T,A,2] crowd targets
    skeleton: Any
    looks: list[AgentLook]
    styles: list[str]
    speeds: np.ndarray  # [A]
    radii: np.ndarray  # [A]
    paths: list[list[np.ndarray]]  # per agent, every path it was given
    motion_backend: str
    metrics: dict[str, float] = field(default_factory=dict)
    rest_foot_heights: np.ndarray | None = None  # [F] planted height of each foot joint above the ground
    raw: dict[str, np.ndarray] = field(default_factory=dict)  # before the constraints: root_xy [T,A,2], foot [T,A], joints

    @property
    def n_frames(self) -> int:
        return self.joints.shape[0]

    @property
    def n_agents(self) -> int:
        return self.joints.shape[1]


def _foot_joints(skeleton) -> list[int]:
    """Foot joint indices: ankles, then toes when the skeleton has them (left, right)."""
    sem = _semantic(skeleton)
    return [sem["l_ankle"], sem["r_ankle"]] + [sem[k] for k in ("l_toe", "r_toe") if sem.get(k, -1) >= 0]


def _rest_foot_heights(joints: np.ndarray, world: World, feet: list[int]) -> np.ndarray:
    """Height above the ground of each foot joint when the foot is planted, from a standing pose joints [A,J,3].

    Taken per joint pair as the lower of left and right (a standing body has at least one foot down), median over agents.
    Skeletons differ (ankle 8-13 cm, toe 2-5 cm above the floor); measuring it avoids guessing rest orientations.
    """
    fj = joints[:, feet]
    h = fj[..., 2] - world.height(fj[..., :2])  # [A,F]
    pairs = h.reshape(h.shape[0], -1, 2).min(-1)  # [A,F/2]
    return np.clip(np.repeat(np.median(pairs, 0), 2), 0.0, 0.25)


def foot_heights(joints: np.ndarray, world: World, feet: list[int], rest_h: np.ndarray) -> np.ndarray:
    """Height of each agent's lowest foot above the terrain, relative to the standing sole: [..., A] metres (0 = on the ground)."""
    fj = joints[..., feet, :]  # [...,A,F,3]
    g = world.height(fj[..., :2])
    return (fj[..., 2] - g - rest_h).min(-1)


def make_motion(n: int, styles: list[str], world: World, scales: np.ndarray, seed: int, backend: str = "auto",
                weights: str | None = None, fps: float = 30.0):
    """The motion-diffusion controller when available (backend auto|controller), else the procedural walker.

    `weights`: a motion model file to use instead of the shipped default weights.
    """
    if backend not in ("auto", "controller", "procedural"):
        raise RealsimError(f"unknown motion backend {backend!r} (auto, controller, procedural)")
    if backend in ("auto", "controller"):
        try:
            from realsim.sim.motion import MotionController, MotionModel  # type: ignore[attr-defined]

            if weights:
                ctrl = MotionController(MotionModel.load(weights), n, styles, world.height, seed, past_noise=PAST_NOISE)
            else:
                ctrl = MotionController.from_default(n, styles=styles, ground_height=world.height, seed=seed,
                                                     past_noise=PAST_NOISE)
            return ctrl, "controller"
        except RealsimError as e:
            if backend == "controller" or weights or "style" in str(e):
                raise
            log.warning("motion controller unavailable (%s); agents use the procedural walk cycle", e)
        except (ImportError, AttributeError, FileNotFoundError, OSError, ValueError, KeyError) as e:
            if backend == "controller":
                raise RealsimError(f"motion controller unavailable: {type(e).__name__}: {e}") from None
            log.warning("motion controller unavailable (%s); agents use the procedural walk cycle", type(e).__name__)
    return ProceduralWalker(n, world.height, scales=scales, fps=fps, seed=seed), "procedural"


def _initial_paths(world: World, starts: np.ndarray, goals: list[list[np.ndarray]], rng: np.random.Generator,
                   spawn_mask: np.ndarray | None) -> list[np.ndarray]:
    """Each agent's first path [K,2]: through its waypoints, or to a random goal; a goal no path reaches is skipped."""
    out = []
    for i, s in enumerate(starts):
        wp = goals[i] if goals[i] else [random_goal(world, s, rng, spawn_mask)]
        pts = [s]
        for g in wp:
            try:
                pts.extend(plan_path(world, pts[-1], g)[1:])
            except RealsimError as e:
                log.warning("agent %d skips a goal: %s", i, e)
        out.append(np.array(pts))
    return out


def run_sim(world: World, scenario: Scenario, motion: str = "auto", spawn_mask: np.ndarray | None = None,
            future_frames: int | None = None, progress: ProgressFn | None = None, motion_weights: str | None = None) -> SimResult:
    """Simulate the scenario's agents for its duration at its fps; spawn_mask [NX,NY] limits random places (e.g. in view).

    Agents that do not fit on the walkable ground are dropped with a warning (metrics: agents vs agents_requested).
    `future_frames`: sim steps of crowd future given to the motion model (default HORIZON_S at the sim's fps).
    """
    rng = np.random.default_rng(scenario.seed)
    fps = float(scenario.fps)
    dt = 1.0 / fps
    T = max(1, int(round(scenario.duration * fps)))
    if scenario.n_agents == 0:
        if not scenario.props:
            raise RealsimError("the scenario has no agents")
        from .gait import BASIC_SKELETON  # props only: an empty agent track for the physics and the renderer

        J = len(BASIC_SKELETON.names)
        return SimResult(fps, np.zeros((T, 0, J, 3)), np.zeros((T, 0, 3)), np.zeros((T, 0)), np.zeros((T, 0, 2), bool),
                         np.zeros((T, 0, 2)), BASIC_SKELETON, [], [], np.zeros(0), np.zeros(0), [], "none",
                         {"frames": float(T), "agents": 0.0, "agents_requested": 0.0})
    sp = spawn_agents(world, scenario, rng, spawn_mask)
    starts, goals, wander = sp.starts, sp.goals, sp.wander
    A = len(starts)
    looks = random_looks(A, rng)
    scales = np.array([lk.height for lk in looks])
    radii = 0.24 * np.array([lk.build for lk in looks])
    cur_paths = _initial_paths(world, starts, goals, rng, spawn_mask)
    paths: list[list[np.ndarray]] = [[p] for p in cur_paths]
    jitter = np.random.default_rng([scenario.seed, 16]).standard_normal(A).clip(-2, 2) * SPEED_JITTER
    sp.speeds = sp.speeds * (1 + jitter)  # nobody walks at exactly the speed they were told
    crowd = Crowd(world, starts, radii, sp.speeds, cur_paths, CrowdConfig(), seed=scenario.seed)
    heading0 = np.array([math.atan2(*(p[min(1, len(p) - 1)] - p[0])[::-1]) if len(p) > 1 else 0.0 for p in cur_paths])
    ctrl, backend = make_motion(A, sp.styles, world, scales, scenario.seed, motion, motion_weights, fps)
    # each learned body walks in its own units (a taller agent takes proportionally longer strides at the same cadence):
    # commands are divided by its height scale and the pose multiplied back, so planted feet stay planted
    unit = scales.copy() if backend == "controller" else np.ones(A)
    ctrl.reset(starts / unit[:, None], heading0)
    skel = ctrl.skeleton
    feet = _foot_joints(skel)
    n_fut = max(2, int(future_frames) if future_frames else int(math.ceil(HORIZON_S * fps)) + 1)
    rest_h: np.ndarray | None = None
    J = len(skel.names)
    joints = np.zeros((T, A, J, 3))
    root = np.zeros((T, A, 3))
    heading = np.zeros((T, A))
    contacts = np.zeros((T, A, 2), bool)
    targets = np.zeros((T, A, 2))
    raw = {k: np.zeros((T, A, 2)) for k in ("root_xy", "from_xy")}
    raw.update({k: np.zeros((T, A)) for k in ("foot", "shift", "lift")})
    raw["joints"] = np.zeros((T, A, J, 3))  # the motion model's pose in world metres, before any fix
    lock: FootLock | None = None
    prev_xy = starts.copy()
    for t in range(T):
        raw["from_xy"][t] = crowd.pos
        crowd.step(dt)
        targets[t] = crowd.pos
        fut = crowd.futures(n_fut - 1, dt)
        pose = ctrl.step(fut / unit[:, None, None], dt)
        raw["lift"][t] = getattr(ctrl, "last_lift", 0.0)
        Jt = np.asarray(pose.joints, np.float64).copy()
        p_root = np.asarray(pose.root, np.float64).copy()
        if backend == "controller":  # model units -> world: scale about the origin, on the ground under the root
            p_root[:, :2] *= unit[:, None]
            p_root[:, 2] = world.height(p_root[:, :2])
            Jt[..., :2] *= unit[:, None, None]
            Jt[..., 2] = (Jt[..., 2] - np.asarray(pose.root)[:, None, 2]) * unit[:, None] + p_root[:, None, 2]
        if rest_h is None:
            rest_h = _rest_foot_heights(Jt, world, feet)
            if backend == "controller" and FOOT_LOCK:
                sem = _semantic(skel)
                legs = [tuple(sem[f"{s}_{k}"] for k in ("hip", "knee", "ankle", "toe")) for s in ("l", "r")]
                lock = FootLock(A, legs, rest_h[:2], world.height, FOOT_LOCK_CONFIG)
        raw["joints"][t] = Jt
        raw["foot"][t] = foot_heights(Jt, world, feet, rest_h)  # the model's own feet, before any fix
        raw["root_xy"][t] = Jt[:, 0, :2]  # the model's root joint
        if lock is not None and ROOT_FROM_FEET > 0:  # a planted foot carries the body: the root follows the held foot
            pull = lock.root_pull(Jt, ROOT_FROM_FEET)
            Jt[..., :2] += pull[:, None]
            p_root[:, :2] += pull
            ctrl.shift(pull / unit[:, None])  # kept by the controller, like the crowd's corrections
        r_xy = Jt[:, 0, :2].copy()
        fixed = crowd.enforce(r_xy, prev_xy)
        d = fixed - r_xy
        raw["shift"][t] = np.linalg.norm(d, axis=1)
        if hasattr(ctrl, "shift"):
            ctrl.shift(d / unit[:, None])  # the controller continues from the corrected root (no snap back next frame)
        Jt[..., :2] += d[:, None]
        if lock is not None:  # the animation assumes level ground under the root: each foot onto the terrain under it
            Jt = terrain_adapt(Jt, lock.legs, world.height, p_root[:, 2])
        # feet on the terrain: the lowest foot rests on the ground
        fh = foot_heights(Jt, world, feet, rest_h)
        Jt[..., 2] -= fh[:, None]
        if lock is not None:  # planted feet stay planted (the model's contact flags), legs bent by IK to reach them
            Jt = lock.apply(Jt, np.asarray(pose.contacts, bool))
            fh2 = foot_heights(Jt, world, feet, rest_h)
            Jt[..., 2] -= fh2[:, None]
            fh = fh + fh2
        joints[t] = Jt
        root[t] = p_root
        root[t, :, :2] += d
        root[t, :, 2] -= fh
        heading[t] = np.asarray(pose.heading, np.float64)
        contacts[t] = np.asarray(pose.contacts, bool)
        crowd.observe(fixed, dt)
        prev_xy = fixed.copy()
        for i, p in crowd.replans:  # agents that were blocked took another way
            paths[i].append(p)
        # wanderers pick a new goal on arrival
        for i in np.nonzero(crowd.arrived & wander)[0]:
            g = random_goal(world, crowd.pos[i], rng, spawn_mask)
            try:
                p = plan_path(world, crowd.pos[i], g)
            except RealsimError:
                continue
            crowd.set_path(i, p)
            paths[i].append(p)
        if (t + 1) % 10 == 0 or t + 1 == T:
            report(progress, "simulate", t + 1, T)
    res = SimResult(fps, joints, root, heading, contacts, targets, skel, looks, sp.styles, sp.speeds, radii, paths, backend)
    res.rest_foot_heights = rest_h
    res.raw = raw
    res.metrics = sim_metrics(res, world, feet, rest_h)
    res.metrics["agents_requested"] = float(sp.requested)
    return res


def sim_metrics(res: SimResult, world: World, feet: list[int] | None = None, rest_h: np.ndarray | None = None) -> dict[str, float]:
    """What the video shows (after the constraints) and what the motion model produced before them (`*_raw`).

    Spacing, walkability and obstacles of the root joint; feet vs the ground; root track vs the crowd's commanded targets.
    """
    if feet is None or rest_h is None:
        feet, rest_h = _foot_joints(res.skeleton), res.rest_foot_heights
    xy = res.joints[:, :, 0, :2]  # root joint [T,A,2]
    out: dict[str, float] = {}
    A = res.n_agents
    raw = res.raw or {}
    for tag, p in (("", xy), ("_raw", raw.get("root_xy"))):
        if p is None:
            continue
        if A > 1:
            d = np.linalg.norm(p[:, :, None] - p[:, None], axis=-1) + np.eye(A) * 1e9
            out[f"min_agent_distance{tag}_m"] = float(d.min())
            out[f"min_body_gap{tag}_m"] = float((d - res.radii[:, None] - res.radii[None]).min())
        out[f"off_walkable{tag}_fraction"] = float((~world.is_walkable(p)).mean())
        out[f"in_obstacle{tag}_fraction"] = float(world.is_obstacle(p).mean())
    fh = foot_heights(res.joints, world, feet, rest_h)  # [T,A]
    out["foot_error_m_max"] = float(np.abs(fh).max())
    out["penetration_m_max"] = float(np.maximum(-fh, 0).max())
    if "foot" in raw:
        out["foot_error_raw_m_p95"] = float(np.percentile(np.abs(raw["foot"]), 95))
        out["foot_error_raw_m_max"] = float(np.abs(raw["foot"]).max())
        out["penetration_raw_m_max"] = float(np.maximum(-raw["foot"], 0).max())
        out["floor_clamp_lift_m_max"] = float(np.max(raw["lift"]))
        out["constraint_shift_m_max"] = float(raw["shift"].max())
        out["constraint_shift_m_mean"] = float(raw["shift"].mean())
        out.update(track_metrics(raw["root_xy"], res.targets, raw["from_xy"]))
    ground = world.height(res.joints[:, :, feet, :2])  # [T,A,F]
    out["skate_cm_s"] = float(np.mean([skating(res.joints[:, i], ground[:, i], feet, res.fps) for i in range(A)]))
    if "joints" in raw:
        g_raw = world.height(raw["joints"][:, :, feet, :2])
        out["skate_raw_cm_s"] = float(np.mean([skating(raw["joints"][:, i], g_raw[:, i], feet, res.fps) for i in range(A)]))
    out["frames"] = float(res.n_frames)
    out["agents"] = float(A)
    return out


def track_metrics(q: np.ndarray, target: np.ndarray, start: np.ndarray, min_cmd: float = 0.5) -> dict[str, float]:
    """The motion model's root q [T,A,2] against the crowd's commanded targets [T,A,2] (each frame the crowd steps from
    start [T,A,2], where the agent stood): cross-track error (m, perpendicular to the commanded step, while it moves),
    along-track |travelled - commanded| / commanded per agent (agents commanded >= min_cmd m), end error (m)."""
    step = target - start
    n = np.linalg.norm(step, axis=-1)
    moving = n > 1e-4
    u = step / np.maximum(n, 1e-9)[..., None]
    e = q - target
    cross = np.abs(e[..., 0] * u[..., 1] - e[..., 1] * u[..., 0])[moving]
    cmd = n.sum(0)  # [A]
    trav = np.linalg.norm(np.diff(np.concatenate([start[:1], q]), axis=0), axis=-1).sum(0)
    ok = cmd >= min_cmd
    rel = np.abs(trav - cmd)[ok] / cmd[ok]
    out = {"traj_cross_m_mean": float(cross.mean()) if cross.size else 0.0,
           "traj_cross_m_max": float(cross.max()) if cross.size else 0.0,
           "traj_along_rel_err": float(rel.mean()) if rel.size else 0.0,
           "traj_along_rel_err_max": float(rel.max()) if rel.size else 0.0,
           "traj_end_m": float(np.linalg.norm(q[-1] - target[-1], axis=-1).max())}
    return out
