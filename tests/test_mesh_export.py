"""recon/mesh.py: TSDF mesh of a scene, scored against the SYNTHETIC street's exact geometry, written as PLY/OBJ/GLB.

The "scene" here renders the procedural street exactly (sim.capture.render_view), so the test measures the meshing
pipeline itself (fusion, cleaning, decimation, unwrap, texture projection) against ground truth in seconds, without
training a model. Bounds (measured 2026-12 on this setup: Chamfer ~3 cm, F-score@5cm ~0.8, PSNR ~24 dB): Chamfer
< 6 cm, F-score at 5 cm > 0.6, textured mesh vs the exact renders at held-out views > 20 dB.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realsim.assets.cameras import CameraFrame, CameraSet, holdout_split
from realsim.recon.mesh import (MeshConfig, mesh_accuracy, mesh_psnr, mesh_scene, render_textured, save_mesh,
                                visible_gt_points)
from realsim.sim.capture import CaptureConfig, build_street, render_view, walk_cameras

W, H, FOCAL = 128, 96, 106.0


class ExactStreet:
    """Duck-typed scene: cameras + render(viewmat, K, w, h) -> rgb/depth/alpha of the procedural street."""

    def __init__(self, n: int = 8):
        self.street = build_street(0)
        cc = CaptureConfig(n_images=n, width=W, height=H, focal=FOCAL, walk_length=4.0, look_period_m=None)
        K = np.array([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1.0]])
        names = [f"v{i:03d}" for i in range(n)]
        split = holdout_split(names, every=4)
        self.cameras = CameraSet([CameraFrame(nm, K.copy(), V, W, H, sp)
                                  for nm, V, sp in zip(names, walk_cameras(cc), split)])

    def render(self, viewmat, K, width, height):
        r = render_view(self.street, np.asarray(viewmat), np.asarray(K), int(width), int(height), ssaa=1)
        d = torch.from_numpy(r["depth"])
        return {"rgb": torch.from_numpy(r["rgb"]), "depth": d, "alpha": (d > 0).float()}


@pytest.fixture(scope="module")
def street_mesh():
    sc = ExactStreet()
    cfg = MeshConfig(max_side=W, views_between=1, voxel_size=0.03, depth_max=6.0, target_triangles=15000, texture_size=512)
    return sc, mesh_scene(sc, cfg)


def test_mesh_matches_ground_truth(street_mesh):
    sc, m = street_mesh
    assert 0 < m.n_triangles <= 15000 and m.info["triangles_raw"] > m.n_triangles
    assert m.texture.shape == (512, 512, 3) and m.uv.shape == (len(m.vertices), 2)
    assert m.uv.min() >= 0 and m.uv.max() <= 1 and m.info["texels_seen"] > 0.9
    gt = visible_gt_points(sc.street.vertices, sc.street.faces, sc.cameras.split("train"), 6.0, max_side=W, n=40000)
    acc = mesh_accuracy(m, gt, n=40000)
    assert acc["chamfer"] < 0.06, acc
    assert acc["fscore"] > 0.6, acc
    # a mesh displaced by 20 cm must fail the same bound (the metric can tell)
    moved = type(m)(m.vertices + np.float32([0.0, 0.0, 0.2]), m.faces, m.vertex_colors, m.uv, m.texture)
    assert mesh_accuracy(moved, gt, n=40000)["fscore"] < 0.5
    ps = mesh_psnr(m, sc, sc.cameras.split("test"), W)
    assert ps["views"] >= 1 and ps["psnr"] > 20.0 and ps["coverage"] > 0.7, ps


def test_textured_render_uses_texture(street_mesh):
    sc, m = street_mesh
    f = sc.cameras.frames[0]
    a = render_textured(m, f.viewmat, f.K, W, H)
    flat = type(m)(m.vertices, m.faces, m.vertex_colors, m.uv, np.zeros_like(m.texture))
    b = render_textured(flat, f.viewmat, f.K, W, H)
    cov = a["alpha"][..., 0] > 0
    assert cov.float().mean() > 0.1  # depth_max 6 m: the far street is not meshed
    assert float(a["rgb"][cov].mean()) > 0.1 and float(b["rgb"][cov].abs().max()) == 0.0


def test_mesh_files_read_back(street_mesh, tmp_path):
    trimesh = pytest.importorskip("trimesh")
    _, m = street_mesh
    save_mesh(m, tmp_path / "s.ply")
    save_mesh(m, tmp_path / "s.obj")
    save_mesh(m, tmp_path / "s.glb")
    ply = trimesh.load(tmp_path / "s.ply", process=False)
    assert len(ply.faces) == m.n_triangles and ply.visual.vertex_colors.shape[0] == len(ply.vertices)
    assert (tmp_path / "s.mtl").is_file() and (tmp_path / "s_albedo.png").is_file()
    obj = trimesh.load(tmp_path / "s.obj", process=False)
    assert len(obj.faces) == m.n_triangles
    assert obj.visual.material.image.size == (512, 512)
    glb = trimesh.load(tmp_path / "s.glb", force="mesh", process=False)
    assert len(glb.faces) == m.n_triangles
    tex = glb.visual.material.baseColorTexture
    assert tex.size == (512, 512)
    # uv convention survives the glTF round trip (trimesh flips v on write and read)
    np.testing.assert_allclose(np.asarray(glb.visual.uv), m.uv, atol=1e-5)
