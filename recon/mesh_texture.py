"""Mesh texturing and files: xatlas UV unwrap, texture bake from the fused views, .ply/.obj/.glb export."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from realsim.assets.errors import InputError
from realsim.assets.frames import camera_center
from realsim.render.mesh import MeshRenderConfig, render_mesh

if TYPE_CHECKING:
    from .mesh import TexturedMesh, _View

__all__ = ["bake_texture", "save_mesh", "to_trimesh", "MESH_SUFFIXES"]

MESH_SUFFIXES = (".ply", ".obj", ".glb")


# ---------------------------------------------------------------------------------------------------------- texture
def _uv_raster(uv: np.ndarray, faces: np.ndarray, attr: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolate per-vertex attr [V,3] over the UV charts: -> (values [T,T,3], covered [T,T] bool). Row 0 is v = 1."""
    lo, hi = attr.min(0), attr.max(0)
    span = np.maximum(hi - lo, 1e-9)
    col = (attr - lo) / span  # the rasteriser clamps colours to [0,1]: normalise, then undo
    V2 = np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size, np.ones(len(uv))], 1)
    cfg = MeshRenderConfig(near=0.5, shading="none", geometry=False)
    r = render_mesh(V2, faces, vertex_colors=col, viewmat=np.eye(4), K=np.eye(3), width=size, height=size, config=cfg)
    vals = r["rgb"] * torch.as_tensor(span, dtype=torch.float32) + torch.as_tensor(lo, dtype=torch.float32)
    return vals, r["alpha"][..., 0] > 0


def _dilate(tex: torch.Tensor, covered: torch.Tensor, iters: int) -> torch.Tensor:
    """Grow chart colours into empty texels (average of covered neighbours), `iters` texels wide."""
    t = tex.permute(2, 0, 1)[None] * covered[None, None]
    m = covered[None, None].float()
    for _ in range(iters):
        s = F.avg_pool2d(t, 3, 1, 1, count_include_pad=False) * 9
        c = F.avg_pool2d(m, 3, 1, 1, count_include_pad=False) * 9
        grow = (m == 0) & (c > 0)
        t = torch.where(grow, s / c.clamp_min(1e-6), t)
        m = torch.where(grow, torch.ones_like(m), m)
    return t[0].permute(1, 2, 0)


def bake_texture(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, vcol: np.ndarray, views: list[_View],
                 size: int, voxel: float, power: float, padding: int) -> tuple[np.ndarray, float]:
    """Texture atlas [size,size,3] uint8 from the views; returns it and the fraction of chart texels seen by a view."""
    P, cov = _uv_raster(uv, faces, vertices, size)
    base, _ = _uv_raster(uv, faces, vcol, size)
    # per-texel normals from the face normals (area-weighted vertex normals interpolated)
    vn = np.zeros_like(vertices)
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
    N, _ = _uv_raster(uv, faces, vn, size)
    idx = torch.nonzero(cov.reshape(-1)).squeeze(1)
    p = P.reshape(-1, 3)[idx]
    n = F.normalize(N.reshape(-1, 3)[idx], dim=1)
    acc = torch.zeros(len(idx), 3)
    wsum = torch.zeros(len(idx))
    for v in views:
        f = v.frame
        vm = torch.as_tensor(f.viewmat, dtype=torch.float32)
        K = torch.as_tensor(f.K, dtype=torch.float32)
        c = p @ vm[:3, :3].T + vm[:3, 3]
        z = c[:, 2]
        ok = z > 1e-3
        uvp = (c @ K.T)[:, :2] / z.clamp_min(1e-3)[:, None]
        H, W = v.rgb.shape[:2]
        ok &= (uvp[:, 0] >= 0) & (uvp[:, 0] < W) & (uvp[:, 1] >= 0) & (uvp[:, 1] < H)
        if not ok.any():
            continue
        sel = torch.nonzero(ok).squeeze(1)
        px = uvp[sel, 0].long().clamp(0, W - 1)
        py = uvp[sel, 1].long().clamp(0, H - 1)
        d = v.full_depth[py, px]
        vis = (d > 0) & ((z[sel] - d).abs() < 2.0 * voxel + 0.02 * d)
        sel, uvs = sel[vis], uvp[sel][vis]
        if sel.numel() == 0:
            continue
        cc = torch.as_tensor(camera_center(np.asarray(f.viewmat)), dtype=torch.float32)
        ray = F.normalize(cc[None] - p[sel], dim=1)
        cos = (ray * n[sel]).sum(1).abs()
        w = (cos / z[sel]).clamp_min(1e-6) ** power
        grid = torch.stack([uvs[:, 0] / W * 2 - 1, uvs[:, 1] / H * 2 - 1], 1)[None, None]
        col = F.grid_sample(v.rgb.permute(2, 0, 1)[None], grid, mode="bilinear", align_corners=False)[0, :, 0].T
        acc.index_add_(0, sel, col * w[:, None])
        wsum.index_add_(0, sel, w)
    seen = wsum > 0
    colour = torch.where(seen[:, None], acc / wsum.clamp_min(1e-12)[:, None], base.reshape(-1, 3)[idx])
    tex = torch.zeros(size * size, 3)
    tex[idx] = colour
    tex = _dilate(tex.view(size, size, 3), cov, padding)
    frac = float(seen.float().mean()) if len(idx) else 0.0
    return (tex.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy(), frac


def _unwrap(vertices: np.ndarray, faces: np.ndarray, size: int):
    import xatlas

    atlas = xatlas.Atlas()
    atlas.add_mesh(vertices, faces)
    po = xatlas.PackOptions()
    po.resolution = int(size)
    po.padding = 2
    po.bilinear = True
    po.blockAlign = True
    co = xatlas.ChartOptions()
    co.max_iterations = 1  # one chart-growing pass: TSDF meshes are dense, more passes cost minutes for little
    atlas.generate(chart_options=co, pack_options=po)
    vmap, ind, uv = atlas[0]
    return vmap.astype(np.int64), ind.astype(np.int32), uv.astype(np.float32)


# ---------------------------------------------------------------------------------------------------------- files
def to_trimesh(m: TexturedMesh, textured: bool = True):
    import trimesh
    from PIL import Image

    if textured and m.texture is not None and m.uv is not None:
        mat = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(m.texture), metallicFactor=0.0,
                                                  roughnessFactor=1.0, name="realsim_mesh")
        vis = trimesh.visual.TextureVisuals(uv=m.uv, material=mat)
        return trimesh.Trimesh(m.vertices, m.faces, visual=vis, process=False)
    cols = (np.clip(m.vertex_colors, 0, 1) * 255 + 0.5).astype(np.uint8)
    return trimesh.Trimesh(m.vertices, m.faces, vertex_colors=cols, process=False)


def save_mesh(m: TexturedMesh, path: str | os.PathLike) -> list[Path]:
    """Write .ply (vertex colours), .obj (+ .mtl + PNG) or .glb (embedded PNG); returns the files written."""
    from realsim.assets.atomic import atomic_path

    path = Path(path)
    suf = path.suffix.lower()
    if suf not in MESH_SUFFIXES:
        raise InputError(f"mesh file name must end in {', '.join(MESH_SUFFIXES)} (got {path.name})")
    if suf == ".ply":
        data = to_trimesh(m, textured=False).export(file_type="ply")
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return [path]
    if suf == ".glb":
        data = to_trimesh(m).export(file_type="glb")
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return [path]
    # OBJ: the mesh, its material library and the texture beside it
    from PIL import Image

    written = [path]
    mtl, png = path.with_suffix(".mtl"), path.with_name(path.stem + "_albedo.png")
    lines = [f"mtllib {mtl.name}", "usemtl realsim_mesh"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in m.vertices]
    textured = m.texture is not None and m.uv is not None
    if textured:
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in m.uv]
        lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in (m.faces + 1)]
    else:
        lines = lines[:2] + [f"v {x:.6f} {y:.6f} {z:.6f} {r:.4f} {g:.4f} {b:.4f}"
                             for (x, y, z), (r, g, b) in zip(m.vertices, m.vertex_colors)]
        lines += [f"f {a} {b} {c}" for a, b, c in (m.faces + 1)]
    mlines = ["newmtl realsim_mesh", "Ka 1 1 1", "Kd 1 1 1", "Ks 0 0 0", "d 1", "illum 1"]
    if textured:
        mlines.append(f"map_Kd {png.name}")
        with atomic_path(png) as tmp:
            Image.fromarray(m.texture).save(tmp, format="PNG")
        written.append(png)
    with atomic_path(mtl) as tmp:
        tmp.write_text("\n".join(mlines) + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return [*written, mtl]
