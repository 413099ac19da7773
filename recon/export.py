"""Export trained scenes as plain Gaussians (standard 3DGS PLY, antimatter15 .splat, OpenUSD 3D Gaussian splat prim).

3DGS models export directly. Scaffold-GS models are decoded from many viewpoints (the training cameras plus points on
a spline between them): every anchor's neural Gaussians keep their (view-independent) positions; opacity is the mean
over the views that see the anchor (dropped = 0), scale and rotation the opacity-weighted mean, and the view-dependent
colour is fitted to SH of degree 0-3 by ridge-regularised least squares over the sampled view directions. The export
is then scored: PSNR of the plain Gaussians rendered through the 3DGS path against the model's own render.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.errors import InputError
from realsim.assets.frames import camera_center
from realsim.assets.ply import GaussianCloud, write_ply
from realsim.assets.progress import ProgressFn, report
from realsim.assets.splat import write_splat

from .metrics import psnr
from .sky import neural_part
from .splats import Splats, rasterize_splats

log = logging.getLogger("realsim.recon.export")
FORMATS = ("ply", "splat", "usd", "usda", "usdc", "usdz")


@dataclass
class ExportConfig:
    """How Scaffold models are baked into plain Gaussians and how the result is scored."""

    sh_degree: int = 3
    views_between: int = 2  # extra spline viewpoints between consecutive cameras (denser view directions)
    ridge: float = 0.02  # SH ridge weight per band l: ridge * l^2 * (total weight): keeps unseen directions tame
    min_opacity: float = 1.0 / 255.0  # baked Gaussians fainter than this are dropped
    opacity: str = "mean"  # "mean": over all views seeing the anchor (dropped = 0); "kept": over views where it is kept
    eval_views: int = 8  # cameras used to score the export (test split first)
    eval_max_side: int = 320  # scoring resolution (longest side, pixels)


def _frame_tensors(f: CameraFrame) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(f.viewmat, dtype=torch.float32), torch.as_tensor(f.K, dtype=torch.float32)


def sample_views(cameras: CameraSet, views_between: int) -> list[CameraFrame]:
    """Training cameras plus `views_between` spline cameras between each consecutive pair (name order)."""
    frames = sorted(cameras.frames, key=lambda f: f.name)
    if not frames:
        raise InputError("scene has no cameras to export from")
    out = list(frames)
    if views_between > 0 and len(frames) >= 2:
        from realsim.render.paths import interp_path

        T = (len(frames) - 1) * (views_between + 1) + 1
        w0, h0 = frames[0].width, frames[0].height
        p = interp_path(frames, seconds=T, fps=1.0, width=w0 + (w0 % 2), height=h0 + (h0 % 2), order="given",
                        rot_weight=0.0)
        for i in range(len(p)):
            out.append(CameraFrame(f"_path{i}", p.Ks[i], p.viewmats[i], p.width, p.height))
    return out


def _sh_basis_np(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    from realsim.render.sh import sh_basis

    return sh_basis(degree, F.normalize(dirs, dim=-1))


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


@torch.no_grad()
def bake_scaffold(model: Any, views: list[CameraFrame], cfg: ExportConfig,
                  progress: ProgressFn | None = None) -> tuple[GaussianCloud, dict[str, Any]]:
    """Decode the Scaffold model from every view and bake each neural Gaussian slot into one plain Gaussian."""
    deg = cfg.sh_degree
    Kb = (deg + 1) ** 2
    S = model.n_anchors * model.config.n_offsets
    # pass 1: which slots are ever decoded with positive opacity (keeps the normal equations small)
    ever = torch.zeros(S, dtype=torch.bool)
    for i, f in enumerate(views):
        V, K = _frame_tensors(f)
        _, info = model.decode(V, K, f.width, f.height)
        ever[info["slot"]] = True
        report(progress, "export: visibility", i + 1, len(views))
    slots = ever.nonzero().squeeze(1)
    n = int(slots.numel())
    if n == 0:
        raise InputError("no neural Gaussian is visible from any camera: nothing to export")
    compact = torch.full((S,), -1, dtype=torch.long)
    compact[slots] = torch.arange(n)
    seen = torch.zeros(n)  # views whose frustum holds the slot's anchor
    op_sum = torch.zeros(n)
    kept_sum = torch.zeros(n)
    kept_cnt = torch.zeros(n)
    w_sum = torch.zeros(n, dtype=torch.float64)
    scale_sum = torch.zeros(n, 3, dtype=torch.float64)
    quat_sum = torch.zeros(n, 4, dtype=torch.float64)
    quat_ref = torch.zeros(n, 4)
    has_ref = torch.zeros(n, dtype=torch.bool)
    # normal equations per Gaussian; float64 unless huge (unregularised degree-3 fits are badly conditioned)
    acc = torch.float64 if n * Kb * Kb * 8 <= (1 << 29) else torch.float32
    A = torch.zeros(n, Kb, Kb, dtype=acc)
    rhs = torch.zeros(n, Kb, 3, dtype=acc)
    means = torch.zeros(n, 3)
    k = model.config.n_offsets
    for i, f in enumerate(views):
        V, K = _frame_tensors(f)
        s, info = model.decode(V, K, f.width, f.height)
        s = neural_part(s, info)  # a sky model is not baked (its Gaussians have no anchor slot)
        idx = info["anchor_idx"]
        all_slots = (idx[:, None] * k + torch.arange(k)).reshape(-1)
        c_all = compact[all_slots]
        m_all = c_all >= 0
        seen.index_add_(0, c_all[m_all], torch.ones(int(m_all.sum())))
        op_sum.index_add_(0, c_all[m_all], info["opacity_all"].reshape(-1)[m_all].clamp_min(0).float())
        c = compact[info["slot"]]
        w = s.opacities.float()
        kept_sum.index_add_(0, c, w)
        kept_cnt.index_add_(0, c, torch.ones_like(w))
        means[c] = s.means.float()
        q = F.normalize(s.quats.float(), dim=1)
        new = ~has_ref[c]
        quat_ref[c[new]] = q[new]
        has_ref[c[new]] = True
        sign = torch.where((q * quat_ref[c]).sum(1, keepdim=True) < 0, -1.0, 1.0)
        quat_sum.index_add_(0, c, (q * sign * w[:, None]).double())
        scale_sum.index_add_(0, c, (s.scales.float() * w[:, None]).double())
        w_sum.index_add_(0, c, w.double())
        cam = camera_center(V)
        for lo in range(0, len(c), 32768):  # chunks bound the [m,Kb,Kb] outer products
            sl = slice(lo, lo + 32768)
            B = _sh_basis_np(deg, s.means[sl].to(acc) - cam.to(acc))  # [m,Kb] the directions the rasterizer uses
            y = s.colors[sl].to(acc) - 0.5  # [m,3]
            wa = w[sl].to(acc)[:, None, None]
            A.index_add_(0, c[sl], wa * B[:, :, None] * B[:, None, :])
            rhs.index_add_(0, c[sl], wa * B[:, :, None] * y[:, None, :])
        report(progress, "export: bake", i + 1, len(views))
    if cfg.opacity == "kept":
        opac = kept_sum / kept_cnt.clamp_min(1)
    elif cfg.opacity == "mean":
        opac = op_sum / seen.clamp_min(1)
    else:
        raise InputError(f"unknown opacity mode {cfg.opacity!r} (mean or kept)")
    wsum = w_sum.clamp_min(1e-12)
    scales = (scale_sum / wsum[:, None]).float()
    quats = F.normalize(quat_sum.float(), dim=1)
    bands = torch.tensor([int(math.floor(math.sqrt(j))) for j in range(Kb)], dtype=torch.float32)
    reg = cfg.ridge * bands ** 2  # [Kb]: DC unregularised
    A = A + (torch.diag_embed(reg[None].expand(n, -1)).to(acc) * w_sum.to(acc)[:, None, None]
             + 1e-10 * torch.eye(Kb, dtype=acc))
    sh = torch.empty(n, Kb, 3)
    for lo in range(0, n, 65536):  # chunked float64 solves
        hi = min(n, lo + 65536)
        sh[lo:hi] = torch.linalg.solve(A[lo:hi].double(), rhs[lo:hi].double()).float()
    keep = (opac >= cfg.min_opacity) & torch.isfinite(sh).all(dim=(1, 2)) & (w_sum > 0)
    cloud = GaussianCloud(means[keep].numpy(), quats[keep].numpy(), scales[keep].numpy(), opac[keep].numpy(),
                          sh[keep].numpy())
    info = {"slots": S, "decoded_slots": n, "exported": int(keep.sum()), "dropped_faint": int((~keep).sum()),
            "views": len(views)}
    return cloud, info


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
