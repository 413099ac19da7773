"""Where agents start and where they go: starts placed on the walkable ground (in view first), goals snapped onto it.

Placement degrades instead of failing: in-view cells first, then any walkable cells, with relaxed clearance and spacing,
and finally fewer agents than asked with one warning line. Only a world without walkable ground is an error. An explicit
scenario `start` off walkable ground stays a clear error (the user said where the agent is); goals and waypoints off it,
or unreachable from the start, are moved to the nearest reachable walkable cell with one warning each.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from realsim.assets.errors import RealsimError

from .scenario import Scenario
from .world import World

__all__ = ["Spawn", "spawn_agents", "random_goal", "BODY_SEP"]

log = logging.getLogger("realsim.sim.spawn")

BODY_SEP = 0.6  # m: the closest two random starts may be (two bodies of radius <= 0.26 m plus the crowd's margin)
START_SEP = 1.2  # m: the spacing random starts aim for


@dataclass
class Spawn:
    """The agents actually placed (A <= requested): starts [A,2], waypoints, styles, speeds [A], wander flags [A]."""

    starts: np.ndarray
    goals: list[list[np.ndarray]]
    styles: list[str]
    speeds: np.ndarray
    wander: np.ndarray
    requested: int


def _masked(world: World, mask: np.ndarray) -> World:
    """The world with walkable cells limited to mask [NX,NY] (its clearance then counts the mask's edge too)."""
    return World(world.plane, world.origin, world.cell, world.walkable & mask, world.obstacle, world.support, world.heights,
                 world.scale, world.config)


def _fmt(p: np.ndarray) -> str:
    return f"({p[0]:.2f}, {p[1]:.2f})"


def _random_starts(world: World, n: int, rng: np.random.Generator, fixed: np.ndarray,
                   spawn_mask: np.ndarray | None) -> np.ndarray:
    """Up to n random starts [m,2]: in view (spawn_mask) first, then anywhere walkable; one warning when short or out of view."""
    view = None if spawn_mask is None or not (spawn_mask & world.walkable).any() else _masked(world, spawn_mask)
    pts = np.zeros((0, 2))
    sep = START_SEP
    if view is not None:
        pts, sep = view.place(n, rng, START_SEP, avoid=fixed, body_sep=BODY_SEP)
    n_view = len(pts)
    if len(pts) < n:
        more, sep = world.place(n - len(pts), rng, START_SEP, avoid=np.vstack([fixed, pts]), body_sep=BODY_SEP)
        pts = np.vstack([pts, more])
    if len(pts) < n:
        where = " (in view or out of it)" if view is not None else ""
        log.warning("placed %d of %d agents: the walkable ground%s holds no more at >= %.1f m apart", len(pts), n, where, sep)
    elif view is not None and n_view < n:
        log.warning("%d of %d agents start out of the camera's view: the walkable ground in view holds no more at >= %.1f m "
                    "apart", n - n_view, n, BODY_SEP)
    return pts


def _snap_goal(world: World, q: np.ndarray, start: np.ndarray, where: str, told: set[str]) -> np.ndarray:
    """q [2] itself when walkable and reachable from start, else the nearest such cell centre (one warning per `where`)."""
    region = world.region_of(start)
    ij = world.to_cell(q)
    if world.in_grid(ij) and region[ij[0], ij[1]] and world.is_walkable(q[None])[0]:
        return q
    near = world.nearest_walkable(q[None], region)[0]
    if where not in told:
        told.add(where)
        why = "is not on walkable ground" if not world.is_walkable(q[None])[0] else "cannot be reached from the start"
        log.warning("%s %s m %s: moved %.1f m to %s", where, _fmt(q), why, float(np.linalg.norm(near - q)), _fmt(near))
    return near


def spawn_agents(world: World, scenario: Scenario, rng: np.random.Generator, spawn_mask: np.ndarray | None) -> Spawn:
    """Place the scenario's agents (random ones may be fewer than asked, with a warning); goals snapped to reachable ground."""
    if not world.walkable.any():
        raise RealsimError("the scene has no walkable ground for agents")
    starts: list[np.ndarray | None] = []
    goal_in: list[list[tuple[str, np.ndarray]]] = []
    styles, speeds, wander = [], [], []
    for k, spec in enumerate(scenario.agents):
        for _ in range(spec.count):
            if spec.start is not None:
                p = np.array(spec.start, np.float64)
                if not world.is_walkable(p[None])[0]:
                    raise RealsimError(f"agents[{k}].start {_fmt(p)} m is not on walkable ground (the nearest walkable place "
                                       f"is {_fmt(world.nearest_walkable(p[None])[0])} m)")
                starts.append(p)
            else:
                starts.append(None)
            goal_in.append([(f"agents[{k}].goals[{j}]", np.array(g, np.float64)) for j, g in enumerate(spec.goals)])
            styles.append(spec.style)
            speeds.append(rng.uniform(*spec.speed) if spec.speed[1] > spec.speed[0] else spec.speed[0])
            wander.append(not spec.goals)
    fixed = np.array([s for s in starts if s is not None]).reshape(-1, 2)
    n_rand = sum(s is None for s in starts)
    if n_rand:
        rnd = list(_random_starts(world, n_rand, rng, fixed, spawn_mask))
        starts = [s if s is not None else (rnd.pop(0) if rnd else None) for s in starts]
    keep = [i for i, s in enumerate(starts) if s is not None]  # random agents that did not fit are dropped
    told: set[str] = set()
    goals = [[_snap_goal(world, q, starts[i], where, told) for where, q in goal_in[i]] for i in keep]
    return Spawn(np.array([starts[i] for i in keep]).reshape(-1, 2), goals, [styles[i] for i in keep],
                 np.array([speeds[i] for i in keep]), np.array([wander[i] for i in keep], bool), len(starts))


def random_goal(world: World, pos: np.ndarray, rng: np.random.Generator, spawn_mask: np.ndarray | None) -> np.ndarray:
    """A wander goal [2] reachable from pos, 4-14 m away when possible, in view when enough of the view is reachable."""
    region = world.region_of(pos)
    w = world
    if spawn_mask is not None and (spawn_mask & region).sum() > 20:
        w = _masked(world, spawn_mask)
    cells = w.walkable & region
    roomy = cells & (w.clearance >= 0.4)
    pts = w.to_world(np.argwhere(roomy if roomy.any() else cells))
    if len(pts) == 0:
        return np.asarray(pos, np.float64).copy()
    d = np.linalg.norm(pts - pos, axis=1)
    far = pts[(d > 4.0) & (d < 14.0)]
    if len(far) == 0:
        far = pts[d > 1.0] if (d > 1.0).any() else pts
    return far[rng.integers(len(far))]
