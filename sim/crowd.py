"""Local navigation for many agents: ORCA (sim/orca.py) along planned paths, re-planning around blocked passages.

Each agent prefers the velocity towards a carrot point ahead on its own path; ORCA turns that into a velocity that keeps
every pair of bodies apart for `tau` seconds (each side doing half) and off non-walkable cells for `tau_obstacle` seconds.
The sim feeds the bodies' actual root positions back in every frame (`observe`), so the plan always starts from where the
bodies are; a final position pass (`enforce`) holds the hard guarantee (no overlap, walkable cells) for what is written.
An agent that makes no progress for `blocked_s` re-plans its path with the agents standing around it as obstacles.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from realsim.assets.errors import RealsimError

from .orca import agent_line, grid_obstacle_lines, keep_right, solve_velocity
from .world import World

__all__ = ["CrowdConfig", "Crowd"]

log = logging.getLogger("realsim.sim.crowd")


@dataclass
class CrowdConfig:
    tau: float = 2.0  # s: time horizon against other agents
    tau_obstacle: float = 0.6  # s: time horizon against non-walkable cells
    neighbor_range: float = 4.0  # m: agents considered
    max_neighbors: int = 10
    obstacle_range: float = 1.2  # m: non-walkable cells considered (nearest per 45 degree sector)
    margin: float = 0.06  # m added to each walking agent's radius in ORCA: room for the body's tracking error ...
    margin_standing: float = 0.02  # ... and to a standing one's (they sway less; a smaller gap lets others reach their goals)
    obstacle_margin: float = 0.04  # m kept from non-walkable cells
    lookahead: float = 1.2  # m ahead on the path
    arrive_radius: float = 0.35
    slow_radius: float = 1.0
    max_speed_factor: float = 1.3
    keep_right: float = 0.4  # sideways share of the preferred velocity when people come the other way ahead
    max_accel: float = 4.0  # m/s^2: how fast the commanded velocity may change (people cannot turn on the spot)
    separation_margin: float = 0.002  # m: extra gap the final position pass keeps between bodies
    blocked_speed: float = 0.25  # fraction of the preferred speed below which an agent counts as stalled
    blocked_s: float = 2.0  # stalled this long -> re-plan
    replan_cooldown_s: float = 4.0
    observed_velocity: bool = True  # ORCA on the bodies' observed velocities (else on the commanded ones)
    yield_s: float = 2.5  # s an agent gives way at a head-on jam
    rejoin_s: float = 1.5  # s: time constant of the commanded return onto the path after an avoidance detour
    replan_ahead: float = 6.0  # m of the path re-planned (the rest, with its waypoints, is kept)


class Crowd:
    """Agents' planar state: positions [A,2], velocities [A,2], radii [A], preferred speeds [A], a path [K,2] each."""

    def __init__(self, world: World, pos: np.ndarray, radius: np.ndarray, speed: np.ndarray, paths: list[np.ndarray],
                 config: CrowdConfig | None = None, seed: int = 0) -> None:
        self.world = world
        self.cfg = config or CrowdConfig()
        self.pos = np.asarray(pos, np.float64).copy()
        self.vel = np.zeros_like(self.pos)  # commanded (the last ORCA velocity)
        self.body_vel = np.zeros_like(self.pos)  # observed: how the bodies actually move (smoothed over ~0.2 s)
        self._last_obs = self.pos.copy()
        self._observed = False
        self.radius = np.asarray(radius, np.float64)
        self.speed = np.asarray(speed, np.float64)
        self.paths: list[np.ndarray] = []
        self._cum: list[np.ndarray] = []  # cumulative arc length at each path vertex
        for p in paths:
            self._set(p)
        self._s = np.zeros(len(self.pos))  # arc length reached along each path
        self.arrived = np.zeros(len(self.pos), bool)
        self._hist: list[np.ndarray] = []  # positions over the last blocked_s (stall detection)
        self.since_replan = np.full(len(self.pos), np.inf)
        self.replans: list[tuple[int, np.ndarray]] = []  # (agent, new path) made by the last step
        self.n_replans = 0
        self.time = 0.0
        self.yield_until = np.full(len(self.pos), -np.inf)  # s: agents stepping aside for others until then
        self.n_yields = 0
        self.assertive = np.random.default_rng(seed).permutation(len(self.pos))  # who gives way to whom at a jam
        self._obstacles()

    @property
    def n(self) -> int:
        return len(self.pos)

    def _obstacles(self) -> None:
        """Centres [M,2] of the non-walkable cells that border walkable ones (the grid's outside counts as blocked)."""
        w = np.pad(self.world.walkable, 1, constant_values=False)
        edge = ~w & ndimage.binary_dilation(w, np.ones((3, 3), bool))
        ij = np.argwhere(edge) - 1
        self._obst = self.world.to_world(ij) if len(ij) else np.zeros((0, 2))
        self._tree = cKDTree(self._obst) if len(ij) else None

    def _set(self, path: np.ndarray, i: int | None = None) -> None:
        p = np.asarray(path, np.float64).reshape(-1, 2)
        cum = np.r_[0, np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]
        if i is None:
            self.paths.append(p)
            self._cum.append(cum)
        else:
            self.paths[i], self._cum[i] = p, cum
        self._pad()

    def _pad(self) -> None:
        """All paths as one padded batch: vertices [A,K,2] and arc lengths [A,K] (the last vertex repeated)."""
        K = max(2, max(len(p) for p in self.paths))
        n = len(self.paths)
        self._P = np.zeros((n, K, 2))
        self._C = np.zeros((n, K))
        for i, (p, c) in enumerate(zip(self.paths, self._cum)):
            self._P[i, : len(p)], self._P[i, len(p):] = p, p[-1]
            self._C[i, : len(c)], self._C[i, len(c):] = c, c[-1]
        self._goal = self._P[:, -1].copy()
        self._len = self._C[:, -1].copy()

    def set_path(self, i: int, path: np.ndarray) -> None:
        self._set(path, i)
        self._s[i] = 0.0
        self.arrived[i] = False

    def _project_all(self, p: np.ndarray) -> np.ndarray:
        """Arc length [A] of each path's point closest to p [A,2], never going backwards."""
        a, ab = self._P[:, :-1], np.diff(self._P, axis=1)  # [A,K-1,2]
        L = np.diff(self._C, axis=1)
        t = np.clip(((p[:, None] - a) * ab).sum(-1) / np.maximum(L ** 2, 1e-12), 0, 1)
        q = a + ab * t[..., None] - p[:, None]
        d = np.hypot(q[..., 0], q[..., 1])
        s_all = self._C[:, :-1] + t * L
        d = np.where(s_all + 0.5 < self._s[:, None], np.inf, d)  # only segments not far behind the progress made
        k = d.argmin(1)
        return np.maximum(self._s, s_all[np.arange(len(p)), k])

    def _points(self, s: np.ndarray) -> np.ndarray:
        """Path points [A,M,2] at arc lengths s [A,M] (clamped to each path)."""
        C = self._C
        s = np.clip(s, 0, C[:, -1:])
        k = np.clip((C[:, None, :] <= s[..., None]).sum(-1) - 1, 0, C.shape[1] - 2)  # [A,M] segment index
        rows = np.arange(len(C))[:, None]
        c0, c1 = C[rows, k], C[rows, k + 1]
        w = np.where(c1 - c0 > 1e-12, (s - c0) / np.maximum(c1 - c0, 1e-12), 0.0)[..., None]
        return self._P[rows, k] * (1 - w) + self._P[rows, k + 1] * w

    def point_at(self, i: int, s: np.ndarray) -> np.ndarray:
        """Path points [...,2] of agent i at arc lengths s (clamped to the path)."""
        path, cum = self.paths[i], self._cum[i]
        if len(path) < 2:
            return np.broadcast_to(path[0], np.shape(s) + (2,)).copy()
        return np.stack([np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])], -1)

    def path_length(self, i: int) -> float:
        return float(self._cum[i][-1])

    def remaining(self, i: int) -> float:
        return max(0.0, self.path_length(i) - self._s[i])

    def desired_velocity(self) -> np.ndarray:
        """Preferred velocities [A,2]: towards the carrot on each path, slowing down near the goal; once arrived, back
        onto the goal (slowly) when others pushed the agent off it."""
        cfg = self.cfg
        self._s = self._project_all(self.pos)
        to_goal = self._goal - self.pos
        dgoal = np.hypot(to_goal[:, 0], to_goal[:, 1])
        self.arrived |= (dgoal < cfg.arrive_radius) & (self._len - self._s < cfg.arrive_radius + 0.2)
        d = self._points((self._s + cfg.lookahead)[:, None])[:, 0] - self.pos
        nd = np.hypot(d[:, 0], d[:, 1])
        vd = d / np.maximum(nd, 1e-9)[:, None] * (self.speed * np.minimum(1.0, dgoal / cfg.slow_radius))[:, None]
        vd[nd <= 1e-6] = 0.0
        back = to_goal / np.maximum(dgoal, 1e-9)[:, None] * np.minimum(0.5 * self.speed, dgoal / 0.5)[:, None]
        return np.where(self.arrived[:, None], np.where((dgoal > 0.05)[:, None], back, 0.0), vd)

    def _obstacle_lines(self, dt: float) -> list[list]:
        """Per agent, ORCA half-planes from the nearest non-walkable cell in each 45 degree sector around it."""
        cfg = self.cfg
        return grid_obstacle_lines(self._tree, self._obst, self.pos, 0.5 * self.world.cell, cfg.obstacle_range,
                                   cfg.obstacle_margin, cfg.tau_obstacle, dt)

    def keep_right(self, pref: np.ndarray) -> np.ndarray:
        """Preferred velocities turned a little to the right when people come the other way ahead (see orca.keep_right)."""
        return keep_right(self.pos, self.vel, pref, self.cfg.keep_right)

    def orca_velocities(self, pref: np.ndarray, dt: float) -> np.ndarray:
        """Collision-avoiding velocities [A,2] nearest the preferred ones pref [A,2]."""
        cfg = self.cfg
        out = np.zeros_like(pref)
        P, V = self.pos, self.body_vel if self.cfg.observed_velocity else self.vel
        moving = np.clip(np.linalg.norm(pref, axis=1) / np.maximum(self.speed, 1e-9), 0, 1)
        R = self.radius + cfg.margin_standing + (cfg.margin - cfg.margin_standing) * moving
        obst = self._obstacle_lines(dt)
        vmax = np.maximum(self.speed * cfg.max_speed_factor, 1e-3)
        nbs: list[np.ndarray] = [np.zeros(0, int)] * self.n
        if self.n > 1:
            D = np.linalg.norm(P[:, None] - P[None], axis=-1)
            np.fill_diagonal(D, np.inf)
            order = np.argsort(D, axis=1)[:, : cfg.max_neighbors]
            nbs = [o[D[i, o] < cfg.neighbor_range] for i, o in enumerate(order)]
        Pl, Vl, Rl, pl = P.tolist(), V.tolist(), R.tolist(), pref.tolist()
        for i in range(self.n):
            pi, vi = Pl[i], Vl[i]
            lines = [agent_line((Pl[j][0] - pi[0], Pl[j][1] - pi[1]), (vi[0] - Vl[j][0], vi[1] - Vl[j][1]), vi, Rl[i] + Rl[j],
                                cfg.tau, dt) for j in nbs[i].tolist()]
            out[i] = solve_velocity(obst[i], lines, (pl[i][0], pl[i][1]), float(vmax[i]))
        return out

    def step(self, dt: float) -> np.ndarray:
        """Advance the planar targets one step (ORCA velocities, then the hard constraints); returns them [A,2]."""
        self.replans = []
        self.time += dt
        pref = self.keep_right(self.desired_velocity())
        pref = self._give_way(pref)
        vel = self.orca_velocities(pref, dt)
        dv = vel - self.vel
        n = np.linalg.norm(dv, axis=1, keepdims=True)
        vel = self.vel + dv * np.minimum(1.0, self.cfg.max_accel * dt / np.maximum(n, 1e-9))
        P = self.pos
        new = self.enforce(P + vel * dt, P)
        self.vel = (new - P) / dt
        self.pos = new
        if not self._observed:  # no bodies report back: they are where the crowd puts them
            self.body_vel = self.vel.copy()
        self._check_blocked(pref, dt)
        return new

    def observe(self, pos: np.ndarray, dt: float) -> None:
        """Where the bodies actually are [A,2] (after the motion model and the constraints): the next step starts there,
        and ORCA reasons with their observed velocities (a body follows a new command with some lag)."""
        pos = np.asarray(pos, np.float64)
        a = min(1.0, dt / 0.2)
        self.body_vel = (1 - a) * self.body_vel + a * (pos - self._last_obs) / dt
        self._last_obs = pos.copy()
        self._observed = True
        self.pos = pos.copy()

    def _check_blocked(self, pref: np.ndarray, dt: float) -> None:
        """Stalled agents (moved less than blocked_speed x their speed over the last blocked_s while wanting to walk)
        give way at a head-on jam or re-plan."""
        cfg = self.cfg
        self.since_replan += dt
        self._hist.append(self.pos.copy())
        n = max(2, int(round(cfg.blocked_s / dt)))
        del self._hist[:-n]
        if len(self._hist) < n:
            return
        moved = np.linalg.norm(self.pos - self._hist[0], axis=1)
        slow = (moved < cfg.blocked_speed * self.speed * cfg.blocked_s) & ~self.arrived
        slow &= np.linalg.norm(pref, axis=1) > 0.3 * self.speed  # wants to move (not slowing for its goal)
        slow &= (self.yield_until < self.time) & (self.since_replan > cfg.blocked_s)
        stuck = np.nonzero(slow)[0]
        for i in stuck:
            if self._should_yield(int(i), stuck):  # a head-on jam: the less assertive side steps aside for a while
                self.yield_until[i] = self.time + cfg.yield_s
                self.n_yields += 1
            elif self.since_replan[i] > cfg.replan_cooldown_s:
                self.replan(int(i))

    def _should_yield(self, i: int, stuck: np.ndarray) -> bool:
        """Whether a stalled agent i faces a stalled, more assertive agent coming the other way right in front of it."""
        d = self._dir(i)
        for j in stuck:
            rel = self.pos[j] - self.pos[i]
            near = np.hypot(*rel) < self.radius[i] + self.radius[j] + 0.8
            if j != i and near and rel @ d > 0 and self.assertive[j] > self.assertive[i] and self._dir(j) @ d < 0:
                return True
        return False

    def _dir(self, j: int) -> np.ndarray:
        """Unit direction agent j's path goes from where it is."""
        d = self.point_at(j, np.array(self._s[j] + self.cfg.lookahead)) - self.pos[j]
        return d / max(float(np.hypot(*d)), 1e-9)

    def _give_way(self, pref: np.ndarray) -> np.ndarray:
        """Yielding agents step to their right and a little back (at half speed) instead of pressing on."""
        y = self.yield_until > self.time
        if not y.any():
            return pref
        out = pref.copy()
        for i in np.nonzero(y)[0]:
            d = self._dir(int(i))
            out[i] = 0.5 * self.speed[i] * (0.8 * np.array([d[1], -d[0]]) - 0.6 * d)
        return out

    def replan(self, i: int) -> bool:
        """A new path for agent i around the agents standing near it (treated as obstacles); keeps the path beyond
        `replan_ahead` metres. False (path kept) when no way round exists."""
        cfg = self.cfg
        self.since_replan[i] = 0.0
        w = self.world
        s_to = min(self._s[i] + cfg.replan_ahead, self.path_length(i))
        target = self.point_at(i, np.array(s_to))
        walk = w.walkable.copy()
        d = np.linalg.norm(self.pos - self.pos[i], axis=1)
        standing = np.linalg.norm(self.body_vel, axis=1) < 0.4  # m/s: people in the way, not walking through it
        others = np.nonzero((d > 1e-9) & (d < cfg.replan_ahead) & standing)[0]
        ii, jj = np.meshgrid(np.arange(walk.shape[0]), np.arange(walk.shape[1]), indexing="ij")
        for j in others:
            c = (self.pos[j] - w.origin) / w.cell - 0.5
            rr = (self.radius[i] + self.radius[j]) / w.cell
            lo, hi = np.floor(c - rr - 1).astype(int).clip(0), np.ceil(c + rr + 1).astype(int)
            sub = (slice(lo[0], hi[0] + 1), slice(lo[1], hi[1] + 1))
            walk[sub] &= (ii[sub] - c[0]) ** 2 + (jj[sub] - c[1]) ** 2 > rr ** 2
        tmp = World(w.plane, w.origin, w.cell, walk, w.obstacle, w.support, w.heights, w.scale, w.config)
        from .planner import plan_path

        try:
            head = plan_path(tmp, self.pos[i], target)
        except RealsimError:
            return False
        rest = self.paths[i][self._cum[i] > s_to + 1e-6]
        new = np.vstack([self.pos[i][None], head[1:], rest]) if len(head) > 1 else np.vstack([self.pos[i][None], rest])
        if len(new) < 2:
            return False
        self.set_path(i, new)
        self.replans.append((i, new))
        self.n_replans += 1
        log.debug("agent %d re-planned (blocked)", i)
        return True

    def enforce(self, new: np.ndarray, old: np.ndarray, iters: int = 20) -> np.ndarray:
        """Position-based constraints: no overlapping bodies, no steps onto non-walkable cells."""
        new = new.copy()
        m = self.cfg.separation_margin
        for _ in range(iters):
            if self.n > 1:
                diff = new[:, None] - new[None]
                dist = np.linalg.norm(diff, axis=-1) + np.eye(self.n) * 1e9
                pen = np.clip(self.radius[:, None] + self.radius[None] + m - dist, 0, None)
                if not pen.any():
                    break
                nrm = diff / np.maximum(dist, 1e-9)[..., None]
                new += 0.5 * (pen[..., None] * nrm).sum(1)
            new = self._walkable(new, old)
        return self._walkable(new, old)

    def _walkable(self, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        """Moves onto non-walkable cells slide along one axis, else stay (else go to the nearest walkable cell)."""
        bad = ~self.world.is_walkable(new)
        for i in np.nonzero(bad)[0]:
            for c in (np.array([new[i, 0], old[i, 1]]), np.array([old[i, 0], new[i, 1]]), old[i]):
                if self.world.is_walkable(c[None])[0]:
                    new[i] = c
                    break
            else:
                new[i] = self.world.nearest_walkable(old[i][None])[0]
        return new

    def futures(self, frames: int, dt: float) -> np.ndarray:
        """Desired root positions [A,frames+1,2], now and the next frames: the avoidance velocity first, then the path;
        arrived agents stand at (or step back onto) their goal."""
        t = (np.arange(frames) + 1) * dt
        out = np.empty((self.n, frames + 1, 2))
        out[:, 0] = self.pos
        goal_d = np.hypot(*(self._goal - self.pos).T)
        s = self._project_all(self.pos)
        along = self._points(np.minimum(s[:, None] + self.speed[:, None] * t, (s + goal_d + 1e-6)[:, None]))
        off = self.pos - self._points(s[:, None])[:, 0]  # where avoidance has put the agent beside its path ...
        along += off[:, None] * np.exp(-t / self.cfg.rejoin_s)[None, :, None]  # ... it rejoins the path gradually
        w = np.clip(t / 0.6, 0, 1)[None, :, None]  # first ~0.6 s follow the avoidance velocity, then the path
        walk = (1 - w) * (self.pos[:, None] + self.vel[:, None] * t[:, None]) + w * along
        stand = self.pos[:, None] + np.clip(t / 0.5, 0, 1)[None, :, None] * (self._goal - self.pos)[:, None]
        out[:, 1:] = np.where(self.arrived[:, None, None], stand, walk)
        return out

    def future(self, i: int, frames: int, dt: float) -> np.ndarray:
        """Agent i's desired root positions [frames,2] for the next frames (see `futures`)."""
        return self.futures(frames, dt)[i, 1:]
