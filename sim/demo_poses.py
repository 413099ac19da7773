"""The demo's stage helpers. Poses: SfM on the capture; for the SYNTHETIC capture, checked against its exact cameras and
retried. Kernels: built in the background while capture and poses run (prebuild_kernels).

COLMAP's incremental mapper is not deterministic across threads, and a weak stretch of a walk can come out folded while
reporting sub-pixel reprojection error (seed 3's start did, with the old fast-swinging look: capture/rig.py). The
synthetic capture knows its exact cameras, so the demo checks every attempt against them and retries with another
mapper seed (one warning line each); real photos have no such reference and run once.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from realsim.assets.errors import RealsimError
from realsim.assets.progress import ProgressFn

__all__ = ["run_demo_poses", "prebuild_kernels", "proc_cpu", "POSE_OK_CENTRE_M", "POSE_OK_ROTATION_DEG", "POSE_ATTEMPTS"]

log = logging.getLogger("realsim.sim.pipeline")

POSE_OK_CENTRE_M = 0.10  # centre RMSE after a similarity fit to the exact cameras
POSE_OK_ROTATION_DEG = 2.0  # worst camera rotation error
POSE_ATTEMPTS = 3


def run_demo_poses(images: Path, poses_dir: Path, popts, gt_cameras: Path | None,
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run `poses`; with gt_cameras (synthetic), retry until the poses match them. Returns demo.json's poses block."""
    from dataclasses import replace

    from realsim.assets.cameras import load_cameras
    from realsim.recon import run_poses

    from .capture import pose_error_vs_ground_truth

    attempts: list[dict[str, Any]] = []
    for k in range(POSE_ATTEMPTS if gt_cameras is not None else 1):
        o = replace(popts, seed=popts.seed + 1000 * k)
        try:
            pres = run_poses(images, poses_dir, o, overwrite=True, progress=progress)
        except RealsimError as e:
            if gt_cameras is None:
                raise
            attempts.append({"seed": o.seed, "error": str(e)})
        else:
            info = {"registered": pres.n_registered, "images": pres.n_images, "points": pres.n_points,
                    "reproj_px": pres.mean_reproj_px, "metric": pres.metric, "scale_source": pres.scale_source}
            if gt_cameras is None:
                return info
            err = pose_error_vs_ground_truth(load_cameras(poses_dir / "cameras.json"), load_cameras(gt_cameras))
            attempts.append({"seed": o.seed, **err})
            if err["centre_rmse_m"] <= POSE_OK_CENTRE_M and err["rotation_max_deg"] <= POSE_OK_ROTATION_DEG:
                return {**info, "vs_ground_truth": err, "attempts": attempts}
        if k + 1 < POSE_ATTEMPTS:
            a = attempts[-1]
            why = a.get("error") or (f"centres {a['centre_rmse_m']:.2f} m RMSE, rotations up to "
                                     f"{a['rotation_max_deg']:.0f} deg off the exact cameras")
            log.warning("SfM attempt %d on the synthetic capture is wrong (%s); retrying with another mapper seed", k + 1, why)
    raise RealsimError(f"SfM could not pose the synthetic capture in {POSE_ATTEMPTS} attempts (last: "
                       f"{attempts[-1].get('error') or attempts[-1]}); try another --seed")


def proc_cpu() -> float:
    """CPU seconds of this process so far (all its threads), user + system."""
    t = os.times()
    return t.user + t.system


def prebuild_kernels() -> threading.Thread:
    """Build (or load) the C++ CPU kernels and the anchor prefilter in a background thread while capture and poses run.

    A cold build is ~30 CPU s of serial compiler work (one translation unit, render/csrc/cpu_kernels.cpp): overlapped
    with the capture it fills the other core instead of stalling training. A failure is remembered by the
    kernels' loader and reported where training uses them, as without the prebuild."""
    import torch  # imported here, in the calling thread: two threads importing one package at once can see it half-made
    import torch.utils.cpp_extension  # noqa: F401 - the builder's own import, done here for the same reason

    from realsim.render.prefilter import anchor_prefilter
    from realsim.render.rasterization import resolve_backend

    def work() -> None:
        try:
            if resolve_backend("auto", torch.device("cpu")) == "cpu":
                anchor_prefilter(torch.zeros(1, 3), 0.1, torch.eye(4), torch.eye(3), 8, 8, backend="cpu")
        except Exception as e:  # noqa: BLE001 - reported again (as one line) where training loads the kernels
            log.info("kernel prebuild: %s", e)

    th = threading.Thread(target=work, name="realsim-kernel-build", daemon=True)
    th.start()
    return th
