"""Local navigation for many agents: social forces (Helbing & Molnar) along planned paths, plus hard separation.

Each agent follows a carrot point ahead on its own path; agents repel each other (anisotropic, stronger ahead) and are pushed
away from obstacles and the edge of the walkable area by the world's clearance field. A final position-based pass keeps
bodies from overlapping and off non-walkable cells, so the guarantee does not rest on force tuning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .world import World

__all__ = ["CrowdConfig", "Crowd"]


@dataclass
class CrowdConfig:
    tau: float = 0.5  # s, relaxation towards the desired velocity
    agent_strength: float = 2.2  # m/s^2
    agent_range: float = 0.35  # m
    anisotropy: float = 0.35  # weight of interactions behind an agent
    wall_strength: float = 3.0
    wall_range: float = 0.25
    lookahead: float = 1.2  # m ahead on the path
    arrive_radius: float = 0.35
    slow_radius: float = 1.0
    max_speed_factor: float = 1.4
    separation_margin: float = 0.05  # extra gap kept between bodies (m)


class Crowd:
    """Agents' planar state: positions [A,2], velocities [A,2], radii [A], preferred speeds [A], a path [K,2] each."""

    def __init__(self, world: World, pos: np.ndarray, radius: np.ndarray, speed: np.ndarray, paths: list[np.ndarray],
                 config: CrowdConfig | None = None) -> None:
        self.world = world
        self.cfg = config or CrowdConfig()
        self.pos = np.asarray(pos, np.float64).copy()
        self.vel = np.zeros_like(self.pos)
        self.radius = np.asarray(radius, np.float64)
        self.speed = np.asarray(speed, np.float64)
        self.paths = [np.asarray(p, np.float64) for p in paths]
        self._s = np.zeros(len(self.pos))  # arc length reached along each path
        self.arrived = np.zeros(len(self.pos), bool)

    @property
    def n(self) -> int:
        return len(self.pos)

    def set_path(self, i: int, path: np.ndarray) -> None:
        self.paths[i] = np.asarray(path, np.float64)
        self._s[i] = 0.0
        self.arrived[i] = False

    def _project(self, i: int, p: np.ndarray) -> float:
        """Arc length of the closest path point to p, never going backwards."""
        path = self.paths[i]
        if len(path) < 2:
            return 0.0
        a, b = path[:-1], path[1:]
        ab = b - a
        L = np.linalg.norm(ab, axis=1)
        t = np.clip(((p - a) * ab).sum(1) / np.maximum(L ** 2, 1e-12), 0, 1)
        d = np.linalg.norm(a + ab * t[:, None] - p, axis=1)
        cum = np.r_[0, np.cumsum(L)]
        s_all = cum[:-1] + t * L
        # only consider segments not far behind the progress already made
        d = np.where(s_all + 0.5 < self._s[i], np.inf, d)
        k = int(np.argmin(d))
        return float(max(self._s[i], s_all[k]))

    def point_at(self, i: int, s: np.ndarray) -> np.ndarray:
        """Path points [...,2] at arc lengths s (clamped to the path)."""
        path = self.paths[i]
        if len(path) < 2:
            return np.broadcast_to(path[0], np.shape(s) + (2,)).copy()
        seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
        cum = np.r_[0, np.cumsum(seg)]
        s = np.clip(s, 0, cum[-1])
        return np.stack([np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])], -1)

    def remaining(self, i: int) -> float:
        path = self.paths[i]
        if len(path) < 2:
            return float(np.linalg.norm(path[0] - self.pos[i]))
        total = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
        return max(0.0, total - self._s[i]) + 0.0

    def desired_velocity(self) -> np.ndarray:
        cfg = self.cfg
        vd = np.zeros_like(self.pos)
        for i in range(self.n):
            self._s[i] = self._project(i, self.pos[i])
            goal = self.paths[i][-1]
            dgoal = float(np.linalg.norm(goal - self.pos[i]))
            if dgoal < cfg.arrive_radius and self.remaining(i) < cfg.arrive_radius + 0.2:
                self.arrived[i] = True
            if self.arrived[i]:
                continue
            target = self.point_at(i, self._s[i] + cfg.lookahead)
            d = target - self.pos[i]
            nd = np.linalg.norm(d)
            if nd < 1e-6:
                continue
            sp = self.speed[i] * min(1.0, dgoal / cfg.slow_radius)
            vd[i] = d / nd * sp
        return vd

    def step(self, dt: float) -> np.ndarray:
        """Advance one step; returns the new positions [A,2]."""
        cfg = self.cfg
        vd = self.desired_velocity()
        f = (vd - self.vel) / cfg.tau
        P = self.pos
        if self.n > 1:
            diff = P[:, None] - P[None]  # [A,A,2] from j to i
            dist = np.linalg.norm(diff, axis=-1) + np.eye(self.n)
            nrm = diff / dist[..., None]
            rsum = self.radius[:, None] + self.radius[None]
            mag = cfg.agent_strength * np.exp((rsum - dist) / cfg.agent_range)
            # anisotropy: agents ahead (in the direction of motion) matter more
            spd = np.linalg.norm(self.vel, axis=1, keepdims=True)
            e = np.where(spd > 1e-3, self.vel / np.maximum(spd, 1e-9), vd / np.maximum(np.linalg.norm(vd, axis=1, keepdims=True), 1e-9))
            cos = -(nrm * e[:, None]).sum(-1)
            w = cfg.anisotropy + (1 - cfg.anisotropy) * (1 + cos) / 2
            np.fill_diagonal(mag, 0.0)
            f += ((mag * w)[..., None] * nrm).sum(1)
            # sidestep: a small tangential push so head-on encounters break symmetry (everyone keeps right)
            tang = np.stack([nrm[..., 1], -nrm[..., 0]], -1)
            f += 0.4 * ((mag * w * (cos > 0.5))[..., None] * tang).sum(1)
        clr = self.world.clearance_at(P)
        g = self.world.clearance_grad(P)
        gn = np.linalg.norm(g, axis=1, keepdims=True)
        g = g / np.maximum(gn, 1e-9)
        f += (cfg.wall_strength * np.exp(-(clr - self.radius) / cfg.wall_range))[:, None] * g
        self.vel = self.vel + f * dt
        vmax = (self.speed * cfg.max_speed_factor)[:, None]
        sp = np.linalg.norm(self.vel, axis=1, keepdims=True)
        self.vel = np.where(sp > vmax, self.vel / np.maximum(sp, 1e-9) * vmax, self.vel)
        self.vel[self.arrived] *= 0.5
        new = P + self.vel * dt
        new = self.enforce(new, P)
        self.vel = (new - P) / dt
        self.pos = new
        return new

    def enforce(self, new: np.ndarray, old: np.ndarray, iters: int = 4) -> np.ndarray:
        """Position-based constraints: no overlapping bodies, no steps onto non-walkable cells."""
        new = new.copy()
        m = self.cfg.separation_margin
        for _ in range(iters):
            if self.n > 1:
                diff = new[:, None] - new[None]
                dist = np.linalg.norm(diff, axis=-1) + np.eye(self.n) * 1e9
                need = self.radius[:, None] + self.radius[None] + m
                pen = np.clip(need - dist, 0, None)
                if pen.any():
                    nrm = diff / np.maximum(dist, 1e-9)[..., None]
                    new += 0.5 * (pen[..., None] * nrm).sum(1)
            bad = ~self.world.is_walkable(new)
            if bad.any():
                # slide: try each axis of the move alone, else stay
                for i in np.nonzero(bad)[0]:
                    cand = [np.array([new[i, 0], old[i, 1]]), np.array([old[i, 0], new[i, 1]]), old[i]]
                    for c in cand:
                        if self.world.is_walkable(c[None])[0]:
                            new[i] = c
                            break
                    else:
                        new[i] = self.world.nearest_walkable(old[i][None])[0]
        return new

    def future(self, i: int, frames: int, dt: float) -> np.ndarray:
        """Desired root positions [frames,2] for the next frames: current velocity blended into the path at the preferred speed."""
        if self.arrived[i]:
            return np.repeat(self.pos[i][None], frames, 0)
        t = (np.arange(frames) + 1) * dt
        goal_d = np.linalg.norm(self.paths[i][-1] - self.pos[i])
        sp = self.speed[i]
        s = self._project(i, self.pos[i])
        along = self.point_at(i, np.minimum(s + sp * t, s + goal_d + 1e-6))
        ballistic = self.pos[i] + self.vel[i] * t[:, None]
        w = np.clip(t / 0.6, 0, 1)[:, None]  # first ~0.6 s follow the avoidance velocity, then the path
        return (1 - w) * ballistic + w * along
