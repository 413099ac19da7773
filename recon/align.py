"""Bring an SfM model into realsim's world: +Z up (gravity -Z), ground at z=0 where found, metres when a scale is known.

Up comes from the dominant ground plane when one is found roughly along the cameras' mean up vector (photos are mostly taken
upright), else from that mean up vector. Scale (and heading) come from GPS EXIF when the positions span enough ground, else
from --scale or --camera-height (camera height above the ground plane), else the scene is marked non-metric.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from realsim.assets.errors import InputError

log = logging.getLogger("realsim.recon.align")


@dataclass
class Alignment:
    """world_from_sfm similarity (x_w = scale * R @ x + t) and how it was found."""

    matrix: np.ndarray  # [4,4]
    scale: float
    metric: bool
    up_source: str  # "ground_plane" | "camera_up" | "given"
    scale_source: str  # "gps" | "user_scale" | "camera_height" | "none"
    info: dict = field(default_factory=dict)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ~ s R src + t for [N,D] point sets (Umeyama 1991)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(src.shape[1])
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[-1, -1] = -1
    R = U @ D @ Vt
    var = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(S) @ D) / var) if with_scale and var > 0 else 1.0
    return s, R, mu_d - s * R @ mu_s


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a onto unit vector b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-12:  # opposite: rotate pi about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def camera_up_vectors(R_cw: np.ndarray) -> np.ndarray:
    """World up of each camera [N,3] from world-to-camera rotations [N,3,3] (OpenCV: image y points down)."""
    return -R_cw[:, 1, :]


def plane_hypotheses(points: np.ndarray, up: np.ndarray, max_angle_deg: float, iters: int, rng: np.random.Generator,
                     eps: float = 1e-12):
    """RANSAC samples: for each of `iters` random point triples, the plane (n [3] oriented towards `up`, d; n.x + d = 0)
    through them when its normal is within max_angle_deg of `up` (degenerate or steeper triples yield nothing)."""
    cos_max = math.cos(math.radians(max_angle_deg))
    for _ in range(iters):
        p = points[rng.choice(len(points), 3, replace=False)]
        n = np.cross(p[1] - p[0], p[2] - p[0])
        nn = np.linalg.norm(n)
        if nn < eps:
            continue
        n = n / nn
        if n @ up < 0:
            n = -n
        if n @ up < cos_max:
            continue
        yield n, -n @ p[0]


def fit_sfm_ground(points: np.ndarray, up_hint: np.ndarray, centers: np.ndarray, max_angle_deg: float = 30.0,
                   iters: int = 400, seed: int = 0) -> tuple[np.ndarray, float, float] | None:
    """Ground in an SfM frame of unknown up and scale: RANSAC plane n.x + d = 0 among points, normal within max_angle of
    up_hint and below most cameras (the metric +Z-up world's ground for the sim is sim.ground.fit_ground_plane).

    Returns (n [3] oriented up, d, inlier fraction) or None when no such plane holds >= 15% of the points.
    """
    if len(points) < 30:
        return None
    rng = np.random.default_rng(seed)
    spread = np.median(np.linalg.norm(points - np.median(points, 0), axis=1))
    thr = 0.02 * spread
    best, best_count = None, 0
    for n, d in plane_hypotheses(points, up_hint, max_angle_deg, iters, rng):
        if np.mean(centers @ n + d > 0) < 0.8:  # cameras stand above the ground
            continue
        count = int((np.abs(points @ n + d) < thr).sum())
        if count > best_count:
            best, best_count = (n, d), count
    if best is None or best_count < 0.15 * len(points):
        return None
    n, d = best
    # Least-squares refits with a shrinking band: the RANSAC band also catches the feet of walls and kerbs, which sit above
    # the ground and would lift the plane (and so bias --camera-height's scale) if kept.
    for band in (thr, thr / 2, thr / 4, thr / 8):
        inl = points[np.abs(points @ n + d) < band]
        if len(inl) < 10:
            break
        c = inl.mean(0)
        _, _, Vt = np.linalg.svd(inl - c)
        n = Vt[-1] if Vt[-1] @ n > 0 else -Vt[-1]
        d = float(-n @ c)
    return n, d, best_count / len(points)


def ground_up(R_cw: np.ndarray, centers: np.ndarray, points: np.ndarray,
              seed: int = 0) -> tuple[np.ndarray, tuple[np.ndarray, float, float] | None, np.ndarray]:
    """Up [3] of an SfM frame: the normal of the ground plane among its points [P,3] (fit_sfm_ground), else its cameras'
    mean up (tilted by their pitch). Returns (up, the plane or None, the cameras' mean up [3])."""
    cam_up = camera_up_vectors(R_cw).mean(0)
    cam_up /= max(np.linalg.norm(cam_up), 1e-12)
    plane = fit_sfm_ground(points, cam_up, centers, seed=seed)
    return (plane[0] if plane is not None else cam_up), plane, cam_up


def compute_alignment(R_cw: np.ndarray, centers: np.ndarray, points: np.ndarray, names: list[str],
                      gps_enu: dict[str, np.ndarray] | None = None, scale: float | None = None,
                      camera_height: float | None = None, gps_min_span: float = 10.0, seed: int = 0,
                      assumed_camera_height: float | None = None) -> Alignment:
    """World-from-SfM similarity for cameras (R_cw [N,3,3], centers [N,3]) and SfM points [P,3].

    `assumed_camera_height`: when neither GPS nor a user value fixes the scale, take this camera height (metres) above the
    fitted ground instead of leaving the scene non-metric (one warning line says so; scale_source "assumed_camera_height").
    """
    if scale is not None and camera_height is not None:
        raise InputError("give either --scale or --camera-height, not both")
    if scale is not None and not (scale > 0 and math.isfinite(scale)):
        raise InputError(f"--scale must be a positive number, got {scale}")
    if camera_height is not None and not (camera_height > 0 and math.isfinite(camera_height)):
        raise InputError(f"--camera-height must be a positive number of metres, got {camera_height}")
    up, plane, cam_up = ground_up(R_cw, centers, points, seed)
    ups = camera_up_vectors(R_cw)
    info: dict = {"camera_up_spread_deg": float(np.degrees(np.arccos(np.clip(ups @ cam_up, -1, 1))).mean())}
    up_source = "camera_up" if plane is None else "ground_plane"
    if plane is not None:
        info["ground_inlier_fraction"] = round(plane[2], 3)
        info["ground_vs_camera_up_deg"] = float(np.degrees(np.arccos(np.clip(up @ cam_up, -1, 1))))
    Rg = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    c_rot = centers @ Rg.T  # cameras in the levelled frame (SfM units)
    ground_z = -plane[1] if plane is not None else None  # plane n.x + d = 0 -> levelled height of the ground is -d
    # Heading: mean horizontal viewing direction along +Y unless GPS fixes east/north.
    fwd = (R_cw[:, 2, :] @ Rg.T)[:, :2].mean(0)
    yaw = math.atan2(fwd[0], fwd[1]) if np.linalg.norm(fwd) > 1e-9 else 0.0
    s, scale_source, metric = 1.0, "none", False
    gps_names = [i for i, n in enumerate(names) if gps_enu and n in gps_enu]
    if len(gps_names) >= 3 and scale is None and camera_height is None:
        en = np.stack([gps_enu[names[i]][:2] for i in gps_names])
        span = float(np.linalg.norm(en.max(0) - en.min(0)))
        if span >= gps_min_span:
            s2, R2, t2 = umeyama(c_rot[gps_names, :2], en)
            res = np.linalg.norm((s2 * c_rot[gps_names, :2] @ R2.T + t2) - en, axis=1)
            info.update(gps_span_m=span, gps_rmse_m=float(np.sqrt((res ** 2).mean())), gps_n=len(gps_names))
            s, scale_source, metric = s2, "gps", True
            yaw = -math.atan2(R2[1, 0], R2[0, 0])
            gps_fit = (R2, t2)
        else:
            log.warning("GPS positions span only %.1f m (< %.0f m): too little to fix the scale; scene left non-metric", span, gps_min_span)
    if scale is not None:
        s, scale_source, metric = float(scale), "user_scale", True
    if not metric and assumed_camera_height is not None and plane is not None:
        h = np.median(c_rot[:, 2] - ground_z)
        if h > 0:
            s, scale_source, metric = assumed_camera_height / h, "assumed_camera_height", True
            info["median_camera_height_sfm"] = float(h)
            log.warning("no GPS or scale in the photos: assuming a hand-held camera %.1f m above the ground for metres "
                        "(pass --camera-height or --scale to set it)", assumed_camera_height)
    if camera_height is not None:
        if plane is None:
            raise InputError("--camera-height needs a visible ground plane and none was found; give --scale instead")
        h = np.median(c_rot[:, 2] - ground_z)
        s, scale_source, metric = camera_height / h, "camera_height", True
        info["median_camera_height_sfm"] = float(h)
    cy, sy = math.cos(yaw), math.sin(yaw)
    Ryaw = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    R = Ryaw @ Rg
    if scale_source == "gps":
        # xy exactly as the GPS fit (east, north), shifted so the cameras' centroid is the origin.
        R2, t2 = gps_fit
        xy = s * c_rot[:, :2] @ R2.T + t2
        offset = xy.mean(0)
        info["world_origin_enu"] = [float(offset[0]), float(offset[1])]
        t = np.array([t2[0] - offset[0], t2[1] - offset[1], 0.0])
        R = np.block([[R2, np.zeros((2, 1))], [np.zeros((1, 2)), np.ones((1, 1))]]) @ Rg
    else:
        t = np.zeros(3)
        c = s * centers @ R.T
        t[:2] = -c[:, :2].mean(0)
    zc = s * (Rg @ centers.T)[2]
    t[2] = -s * ground_z if ground_z is not None else -float(np.median(zc))
    M = np.eye(4)
    M[:3, :3] = s * R
    M[:3, 3] = t
    return Alignment(M, float(s), metric, up_source, scale_source, info)
