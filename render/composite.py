"""Depth compositing of a rasterised mesh layer (agents) with a Gaussian render, and a soft contact shadow on the ground.

Per pixel the nearer layer wins (a soft depth test over a few centimetres so contacts do not flicker); both layers carry alpha,
so semi-transparent Gaussian edges and anti-aliased mesh edges blend instead of cutting. The Gaussian render's colour is
assumed composited over `background`; its depth is the expected z (0 where alpha is ~0).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["composite_layers", "unproject_depth", "contact_shadow"]


def _t(x) -> torch.Tensor:
    return x.float() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float32)


def composite_layers(scene_rgb, scene_depth, scene_alpha, mesh_rgb, mesh_depth, mesh_alpha, background=(0.0, 0.0, 0.0),
                     soft_depth: float = 0.03, alpha_min: float = 0.5) -> dict[str, torch.Tensor]:
    """Composite a mesh layer with a scene layer by per-pixel depth.

    scene_*: rgb [H,W,3] (over `background`), depth [H,W,1], alpha [H,W,1]; mesh_*: rgb [H,W,3] (over black or anything: only
    rgb * alpha is used when alpha < 1), depth [H,W,1], alpha [H,W,1]. Returns {"rgb" [H,W,3], "depth" [H,W,1],
    "mesh_weight" [H,W,1] (how much of the pixel the mesh contributes, in [0,1])}.
    """
    srgb, sd, sa = _t(scene_rgb), _t(scene_depth), _t(scene_alpha)
    mrgb, md, ma = _t(mesh_rgb), _t(mesh_depth), _t(mesh_alpha)
    bg = _t(background).view(1, 1, 3)
    # soft depth test: front = 1 when the mesh is nearer than the scene surface; a transparent scene pixel never occludes
    scene_solid = (sa > 1e-3) & (sd > 0)
    front = torch.sigmoid((sd - md) / max(soft_depth, 1e-6) * 4.0)
    front = torch.where(scene_solid, front, torch.ones_like(front))
    front = torch.where(ma > 0, front, torch.zeros_like(front))
    premul_scene = srgb - bg * (1 - sa)  # scene colour without its background
    # mesh in front: mesh over (scene over bg); scene in front: scene over (mesh over bg)
    mesh_over = mrgb * ma + srgb * (1 - ma)
    mesh_bg = mrgb * ma + bg * (1 - ma)
    scene_over = premul_scene + (1 - sa) * mesh_bg
    rgb = front * mesh_over + (1 - front) * scene_over
    w = front * ma + (1 - front) * ma * (1 - sa)
    depth = torch.where(w >= alpha_min, md, torch.where(scene_solid, sd, torch.where(ma > 0, md, torch.zeros_like(sd))))
    return {"rgb": rgb.clamp(0, 1), "depth": depth, "mesh_weight": w}


def unproject_depth(depth, viewmat, K) -> torch.Tensor:
    """World points [H,W,3] of a z-depth image [H,W,1] (pixel centres at +0.5, OpenCV camera)."""
    d = _t(depth)[..., 0]
    H, W = d.shape
    Km, V = _t(K), _t(viewmat)
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32) + 0.5, torch.arange(W, dtype=torch.float32) + 0.5, indexing="ij")
    xc = (xs - Km[0, 2]) / Km[0, 0] * d
    yc = (ys - Km[1, 2]) / Km[1, 1] * d
    pc = torch.stack([xc, yc, d], -1)
    R, t = V[:3, :3], V[:3, 3]
    return (pc - t) @ R  # R^T (p - t) in row form


def contact_shadow(points, ground_z, centers, radii, strength: float = 0.55, height_falloff: float = 0.25) -> torch.Tensor:
    """Multiplicative darkening [H,W,1] of scene pixels near the ground under each agent.

    points [H,W,3] world positions of the scene pixels; ground_z [H,W] ground height under each pixel; centers [A,3]
    contact points (xy under the body, z at the ground); radii [A] shadow radius (m). A soft Gaussian blob per agent that fades
    with the pixel's height above the ground, so walls and props do not catch it.
    """
    P = _t(points)
    gz = _t(ground_z)
    C = _t(centers).view(-1, 3)
    r = _t(radii).view(-1)
    H, W, _ = P.shape
    if C.shape[0] == 0:
        return torch.ones(H, W, 1)
    d2 = ((P[None, ..., :2] - C[:, None, None, :2]) ** 2).sum(-1)  # [A,H,W]
    e = d2 / (2 * (r[:, None, None] * 0.5) ** 2)
    # only where a blob reaches: beyond e = 20 its darkening (0.55 e^-20) rounds away against 1 in float32
    near = (e < 20).any(0)  # [H,W]
    out = torch.ones(H, W)
    if near.any():
        blob = torch.exp(-e[:, near])  # [A,n]
        occl = 1 - torch.prod(1 - strength * blob, 0)  # overlapping shadows do not go black
        hfac = torch.exp(-(((P[..., 2] - gz)[near]).abs() / height_falloff) ** 2)  # fades with height above the ground
        out[near] = 1 - occl * hfac
    return out[..., None]
