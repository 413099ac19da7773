"""Mesh scoring: unlit textured render, PSNR against the scene's renders, Chamfer / F-score against ground truth."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.errors import InputError
from realsim.assets.frames import camera_center
from realsim.render.mesh import MeshRenderConfig, render_mesh

if TYPE_CHECKING:
    from .mesh import TexturedMesh

__all__ = ["render_textured", "mesh_psnr", "visible_gt_points", "mesh_accuracy", "align_to_ground_truth"]


# ---------------------------------------------------------------------------------------------------------- scoring
def render_textured(m: TexturedMesh, viewmat, K, width: int, height: int,
                    background=(0.0, 0.0, 0.0)) -> dict[str, torch.Tensor]:
    """Unlit render of the mesh (texture sampled bilinearly, or vertex colours): {"rgb", "alpha", "depth"}."""
    cfg = MeshRenderConfig(shading="none", geometry=False)
    bg = torch.as_tensor(background, dtype=torch.float32)
    if m.texture is None or m.uv is None:
        r = render_mesh(m.vertices, m.faces, vertex_colors=m.vertex_colors, viewmat=viewmat, K=K, width=width,
                        height=height, config=cfg, background=background)
        return {"rgb": r["rgb"], "alpha": r["alpha"], "depth": r["depth"]}
    uv3 = np.concatenate([m.uv, np.zeros((len(m.uv), 1), np.float32)], 1)
    r = render_mesh(m.vertices, m.faces, vertex_colors=uv3, viewmat=viewmat, K=K, width=width, height=height, config=cfg)
    tex = torch.as_tensor(m.texture, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
    g = torch.stack([r["rgb"][..., 0] * 2 - 1, (1 - r["rgb"][..., 1]) * 2 - 1], -1)[None]
    col = F.grid_sample(tex, g, mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    a = r["alpha"]
    return {"rgb": col * a + bg * (1 - a), "alpha": a, "depth": r["depth"]}


def mesh_psnr(m: TexturedMesh, scene: Any, frames: list[CameraFrame], max_side: int = 320) -> dict[str, float]:
    """PSNR of the textured mesh against the scene's own render at `frames` over the pixels both cover (alpha > 0.5),
    plus `coverage`: the fraction of the render's opaque pixels nearer than the fusion's depth_max that the mesh covers."""
    dmax = float(m.info.get("depth_max", float("inf")))
    vals, covs = [], []
    for f in frames:
        s = min(1.0, max_side / max(f.width, f.height))
        f = f.scaled(s) if s < 1.0 else f
        ref = scene.render(f.viewmat, f.K, f.width, f.height)
        r = render_textured(m, f.viewmat, f.K, f.width, f.height)
        ga = ref["alpha"][..., 0] > 0.5
        both = ga & (r["alpha"][..., 0] > 0.5)
        if both.sum() < 10:
            continue
        ga = ga & (ref["depth"][..., 0] <= dmax)
        mse = float(((r["rgb"][both] - ref["rgb"][..., :3][both]) ** 2).mean())
        vals.append(10 * math.log10(1.0 / max(mse, 1e-12)))
        covs.append(float(both.sum()) / max(1.0, float(ga.sum())))
    return {"psnr": float(np.mean(vals)) if vals else float("nan"), "psnr_min": float(np.min(vals)) if vals else float("nan"),
            "coverage": float(np.mean(covs)) if covs else 0.0, "views": len(vals)}


def _sample_surface(V: np.ndarray, Fc: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    tri = V[Fc].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    fi = rng.choice(len(Fc), size=n, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(n)), rng.random(n)
    t = tri[fi]
    return (1 - r1)[:, None] * t[:, 0] + (r1 * (1 - r2))[:, None] * t[:, 1] + (r1 * r2)[:, None] * t[:, 2]


def visible_gt_points(gt_vertices: np.ndarray, gt_faces: np.ndarray, frames: list[CameraFrame], depth_max: float,
                      max_side: int = 240, n: int = 100_000, seed: int = 0) -> np.ndarray:
    """Points of the ground-truth surface seen by the cameras within depth_max (what a reconstruction could recover)."""
    pts = []
    cfg = MeshRenderConfig(shading="none", geometry=True)
    for f in frames:
        s = min(1.0, max_side / max(f.width, f.height))
        f = f.scaled(s) if s < 1.0 else f
        r = render_mesh(gt_vertices, gt_faces, viewmat=f.viewmat, K=f.K, width=f.width, height=f.height, config=cfg)
        ok = (r["alpha"][..., 0] > 0) & (r["depth"][..., 0] < depth_max)
        pts.append(r["xyz"][ok].numpy())
    P = np.concatenate(pts) if pts else np.zeros((0, 3))
    rng = np.random.default_rng(seed)
    return P[rng.choice(len(P), size=min(n, len(P)), replace=False)] if len(P) else P


def mesh_accuracy(m: TexturedMesh, gt_points: np.ndarray, to_gt: tuple[float, np.ndarray, np.ndarray] | None = None,
                  threshold: float = 0.05, n: int = 100_000, seed: int = 0) -> dict[str, float]:
    """Chamfer distance (mean of the two directions' mean distances) and F-score at `threshold` between points sampled
    on the mesh and ground-truth surface points; `to_gt` = (s, R, t) maps mesh coordinates into the ground-truth frame."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    P = _sample_surface(m.vertices, m.faces, n, rng)
    if to_gt is not None:
        s, R, t = to_gt
        P = s * P @ np.asarray(R).T + np.asarray(t)
    d_pg = cKDTree(gt_points).query(P)[0]
    d_gp = cKDTree(P).query(gt_points)[0]
    prec, rec = float((d_pg < threshold).mean()), float((d_gp < threshold).mean())
    fs = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"chamfer": float(0.5 * (d_pg.mean() + d_gp.mean())), "accuracy": float(d_pg.mean()),
            "completeness": float(d_gp.mean()), "precision": prec, "recall": rec, "fscore": fs, "threshold": threshold}


def align_to_ground_truth(est: CameraSet, gt: CameraSet) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) from the scene's world to the capture's exact world, fitted on camera centres by name."""
    from .align import umeyama

    g = {f.name: f for f in gt.frames}
    pairs = [(f, g[f.name]) for f in est.frames if f.name in g]
    if len(pairs) < 3:
        raise InputError("fewer than 3 cameras of the scene match the ground-truth capture by name")
    A = np.array([camera_center(np.asarray(e.viewmat)) for e, _ in pairs])
    B = np.array([camera_center(np.asarray(t.viewmat)) for _, t in pairs])
    return umeyama(A, B)
