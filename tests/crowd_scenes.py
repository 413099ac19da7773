"""Crowd test scenes: a walled corridor (optionally split by a wall with a doorway) and two groups crossing it head-on,
plus the measures the crowd tests assert (body overlap, frame-to-frame jumps, arrival)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from realsim.sim.scenario import AgentSpec, Scenario
from realsim.sim.world import World

CELL = 0.1
BODY_CLEARANCE = 0.3  # m: walkable = where a body centre keeps this far from walls (what world_from_points does)


def hall(width: float, length: float, door: float | None = None, wall: float = 0.3) -> World:
    """A corridor width x length m with 0.2 m walls; `door`: a `wall` m thick cross wall at mid-length with a door that wide."""
    nx, ny = int(round(length / CELL)), int(round(width / CELL))
    obst = np.zeros((nx, ny), bool)
    obst[:, :2] = obst[:, -2:] = True
    if door is not None:
        x0, h = nx // 2, int(round(wall / CELL / 2))
        obst[x0 - h: x0 + h, :] = True
        c, half = ny / 2, door / CELL / 2
        obst[x0 - h: x0 + h, int(round(c - half)): int(round(c + half))] = False
    walk = ndimage.distance_transform_edt(~obst) * CELL >= BODY_CLEARANCE
    return World(np.array([0, 0, 1.0, 0]), np.zeros(2), CELL, walk, obst, np.ones_like(walk))


def crossing(n: int, width: float, length: float, seconds: float, speed: float = 1.3, seed: int = 0) -> Scenario:
    """n agents in two groups (3 abreast, 1 m apart) at both ends, each walking to the mirror of its start."""
    ys = np.array([width / 2 - 1.0, width / 2, width / 2 + 1.0])
    agents = []
    for side in (0, 1):
        m = n // 2 if side == 0 else n - n // 2
        for k in range(m):
            x = 1.2 + 1.0 * (k // 3)
            y = ys[k % 3] + 0.1 * ((k // 3) % 2)
            sx, gx = (x, length - x) if side == 0 else (length - x, x)
            agents.append(AgentSpec(start=(sx, y), goals=[(gx, y)], speed=(speed, speed)))
    return Scenario(agents=agents, duration=seconds, seed=seed)


def crowd_stats(res, scenario: Scenario, reach: float = 0.5) -> dict[str, float]:
    """What the video shows (root joints [T,A,2]): body overlap, jumps, arrival.

    jump: how far a frame's root step exceeds the walking step (the agent's preferred speed x 1.5 per frame, the root's
    speed swings within a stride); accel_jump: the change of the step between consecutive frames (a teleport shows as both).
    """
    xy = res.joints[:, :, 0, :2]
    A = res.n_agents
    d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1) + np.eye(A) * 1e9
    gap = d - res.radii[:, None] - res.radii[None]
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1)  # [T-1,A]
    walk = 1.5 * res.speeds[None] / res.fps
    dstep = np.linalg.norm(np.diff(xy, 2, axis=0), axis=-1)
    goals = np.array([a.goals[-1] for a in scenario.agents])
    dist = np.linalg.norm(xy - goals[None], axis=-1)  # [T,A]
    reached = (dist < reach).any(0)
    first = np.where(reached, (dist < reach).argmax(0), -1) / res.fps
    return {"min_gap_m": float(gap.min()), "overlap_frame_fraction": float((gap.min((1, 2)) < 0).mean()),
            "jump_m_max": float(np.maximum(step - walk, 0).max()), "accel_jump_m_max": float(dstep.max()),
            "reached": int(reached.sum()), "agents": A, "last_arrival_s": float(first.max()) if reached.all() else -1.0,
            "end_error_m_max": float(dist[-1].max()), "shift_m_max": float(res.raw["shift"].max()),
            "replans": int(sum(len(p) - 1 for p in res.paths))}
