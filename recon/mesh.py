"""A textured triangle mesh from a reconstruction: TSDF fusion of the scene's own renders, cleaned, simplified, unwrapped.

Pipeline (`mesh_scene`):
  1. views: the training cameras (the test split is kept out: it scores the mesh) plus `views_between` spline cameras between consecutive ones (recon.export.sample_views),
     rendered through the scene's own renderer (`scene.render(viewmat, K, w, h)` -> rgb, expected depth, alpha) at
     `max_side` pixels; pixels with low alpha or at depth discontinuities (floaters, blended edges) are dropped;
  2. fusion: open3d's tensor `VoxelBlockGrid` (TSDF + weight + colour; the legacy ScalableTSDFVolume is broken in
     open3d 0.20), marching cubes with a minimum weight;
  3. cleaning: connected components smaller than `min_component` of the largest are removed (floaters), degenerate and
     unreferenced elements too; quadric decimation to `target_triangles`;
  4. texture: xatlas UV unwrap, each texel's world point found by rasterising the charts in UV space (render/mesh.py),
     coloured by projecting the renders with a depth test (views weighted towards head-on and near), vertex colour where
     no view sees the texel, charts padded against seams.
Units are the scene's (metres when the scene is metric). The mesh lives in the scene's world frame (+Z up).
`save_mesh` writes .ply (vertex colours), .obj (+ .mtl + PNG texture) or .glb (embedded PNG texture) through trimesh.
`mesh_accuracy` / `mesh_psnr` score a mesh against ground-truth geometry and against the Gaussians.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.errors import InputError
from realsim.assets.frames import camera_center
from realsim.assets.progress import ProgressFn, report
from realsim.render.mesh import MeshRenderConfig, render_mesh

__all__ = ["MeshConfig", "TexturedMesh", "mesh_scene", "save_mesh", "render_textured", "mesh_accuracy", "mesh_psnr",
           "MESH_SUFFIXES"]

log = logging.getLogger("realsim.recon.mesh")
MESH_SUFFIXES = (".ply", ".obj", ".glb")


@dataclass
class MeshConfig:
    """Meshing options (lengths in scene units; None = derived from the rendered depths)."""

    max_side: int = 320  # render resolution (longest side, pixels) of the fused views
    views_between: int = 2  # spline cameras between consecutive training cameras
    voxel_size: float | None = None  # TSDF voxel; None: median rendered depth / 150 (about 2.5 cm at 4 m)
    depth_max: float | None = None  # ignore depths beyond this; None: 90th percentile of the rendered depths
    trunc_voxels: float = 4.0  # TSDF truncation in voxels
    alpha_min: float = 0.9  # render alpha below this is not fused
    edge_rel: float = 0.15  # depth jump (relative) over a 3x3 window that marks a discontinuity (grazing ground stays)
    min_weight: float = 2.0  # marching cubes only where at least this many observations
    min_component: float = 0.02  # drop connected components with fewer triangles than this fraction of the largest
    target_triangles: int = 100_000  # quadric decimation target (0: keep all)
    texture_size: int = 2048  # texture atlas side (pixels); 0: no texture, vertex colours only
    padding: int = 4  # texel dilation around charts
    view_power: float = 4.0  # texel colour weights (cos / depth)^p: large p ~ best view, small p ~ average
    backend: str = "auto"


@dataclass
class TexturedMesh:
    """vertices [V,3] float32, faces [F,3] int32, vertex_colors [V,3] float32 in [0,1]; uv [V,2] (OpenGL/OBJ/USD
    convention: v up, texture row 0 is v = 1) and texture [T,T,3] uint8 sRGB when textured."""

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_triangles(self) -> int:
        return int(len(self.faces))


# ---------------------------------------------------------------------------------------------------------- views
def _view_frames(cameras: CameraSet, views_between: int, max_side: int) -> list[CameraFrame]:
    from .export import sample_views

    train = cameras.split("train") or cameras.frames  # held-out cameras stay out of the fusion (they score it)
    out = []
    for f in sample_views(CameraSet(list(train), cameras.images_dir), views_between):
        s = min(1.0, max_side / max(f.width, f.height))
        out.append(f.scaled(s) if s < 1.0 else f)
    return out


def _edge_mask(depth: torch.Tensor, rel: float) -> torch.Tensor:
    """True where the 3x3 depth range exceeds rel * depth (blended object edges, where expected depth lies in the air)."""
    d = depth[None, None, :, :, 0]
    big = d.masked_fill(d <= 0, 0.0)
    mx = F.max_pool2d(big, 3, 1, 1)
    mn = -F.max_pool2d(-d.masked_fill(d <= 0, float("inf")), 3, 1, 1)
    return ((mx - mn) > rel * d)[0, 0]


@dataclass
class _View:
    frame: CameraFrame
    rgb: torch.Tensor  # [H,W,3]
    depth: torch.Tensor  # [H,W] (0 = not fused)
    full_depth: torch.Tensor  # [H,W] expected depth where alpha > 0.5 (visibility test for texturing)


def render_views(scene: Any, frames: list[CameraFrame], cfg: MeshConfig, progress: ProgressFn | None = None) -> list[_View]:
    out = []
    for i, f in enumerate(frames):
        r = scene.render(f.viewmat, f.K, f.width, f.height)
        rgb = r["rgb"][..., :3].float().clamp(0, 1)
        d = r["depth"][..., 0].float()
        a = r["alpha"][..., 0].float()
        full = torch.where(a > 0.5, d, torch.zeros_like(d))
        keep = (a >= cfg.alpha_min) & (d > 0) & ~_edge_mask(r["depth"].float(), cfg.edge_rel)
        out.append(_View(f, rgb, torch.where(keep, d, torch.zeros_like(d)), full))
        report(progress, "mesh: render views", i + 1, len(frames))
    return out


# ---------------------------------------------------------------------------------------------------------- fusion
def _o3d():
    try:
        import open3d as o3d
    except ImportError:  # pragma: no cover - open3d-cpu is a dependency
        raise InputError("meshing needs open3d (pip install open3d-cpu)") from None
    return o3d


def fuse_tsdf(views: list[_View], voxel: float, depth_max: float, trunc_voxels: float, min_weight: float):
    """TSDF fusion of the views' depth and colour in an open3d VoxelBlockGrid -> legacy TriangleMesh with vertex colours."""
    o3d = _o3d()
    o3c = o3d.core
    dev = o3c.Device("CPU:0")
    vbg = o3d.t.geometry.VoxelBlockGrid(attr_names=("tsdf", "weight", "color"),
                                        attr_dtypes=(o3c.float32, o3c.float32, o3c.float32),
                                        attr_channels=((1), (1), (3)), voxel_size=float(voxel), block_resolution=8,
                                        block_count=20000, device=dev)
    trunc = float(trunc_voxels)
    for v in views:
        d = v.depth
        if int(((d > 0) & (d < depth_max)).sum()) < 16:  # nothing to fuse (open3d aborts on a view touching no block)
            continue
        dimg = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(v.depth.numpy(), np.float32)))
        cimg = o3d.t.geometry.Image(o3c.Tensor(np.ascontiguousarray(v.rgb.numpy(), np.float32)))
        K = o3c.Tensor(np.asarray(v.frame.K, np.float64))
        E = o3c.Tensor(np.asarray(v.frame.viewmat, np.float64))
        blocks = vbg.compute_unique_block_coordinates(dimg, K, E, 1.0, float(depth_max), trunc)
        vbg.integrate(blocks, dimg, cimg, K, K, E, 1.0, float(depth_max), trunc)
    mesh = vbg.extract_triangle_mesh(weight_threshold=float(min_weight))
    return mesh.to_legacy()


def clean_mesh(mesh, min_component: float, target_triangles: int):
    """Drop small connected components (floaters) and degenerate elements; quadric decimation to the target count."""
    mesh.remove_degenerate_triangles()
    mesh.remove_duplicated_triangles()
    mesh.remove_duplicated_vertices()
    mesh.remove_unreferenced_vertices()
    if len(mesh.triangles) == 0:
        return mesh
    ids, counts, _ = mesh.cluster_connected_triangles()
    ids, counts = np.asarray(ids), np.asarray(counts)
    small = counts < max(1.0, min_component * counts.max())
    mesh.remove_triangles_by_mask(small[ids])
    mesh.remove_unreferenced_vertices()
    if target_triangles and len(mesh.triangles) > target_triangles:
        mesh = mesh.simplify_quadric_decimation(int(target_triangles))
        mesh.remove_degenerate_triangles()
        mesh.remove_unreferenced_vertices()
    return mesh


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


# ---------------------------------------------------------------------------------------------------------- driver
def mesh_scene(scene: Any, cfg: MeshConfig | None = None, progress: ProgressFn | None = None) -> TexturedMesh:
    """TSDF mesh of a scene (anything with `.cameras` and `.render(viewmat, K, w, h)`), cleaned, simplified, textured."""
    cfg = cfg or MeshConfig()
    frames = _view_frames(scene.cameras, cfg.views_between, cfg.max_side)
    views = render_views(scene, frames, cfg, progress)
    ds = torch.cat([v.depth[v.depth > 0] for v in views])
    if ds.numel() < 100:
        raise InputError("the scene's renders have almost no opaque depth to mesh")
    med = float(ds.median())
    voxel = float(cfg.voxel_size or med / 150.0)
    dmax = float(cfg.depth_max or torch.quantile(ds[torch.randperm(ds.numel())[:200000]], 0.9))
    report(progress, "mesh: fuse", 0, 1)
    mesh = fuse_tsdf(views, voxel, dmax, cfg.trunc_voxels, cfg.min_weight)
    n_raw = len(mesh.triangles)
    mesh = clean_mesh(mesh, cfg.min_component, cfg.target_triangles)
    report(progress, "mesh: fuse", 1, 1)
    V = np.asarray(mesh.vertices, np.float32)
    Fc = np.asarray(mesh.triangles, np.int32)
    C = np.asarray(mesh.vertex_colors, np.float32).clip(0, 1) if mesh.has_vertex_colors() else np.full_like(V, 0.7)
    if len(Fc) == 0:
        raise InputError("TSDF fusion produced no surface (try a larger --voxel or lower --min-weight)")
    info = {"voxel_size": voxel, "depth_max": dmax, "views": len(views), "triangles_raw": n_raw,
            "triangles": int(len(Fc)), "vertices": int(len(V))}
    out = TexturedMesh(V, Fc, C, info=info)
    if cfg.texture_size > 0:
        report(progress, "mesh: texture", 0, 1)
        vmap, ind, uv = _unwrap(V, Fc, cfg.texture_size)
        V2, C2 = V[vmap], C[vmap]
        tex, seen = bake_texture(V2, ind, uv, C2, views, cfg.texture_size, voxel, cfg.view_power, cfg.padding)
        out = TexturedMesh(V2, ind, C2, uv, tex, info={**info, "vertices": int(len(V2)), "texture_size": cfg.texture_size,
                                                      "texels_seen": round(seen, 4)})
        report(progress, "mesh: texture", 1, 1)
    return out


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
