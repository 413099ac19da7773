"""Export trained scenes as plain Gaussians (standard 3DGS PLY, antimatter15 .splat, OpenUSD 3D Gaussian splat prim).

3DGS models export directly. Scaffold-GS models are baked in bounded memory from the training cameras and spline views
between them (recon/bake.py). The export is then scored: PSNR of the plain Gaussians rendered through the 3DGS path
against the model's own render.
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.errors import InputError
from realsim.assets.ply import GaussianCloud, write_ply
from realsim.assets.progress import ProgressFn, report
from realsim.assets.splat import write_splat

from .bake import ExportConfig, bake_scaffold, sample_views
from .metrics import psnr
from .splats import Splats, rasterize_splats

log = logging.getLogger("realsim.recon.export")
__all__ = ["ExportConfig", "sample_views", "bake_scaffold", "model_to_cloud", "export_scene", "score_cloud",
           "eval_frames", "cloud_splats", "FORMATS"]
FORMATS = ("ply", "splat", "usd", "usda", "usdc", "usdz")


def _frame_tensors(f: CameraFrame) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(f.viewmat, dtype=torch.float32), torch.as_tensor(f.K, dtype=torch.float32)


def _cloud_from_splats(s: Splats, sh_degree: int) -> GaussianCloud:
    k_out = (sh_degree + 1) ** 2
    if s.sh is not None:
        sh = s.sh.detach().float()
        k_in = (int(s.sh_degree if s.sh_degree is not None else round(math.sqrt(sh.shape[1])) - 1) + 1) ** 2
        sh = sh[:, :min(k_in, k_out)]
        if sh.shape[1] < k_out:
            sh = torch.cat([sh, torch.zeros(sh.shape[0], k_out - sh.shape[1], 3)], 1)
    elif s.colors is not None:
        from realsim.assets.ply import SH_C0

        sh = torch.zeros(len(s), k_out, 3)
        sh[:, 0] = (s.colors.detach().float() - 0.5) / SH_C0
    else:
        raise InputError("model produced Gaussians without colour")
    n = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    return GaussianCloud(n(s.means), n(F.normalize(s.quats, dim=1)), n(s.scales), n(s.opacities), n(sh))


def model_to_cloud(model: Any, cameras: CameraSet, cfg: ExportConfig | None = None,
                   progress: ProgressFn | None = None) -> tuple[GaussianCloud, dict[str, Any]]:
    """Plain Gaussians of a trained model ("3dgs": as stored; "scaffold": baked, see module docstring)."""
    cfg = cfg or ExportConfig()
    if not 0 <= cfg.sh_degree <= 3:
        raise InputError(f"--sh-degree must be 0..3 (got {cfg.sh_degree})")
    kind = getattr(model, "kind", None)
    if kind == "scaffold":
        return bake_scaffold(model, sample_views(cameras, cfg.views_between), cfg, progress)
    if kind == "3dgs":
        f = cameras.frames[0] if cameras.frames else None
        V = torch.eye(4) if f is None else _frame_tensors(f)[0]
        K = torch.eye(3) if f is None else _frame_tensors(f)[1]
        with torch.no_grad():
            s = model.splats(V, K, 2, 2)
        cloud = _cloud_from_splats(s, cfg.sh_degree)
        return cloud, {"exported": len(cloud), "views": 0}
    raise InputError(f"cannot export a model of kind {kind!r} (scaffold or 3dgs)")


def cloud_splats(cloud: GaussianCloud) -> Splats:
    t = lambda a: torch.tensor(np.asarray(a, dtype=np.float32))  # noqa: E731  (copies: USD arrays are read-only)
    return Splats(t(cloud.means), t(cloud.quats), t(cloud.scales), t(cloud.opacities), sh=t(cloud.sh),
                  sh_degree=cloud.sh_degree)


def eval_frames(cameras: CameraSet, n: int, max_side: int) -> list[CameraFrame]:
    """Scoring cameras: test split first, then evenly spaced training cameras, scaled to max_side."""
    test = sorted(cameras.split("test"), key=lambda f: f.name)
    train = sorted(cameras.split("train"), key=lambda f: f.name)
    pick = test[:n]
    if len(pick) < n and train:
        idx = np.unique(np.linspace(0, len(train) - 1, min(n - len(pick), len(train))).round().astype(int))
        pick += [train[i] for i in idx]
    out = []
    for f in pick:
        s = min(1.0, max_side / max(f.width, f.height))
        out.append(f.scaled(s) if s < 1 else f)
    return out


@torch.no_grad()
def score_cloud(model: Any, cloud: GaussianCloud, frames: list[CameraFrame], backend: str = "auto",
                progress: ProgressFn | None = None) -> list[float]:
    """PSNR of the plain Gaussians (3DGS path) against the model's own render, per camera."""
    from .bundle import render_model

    sp = cloud_splats(cloud)
    out = []
    for i, f in enumerate(frames):
        V, K = _frame_tensors(f)
        ref = render_model(model, V, K, f.width, f.height, backend)["rgb"]
        rgb, _, _ = rasterize_splats(sp, V, K, f.width, f.height, backend=backend, background=(0.0, 0.0, 0.0))
        out.append(psnr(rgb[..., :3], ref))
        report(progress, "export: score", i + 1, len(frames))
    return out


def export_scene(scene: Any, out_file: str | os.PathLike, fmt: str | None = None, sh_degree: int = 3,
                 evaluate: bool = True, backend: str = "auto", cfg: ExportConfig | None = None,
                 progress: ProgressFn | None = None) -> dict[str, Any]:
    """Write `scene`'s Gaussians to a .ply, .splat or USD (.usd/.usda/.usdc/.usdz) file atomically; returns a report
    (counts, PSNR of the written Gaussians against the model's render, timing)."""
    out_file = Path(out_file)
    fmt = (fmt or out_file.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r} (choose {', '.join(FORMATS)})")
    if fmt.startswith("usd") and out_file.suffix.lower() not in (".usd", ".usda", ".usdc", ".usdz"):
        raise InputError(f"a USD export needs a .usd, .usda, .usdc or .usdz file name (got {out_file.name})")
    cfg = cfg or ExportConfig()
    cfg.sh_degree = int(sh_degree)
    t0 = time.perf_counter()
    cloud, info = model_to_cloud(scene.model, scene.cameras, cfg, progress)
    t_bake = time.perf_counter() - t0
    if fmt == "ply":
        write_ply(out_file, cloud)
    elif fmt == "splat":
        write_splat(out_file, cloud)
    else:
        from realsim.assets.usd import write_usd

        info_obj = getattr(scene, "info", None)
        metric = bool(getattr(getattr(info_obj, "world", None), "metric", False))
        write_usd(out_file, cloud, meters_per_unit=1.0, metric=metric)
    rep: dict[str, Any] = {"format": fmt, "out": str(out_file), "model_kind": scene.model.kind, "sh_degree": cloud.sh_degree,
                           "n_gaussians": len(cloud), "bytes": out_file.stat().st_size, "bake_seconds": round(t_bake, 3), **info}
    if evaluate:
        # score what the file holds (read back), not the in-memory cloud
        if fmt == "ply":
            from realsim.assets.ply import read_ply

            scored = read_ply(out_file)
        elif fmt == "splat":  # DC colour only, quantised
            from realsim.assets.splat import read_splat

            scored = read_splat(out_file)
        elif fmt.startswith("usd"):
            from realsim.assets.usd import read_usd

            scored = read_usd(out_file)[0]
        frames = eval_frames(scene.cameras, cfg.eval_views, cfg.eval_max_side)
        vals = score_cloud(scene.model, scored, frames, backend, progress)
        finite = [v for v in vals if math.isfinite(v)]
        rep["psnr_vs_model"] = float(np.mean(finite)) if finite else float("inf")
        rep["psnr_vs_model_min"] = float(np.min(vals)) if vals else None
        rep["eval_views"] = [f.name for f in frames]
        rep["eval_size"] = [frames[0].width, frames[0].height] if frames else None
    return rep
