"""The `follow` camera: it walks the capture's own track (where the reconstruction is good) and turns to frame the agents.

1. `capture_track`: the capture cameras (name order) as a smoothed ground track with arc length, height and a reference
   heading (where the photos looked) at every point.
2. `plan_follow` (before the sim): a window of the track (about `max_speed * seconds` long, near the middle of the capture)
   and the walkable region in view from all of it (in range, within the allowed turn, line of sight over the obstacle
   grid). Agents spawn and pick their goals in that region.
3. `follow_path` (after the sim): the camera moves along the window staying a few metres behind the nearer agents, and
   its heading is a dynamic-programming choice that frames as many agents as possible (nearer ones weigh more, centred
   preferred) with a bounded turn rate and never more than `max_turn` away from the capture's own view direction.
Position, heading and pitch are then low-passed; height stays at the capture's (person height).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realsim.assets.cameras import CameraFrame
from realsim.assets.frames import camera_center
from realsim.render.paths import CameraPath, look_at

from .world import World

__all__ = ["Track", "FollowPlan", "capture_track", "plan_follow", "follow_path", "line_of_sight"]


@dataclass
class Track:
    """The capture walk sampled every `step` metres of horizontal arc length."""

    s: np.ndarray  # [N] arc length, metres
    pos: np.ndarray  # [N,3] smoothed camera centres (metres)
    yaw: np.ndarray  # [N] reference heading (radians, atan2 of the horizontal view direction), unwrapped
    pitch: float  # median pitch of the capture cameras (radians, negative = looking down)

    @property
    def length(self) -> float:
        return float(self.s[-1])

    def at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions [...,3] and reference headings [...] at arc lengths s (clamped to the track)."""
        s = np.clip(np.asarray(s, np.float64), 0.0, self.length)
        pos = np.stack([np.interp(s, self.s, self.pos[:, i]) for i in range(3)], -1)
        return pos, np.interp(s, self.s, self.yaw)

    def project(self, xy: np.ndarray) -> np.ndarray:
        """Arc length [...] of the track sample nearest to each point xy [...,2]."""
        d = np.linalg.norm(np.asarray(xy)[..., None, :] - self.pos[:, :2], axis=-1)
        return self.s[np.argmin(d, -1)]


@dataclass
class FollowPlan:
    track: Track
    s_lo: float  # the window of the track the camera may use
    s_hi: float
    region: np.ndarray | None  # [NX,NY] walkable cells in view of the whole window (None: no useful region)
    half_fov: float  # horizontal half field of view of the output camera (radians)
    max_turn: float  # radians the heading may differ from the capture's reference heading


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 (sigma in samples, edges repeated)."""
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    r = int(np.ceil(3 * sigma))
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    w /= w.sum()
    idx = np.clip(np.arange(len(x))[:, None] + np.arange(-r, r + 1)[None], 0, len(x) - 1)
    return np.tensordot(w, x[idx], axes=([0], [1])) if x.ndim > 1 else (x[idx] * w).sum(1)


def capture_track(frames: list[CameraFrame], smooth: float = 1.5, step: float = 0.1) -> Track:
    """Track of metric capture cameras in name order: centres and view directions low-passed over `smooth` cameras."""
    fr = sorted(frames, key=lambda f: f.name)
    V = np.stack([np.asarray(f.viewmat, np.float64) for f in fr])
    C = camera_center(V)
    fwd = V[:, 2, :3]  # OpenCV +z (forward) in the world
    h = fwd[:, :2] / np.maximum(np.linalg.norm(fwd[:, :2], axis=1, keepdims=True), 1e-9)
    Cs = _smooth(C, smooth)
    hs = _smooth(h, smooth)
    yaw_k = np.unwrap(np.arctan2(hs[:, 1], hs[:, 0]))
    pitch = float(np.median(np.arcsin(np.clip(fwd[:, 2], -1, 1))))
    sk = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(Cs[:, :2], axis=0), axis=1))])
    if sk[-1] < step:  # a tripod or a single photo: a one-point track
        return Track(np.zeros(1), Cs.mean(0, keepdims=True), yaw_k[:1].copy(), pitch)
    s = np.linspace(0.0, sk[-1], int(np.ceil(sk[-1] / step)) + 1)
    pos = np.stack([np.interp(s, sk, Cs[:, i]) for i in range(3)], -1)
    return Track(s, pos, np.interp(s, sk, yaw_k), pitch)


def line_of_sight(world: World, eye_xy: np.ndarray, pts: np.ndarray, samples: int = 24) -> np.ndarray:
    """[...] True where the straight segment eye_xy [2] -> pts [...,2] crosses no obstacle cell (ends excluded)."""
    u = np.linspace(0.05, 0.95, samples).reshape((-1,) + (1,) * (pts.ndim - 1) + (1,))
    ray = eye_xy + u * (pts[None] - eye_xy)
    return ~world.is_obstacle(ray).any(0)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _seen_from(world: World, eye: np.ndarray, yaw: float, reach: float, near: float, far: float) -> np.ndarray:
    """Walkable cells [NX,NY] within near..far m of eye, within `reach` rad of heading `yaw`, in line of sight."""
    ij = np.argwhere(world.walkable)
    xy = world.to_world(ij)
    d = xy - eye[:2]
    r = np.linalg.norm(d, axis=1)
    ok = (r >= near) & (r <= far) & (np.abs(_wrap(np.arctan2(d[:, 1], d[:, 0]) - yaw)) <= reach)
    ok[ok] = line_of_sight(world, eye[:2], xy[ok])
    out = np.zeros(world.shape, bool)
    out[ij[ok, 0], ij[ok, 1]] = True
    return out


def plan_follow(world: World, frames: list[CameraFrame], seconds: float, width: int, fx: float, n_agents: int = 1,
                max_speed: float = 0.8, max_turn_deg: float = 30.0, near: float = 3.0, far: float = 12.0) -> FollowPlan:
    """Choose the track window and the agents' region (see the module doc). `fx`: output focal length in pixels."""
    track = capture_track(frames)
    half_fov = float(np.arctan(0.5 * width / fx))
    max_turn = np.radians(max_turn_deg)
    reach = max_turn + 0.75 * half_fov
    L = track.length
    win = min(max_speed * seconds, L)
    starts = np.arange(0.0, max(L - win, 0.0) + 1e-9, 0.5)
    sample_s = np.unique(np.clip(np.arange(0.0, L + 0.5, 0.5), 0, L))
    pos, yaw = track.at(sample_s)
    seen = [_seen_from(world, p, y, reach, near, far) for p, y in zip(pos, yaw)]
    need = max(4 * n_agents, 24)
    area_cap = 60.0 / world.cell ** 2  # beyond ~60 m^2 a bigger region does not matter: prefer the middle of the capture
    blocked = track.s[world.is_obstacle(track.pos[:, :2])]  # a smoothed corner that cuts into a wall or a prop
    best, best_score = None, -1.0
    for lo in starts:
        if ((blocked >= lo - 1e-9) & (blocked <= lo + win + 1e-9)).any():
            continue
        ks = [k for k, s in enumerate(sample_s) if lo - 1e-9 <= s <= lo + win + 1e-9] or [int(np.argmin(np.abs(sample_s - lo)))]
        region = np.logical_and.reduce([seen[k] for k in ks])
        if region.sum() < need:
            continue
        mid = (lo + 0.5 * win - 0.5 * L) / max(0.5 * L, 1e-9)
        score = min(float(region.sum()), area_cap) * (1.0 - 0.5 * abs(mid))
        if score > best_score:
            best, best_score = (lo, region), score
    if best is None:  # nothing is seen from a whole window: whatever the middle of the capture sees at all
        lo = max(0.0, 0.5 * (L - win))
        ks = [k for k, s in enumerate(sample_s) if lo - 1e-9 <= s <= lo + win + 1e-9] or [len(sample_s) // 2]
        region = np.logical_or.reduce([seen[k] for k in ks])
        best = (lo, region if region.sum() >= need else None)
    lo, region = best
    return FollowPlan(track, float(lo), float(min(lo + win, L)), region, half_fov, float(max_turn))


def _camera_s(plan: FollowPlan, roots: np.ndarray, fps: float, lead: float, max_speed: float, min_gap: float = 3.0,
              drift: float = 0.6) -> np.ndarray:
    """[T] arc length of the camera: walks the window at `drift` of its pace, or `lead` m behind the nearer agents if that is
    further, never closer than `min_gap` to the nearest ones (along the track); smoothed and speed-limited."""
    T = len(roots)
    q = plan.track.project(roots[:, :, :2])  # [T,A]
    walk = plan.s_lo + drift * (plan.s_hi - plan.s_lo) * np.arange(T) / max(T - 1, 1)
    want = np.minimum(np.maximum(np.quantile(q, 0.25, axis=1) - lead, walk), np.quantile(q, 0.1, axis=1) - min_gap)
    s = _smooth(np.clip(want, plan.s_lo, plan.s_hi), 1.0 * fps)
    step = max_speed / fps
    for t in range(1, T):
        s[t] = np.clip(s[t], s[t - 1] - step, s[t - 1] + step)
    return np.clip(s, plan.s_lo, plan.s_hi)


def _aim(eyes: np.ndarray, ref: np.ndarray, agents: np.ndarray, seen: np.ndarray, plan: FollowPlan, fps: float,
         max_rate: float, grid_step: float = np.radians(0.5)) -> np.ndarray:
    """[T] heading by dynamic programming over a heading grid: frame the most (near, centred) agents, turn at most max_rate."""
    T = len(eyes)
    d = agents[:, :, :2] - eyes[:, None, :2]  # [T,A,2]
    dist = np.linalg.norm(d, axis=-1)
    bearing = np.arctan2(d[..., 1], d[..., 0])
    w = np.where(seen & (dist > 1.0), 1.0 / (1.0 + np.maximum(dist - 6.0, 0.0) / 6.0), 0.0)  # [T,A]
    grid = np.arange(ref.min() - plan.max_turn, ref.max() + plan.max_turn + grid_step, grid_step)  # [G]
    hf = 0.75 * plan.half_fov
    off = np.abs(_wrap(bearing[:, :, None] - grid[None, None]))  # [T,A,G]
    cover = np.where(off < hf, 1.0 - 0.5 * (off / hf) ** 2, 0.0)
    score = (w[:, :, None] * cover).sum(1)  # [T,G]
    allowed = np.abs(grid[None] - ref[:, None]) <= plan.max_turn + 1e-9
    score = np.where(allowed, score, -1e9)
    k = max(1, int(np.floor(max_rate / fps / grid_step)))
    lam = 0.3 * grid_step  # a small price per radian turned: hold still unless framing improves
    G = len(grid)
    val = score[0].copy()
    back = np.zeros((T, G), np.int64)
    for t in range(1, T):
        cand = np.full((2 * k + 1, G), -np.inf)
        for j, sh in enumerate(range(-k, k + 1)):
            src = np.arange(G) - sh
            ok = (src >= 0) & (src < G)
            cand[j, ok] = val[src[ok]] - lam * abs(sh)
        best = np.argmax(cand, 0)
        back[t] = np.arange(G) - (best - k)
        val = cand[best, np.arange(G)] + score[t]
    g = np.zeros(T, np.int64)
    g[-1] = int(np.argmax(val))
    for t in range(T - 1, 0, -1):
        g[t - 1] = back[t, g[t]]
    return grid[g]


def follow_path(plan: FollowPlan, world: World | None, roots: np.ndarray, fps: float, width: int, height: int,
                K: np.ndarray, lead: float = 5.0, max_speed: float = 1.2, max_rate_deg: float = 35.0,
                aim_height: float = 1.0) -> CameraPath:
    """The follow camera for agent roots [T,A,3] (metres): one camera per sim frame, output intrinsics K [3,3]."""
    T = len(roots)
    s = _camera_s(plan, roots, fps, lead, max_speed)
    eyes, ref = plan.track.at(s)
    if world is not None:  # person height above the ground under the camera (the capture's, within 1.5..2.0 m)
        g = world.height(eyes[:, :2])
        eyes[:, 2] = np.clip(eyes[:, 2], g + 1.5, g + 2.0)
        ground = world.height(roots[:, :, :2])
        seen = np.stack([line_of_sight(world, eyes[t, :2], roots[t, :, :2]) for t in range(T)])
    else:
        ground = roots[:, :, 2] - 0.9
        seen = np.ones(roots.shape[:2], bool)
    rate = np.radians(max_rate_deg)
    yaw = _aim(eyes, ref, roots, seen, plan, fps, rate)
    yaw = np.clip(_smooth(yaw, 0.25 * fps), ref - plan.max_turn, ref + plan.max_turn)
    # pitch: look at `aim_height` above the ground at the framed agents' distance (capture pitch -8..+5 degrees)
    d = roots[:, :, :2] - eyes[:, None, :2]
    dist = np.linalg.norm(d, axis=-1)
    framed = seen & (np.abs(_wrap(np.arctan2(d[..., 1], d[..., 0]) - yaw[:, None])) < plan.half_fov) & (dist > 1.0)
    nf = framed.sum(1)
    dz = np.where(nf > 0, ((ground + aim_height - eyes[:, 2:3]) * framed).sum(1) / np.maximum(nf, 1), aim_height - 1.6)
    dd = np.where(nf > 0, (dist * framed).sum(1) / np.maximum(nf, 1), 6.0)
    pitch = _smooth(np.arctan2(dz, dd), 0.5 * fps)
    pitch = np.clip(pitch, plan.track.pitch - np.radians(8), plan.track.pitch + np.radians(5))
    fwd = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], -1)
    V = np.stack([look_at(e, e + f) for e, f in zip(eyes, fwd)])
    return CameraPath(V, np.repeat(np.asarray(K, np.float64)[None], T, 0), width, height, fps)
