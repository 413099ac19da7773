"""The sim loop at a fixed rate (30 Hz): plan paths, avoid each other, step the motion controller, keep feet on the terrain.

Per frame: the crowd model moves every agent's planar target (social forces + hard separation and walkability), the motion
model turns the next ~1.5 s of targets into a full-body pose, the pose is held to the crowd's constraints (a small horizontal
shift if the body's root strayed onto a blocked cell or into another agent) and its lowest foot is put on the ground.
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
from .gait import ProceduralWalker
from .planner import plan_path
from .scenario import Scenario
from .world import World

__all__ = ["SimResult", "run_sim", "make_motion", "foot_heights"]

log = logging.getLogger("realsim.sim.loop")


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

    @property
    def n_frames(self) -> int:
        return self.joints.shape[0]

    @property
    def n_agents(self) -> int:
        return self.joints.shape[1]


def _rest_positions(skeleton) -> np.ndarray:
    off = np.asarray(skeleton.offsets, np.float64)
    par = list(skeleton.parents)
    P = np.zeros_like(off)
    for j in range(len(par)):
        P[j] = off[j] + (P[par[j]] if par[j] >= 0 else 0)
    return P


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
                weights: str | None = None):
    """The motion-diffusion controller when available (backend auto|controller), else the procedural walker.

    `weights`: a motion model file to use instead of the shipped default weights.
    """
    if backend not in ("auto", "controller", "procedural"):
        raise RealsimError(f"unknown motion backend {backend!r} (auto, controller, procedural)")
    if backend in ("auto", "controller"):
        try:
            from realsim.sim.motion import MotionController, MotionModel  # type: ignore[attr-defined]

            if weights:
                ctrl = MotionController(MotionModel.load(weights), n, styles, world.height, seed)
            else:
                ctrl = MotionController.from_default(n, styles=styles, ground_height=world.height, seed=seed)
            return ctrl, "controller"
        except RealsimError as e:
            if backend == "controller" or weights or "style" in str(e):
                raise
            log.warning("motion controller unavailable (%s); agents use the procedural walk cycle", e)
        except (ImportError, AttributeError, FileNotFoundError, OSError, ValueError, KeyError) as e:
            if backend == "controller":
                raise RealsimError(f"motion controller unavailable: {type(e).__name__}: {e}") from None
            log.warning("motion controller unavailable (%s); agents use the procedural walk cycle", type(e).__name__)
    return ProceduralWalker(n, world.height, scales=scales, seed=seed), "procedural"


def _spawn(world: World, scenario: Scenario, rng: np.random.Generator, spawn_mask: np.ndarray | None):
    """Starts [A,2], waypoint lists, styles, speeds, wander flags of all agents."""
    starts: list[np.ndarray | None] = []
    goals: list[list[np.ndarray]] = []
    styles, speeds, wander = [], [], []
    for k, spec in enumerate(scenario.agents):
        for _ in range(spec.count):
            if spec.start is not None:
                p = np.array(spec.start, np.float64)
                if not world.is_walkable(p[None])[0]:
                    raise RealsimError(f"agents[{k}].start ({p[0]:.2f}, {p[1]:.2f}) m is not on walkable ground "
                                       f"(walkable x {world.origin[0]:.1f}..{world.origin[0] + world.shape[0] * world.cell:.1f}, "
                                       f"y {world.origin[1]:.1f}..{world.origin[1] + world.shape[1] * world.cell:.1f})")
                starts.append(p)
            else:
                starts.append(None)
            gl = []
            for j, g in enumerate(spec.goals):
                q = np.array(g, np.float64)
                if not world.is_walkable(q[None])[0]:
                    near = world.nearest_walkable(q[None])[0]
                    if np.linalg.norm(near - q) > 1.0:
                        raise RealsimError(f"agents[{k}].goals[{j}] ({q[0]:.2f}, {q[1]:.2f}) m is not on walkable ground")
                    q = near
                gl.append(q)
            goals.append(gl)
            styles.append(spec.style)
            speeds.append(rng.uniform(*spec.speed) if spec.speed[1] > spec.speed[0] else spec.speed[0])
            wander.append(not spec.goals)
    fixed = np.array([s for s in starts if s is not None]).reshape(-1, 2)
    n_rand = sum(s is None for s in starts)
    if n_rand:
        w = world
        if spawn_mask is not None and (spawn_mask & world.walkable).sum() >= 4 * n_rand:
            w = _masked(world, spawn_mask)
        rnd = list(w.sample_free(n_rand, rng, min_sep=1.2, avoid=fixed))
        starts = [s if s is not None else rnd.pop(0) for s in starts]
    return np.array(starts), goals, styles, np.array(speeds), np.array(wander)


def _masked(world: World, mask: np.ndarray) -> World:
    return World(world.plane, world.origin, world.cell, world.walkable & mask, world.obstacle, world.support, world.heights,
                 world.scale, world.config)


def _random_goal(world: World, pos: np.ndarray, rng: np.random.Generator, spawn_mask: np.ndarray | None) -> np.ndarray:
    w = world
    if spawn_mask is not None and (spawn_mask & world.walkable).sum() > 20:
        w = _masked(world, spawn_mask)
    cells = np.argwhere(w.walkable & (w.clearance >= 0.4))
    if len(cells) == 0:
        cells = np.argwhere(w.walkable)
    pts = w.to_world(cells)
    d = np.linalg.norm(pts - pos, axis=1)
    far = pts[(d > 4.0) & (d < 14.0)]
    if len(far) == 0:
        far = pts[d > 1.0] if (d > 1.0).any() else pts
    return far[rng.integers(len(far))]


def run_sim(world: World, scenario: Scenario, motion: str = "auto", spawn_mask: np.ndarray | None = None,
            future_frames: int = 45, progress: ProgressFn | None = None, motion_weights: str | None = None) -> SimResult:
    """Simulate the scenario's agents for its duration at its fps; spawn_mask [NX,NY] limits random places (e.g. in view)."""
    rng = np.random.default_rng(scenario.seed)
    fps = float(scenario.fps)
    dt = 1.0 / fps
    T = max(1, int(round(scenario.duration * fps)))
    if scenario.n_agents == 0:
        raise RealsimError("the scenario has no agents")
    starts, goals, styles, speeds, wander = _spawn(world, scenario, rng, spawn_mask)
    A = len(starts)
    looks = random_looks(A, rng)
    scales = np.array([lk.height for lk in looks])
    radii = 0.24 * np.array([lk.build for lk in looks])
    paths: list[list[np.ndarray]] = []
    cur_paths = []
    for i in range(A):
        wp = goals[i] if goals[i] else [_random_goal(world, starts[i], rng, spawn_mask)]
        pts = [starts[i]]
        for g in wp:
            seg = plan_path(world, pts[-1], g)
            pts.extend(seg[1:])
        p = np.array(pts)
        paths.append([p])
        cur_paths.append(p)
    crowd = Crowd(world, starts, radii, speeds, cur_paths, CrowdConfig())
    heading0 = np.array([math.atan2(*(p[min(1, len(p) - 1)] - p[0])[::-1]) if len(p) > 1 else 0.0 for p in cur_paths])
    ctrl, backend = make_motion(A, styles, world, scales, scenario.seed, motion, motion_weights)
    ctrl.reset(starts.copy(), heading0)
    skel = ctrl.skeleton
    feet = _foot_joints(skel)
    rest_h: np.ndarray | None = None
    J = len(skel.names)
    joints = np.zeros((T, A, J, 3))
    root = np.zeros((T, A, 3))
    heading = np.zeros((T, A))
    contacts = np.zeros((T, A, 2), bool)
    targets = np.zeros((T, A, 2))
    raw_foot = np.zeros((T, A))
    shift_xy = np.zeros((T, A))
    prev_xy = starts.copy()
    for t in range(T):
        crowd.step(dt)
        targets[t] = crowd.pos
        fut = np.stack([np.vstack([crowd.pos[i][None], crowd.future(i, future_frames - 1, dt)]) for i in range(A)])
        pose = ctrl.step(fut)
        Jt = np.asarray(pose.joints, np.float64).copy()
        if backend == "controller":
            # body size variation around the ground point under the root
            base = np.concatenate([pose.root[:, None, :2], world.height(pose.root[:, :2])[:, None, None]], -1)
            Jt = base + (Jt - base) * scales[:, None, None]
        r_xy = Jt[:, 0, :2].copy()  # the root joint
        fixed = crowd.enforce(r_xy, prev_xy)
        d = fixed - r_xy
        shift_xy[t] = np.linalg.norm(d, axis=1)
        Jt[..., :2] += d[:, None]
        # feet on the terrain: the lowest foot rests on the ground
        if rest_h is None:
            rest_h = _rest_foot_heights(Jt, world, feet)
        fh = foot_heights(Jt, world, feet, rest_h)
        raw_foot[t] = fh
        Jt[..., 2] -= fh[:, None]
        joints[t] = Jt
        root[t] = np.asarray(pose.root, np.float64)
        root[t, :, :2] += d
        root[t, :, 2] -= fh
        heading[t] = np.asarray(pose.heading, np.float64)
        contacts[t] = np.asarray(pose.contacts, bool)
        crowd.pos = fixed.copy()
        prev_xy = fixed.copy()
        # wanderers pick a new goal on arrival
        for i in np.nonzero(crowd.arrived & wander)[0]:
            g = _random_goal(world, crowd.pos[i], rng, spawn_mask)
            try:
                p = plan_path(world, crowd.pos[i], g)
            except RealsimError:
                continue
            crowd.set_path(i, p)
            paths[i].append(p)
        if (t + 1) % 10 == 0 or t + 1 == T:
            report(progress, "simulate", t + 1, T)
    res = SimResult(fps, joints, root, heading, contacts, targets, skel, looks, styles, speeds, radii, paths, backend)
    res.rest_foot_heights = rest_h
    res.metrics = sim_metrics(res, world, feet, rest_h)
    res.metrics["raw_foot_error_m_p95"] = float(np.percentile(np.abs(raw_foot), 95))
    res.metrics["raw_foot_error_m_max"] = float(np.abs(raw_foot).max())
    res.metrics["constraint_shift_m_max"] = float(shift_xy.max())
    res.metrics["constraint_shift_m_mean"] = float(shift_xy.mean())
    return res


def sim_metrics(res: SimResult, world: World, feet: list[int] | None = None, rest_h: np.ndarray | None = None) -> dict[str, float]:
    """Minimum distance between agents, frames off walkable cells / in obstacles, feet-on-ground error."""
    if feet is None or rest_h is None:
        feet, rest_h = _foot_joints(res.skeleton), res.rest_foot_heights
    xy = res.joints[:, :, 0, :2]  # root joint
    out: dict[str, float] = {}
    A = res.n_agents
    if A > 1:
        d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1) + np.eye(A) * 1e9
        out["min_agent_distance_m"] = float(d.min())
        out["min_body_gap_m"] = float((d - res.radii[:, None] - res.radii[None]).min())
    out["off_walkable_fraction"] = float((~world.is_walkable(xy)).mean())
    out["in_obstacle_fraction"] = float(world.is_obstacle(xy).mean())
    fh = foot_heights(res.joints, world, feet, rest_h)
    out["foot_error_m_max"] = float(np.abs(fh).max())
    out["frames"] = float(res.n_frames)
    out["agents"] = float(A)
    return out
