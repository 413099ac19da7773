"""Commanded paths, rollouts of a controller along them, BVH export (metres, Y up) and a stick-figure MP4."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realsim.assets.bvh import write_bvh
from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .controller import BaseController, MotionController
from .canon import FPS
from .model import MotionModel, default_weights_path

PATH_NAMES = ("straight", "circle", "zigzag", "stopgo")


def _resample_polyline(pts: np.ndarray, speeds: np.ndarray) -> np.ndarray:
    """Positions [N,2] at 30 Hz moving along polyline `pts` [M,2] with per-frame speeds [N] (m/s), stopping at its end."""
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s_pts = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.minimum(np.concatenate([[0.0], np.cumsum(speeds[1:] / FPS)]), s_pts[-1])
    return np.stack([np.interp(s, s_pts, pts[:, 0]), np.interp(s, s_pts, pts[:, 1])], -1)


def make_path(kind: str | os.PathLike, seconds: float, speed: float = 1.2, radius: float = 2.0,
              extra: float = 2.0) -> np.ndarray:
    """World XY positions [N,2] at 30 Hz for `seconds` + `extra` (look-ahead), starting at the origin heading +X.

    straight: along +X; circle: radius `radius`, turning left; zigzag: 3 m legs at +-45 deg; stopgo: straight, 2 s walk /
    1.5 s stand; a file: JSON [[x,y],...] or CSV lines "x,y" of waypoints walked at `speed`.
    """
    if seconds <= 0 or speed <= 0 or radius <= 0:
        raise InputError("seconds, speed and radius must be positive")
    n = int(round((seconds + extra) * FPS)) + 1
    t = np.arange(n) / FPS
    k = str(kind)
    if k == "straight":
        return np.stack([speed * t, np.zeros(n)], -1)
    if k == "circle":
        a = speed * t / radius
        return np.stack([radius * np.sin(a), radius * (1 - np.cos(a))], -1)
    if k == "zigzag":  # first a half leg, then full 3 m legs, alternating +-45 degrees
        d = 3.0 / np.sqrt(2)
        m = int(np.ceil(speed * t[-1] / 3.0)) + 2
        i = np.arange(1, m)
        pts = np.concatenate([[[0.0, 0.0]], np.stack([(i - 0.5) * d, np.where(i % 2 == 1, d / 2, -d / 2)], -1)])
        return _resample_polyline(pts, np.full(n, speed))
    if k == "stopgo":
        phase = t % 3.5
        sp = np.where(phase < 2.0, speed, 0.0)
        s = np.concatenate([[0.0], np.cumsum(sp[1:] / FPS)])
        return np.stack([s, np.zeros(n)], -1)
    p = Path(k)
    if not p.is_file():
        raise InputError(f"--path must be one of {', '.join(PATH_NAMES)} or a waypoint file; {p} not found")
    try:
        if p.suffix.lower() == ".json":
            pts = np.asarray(json.loads(p.read_text()), dtype=np.float64)
        else:
            pts = np.loadtxt(p, delimiter=",", dtype=np.float64, ndmin=2)
    except (ValueError, OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read waypoints from {p}: {str(e).splitlines()[0][:80]}") from None
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2 or not np.isfinite(pts).all():
        raise InputError(f"waypoint file {p} must hold at least two finite x,y points")
    return _resample_polyline(pts, np.full(n, speed))


@dataclass
class Rollout:
    """A controller run along a path (world Z up unless said otherwise)."""

    path: np.ndarray        # [N,2] commanded positions (frame t = desired root at t)
    joints: np.ndarray      # [A,T,J,3]
    root: np.ndarray        # [A,T,3]
    heading: np.ndarray     # [A,T]
    contacts: np.ndarray    # [A,T,2]
    local_rot: np.ndarray   # [A,T,J,3,3] model frame (Y up)
    hips_model: np.ndarray  # [A,T,3] model frame (Y up)


def rollout(ctrl: BaseController, path: np.ndarray, frames: int, progress: ProgressFn | None = None,
            lookahead: int = 45) -> Rollout:
    """Run all of ctrl's agents along the same world path [N,2] (reset at its start, facing its initial direction)."""
    A = ctrl.A
    d0 = path[min(5, len(path) - 1)] - path[0]
    h0 = np.arctan2(d0[1], d0[0]) if np.linalg.norm(d0) > 1e-6 else 0.0
    ctrl.reset(np.repeat(path[:1], A, 0), np.full(A, h0))
    out = {k: [] for k in ("joints", "root", "heading", "contacts", "L", "hips")}
    for t in range(frames):
        idx = np.minimum(np.arange(t + 1, t + 1 + lookahead), len(path) - 1)
        pose = ctrl.step(np.repeat(path[idx][None], A, 0))
        L, hips, _, _ = ctrl.model_pose()
        out["joints"].append(pose.joints)
        out["root"].append(pose.root)
        out["heading"].append(pose.heading)
        out["contacts"].append(pose.contacts)
        out["L"].append(L)
        out["hips"].append(hips)
        report(progress, "sample", t + 1, frames)
    st = {k: np.stack(v, 1) for k, v in out.items()}
    return Rollout(path[1: frames + 1], st["joints"], st["root"], st["heading"], st["contacts"], st["L"], st["hips"])


def write_rollout_bvh(path: str | os.PathLike, ctrl: BaseController, ro: Rollout, agent: int = 0) -> None:
    """BVH of one agent on the canonical skeleton, metres, Y up (the model frame)."""
    sk = ctrl.skeleton
    ends = {j: np.zeros(3) for j in range(sk.n_joints) if j not in set(sk.parents.tolist())}
    write_bvh(path, sk.names, sk.parents, sk.offsets, ro.hips_model[agent], ro.local_rot[agent], 1.0 / FPS, "ZXY", ends)


# --------------------------------------------------------------------------------------------------- stick figure
def _draw_line(img: np.ndarray, p0: np.ndarray, p1: np.ndarray, color: tuple[int, int, int], r: int = 1) -> None:
    n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    xs = np.linspace(p0[0], p1[0], n).round().astype(int)
    ys = np.linspace(p0[1], p1[1], n).round().astype(int)
    H, W = img.shape[:2]
    for dx in range(-r, r + 1):
        for dy in range(-r, r + 1):
            x, y = xs + dx, ys + dy
            ok = (x >= 0) & (x < W) & (y >= 0) & (y < H)
            img[y[ok], x[ok]] = color


def render_stick_video(path: str | os.PathLike, ro: Rollout, parents: np.ndarray, width: int = 640, height: int = 480,
                       agent: int = 0) -> None:
    """H.264 MP4 of a stick figure seen from a camera trailing the agent (world Z up), with the commanded path."""
    from realsim.render.video import VideoWriter

    joints, root = ro.joints[agent], ro.root[agent]
    T = joints.shape[0]
    f = 0.9 * width
    center = root[:, :2].copy()
    from scipy.ndimage import gaussian_filter1d

    center = gaussian_filter1d(center, 15, axis=0, mode="nearest")
    left, right = _left(parents), _right(parents)
    with VideoWriter(path, FPS, width, height) as vw:  # temp file renamed into place on success, deterministic x264
        for t in range(T):
            img = np.full((height, width, 3), 235, np.uint8)
            eye = np.array([center[t, 0], center[t, 1] - 4.5, 2.0])   # looking along +Y from 4.5 m away, 2 m up
            tgt = np.array([center[t, 0], center[t, 1], 0.9])
            fwd = (tgt - eye) / np.linalg.norm(tgt - eye)
            right = np.cross(fwd, [0, 0, 1.0])
            right /= np.linalg.norm(right)
            up = np.cross(right, fwd)

            def proj(p: np.ndarray) -> np.ndarray:
                q = p - eye
                z = np.maximum(q @ fwd, 0.1)
                return np.stack([width / 2 + f * (q @ right) / z, height / 2 - f * (q @ up) / z], -1)

            for gx in np.arange(np.floor(center[t, 0]) - 6, center[t, 0] + 7):        # ground grid
                a = proj(np.array([[gx, center[t, 1] - 3, 0], [gx, center[t, 1] + 8, 0]]))
                _draw_line(img, a[0], a[1], (205, 205, 205), 0)
            for gy in np.arange(np.floor(center[t, 1]) - 3, center[t, 1] + 9):
                a = proj(np.array([[center[t, 0] - 6, gy, 0], [center[t, 0] + 7, gy, 0]]))
                _draw_line(img, a[0], a[1], (205, 205, 205), 0)
            pp = proj(np.concatenate([ro.path, np.zeros((len(ro.path), 1))], 1))
            for i in range(0, len(pp) - 3, 3):
                _draw_line(img, pp[i], pp[i + 3], (90, 160, 90), 1)
            jp = proj(joints[t])
            for j in range(1, len(parents)):
                col = (200, 60, 60) if j in left else (60, 60, 200) if j in right else (40, 40, 40)
                _draw_line(img, jp[parents[j]], jp[j], col, 2)
            vw.write(img)


def _left(parents: np.ndarray) -> set[int]:
    from .canon import SKELETON

    return {j for j, n in enumerate(SKELETON.names) if n.endswith("_L")} if len(parents) == SKELETON.n_joints else set()


def _right(parents: np.ndarray) -> set[int]:
    from .canon import SKELETON

    return {j for j, n in enumerate(SKELETON.names) if n.endswith("_R")} if len(parents) == SKELETON.n_joints else set()


def sample_to_files(path_kind: str, style: str, seconds: float, seed: int, out: str | os.PathLike,
                    weights: str | os.PathLike | None = None, speed: float = 1.2, radius: float = 2.0, video: bool = True,
                    progress: ProgressFn | None = None, w_style: float = 2.0, threads: int | None = 1) -> dict[str, str]:
    """Sample one agent along a path; writes OUT.bvh (+ OUT.mp4). Returns what was written and the tracking error.
    `threads`: torch threads while sampling (None: as set)."""
    from .metrics import path_metrics

    model = MotionModel.load(weights or default_weights_path())
    ctrl = MotionController(model, 1, [style], seed=seed, w_style=w_style, threads=threads)
    path = make_path(path_kind, seconds, speed, radius)
    frames = int(round(seconds * FPS))
    ro = rollout(ctrl, path, frames, progress)
    stem = Path(out)
    if stem.suffix.lower() in (".bvh", ".mp4"):
        stem = stem.with_suffix("")
    res = {}
    bvh = stem.with_suffix(".bvh")
    write_rollout_bvh(bvh, ctrl, ro)
    res["bvh"] = str(bvh)
    if video:
        mp4 = stem.with_suffix(".mp4")
        render_stick_video(mp4, ro, ctrl.skeleton.parents)
        res["video"] = str(mp4)
    m = path_metrics(ro, path)
    res["trajectory_error_cm"] = f"mean {m['traj_mean_cm'][0]:.1f}, max {m['traj_max_cm'][0]:.1f}"
    res["heading_error_deg"] = f"{m['heading_deg'][0]:.1f}"
    return res
