"""Ground-truth check of estimated poses against the SYNTHETIC capture's exact cameras."""
from __future__ import annotations

import numpy as np

from realsim.assets.cameras import CameraSet
from realsim.assets.frames import camera_center
from realsim.recon.align import umeyama


def pose_error_vs_ground_truth(est: CameraSet, gt: CameraSet) -> dict[str, float]:
    """Camera centres and rotations of estimated cameras against the exact ones after a similarity (Umeyama) alignment.

    Returns rmse / max centre error (metres of the ground truth), max rotation error (degrees), the fitted scale, matched count.
    """
    g = {f.name: f for f in gt.frames}
    pairs = [(f, g[f.name]) for f in est.frames if f.name in g]
    if len(pairs) < 3:
        return {"matched": float(len(pairs))}
    A = np.array([camera_center(e.viewmat) for e, _ in pairs])
    B = np.array([camera_center(t.viewmat) for _, t in pairs])
    s, R, shift = umeyama(A, B)
    err = np.linalg.norm(s * A @ R.T + shift - B, axis=1)
    rot = []
    for e, t in pairs:
        # camera-to-world rotations: R_t ~ R @ R_e  =>  angle of R_t^T R R_e
        Re, Rt = e.viewmat[:3, :3].T, t.viewmat[:3, :3].T
        M = Rt.T @ R @ Re
        rot.append(np.degrees(np.arccos(np.clip((np.trace(M) - 1) / 2, -1, 1))))
    return {"matched": float(len(pairs)), "centre_rmse_m": float(np.sqrt((err ** 2).mean())), "centre_max_m": float(err.max()),
            "rotation_max_deg": float(max(rot)), "scale_to_gt": s}
