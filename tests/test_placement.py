"""Agent placement degrades instead of failing: relaxed clearance and spacing, in view then anywhere, fewer agents with one
warning, goals snapped onto reachable walkable ground; only a world without walkable ground is an error."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from realsim.assets.errors import RealsimError
from realsim.sim.loop import run_sim
from realsim.sim.scenario import AgentSpec, Scenario, default_scenario
from realsim.sim.spawn import BODY_SEP, random_goal
from realsim.sim.world import World


def _world(walk: np.ndarray, cell: float = 0.25) -> World:
    return World(np.array([0, 0, 1.0, 0]), np.zeros(2), cell, walk, ~walk, np.ones_like(walk))


def _striped(n: int = 40) -> World:
    """10 m x 10 m crossed by thin obstacle lines every 0.75 m (0.5 m lanes) plus one 1 m square of open ground: like the
    demo world that failed, plenty of walkable area but only a handful of cells with >= 0.3 m clearance."""
    walk = np.ones((n, n), bool)
    walk[:, ::3] = False
    walk[[0, -1], :] = False
    walk[18:22, 17:21] = True
    return _world(walk)


def _pairwise_min(p: np.ndarray) -> float:
    d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(len(p)) * 1e9
    return float(d.min())


def test_cramped_world_still_places_all_agents(caplog):
    w = _striped()
    roomy = w.to_world(np.argwhere(w.clearance >= 0.3))
    assert 0 < len(roomy) and np.ptp(roomy, axis=0).max() < 1.0  # at 1.2 m apart the roomy cells hold a single agent
    with caplog.at_level(logging.WARNING, logger="realsim.sim"):
        pts = w.sample_free(6, np.random.default_rng(0), min_sep=1.2)
    assert pts.shape == (6, 2) and w.is_walkable(pts).all()
    assert _pairwise_min(pts) >= 1.2  # relaxing the clearance was enough: the spacing asked for is kept
    assert not caplog.records
    # many more than fit at 1.2 m: the spacing relaxes but never below one body (no overlapping bodies)
    with caplog.at_level(logging.WARNING, logger="realsim.sim"):
        many = w.sample_free(60, np.random.default_rng(1), min_sep=1.2)
    assert len(many) == 60 and w.is_walkable(many).all() and _pairwise_min(many) >= BODY_SEP - 1e-9


def test_world_that_holds_two_places_two_with_one_warning(caplog):
    walk = np.zeros((12, 12), bool)
    walk[4:8, 6] = True  # a 1 m x 0.25 m strip: two bodies 0.6 m apart fit, three do not
    w = _world(walk)
    with caplog.at_level(logging.WARNING, logger="realsim.sim"):
        pts = w.sample_free(6, np.random.default_rng(0), min_sep=1.2)
    assert len(pts) == 2 and w.is_walkable(pts).all() and _pairwise_min(pts) >= BODY_SEP
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 1 and "placed 2 of 6 agents" in msgs[0] and "0.6 m apart" in msgs[0], msgs
    # the whole sim runs with the agents that fit, and says how many were asked for
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="realsim.sim"):
        res = run_sim(w, default_scenario(6, 1.0, seed=0), motion="auto")
    assert res.n_agents == 2 and res.joints.shape[1] == 2 and len(res.looks) == 2 and len(res.paths) == 2
    assert res.metrics["agents"] == 2 and res.metrics["agents_requested"] == 6
    assert [r.getMessage() for r in caplog.records if "placed" in r.getMessage()] == \
        ["placed 2 of 6 agents: the walkable ground holds no more at >= 0.6 m apart"]
    assert w.is_walkable(res.joints[:, :, 0, :2]).all()


def test_no_walkable_ground_is_the_only_error():
    w = _world(np.zeros((10, 10), bool))
    with pytest.raises(RealsimError, match="no walkable ground"):
        w.sample_free(3, np.random.default_rng(0))
    with pytest.raises(RealsimError, match="no walkable ground"):
        run_sim(w, default_scenario(3, 1.0), motion="auto")


def test_run_sim_on_a_cramped_world_with_the_default_motion():
    w = _striped()
    res = run_sim(w, default_scenario(6, 2.0, seed=1), motion="auto")
    assert res.motion_backend == "controller" and res.n_agents == 6 and res.metrics["agents_requested"] == 6
    xy = res.joints[:, :, 0, :2]
    assert w.is_walkable(xy).all()
    d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1) + np.eye(6) * 1e9
    assert (d >= res.radii[:, None] + res.radii[None] - 1e-6).all()
    assert res.metrics["foot_error_m_max"] < 1e-6


def test_spawn_in_view_falls_back_to_any_walkable_ground(caplog):
    walk = np.ones((40, 40), bool)
    w = _world(walk)
    view = np.zeros_like(walk)
    view[10:12, 10:12] = True  # 0.5 m square in view: room for one body
    with caplog.at_level(logging.WARNING, logger="realsim.sim"):
        res = run_sim(w, default_scenario(4, 0.2, seed=0), motion="auto", spawn_mask=view)
    assert res.n_agents == 4
    start = res.raw["from_xy"][0]
    in_view = view[tuple(w.to_cell(start).T)]
    assert in_view.sum() == 1 and _pairwise_min(start) >= 1.2  # the view keeps one; the rest stand outside it, well apart
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["3 of 4 agents start out of the camera's view: the walkable ground in view holds no more at >= 0.6 m apart"]


def test_goals_snap_to_reachable_walkable_ground(caplog):
    walk = np.ones((60, 24), bool)  # 15 m x 6 m
    walk[36:48, 6:18] = False  # a 3 m block (an obstacle): a goal at its centre is 1.5 m from walkable ground
    walk[52:58, 2:8] = False
    walk[54:56, 4:6] = True  # a walled-in patch: walkable but unreachable
    w = _world(walk)
    sc = Scenario(agents=[AgentSpec(start=(5.0, 3.0), goals=[(10.5, 3.0)], speed=(1.4, 1.4)),
                          AgentSpec(start=(5.0, 5.5), goals=[(13.75, 1.25)], speed=(1.4, 1.4))], duration=9.0)
    with caplog.at_level(logging.WARNING, logger="realsim.sim"):
        res = run_sim(w, sc, motion="auto")
    msgs = sorted(r.getMessage() for r in caplog.records)
    assert len(msgs) == 2, msgs
    assert msgs[0].startswith("agents[0].goals[0] (10.50, 3.00) m is not on walkable ground: moved 1.6 m to (12.12, 3.12)")
    assert msgs[1].startswith("agents[1].goals[0] (13.75, 1.25) m cannot be reached from the start: moved")
    end = res.joints[-1, :, 0, :2]
    goal0 = w.nearest_walkable(np.array([[10.5, 3.0]]))[0]
    assert np.linalg.norm(goal0 - [10.5, 3.0]) == pytest.approx(1.5, abs=0.2)
    assert np.linalg.norm(end[0] - goal0) < 0.6
    assert w.region_of(np.array([5.0, 5.5]))[tuple(w.to_cell(end[1]))]  # agent 1 stays in the region it can reach
    # an explicit start off walkable ground stays a clear error that names the nearest walkable place
    with pytest.raises(RealsimError, match=r"agents\[0\].start \(10.50, 3.00\) m is not on walkable ground \(the nearest"):
        run_sim(w, Scenario(agents=[AgentSpec(start=(10.5, 3.0))], duration=0.5), motion="auto")


def test_random_goal_never_raises_on_a_cramped_world():
    walk = np.zeros((8, 8), bool)
    walk[3, 3] = True  # one walkable cell
    w = _world(walk)
    rng = np.random.default_rng(0)
    here = w.to_world(np.array([3, 3]))
    for mask in (None, np.ones_like(walk), np.zeros_like(walk)):
        g = random_goal(w, here, rng, mask)
        assert np.allclose(g, here)
    res = run_sim(w, default_scenario(3, 0.5, seed=0), motion="auto")
    assert res.n_agents == 1 and res.metrics["agents_requested"] == 3
