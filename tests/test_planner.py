"""A* on the walkable grid (optimal lengths, no corner cutting, unreachable goals) and smoothed paths that stay walkable."""
from __future__ import annotations

import math

import numpy as np
import pytest

from realsim.assets.errors import RealsimError
from realsim.sim.planner import astar, line_walkable, plan_path, resample_path, smooth_path
from realsim.sim.world import World


def _world(walk: np.ndarray, cell: float = 0.25) -> World:
    return World(np.array([0, 0, 1.0, 0]), np.zeros(2), cell, walk, ~walk, np.ones_like(walk))


def _length(cells) -> float:
    c = np.array(cells)
    return float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum())


def test_astar_optimal_on_open_grid_and_around_a_wall():
    walk = np.ones((20, 20), bool)
    p = astar(walk, (0, 0), (19, 7))
    assert p[0] == (0, 0) and p[-1] == (19, 7)
    assert _length(p) == pytest.approx(12 + 7 * math.sqrt(2))  # octile distance
    walk[10, :18] = False  # a wall with a gap at the top
    p = astar(walk, (2, 2), (17, 2))
    assert all(walk[c] for c in p)
    # must pass through the gap (10, 18) or (10, 19)
    assert any(c[0] == 10 and c[1] >= 18 for c in p)
    # no diagonal squeeze between two blocked cells
    walk2 = np.ones((3, 3), bool)
    walk2[0, 1] = walk2[1, 0] = False
    assert astar(walk2, (0, 0), (1, 1)) is None


def test_unreachable_goal():
    walk = np.ones((10, 10), bool)
    walk[5, :] = False
    assert astar(walk, (0, 0), (9, 9)) is None
    with pytest.raises(RealsimError, match="no walkable path"):
        plan_path(_world(walk), np.array([0.3, 0.3]), np.array([2.3, 2.3]))


def test_plan_path_is_smooth_and_walkable():
    walk = np.ones((60, 40), bool)
    walk[25:35, 0:30] = False  # a block to walk around
    w = _world(walk)
    path = plan_path(w, np.array([1.0, 1.0]), np.array([14.0, 1.5]))
    assert len(path) <= 6  # string pulling leaves a few corners, not a staircase
    dense = resample_path(path, 0.05)
    assert w.is_walkable(dense).all()
    for a, b in zip(path[:-1], path[1:]):
        assert line_walkable(w, a, b)
    # close to the true shortest route (around the block's free end at y >= 7.5 m)
    corner_route = np.linalg.norm([6.25 - 1.0, 7.5 - 1.0]) + 2.5 + np.linalg.norm([14.0 - 8.75, 7.5 - 1.5])
    total = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
    assert corner_route - 0.1 < total < corner_route * 1.15


def test_smooth_path_keeps_straight_line():
    w = _world(np.ones((20, 20), bool))
    pts = np.array([[0.2, 0.2], [1.0, 0.5], [2.0, 1.5], [4.5, 4.5]])
    s = smooth_path(w, pts)
    assert len(s) == 2 and np.allclose(s[0], pts[0]) and np.allclose(s[-1], pts[-1])
