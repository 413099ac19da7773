"""Camera paths for a simulation, in metres: interp | orbit | spiral | static | follow | a camera_path.json file,
and the walkable cells a path sees (where random agents start and wander so that the video shows them)."""
from __future__ import annotations

import numpy as np

from realsim.assets.cameras import CameraFrame
from realsim.assets.frames import camera_center
from realsim.assets.errors import RealsimError

from .follow import FollowPlan, follow_path, line_of_sight, plan_follow
from .loop import SimResult
from .world import World

__all__ = ["make_camera_path", "visible_mask", "spawn_region", "metric_frames", "output_intrinsics"]


def metric_frames(frames: list[CameraFrame], scale: float) -> list[CameraFrame]:
    """The cameras in name (capture) order with translations in metres."""
    out = []
    for f in sorted(frames, key=lambda f: f.name):
        V = f.viewmat.copy()
        V[:3, 3] *= scale
        out.append(CameraFrame(f.name, f.K.copy(), V, f.width, f.height, f.split, f.camera_id))
    return out


def output_intrinsics(frames: list[CameraFrame], width: int | None, height: int | None) -> tuple[np.ndarray, int, int]:
    """K [3,3] for a width x height video with the middle capture camera's field of view (its size when not given)."""
    from realsim.render import paths as P

    mid = frames[len(frames) // 2]
    w = width or (mid.width // 2 * 2)
    h = height or (mid.height // 2 * 2)
    return P.interp_path([mid], 1.0, 1.0, w, h).Ks[0], w, h


def make_camera_path(kind: str, frames: list[CameraFrame], seconds: float, fps: float, scale: float = 1.0,
                     width: int | None = None, height: int | None = None, sim: SimResult | None = None,
                     max_speed: float | None = 0.8, world: World | None = None, plan: FollowPlan | None = None,
                     max_pixels: int | None = None):
    """A render.paths.CameraPath in metres: interp | orbit | spiral | static | follow | a camera_path.json file.

    interp walks through consecutive capture cameras (in name order) around the middle of the capture, at most `max_speed`
    m/s (None: through all of them). follow (sim.follow) needs the simulated agents `sim`; `world` adds line of sight and
    ground height, `plan` the track window chosen before the sim (else one is chosen here). `max_pixels`: the frame-size
    guard for a camera_path.json file (render.limits).
    """
    from realsim.render import paths as P

    if not frames:
        raise RealsimError("the scene has no cameras to build a camera path from")
    mf = metric_frames(frames, scale)
    K, w, h = output_intrinsics(mf, width, height)
    if kind.endswith(".json"):
        cp = P.load_camera_path(kind, w, h, max_pixels=max_pixels)
        V = cp.viewmats.copy()
        V[:, :3, 3] *= scale
        return P.resample_path(P.CameraPath(V, cp.Ks, cp.width, cp.height, cp.fps), seconds, fps)
    if kind == "interp":
        return P.interp_path(_walk_window(mf, seconds * max_speed) if max_speed else mf, seconds, fps, w, h)
    if kind == "orbit":
        return P.orbit_path(mf, seconds, fps, w, h)
    if kind == "spiral":
        return P.spiral_path(mf, seconds, fps, w, h)
    T = max(1, int(round(seconds * fps)))
    if kind == "static":
        base = P.interp_path([mf[len(mf) // 2]], 1.0 / fps, fps, w, h)
        return P.CameraPath(np.repeat(base.viewmats[:1], T, 0), np.repeat(base.Ks[:1], T, 0), w, h, fps)
    if kind == "follow":
        if sim is None:
            raise RealsimError("camera path 'follow' needs the simulated agents")
        if plan is None:
            plan = plan_follow(world, mf, seconds, w, float(K[0, 0]), sim.n_agents) if world is not None else \
                _plan_without_world(mf, seconds, w, float(K[0, 0]))
        roots = sim.root[:T]
        if len(roots) < T:  # a path longer than the sim holds the last poses
            roots = np.concatenate([roots, np.repeat(roots[-1:], T - len(roots), 0)])
        return follow_path(plan, world, roots, fps, w, h, K)
    raise RealsimError(f"unknown camera path {kind!r}")


def _plan_without_world(frames: list[CameraFrame], seconds: float, width: int, fx: float) -> FollowPlan:
    from .follow import capture_track

    track = capture_track(frames)
    win = min(0.8 * seconds, track.length)
    lo = max(0.0, 0.5 * (track.length - win))
    return FollowPlan(track, lo, lo + win, None, float(np.arctan(0.5 * width / fx)), float(np.radians(30.0)))


def _walk_window(frames: list[CameraFrame], length: float) -> list[CameraFrame]:
    """The consecutive run of cameras around the middle whose path is at most `length` metres (at least two cameras)."""
    if len(frames) <= 2:
        return frames
    c = np.array([camera_center(f.viewmat) for f in frames])
    seg = np.linalg.norm(np.diff(c, axis=0), axis=1)
    lo = hi = len(frames) // 2
    total = 0.0
    while True:
        grown = False
        for side in (1, -1):
            if side > 0 and hi + 1 < len(frames) and total + seg[hi] <= length:
                total += seg[hi]; hi += 1; grown = True
            if side < 0 and lo > 0 and total + seg[lo - 1] <= length:
                total += seg[lo - 1]; lo -= 1; grown = True
        if not grown:
            break
    if hi == lo:
        hi = min(lo + 1, len(frames) - 1)
        lo = hi - 1
    return frames[lo:hi + 1]


def visible_mask(world: World, path, every: int = 8, near: float = 2.0, far: float = 14.0, frac: float = 0.5) -> np.ndarray:
    """Walkable cells [NX,NY] seen (in frame, near..far m, line of sight) by at least `frac` of the sampled path cameras."""
    return _seen_fraction(world, path, every, near, far) >= frac


def _seen_fraction(world: World, path, every: int, near: float, far: float) -> np.ndarray:
    """[NX,NY] fraction of the sampled path cameras that see each walkable cell (0 elsewhere)."""
    ij = np.argwhere(world.walkable)
    xy = world.to_world(ij)
    P = np.c_[xy, world.height(xy) + 0.9]
    idx = list(range(0, len(path), every)) or [0]
    seen = np.zeros(len(P))
    for t in idx:
        V, K = path.viewmats[t], path.Ks[t]
        pc = P @ V[:3, :3].T + V[:3, 3]
        z = pc[:, 2]
        uv = pc @ K.T
        u = uv[:, 0] / np.maximum(z, 1e-9)
        v = uv[:, 1] / np.maximum(z, 1e-9)
        m = (z > near) & (z < far) & (u > 0.1 * path.width) & (u < 0.9 * path.width) & (v > 0) & (v < path.height)
        c = camera_center(V)
        m[m] = line_of_sight(world, c[:2], xy[m])  # walls and props hide what is behind them
        seen += m
    out = np.zeros(world.shape)
    out[ij[:, 0], ij[:, 1]] = seen / len(idx)
    return out


def spawn_region(world: World, path, n_agents: int) -> np.ndarray | None:
    """Cells seen by as many of the path's cameras as still leaves room for the agents (None: the path sees too little)."""
    frac = _seen_fraction(world, path, 8, 2.0, 14.0)
    need = max(4 * n_agents, 24)
    for f in (0.5, 0.35, 0.2, 0.1, 1e-6):
        m = frac >= f
        if m.sum() >= need:
            return m
    return None
