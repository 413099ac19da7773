"""Paths on the walkable grid: A* (8-connected, octile heuristic, a soft penalty near obstacles) and line-of-sight smoothing."""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from realsim.assets.errors import RealsimError

from .world import World

__all__ = ["PlannerConfig", "astar", "plan_path", "smooth_path", "line_walkable", "resample_path"]

_SQ2 = math.sqrt(2.0)
_NB = [(1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0), (1, 1, _SQ2), (1, -1, _SQ2), (-1, 1, _SQ2), (-1, -1, _SQ2)]


@dataclass
class PlannerConfig:
    clearance_weight: float = 1.5  # extra cost per cell for walking closer than `comfort` to obstacles
    comfort: float = 0.8  # metres
    max_expansions: int = 400_000


def astar(walkable: np.ndarray, start: tuple[int, int], goal: tuple[int, int], penalty: np.ndarray | None = None,
          max_expansions: int = 400_000) -> list[tuple[int, int]] | None:
    """Shortest 8-connected path of cells from start to goal (no corner cutting); None if unreachable."""
    nx, ny = walkable.shape
    if not (walkable[start] and walkable[goal]):
        return None
    g = {start: 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    gx, gy = goal

    def h(c: tuple[int, int]) -> float:
        dx, dy = abs(c[0] - gx), abs(c[1] - gy)
        return (dx + dy) + (_SQ2 - 2) * min(dx, dy)

    openq = [(h(start), 0.0, start)]
    closed = set()
    n = 0
    while openq:
        _, gc, c = heapq.heappop(openq)
        if c in closed:
            continue
        if c == goal:
            path = [c]
            while c in parent:
                c = parent[c]
                path.append(c)
            return path[::-1]
        closed.add(c)
        n += 1
        if n > max_expansions:
            return None
        ci, cj = c
        for di, dj, w in _NB:
            ni, nj = ci + di, cj + dj
            if ni < 0 or nj < 0 or ni >= nx or nj >= ny or not walkable[ni, nj]:
                continue
            if di and dj and not (walkable[ci + di, cj] and walkable[ci, cj + dj]):
                continue  # no squeezing diagonally between two blocked cells
            step = w * (1.0 + (penalty[ni, nj] if penalty is not None else 0.0))
            ng = gc + step
            nb = (ni, nj)
            if ng < g.get(nb, math.inf):
                g[nb] = ng
                parent[nb] = c
                heapq.heappush(openq, (ng + h(nb), ng, nb))
    return None


def line_walkable(world: World, a: np.ndarray, b: np.ndarray, min_clearance: float = 0.0) -> bool:
    """Whether the straight segment a->b stays on walkable cells (sampled at a quarter cell)."""
    L = float(np.linalg.norm(b - a))
    k = max(2, int(math.ceil(L / (world.cell * 0.25))) + 1)
    pts = a[None] + (b - a)[None] * np.linspace(0, 1, k)[:, None]
    if not world.is_walkable(pts).all():
        return False
    return min_clearance <= 0 or bool((world.clearance_at(pts) >= min_clearance).all())


def smooth_path(world: World, pts: np.ndarray, min_clearance: float = 0.0) -> np.ndarray:
    """String pulling: keep only the waypoints needed for straight walkable segments [K,2]."""
    if len(pts) <= 2:
        return pts
    out = [pts[0]]
    i = 0
    while i < len(pts) - 1:
        j = len(pts) - 1
        while j > i + 1 and not line_walkable(world, pts[i], pts[j], min_clearance):
            j -= 1
        out.append(pts[j])
        i = j
    return np.array(out)


def resample_path(pts: np.ndarray, spacing: float) -> np.ndarray:
    """Points [M,2] every `spacing` metres along a polyline [K,2] (the last point kept)."""
    if len(pts) < 2:
        return np.asarray(pts, np.float64)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg)]
    if s[-1] < 1e-9:
        return pts[:1]
    q = np.r_[np.arange(0, s[-1], spacing), s[-1]]
    return np.stack([np.interp(q, s, pts[:, 0]), np.interp(q, s, pts[:, 1])], 1)


def plan_path(world: World, start: np.ndarray, goal: np.ndarray, config: PlannerConfig | None = None) -> np.ndarray:
    """Smoothed walkable path [K,2] in world metres from start to goal (both snapped to the nearest walkable cell)."""
    cfg = config or PlannerConfig()
    start = np.asarray(start, np.float64)
    goal = np.asarray(goal, np.float64)
    s_xy = start if world.is_walkable(start[None])[0] else world.nearest_walkable(start[None])[0]
    g_xy = goal if world.is_walkable(goal[None])[0] else world.nearest_walkable(goal[None])[0]
    s_ij = tuple(int(v) for v in world.to_cell(s_xy))
    g_ij = tuple(int(v) for v in world.to_cell(g_xy))
    penalty = cfg.clearance_weight * np.clip(1.0 - world.clearance / cfg.comfort, 0, 1)
    cells = astar(world.walkable, s_ij, g_ij, penalty, cfg.max_expansions)
    if cells is None:
        raise RealsimError(f"no walkable path from ({start[0]:.1f}, {start[1]:.1f}) to ({goal[0]:.1f}, {goal[1]:.1f}) m")
    pts = world.to_world(np.array(cells))
    pts[0], pts[-1] = s_xy, g_xy
    return smooth_path(world, pts, min_clearance=min(0.3, cfg.comfort * 0.5))
