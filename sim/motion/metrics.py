"""Motion quality metrics (world +Z up, metres in, cm / deg out): path tracking, heading, foot skating, ground penetration."""
from __future__ import annotations

import numpy as np

from .canon import FOOT_IDX, FPS, SOLE_HEIGHT, wrap_angle

CONTACT_H = 0.02   # a foot joint within 2 cm of its standing height counts as in contact (metric only)


def distance_to_polyline(p: np.ndarray, path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance [T] of points p [T,2] to the polyline path [N,2] and the index of the nearest segment [T]."""
    a, b = path[:-1], path[1:]
    ab = b - a
    L2 = np.maximum((ab ** 2).sum(-1), 1e-12)
    best = np.full(len(p), np.inf)
    seg = np.zeros(len(p), dtype=np.int64)
    for i0 in range(0, len(p), 256):
        q = p[i0:i0 + 256, None]
        u = np.clip(((q - a) * ab).sum(-1) / L2, 0, 1)
        d = np.linalg.norm(q - (a + u[..., None] * ab), axis=-1)
        seg[i0:i0 + 256] = d.argmin(1)
        best[i0:i0 + 256] = d.min(1)
    return best, seg


def foot_metrics(joints: np.ndarray, ground: np.ndarray | float = 0.0) -> dict[str, float]:
    """Foot skating (cm/s, mean horizontal speed of ankle/toe joints while within CONTACT_H of standing height) and
    ground penetration (cm: mean over frames and max of how far a foot joint sinks below its standing height).

    joints [T,J,3] world Z up; ground: floor height [T] or scalar.
    """
    g = np.broadcast_to(np.asarray(ground, dtype=np.float64), joints.shape[:1])
    sole = []
    ids = []
    for a, t in FOOT_IDX:
        ids += [a, t]
        sole += [SOLE_HEIGHT["Foot"], SOLE_HEIGHT["Toes"]]
    fj = joints[:, ids]                                           # [T,4,3]
    h = fj[..., 2] - g[:, None] - np.asarray(sole)[None]          # height above standing height
    v = np.linalg.norm(np.diff(fj[..., :2], axis=0), axis=-1) * FPS  # [T-1,4]
    contact = (h[1:] < CONTACT_H) & (h[:-1] < CONTACT_H)
    skate = float(v[contact].mean() * 100) if contact.any() else 0.0
    pen = np.maximum(-h, 0).max(1)                                # [T]
    return {"skate_cm_s": skate, "penetration_mean_cm": float(pen.mean() * 100), "penetration_max_cm": float(pen.max() * 100),
            "contact_ratio": float(contact.mean())}


def path_metrics(ro, path: np.ndarray, skip: int = 15) -> dict[str, list[float]]:
    """Per agent of a Rollout: trajectory error to the commanded polyline (mean/max cm), heading error to the path
    tangent where the command moves (deg), foot skating and penetration. The first `skip` frames (start-up) are ignored."""
    out: dict[str, list[float]] = {k: [] for k in ("traj_mean_cm", "traj_max_cm", "heading_deg", "skate_cm_s",
                                                   "penetration_mean_cm", "penetration_max_cm", "end_error_cm")}
    A, T = ro.root.shape[:2]
    cmd = path[1:T + 1]
    speed = np.zeros(len(path))
    speed[1:] = np.linalg.norm(np.diff(path, axis=0), axis=1) * FPS
    for a in range(A):
        r = ro.root[a, skip:, :2]
        d, seg = distance_to_polyline(r, path[: T + 1])
        tang = path[np.minimum(seg + 1, len(path) - 1)] - path[seg]
        # tangent from a wider window (robust to the zero-length segments of stops)
        lo, hi = np.maximum(seg - 5, 0), np.minimum(seg + 6, len(path) - 1)
        tang = path[hi] - path[lo]
        # only while the command itself moves (time-indexed): standing still has no path direction to face
        moving = (speed[np.arange(skip, T) + 1] > 0.3) & (np.linalg.norm(tang, axis=1) > 1e-3)
        herr = np.abs(wrap_angle(ro.heading[a, skip:] - np.arctan2(tang[:, 1], tang[:, 0])))
        out["traj_mean_cm"].append(float(d.mean() * 100))
        out["traj_max_cm"].append(float(d.max() * 100))
        out["heading_deg"].append(float(np.degrees(herr[moving]).mean()) if moving.any() else 0.0)
        fm = foot_metrics(ro.joints[a], ro.root[a, :, 2])
        out["skate_cm_s"].append(fm["skate_cm_s"])
        out["penetration_mean_cm"].append(fm["penetration_mean_cm"])
        out["penetration_max_cm"].append(fm["penetration_max_cm"])
        out["end_error_cm"].append(float(np.linalg.norm(ro.root[a, -1, :2] - cmd[-1]) * 100))
    return out


SKATE_H = 0.025  # m above a foot joint's lowest height: the contact band of the shared skating metric


def skating(joints: np.ndarray, ground: np.ndarray | float, feet: list[int], fps: float = FPS, h: float = SKATE_H) -> float:
    """The one skating figure (cm/s) for the raw model, the rendered sim and real mocap alike.

    For each foot joint (ankle and toe, both feet) and pair of consecutive frames at `fps`: height above the ground
    (lower of the two frames) relative to that joint's lowest height in the clip; within h (2.5 cm) it counts as a contact
    frame and its horizontal speed is weighted GMD-style by (2 - 2^(height / h)) (1 on the floor, 0 at the band's top).
    Returns the weighted speeds summed over contact frames / the number of contact frames, in cm/s.
    joints [T,J,3] world +Z up (metres); ground [T] or [T,F] floor height under each joint, or a scalar.
    """
    fj = np.asarray(joints, np.float64)[:, feet]                         # [T,F,3]
    g = np.asarray(ground, np.float64)
    z = fj[..., 2] - (g[:, None] if g.ndim == 1 else g)
    z = z - z.min(0, keepdims=True)                                      # above each joint's lowest
    hh = np.minimum(z[1:], z[:-1])                                       # [T-1,F]
    v = np.linalg.norm(np.diff(fj[..., :2], axis=0), axis=-1) * fps
    contact = hh < h
    if not contact.any():
        return 0.0
    w = np.clip(2.0 - np.power(2.0, hh / h), 0.0, 1.0)
    return float((w * v)[contact].sum() / contact.sum() * 100.0)


def along_track(root_xy: np.ndarray, path: np.ndarray, skip: int = 15) -> dict[str, float]:
    """Along-track tracking of one body: its arc length along the commanded polyline (nearest point) vs the commanded
    arc length at the same frame; root_xy [T,2] world, path [N,2] (frame t commands path[t+1]). Mean / max |diff| (cm)
    after `skip` frames, and the end error (cm, straight-line distance to the last command)."""
    T = len(root_xy)
    poly = path[: T + 1]
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(poly, axis=0), axis=1))])
    s_body = np.zeros(T)
    for t in range(T):  # nearest point among the segments within +-2 s of the command (closed loops stay unambiguous)
        lo, hi = max(0, t + 1 - 60), min(len(poly) - 1, t + 1 + 60)
        a, b = poly[lo:hi], poly[lo + 1:hi + 1]
        ab = b - a
        u = np.clip(((root_xy[t] - a) * ab).sum(-1) / np.maximum((ab ** 2).sum(-1), 1e-12), 0, 1)
        k = int(np.argmin(np.linalg.norm(root_xy[t] - (a + u[:, None] * ab), axis=-1)))
        s_body[t] = cum[lo + k] + u[k] * np.linalg.norm(ab[k])
    err = np.abs(s_body - cum[1: T + 1])[skip:]
    return {"along_mean_cm": float(err.mean() * 100), "along_max_cm": float(err.max() * 100),
            "end_cm": float(np.linalg.norm(root_xy[-1] - path[T]) * 100)}
