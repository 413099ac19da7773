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
Texturing and files live in recon/mesh_texture.py, scoring in recon/mesh_eval.py (both re-exported here).
`save_mesh` writes .ply (vertex colours), .obj (+ .mtl + PNG texture) or .glb (embedded PNG texture) through trimesh.
`mesh_accuracy` / `mesh_psnr` score a mesh against ground-truth geometry and against the Gaussians.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

# texturing, files and scoring live in mesh_texture / mesh_eval; re-exported here (they import this module lazily)
from .mesh_eval import align_to_ground_truth, mesh_accuracy, mesh_psnr, render_textured, visible_gt_points
from .mesh_texture import MESH_SUFFIXES, _unwrap, bake_texture, save_mesh, to_trimesh

__all__ = ["MeshConfig", "TexturedMesh", "mesh_scene", "save_mesh", "render_textured", "mesh_accuracy", "mesh_psnr",
           "MESH_SUFFIXES", "visible_gt_points", "align_to_ground_truth", "to_trimesh", "bake_texture",
           "render_views", "fuse_tsdf", "clean_mesh"]

log = logging.getLogger("realsim.recon.mesh")


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
