"""Crowd navigation (ORCA, sim/orca.py + sim/crowd.py): the half-planes and the LP against hand-worked geometry, head-on
crossings in a corridor and through a doorway (10 agents with the diffusion controller; 30 with the controller interface's
kinematic walker, whose root is the crowd's), re-planning when a passage is blocked, and the position pass."""
from __future__ import annotations

import math

import numpy as np
import pytest
from crowd_scenes import crossing, crowd_stats, hall

from realsim.sim.crowd import Crowd
from realsim.sim.loop import run_sim
from realsim.sim.orca import agent_line, obstacle_line, solve_velocity
from realsim.sim.world import World


def _allowed(line, v) -> float:
    """<= 0 where velocity v satisfies the half-plane."""
    px, py, dx, dy = line
    return dx * (py - v[1]) - dy * (px - v[0])


def test_orca_half_planes_and_lp_against_geometry():
    # a static obstacle point 1 m ahead (+x), 0.2 m margin, tau 2 s: v_x <= (1 - 0.2) / 2 = 0.4, sideways free
    ln = obstacle_line((1.0, 0.0), 1.0, 0.2, 2.0, 1 / 30)
    assert solve_velocity([ln], [], (1.5, 0.0), 2.0) == pytest.approx((0.4, 0.0))
    assert solve_velocity([ln], [], (0.3, 1.0), 2.0) == pytest.approx((0.3, 1.0))  # allowed: unchanged
    # the LP's answer is the projection of the preferred velocity onto the half-plane (a 45 degree line)
    v = solve_velocity([obstacle_line((1.0, 1.0), math.sqrt(2), 0.0, 1.0, 1 / 30)], [], (2.0, 2.0), 5.0)
    assert (v[0] + v[1]) / math.sqrt(2) == pytest.approx(math.sqrt(2)) and v[0] == pytest.approx(v[1])  # v.n <= d / tau
    # two agents head-on, 4 m apart, 1.3 m/s each, radii 0.3: each takes half of the avoidance and the new relative
    # velocity stays outside the velocity obstacle for tau (no collision within 2 s when both keep it)
    p, r, tau = np.array([4.0, 0.0]), 0.6, 2.0
    va, vb = (1.3, 0.01), (-1.3, -0.01)
    la = agent_line((p[0], p[1]), (va[0] - vb[0], va[1] - vb[1]), va, r, tau, 1 / 30)
    lb = agent_line((-p[0], -p[1]), (vb[0] - va[0], vb[1] - va[1]), vb, r, tau, 1 / 30)
    na, nb = solve_velocity([], [la], va, 1.5), solve_velocity([], [lb], vb, 1.5)
    assert _allowed(la, na) <= 1e-9 and _allowed(lb, nb) <= 1e-9
    assert na[1] == pytest.approx(-nb[1], abs=1e-6) and na[0] == pytest.approx(-nb[0], abs=1e-6)  # reciprocal
    rel = np.subtract(na, nb)
    t = np.linspace(0, tau, 201)
    gap = np.linalg.norm(p[None] - rel[None] * t[:, None], axis=1)
    assert gap.min() >= r - 1e-6 and abs(na[1]) > 0.05  # they step sideways, nobody stops dead
    # infeasible agent constraints (boxed in from both sides): the least-violating velocity, obstacles kept hard
    box = [agent_line((0.5, 0.0), (0.0, 0.0), (0.0, 0.0), 0.6, tau, 1 / 30),
           agent_line((-0.5, 0.0), (0.0, 0.0), (0.0, 0.0), 0.6, tau, 1 / 30)]
    v = solve_velocity([], box, (1.0, 0.0), 1.5)
    assert abs(v[0]) < 1e-6


def _check(st: dict, tag: str) -> None:
    print(f"\n[{tag}] " + ", ".join(f"{k}={v:.4g}" for k, v in st.items()))
    assert st["min_gap_m"] >= -1e-6, f"{tag}: bodies overlap"
    assert st["jump_m_max"] <= 0.05 and st["accel_jump_m_max"] <= 0.05, f"{tag}: a body jumped"
    assert st["reached"] == st["agents"], f"{tag}: {st['agents'] - st['reached']} agents never reached their goal"
    assert st["end_error_m_max"] < 0.5, f"{tag}: agents pushed off their goals at the end"


@pytest.mark.parametrize("door,seconds", [(None, 16.0), (2.0, 22.0)], ids=["corridor", "doorway"])
def test_ten_agents_cross_head_on_with_the_diffusion_controller(door, seconds):
    """10 agents, two groups meeting head-on in a 4 m corridor (or a 2 m door): no overlap, no jump, everybody arrives."""
    sc = crossing(10, 4.0, 16.0, seconds)
    res = run_sim(hall(4.0, 16.0, door), sc, motion="controller")
    assert res.motion_backend == "controller"
    st = crowd_stats(res, sc)
    _check(st, f"10 agents, {'door' if door else 'corridor'}, diffusion")
    # the position pass only nudges: max over all frames and agents 5.3 cm (doorway, seed 0, shipped weights), 2.6-3.9 cm
    # over scenario seeds 1-3 for these and the previous weights; the visible frame-to-frame jump is bounded by _check
    assert st["shift_m_max"] < 0.06


@pytest.mark.parametrize("door,seconds", [(None, 30.0), (3.0, 40.0)], ids=["corridor", "doorway"])
def test_thirty_agents_cross_head_on(door, seconds):
    """30 agents (15 each way, 3 abreast) in a 5 m corridor or through a 3 m door. The crowd runs with the kinematic walker
    (same controller interface, root = the crowd's target): 30 diffusion agents ran at ~0.3 s a frame on the shared 2-core
    machine (an 18 s corridor crossing took 3 min, all constraints held), too slow for a unit test."""
    sc = crossing(30, 5.0, 16.0, seconds)
    res = run_sim(hall(5.0, 16.0, door), sc, motion="procedural")
    _check(crowd_stats(res, sc), f"30 agents, {'door' if door else 'corridor'}, kinematic")


def test_blocked_passage_is_replanned():
    """Four people stand in the nearer of two gaps; the walker stalls there, re-plans through the other gap and arrives."""
    walk = np.ones((100, 60), bool)  # 10 x 6 m, cell 0.1
    walk[48:52, :] = False  # a wall across at x = 5 m ...
    walk[48:52, 5:20] = True  # ... with a gap at y 0.5-2 m (on the straight line) ...
    walk[48:52, 45:58] = True  # ... and one at y 4.5-5.8 m
    w = World(np.array([0, 0, 1.0, 0]), np.zeros(2), 0.1, walk, ~walk, np.ones_like(walk))
    standing = [[5.0, 0.7], [5.0, 1.25], [5.0, 1.8], [4.4, 1.25]]
    starts = np.array([[1.0, 1.2]] + standing)
    paths = [np.array([[1.0, 1.2], [5.0, 1.2], [9.0, 1.2]])] + [np.array([p]) for p in standing]
    crowd = Crowd(w, starts, np.array([0.25, 0.27, 0.27, 0.27, 0.27]), np.array([1.3, 0, 0, 0, 0.0]), paths)
    for _ in range(30 * 25):
        crowd.step(1 / 30)
        if crowd.arrived[0]:
            break
    assert crowd.n_replans >= 1 and crowd.arrived[0]
    assert np.linalg.norm(crowd.pos[0] - [9.0, 1.2]) < 0.5
    assert crowd.paths[0][:, 1].max() > 4.0  # the new way goes through the far gap


def test_enforce_pushes_apart_and_back_onto_walkable():
    w = hall(3.0, 14.0)
    crowd = Crowd(w, np.array([[5.0, 1.5], [5.1, 1.5]]), np.array([0.25, 0.25]), np.array([1.0, 1.0]),
                  [np.array([[5.0, 1.5]]), np.array([[5.1, 1.5]])])
    fixed = crowd.enforce(np.array([[5.0, 1.5], [5.1, 1.5]]), np.array([[4.9, 1.5], [5.2, 1.5]]))
    assert np.linalg.norm(fixed[0] - fixed[1]) >= 0.5 - 1e-6
    off = crowd.enforce(np.array([[5.0, 0.05], [8.0, 1.5]]), np.array([[5.0, 0.6], [8.0, 1.5]]))
    assert w.is_walkable(off).all()
