"""Crowd navigation: head-on encounters resolve without overlap, everybody arrives, and nobody leaves the walkable area."""
from __future__ import annotations

import numpy as np

from realsim.sim.crowd import Crowd
from realsim.sim.world import World


def _corridor(width_m: float = 3.0, length_m: float = 14.0, cell: float = 0.1) -> World:
    nx, ny = int(length_m / cell), int(width_m / cell)
    walk = np.ones((nx, ny), bool)
    walk[:, :2] = walk[:, -2:] = False  # walls along the corridor
    return World(np.array([0, 0, 1.0, 0]), np.zeros(2), cell, walk, ~walk, np.ones_like(walk))


def test_head_on_swap_in_a_corridor():
    w = _corridor()
    y = 1.5
    starts = np.array([[1.0, y], [13.0, y], [1.0, y + 0.05], [13.0, y - 0.05]])
    goals = np.array([[13.0, y], [1.0, y], [12.0, y], [2.0, y]])  # followers stop short of the leaders
    paths = [np.stack([s, g]) for s, g in zip(starts, goals)]
    starts[2, 0] -= 0.8  # second pair follows behind the first
    starts[3, 0] += 0.8
    paths[2][0], paths[3][0] = starts[2], starts[3]
    radii = np.full(4, 0.25)
    crowd = Crowd(w, starts, radii, np.full(4, 1.3), paths)
    dmin = np.inf
    for _ in range(int(20 / (1 / 30))):
        p = crowd.step(1 / 30)
        d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(4) * 9
        dmin = min(dmin, d.min())
        assert w.is_walkable(p).all()
        if crowd.arrived.all():
            break
    assert crowd.arrived.all(), np.linalg.norm(crowd.pos - goals, axis=1)
    assert dmin >= 2 * 0.25  # bodies never overlap
    assert np.linalg.norm(crowd.pos - goals, axis=1).max() < 0.5


def test_enforce_pushes_apart_and_back_onto_walkable():
    w = _corridor()
    crowd = Crowd(w, np.array([[5.0, 1.5], [5.1, 1.5]]), np.array([0.25, 0.25]), np.array([1.0, 1.0]),
                  [np.array([[5.0, 1.5]]), np.array([[5.1, 1.5]])])
    fixed = crowd.enforce(np.array([[5.0, 1.5], [5.1, 1.5]]), np.array([[4.9, 1.5], [5.2, 1.5]]))
    assert np.linalg.norm(fixed[0] - fixed[1]) >= 0.5 - 1e-6
    off = crowd.enforce(np.array([[5.0, 0.05], [8.0, 1.5]]), np.array([[5.0, 0.6], [8.0, 1.5]]))
    assert w.is_walkable(off).all()
