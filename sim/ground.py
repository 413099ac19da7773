"""The sim's ground: a RANSAC plane with normal near +Z in the metric +Z-up world (the street, not a roof).

The SfM-frame ground that fixes gravity and scale before a world exists is recon.align.fit_sfm_ground; both draw their
plane samples from recon.align.plane_hypotheses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from realsim.assets.errors import RealsimError
from realsim.recon.align import plane_hypotheses

if TYPE_CHECKING:
    from .world import WorldConfig

__all__ = ["fit_ground_plane"]

UP = np.array([0.0, 0.0, 1.0])


def fit_ground_plane(xyz: np.ndarray, cfg: WorldConfig, below: float | None = None,
                     cams: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC plane with normal near +Z: returns (plane [4] = n,d with n.z > 0, n.p + d = 0; inlier mask [P]).

    Among near-horizontal planes with at least half the best support, the lowest wins (the street, not a roof).
    `below` limits candidate points to z < below (e.g. the capture cameras' height).
    """
    rng = np.random.default_rng(cfg.seed)
    P = np.asarray(xyz, np.float64)
    cand = P if below is None else P[P[:, 2] < below]
    if len(cand) < 3:
        raise RealsimError(f"cannot find the ground: only {len(cand)} scene points below the cameras")
    planes = [(int((np.abs(cand @ n + d) < cfg.ground_thresh).sum()), n, d)
              for n, d in plane_hypotheses(cand, UP, cfg.max_tilt_deg, cfg.ransac_iters, rng, eps=1e-9)]
    if not planes:
        raise RealsimError("cannot find a ground plane: no near-horizontal plane among the scene points")
    best = max(p[0] for p in planes)
    if cams is not None and len(cams) >= 3:
        # a walking capture keeps the camera at about one height above the ground: among well-supported planes below
        # every camera, take the one the cameras are most level above
        good = [p for p in planes if p[0] >= 0.3 * best and p[0] >= 3 and (cams @ p[1] + p[2]).min() > 0.3]
        # where some of them put the cameras at a person's height (median 1-2.5 m: hand-held or head-mounted), only
        # those: on a long sloped street a plane through a raised kerb or plinths can look as level (lund_street)
        human = [p for p in good if cfg.camera_height_range[0] <= float(np.median(cams @ p[1] + p[2]))
                 <= cfg.camera_height_range[1]]
        good = human or good
        if good:
            cnt, n, d = min(good, key=lambda p: float(np.std(cams @ p[1] + p[2])) - 1e-6 * p[0])
        else:
            cams = None
    if cams is None or len(cams) < 3:
        good = [p for p in planes if p[0] >= 0.5 * best and p[0] >= 3]
        # the lowest among well-supported planes (height at the candidates' centroid)
        c = cand.mean(0)
        cnt, n, d = min(good, key=lambda p: -(p[1][0] * c[0] + p[1][1] * c[1] + p[2]) / p[1][2])
    # least-squares refit on inliers
    inl = np.abs(cand @ n + d) < cfg.ground_thresh
    Q = cand[inl]
    if len(Q) >= 3:
        A = np.c_[Q[:, 0], Q[:, 1], np.ones(len(Q))]
        coef, *_ = np.linalg.lstsq(A, Q[:, 2], rcond=None)  # z = a x + b y + c
        n = np.array([-coef[0], -coef[1], 1.0])
        nrm = np.linalg.norm(n)
        n, d = n / nrm, -coef[2] / nrm
    inl_all = np.abs(P @ n + d) < cfg.ground_thresh
    return np.r_[n, d], inl_all
