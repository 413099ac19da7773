"""Optimal reciprocal collision avoidance (ORCA; van den Berg, Guy, Lin & Manocha 2011), written for realsim.

Each agent's velocity must lie in the half-planes that keep it from colliding with every neighbour within `tau` seconds,
each agent taking half of the avoidance (reciprocity); static obstacle points take none of it. The new velocity is the one
closest to the preferred velocity within those half-planes and the speed disc (an incremental 2-D linear program); when they
leave nothing, the velocity that violates the agents' half-planes least (obstacle half-planes stay hard).

A half-plane is (point p, unit direction d): allowed velocities v satisfy det(d, p - v) <= 0 (v lies left of d).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Line", "agent_line", "obstacle_line", "solve_velocity", "grid_obstacle_lines", "keep_right"]

Line = tuple[float, float, float, float]  # px, py, dx, dy
_EPS = 1e-9


def _det(ax: float, ay: float, bx: float, by: float) -> float:
    return ax * by - ay * bx


def agent_line(rel_pos: tuple[float, float], rel_vel: tuple[float, float], vel: tuple[float, float], radius: float,
               tau: float, dt: float, share: float = 0.5) -> Line:
    """The ORCA half-plane for an agent at `vel` against one neighbour: rel_pos = p_other - p, rel_vel = v - v_other,
    radius = the sum of both radii; `share` of the avoidance is this agent's (0.5 reciprocal, 1 for a static neighbour)."""
    px, py = rel_pos
    vx, vy = rel_vel
    dist_sq = px * px + py * py
    r_sq = radius * radius
    if dist_sq > r_sq:
        inv_tau = 1.0 / tau
        wx, wy = vx - inv_tau * px, vy - inv_tau * py  # from the cut-off circle's centre to the relative velocity
        w_sq = wx * wx + wy * wy
        dot1 = wx * px + wy * py
        if dot1 < 0.0 and dot1 * dot1 > r_sq * w_sq:  # nearest boundary point is on the cut-off circle
            wl = math.sqrt(w_sq)
            ux, uy = wx / wl, wy / wl
            dx, dy = uy, -ux
            s = radius * inv_tau - wl
            ux, uy = s * ux, s * uy
        else:  # nearest boundary point is on a leg of the cone
            leg = math.sqrt(dist_sq - r_sq)
            if _det(px, py, wx, wy) > 0.0:  # left leg
                dx, dy = (px * leg - py * radius) / dist_sq, (px * radius + py * leg) / dist_sq
            else:  # right leg
                dx, dy = -(px * leg + py * radius) / dist_sq, -(-px * radius + py * leg) / dist_sq
            dot2 = vx * dx + vy * dy
            ux, uy = dot2 * dx - vx, dot2 * dy - vy
    else:  # already overlapping: leave within one time step
        inv_dt = 1.0 / dt
        wx, wy = vx - inv_dt * px, vy - inv_dt * py
        wl = max(math.sqrt(wx * wx + wy * wy), _EPS)
        ux, uy = wx / wl, wy / wl
        dx, dy = uy, -ux
        s = radius * inv_dt - wl
        ux, uy = s * ux, s * uy
    return (vel[0] + share * ux, vel[1] + share * uy, dx, dy)


def obstacle_line(rel_pos: tuple[float, float], dist: float, margin: float, tau: float, dt: float) -> Line:
    """Half-plane keeping an agent from reaching a static obstacle point (direction rel_pos, `dist` metres to its surface)
    within `tau` seconds: v . n <= (dist - margin) / tau, n = unit rel_pos; inside the margin it must back out in dt.

    A half-plane tangent to the velocity obstacle's cut-off disc at the point nearest zero velocity: it contains the whole
    (truncated-cone) velocity obstacle, so it is conservative but never blocks sliding along a wall."""
    px, py = rel_pos
    n = max(math.hypot(px, py), _EPS)
    nx, ny = px / n, py / n
    gap = dist - margin
    c = gap / tau if gap >= 0 else gap / dt
    return (c * nx, c * ny, -ny, nx)


def _lp1(lines: list[Line], k: int, radius: float, opt: tuple[float, float], direction_opt: bool):
    """Optimum on line k subject to lines[:k] and the speed disc; None when infeasible."""
    px, py, dx, dy = lines[k]
    dot = px * dx + py * dy
    disc = dot * dot + radius * radius - (px * px + py * py)
    if disc < 0.0:
        return None
    sd = math.sqrt(disc)
    t_left, t_right = -dot - sd, -dot + sd
    for i in range(k):
        qx, qy, ex, ey = lines[i]
        den = _det(dx, dy, ex, ey)
        num = _det(ex, ey, px - qx, py - qy)
        if abs(den) <= _EPS:
            if num < 0.0:
                return None
            continue
        t = num / den
        if den >= 0.0:
            t_right = min(t_right, t)
        else:
            t_left = max(t_left, t)
        if t_left > t_right:
            return None
    if direction_opt:
        t = t_right if opt[0] * dx + opt[1] * dy > 0.0 else t_left
    else:
        t = min(max(dx * (opt[0] - px) + dy * (opt[1] - py), t_left), t_right)
    return (px + t * dx, py + t * dy)


def _lp2(lines: list[Line], radius: float, opt: tuple[float, float], direction_opt: bool) -> tuple[int, tuple[float, float]]:
    """Velocity nearest opt within all lines and the disc; returns (index of the first infeasible line or len, result)."""
    if direction_opt:
        res = (opt[0] * radius, opt[1] * radius)
    else:
        n2 = opt[0] * opt[0] + opt[1] * opt[1]
        res = opt if n2 <= radius * radius else (opt[0] * radius / math.sqrt(n2), opt[1] * radius / math.sqrt(n2))
    for i, (px, py, dx, dy) in enumerate(lines):
        if _det(dx, dy, px - res[0], py - res[1]) > 0.0:
            r = _lp1(lines, i, radius, opt, direction_opt)
            if r is None:
                return i, res
            res = r
    return len(lines), res


def _lp3(lines: list[Line], n_obst: int, begin: int, radius: float, res: tuple[float, float]) -> tuple[float, float]:
    """Infeasible case: minimise the largest violation of the agent lines (obstacle lines kept hard)."""
    distance = 0.0
    for i in range(begin, len(lines)):
        px, py, dx, dy = lines[i]
        if _det(dx, dy, px - res[0], py - res[1]) > distance:
            proj = list(lines[:n_obst])
            for j in range(n_obst, i):
                qx, qy, ex, ey = lines[j]
                det = _det(dx, dy, ex, ey)
                if abs(det) <= _EPS:
                    if dx * ex + dy * ey > 0.0:
                        continue
                    ox, oy = 0.5 * (px + qx), 0.5 * (py + qy)
                else:
                    t = _det(ex, ey, px - qx, py - qy) / det
                    ox, oy = px + t * dx, py + t * dy
                nx, ny = ex - dx, ey - dy
                nl = max(math.hypot(nx, ny), _EPS)
                proj.append((ox, oy, nx / nl, ny / nl))
            fail, r = _lp2(proj, radius, (-dy, dx), True)
            if fail >= len(proj):
                res = r
            distance = _det(dx, dy, px - res[0], py - res[1])
    return res


def solve_velocity(obstacle_lines: list[Line], agent_lines: list[Line], pref: tuple[float, float],
                   max_speed: float) -> tuple[float, float]:
    """The ORCA velocity: nearest `pref` within every half-plane and |v| <= max_speed (obstacle lines first and hard)."""
    lines = list(obstacle_lines) + list(agent_lines)
    fail, res = _lp2(lines, max_speed, pref, False)
    if fail < len(lines):
        res = _lp3(lines, len(obstacle_lines), fail, max_speed, res)
    return res


def grid_obstacle_lines(tree, centres: np.ndarray, pos: np.ndarray, half_cell: float, reach: float, margin: float,
                        tau: float, dt: float) -> list[list[Line]]:
    """Per agent at pos [A,2]: obstacle half-planes from the nearest blocked grid cell (square, centres [M,2] in a KD-tree)
    in each 45 degree sector within `reach` metres; a concave corner or a doorway gives one line per side."""
    A = len(pos)
    out: list[list[Line]] = [[] for _ in range(A)]
    if tree is None or len(centres) == 0:
        return out
    k = min(64, len(centres))
    dd, idx = tree.query(pos, k=k, distance_upper_bound=reach + 3 * half_cell)
    dd, idx = dd.reshape(A, k), idx.reshape(A, k)
    ok = np.isfinite(dd)
    rel = centres[np.minimum(idx, len(centres) - 1)] - pos[:, None]  # [A,k,2]
    off = rel - np.clip(rel, -half_cell, half_cell)  # to the closest point of each cell square
    dist = np.hypot(off[..., 0], off[..., 1])
    inside = dist < 1e-9
    off[inside] = rel[inside]
    sector = ((np.arctan2(off[..., 1], off[..., 0]) + np.pi) / (np.pi / 4)).astype(int) % 8
    dist = np.where(ok & (dist < reach), dist, np.inf)
    rows = np.arange(A)
    for sct in range(8):
        ds = np.where(sector == sct, dist, np.inf)
        kk = ds.argmin(1)
        for i in np.nonzero(np.isfinite(ds[rows, kk]))[0]:
            o = off[i, kk[i]]
            out[i].append(obstacle_line((float(o[0]), float(o[1])), float(dist[i, kk[i]]), margin, tau, dt))
    return out


def keep_right(pos: np.ndarray, vel: np.ndarray, pref: np.ndarray, strength: float) -> np.ndarray:
    """Preferred velocities pref [A,2] turned right by up to `strength` (sideways share) when people come the other way
    within 6 m ahead: counter-flows form lanes instead of head-on jams (the walkers' convention seen in counter-flow
    studies, e.g. Moussaid et al. 2009). pos, vel [A,2]."""
    sp = np.linalg.norm(pref, axis=1)
    if len(pos) < 2 or strength <= 0:
        return pref
    d = pref / np.maximum(sp, 1e-9)[:, None]
    right = np.stack([d[:, 1], -d[:, 0]], -1)
    rel = pos[None] - pos[:, None]  # [i,j]: from i to j
    ahead = (rel * d[:, None]).sum(-1)
    side = np.abs((rel * right[:, None]).sum(-1))
    oncoming = (vel[None] * d[:, None]).sum(-1) < -0.2
    w = np.where(oncoming & (ahead > 0) & (ahead < 6.0) & (side < 1.5), np.exp(-ahead / 3.0), 0.0).sum(1)
    turned = d + strength * np.minimum(w, 1.0)[:, None] * right
    turned /= np.maximum(np.linalg.norm(turned, axis=1), 1e-9)[:, None]
    return np.where(sp[:, None] > 1e-9, turned * sp[:, None], pref)
