"""Scaffold-GS -> plain 3DGS baking in bounded memory: anchors are baked in chunks, each chunk decoded from every view.

Every anchor's neural Gaussians keep their (view-independent) positions; opacity is the mean over the views that see
the anchor (dropped = 0), scale and rotation the opacity-weighted mean, and the view-dependent colour is fitted to SH of
degree 0-3 by ridge-regularised least squares over the sampled view directions. The views are the training cameras and
spline views between consecutive ones (never the test split: it scores the export). The normal equations
([slots, K, K], K = 16 at degree 3) only exist for one chunk of `chunk` anchors at a time, so peak memory is
O(chunk x n_offsets x K^2) plus the output instead of O(all slots x K^2).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.errors import InputError
from realsim.assets.frames import camera_center
from realsim.assets.ply import GaussianCloud
from realsim.assets.progress import ProgressFn, report

from .sky import neural_part

__all__ = ["ExportConfig", "sample_views", "bake_scaffold", "decode_anchor_range"]

ROWS = 8192  # decoded Gaussians per outer-product batch: bounds the [rows, K, K] temporaries


@dataclass
class ExportConfig:
    """How Scaffold models are baked into plain Gaussians and how the result is scored."""

    sh_degree: int = 3
    views_between: int = 2  # extra spline viewpoints between consecutive training cameras (denser view directions)
    ridge: float = 0.02  # SH ridge weight per band l: ridge * l^2 * (total weight): keeps unseen directions tame
    min_opacity: float = 1.0 / 255.0  # baked Gaussians fainter than this are dropped
    opacity: str = "mean"  # "mean": over all views seeing the anchor (dropped = 0); "kept": over views where it is kept
    chunk: int = 4096  # anchors baked at a time (<= 0: all at once); ~0.4 MB of normal equations per anchor at k=10
    eval_views: int = 8  # cameras used to score the export (test split first)
    eval_max_side: int = 320  # scoring resolution (longest side, pixels)


def sample_views(cameras: CameraSet, views_between: int) -> list[CameraFrame]:
    """Training cameras (name order) plus `views_between` spline cameras between each consecutive pair; no test camera."""
    frames = sorted(cameras.split("train"), key=lambda f: f.name)
    if not frames:
        raise InputError("scene has no training cameras to export from")
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


class _AnchorRange:
    """A Scaffold model restricted to anchors [lo, hi): its per-anchor tensors sliced (views, no copies), no sky,
    everything else (MLPs, config, methods) the model's own, so the model's decode runs on the chunk unchanged."""

    def __init__(self, model: Any, lo: int, hi: int, per_anchor: list[str]) -> None:
        self._model = model
        for name in per_anchor:
            setattr(self, name, getattr(model, name)[lo:hi])
        self.sky = None

    def __getattr__(self, name: str) -> Any:
        if name == "_model":
            raise AttributeError(name)
        attr = inspect.getattr_static(type(self._model), name, None)
        if inspect.isfunction(attr) or isinstance(attr, property):
            return attr.__get__(self, type(self))  # methods and properties see the sliced tensors
        return getattr(self._model, name)


def _per_anchor_names(model: Any) -> list[str] | None:
    """Names of the model's per-anchor tensors (anchors + dynamic_params) when its decode works on any anchor subset
    (ScaffoldModel's own decode / prefilter: row-wise), else None (e.g. LOD models select rows across anchors)."""
    from .scaffold import ScaffoldModel

    if not isinstance(model, ScaffoldModel) or any(getattr(type(model), m) is not getattr(ScaffoldModel, m)
                                                   for m in ("decode", "visible_anchors", "anchor_radii")):
        return None
    names = ["anchors", *model.dynamic_params()]
    M = model.n_anchors
    return names if all(getattr(model, n).shape[0] == M for n in names) else None


def decode_anchor_range(model: Any, lo: int, hi: int, V: torch.Tensor, K: torch.Tensor, width: int,
                        height: int) -> tuple[Any, dict[str, torch.Tensor]]:
    """The model's neural Gaussians of anchors [lo, hi) seen from one view; info slot / anchor_idx are global indices.

    Scaffold models decode only those anchors; any other model is decoded whole and filtered."""
    k = model.config.n_offsets
    names = _per_anchor_names(model)
    if names is not None:
        s, info = type(model).decode(_AnchorRange(model, lo, hi, names), V, K, width, height)
        s = neural_part(s, info)
        return s, {"anchor_idx": info["anchor_idx"] + lo, "slot": info["slot"] + lo * k,
                   "opacity_all": info["opacity_all"]}
    s, info = model.decode(V, K, width, height)
    s = neural_part(s, info)  # a sky model is not baked (its Gaussians have no anchor slot)
    a, slot = info["anchor_idx"], info["slot"]
    am, sm = (a >= lo) & (a < hi), (slot >= lo * k) & (slot < hi * k)
    opac_all = info["opacity_all"].reshape(len(a), k)[am].reshape(-1)
    f = lambda t: None if t is None else t[sm]  # noqa: E731
    s = type(s)(f(s.means), f(s.quats), f(s.scales), f(s.opacities), f(s.colors), f(s.sh), s.sh_degree)
    return s, {"anchor_idx": a[am], "slot": slot[sm], "opacity_all": opac_all}


class _Accumulator:
    """Per-slot sums over views for `n` consecutive slots starting at `first`: opacity, weighted scale/rotation and the
    SH normal equations A [n,K,K], rhs [n,K,3] (float64 unless they would exceed 512 MB)."""

    def __init__(self, first: int, n: int, Kb: int, k: int, device: torch.device) -> None:
        self.first, self.n, self.Kb, self.k = first, n, Kb, k
        z = lambda *s, dt=torch.float32: torch.zeros(*s, dtype=dt, device=device)  # noqa: E731
        self.seen, self.op_sum, self.kept_sum, self.kept_cnt = z(n), z(n), z(n), z(n)
        self.w_sum, self.scale_sum, self.quat_sum = z(n, dt=torch.float64), z(n, 3, dt=torch.float64), z(n, 4, dt=torch.float64)
        self.quat_ref, self.has_ref, self.means = z(n, 4), z(n, dt=torch.bool), z(n, 3)
        self.acc = torch.float64 if n * Kb * Kb * 8 <= (1 << 29) else torch.float32
        self.A, self.rhs = z(n, Kb, Kb, dt=self.acc), z(n, Kb, 3, dt=self.acc)
        self.nbytes = sum(t.numel() * t.element_size() for t in vars(self).values() if isinstance(t, torch.Tensor))

    def add(self, s: Any, info: dict[str, torch.Tensor], cam: torch.Tensor, deg: int) -> None:
        """One view's decode of this chunk's anchors (global slot indices)."""
        from realsim.render.sh import sh_basis

        dev = self.A.device
        k = self.k
        all_c = ((info["anchor_idx"].to(dev)[:, None] * k + torch.arange(k, device=dev)).reshape(-1) - self.first)
        self.seen.index_add_(0, all_c, torch.ones(len(all_c), device=dev))
        self.op_sum.index_add_(0, all_c, info["opacity_all"].reshape(-1).to(dev).clamp_min(0).float())
        c = info["slot"].to(dev) - self.first
        w = s.opacities.to(dev).float()
        self.kept_sum.index_add_(0, c, w)
        self.kept_cnt.index_add_(0, c, torch.ones_like(w))
        self.means[c] = s.means.to(dev).float()
        q = F.normalize(s.quats.to(dev).float(), dim=1)
        new = ~self.has_ref[c]
        self.quat_ref[c[new]] = q[new]
        self.has_ref[c[new]] = True
        sign = torch.where((q * self.quat_ref[c]).sum(1, keepdim=True) < 0, -1.0, 1.0)
        self.quat_sum.index_add_(0, c, (q * sign * w[:, None]).double())
        self.scale_sum.index_add_(0, c, (s.scales.to(dev).float() * w[:, None]).double())
        self.w_sum.index_add_(0, c, w.double())
        cam = cam.to(dev, self.acc)
        for lo in range(0, len(c), ROWS):  # batches bound the [rows,Kb,Kb] outer products
            sl = slice(lo, lo + ROWS)
            B = sh_basis(deg, F.normalize(s.means[sl].to(dev, self.acc) - cam, dim=-1))  # [m,Kb] the rasterizer's dirs
            y = s.colors[sl].to(dev, self.acc) - 0.5  # [m,3]
            wa = w[sl].to(self.acc)[:, None, None]
            self.A.index_add_(0, c[sl], wa * B[:, :, None] * B[:, None, :])
            self.rhs.index_add_(0, c[sl], wa * B[:, :, None] * y[:, None, :])

    def solve(self, cfg: ExportConfig) -> tuple[dict[str, torch.Tensor], int]:
        """Baked Gaussians of the slots decoded at least once and not too faint: (arrays, number decoded)."""
        dec = (self.kept_cnt > 0).nonzero().squeeze(1)
        if cfg.opacity == "kept":
            opac = self.kept_sum[dec] / self.kept_cnt[dec].clamp_min(1)
        elif cfg.opacity == "mean":
            opac = self.op_sum[dec] / self.seen[dec].clamp_min(1)
        else:
            raise InputError(f"unknown opacity mode {cfg.opacity!r} (mean or kept)")
        Kb = self.Kb
        w_sum = self.w_sum[dec]
        wsum = w_sum.clamp_min(1e-12)
        scales = (self.scale_sum[dec] / wsum[:, None]).float()
        quats = F.normalize(self.quat_sum[dec].float(), dim=1)
        bands = torch.tensor([int(math.floor(math.sqrt(j))) for j in range(Kb)], dtype=torch.float64, device=dec.device)
        reg = torch.diag(cfg.ridge * bands ** 2)  # [Kb,Kb]: DC unregularised
        eye = 1e-10 * torch.eye(Kb, dtype=torch.float64, device=dec.device)
        sh = torch.empty(len(dec), Kb, 3, device=dec.device)
        for lo in range(0, len(dec), ROWS):  # batched float64 solves
            d = dec[lo:lo + ROWS]
            A = self.A[d].double() + reg * w_sum[lo:lo + ROWS, None, None] + eye
            sh[lo:lo + ROWS] = torch.linalg.solve(A, self.rhs[d].double()).float()
        keep = (opac >= cfg.min_opacity) & torch.isfinite(sh).all(dim=(1, 2)) & (w_sum > 0)
        out = {"means": self.means[dec][keep], "quats": quats[keep], "scales": scales[keep], "opacities": opac[keep],
               "sh": sh[keep]}
        return {k: v.cpu() for k, v in out.items()}, int(len(dec))


@torch.no_grad()
def bake_scaffold(model: Any, views: list[CameraFrame], cfg: ExportConfig,
                  progress: ProgressFn | None = None) -> tuple[GaussianCloud, dict[str, Any]]:
    """Decode the Scaffold model from every view and bake each neural Gaussian slot into one plain Gaussian, `cfg.chunk`
    anchors at a time (see the module docstring); slots come out in slot order whatever the chunk size."""
    deg, k, M = cfg.sh_degree, model.config.n_offsets, model.n_anchors
    Kb = (deg + 1) ** 2
    chunk = M if cfg.chunk <= 0 else min(int(cfg.chunk), max(M, 1))
    anchors = getattr(model, "anchors", None)
    device = anchors.device if isinstance(anchors, torch.Tensor) else torch.device("cpu")
    frames = [(torch.as_tensor(f.viewmat, dtype=torch.float32), torch.as_tensor(f.K, dtype=torch.float32), f)
              for f in views]
    parts: list[dict[str, torch.Tensor]] = []
    decoded, peak, n_chunks = 0, 0, -(-M // chunk) if M else 0
    for ci, lo in enumerate(range(0, M, chunk)):
        hi = min(M, lo + chunk)
        acc = _Accumulator(lo * k, (hi - lo) * k, Kb, k, device)
        peak = max(peak, acc.nbytes)
        for V, K, f in frames:
            s, info = decode_anchor_range(model, lo, hi, V, K, f.width, f.height)
            acc.add(s, info, camera_center(V), deg)
        part, n_dec = acc.solve(cfg)
        decoded += n_dec
        parts.append(part)
        del acc
        report(progress, "export: bake", ci + 1, n_chunks)
    if decoded == 0:
        raise InputError("no neural Gaussian is visible from any camera: nothing to export")
    cat = {key: torch.cat([p[key] for p in parts]).numpy() for key in parts[0]}
    cloud = GaussianCloud(cat["means"], cat["quats"], cat["scales"], cat["opacities"], cat["sh"])
    info = {"slots": M * k, "decoded_slots": decoded, "exported": len(cloud), "dropped_faint": decoded - len(cloud),
            "views": len(views), "chunk_anchors": chunk, "chunks": n_chunks, "peak_accumulator_bytes": int(peak)}
    return cloud, info

