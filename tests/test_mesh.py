"""Mesh rasteriser: depth against analytic / brute-force ray casting, z-buffer order, near-plane clipping, shading, coverage."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realsim.render.mesh import MeshRenderConfig, render_mesh

K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])
W, H = 160, 120


def _cam_looking_y(eye=(0.0, 0.0, 1.6)) -> np.ndarray:
    """OpenCV camera at eye looking along +Y with +Z up (x right = +X, y down = -Z)."""
    R = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    V = np.eye(4)
    V[:3, :3] = R
    V[:3, 3] = -R @ np.asarray(eye)
    return V


def _ray_cast(tris: np.ndarray, V: np.ndarray, K: np.ndarray, W: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 Moller-Trumbore per pixel centre: nearest camera z and face id (reference for the rasteriser)."""
    Rt, t = V[:3, :3], V[:3, 3]
    c = -Rt.T @ t
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    d_cam = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones_like(xs)], -1).reshape(-1, 3)
    d = d_cam @ Rt  # world directions with camera-z component 1
    best = np.full(len(d), np.inf)
    fid = np.full(len(d), -1)
    for f, (a, b, cc) in enumerate(tris):
        e1, e2 = b - a, cc - a
        p = np.cross(d, e2)
        det = p @ e1
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1), 0)
        s = c - a
        u = (p @ s) * inv
        q = np.cross(s, e1)
        v = (d @ q) * inv
        tt = (q @ e2) * inv  # ray parameter == camera z since d has unit camera-z
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (tt > 0.05) & (tt < best)
        best[hit] = tt[hit]
        fid[hit] = f
    return best.reshape(H, W), fid.reshape(H, W)


def test_depth_matches_ray_casting_reference():
    rng = np.random.default_rng(0)
    V = _cam_looking_y()
    # random triangles in front of the camera, overlapping, at varied depths
    centers = np.c_[rng.uniform(-2, 2, 40), rng.uniform(2, 8, 40), rng.uniform(0.5, 2.7, 40)]
    tris = centers[:, None] + rng.normal(scale=0.6, size=(40, 3, 3))
    verts = tris.reshape(-1, 3)
    faces = np.arange(120).reshape(40, 3)
    out = render_mesh(torch.tensor(verts), torch.tensor(faces), None, V, K, W, H)
    ref_z, ref_f = _ray_cast(tris, V, K, W, H)
    hit_ref = np.isfinite(ref_z)
    got_f = out["face_id"].numpy()
    got_z = out["depth"].numpy()[..., 0]
    agree = (got_f == ref_f)
    # pixel centres exactly on shared edges may go either way: allow a tiny fraction of disagreement
    assert agree.mean() > 0.995, agree.mean()
    both = agree & hit_ref
    np.testing.assert_allclose(got_z[both], ref_z[both], rtol=1e-4, atol=1e-4)
    assert (out["alpha"].numpy()[..., 0] > 0).sum() == hit_ref.sum() or abs((got_f >= 0).sum() - hit_ref.sum()) < 0.005 * W * H


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_zbuffer_nearest_wins_in_any_order(order):
    V = _cam_looking_y()
    near_tri = np.array([[-1.0, 3, 0.6], [1.0, 3, 0.6], [0.0, 3, 2.6]])
    far_tri = np.array([[-2.0, 6, 0.0], [2.0, 6, 0.0], [0.0, 6, 3.5]])
    tris = [near_tri, far_tri]
    verts = np.concatenate([tris[i] for i in order])
    cols = np.concatenate([np.full((3, 3), [1.0, 0, 0] if i == 0 else [0, 0, 1.0]) for i in order])
    out = render_mesh(torch.tensor(verts), torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor(cols), V, K, W, H,
                      MeshRenderConfig(shading="none"))
    # image centre row through both triangles: the near (red) one covers it at depth 3
    c = out["rgb"][70, 80].numpy()
    assert c[0] == pytest.approx(1.0) and c[2] == pytest.approx(0.0)
    assert out["depth"][70, 80, 0].item() == pytest.approx(3.0, abs=1e-4)
    assert out["face_id"][70, 80].item() == order.index(0)


def test_ground_plane_crossing_near_plane_is_clipped_not_dropped():
    V = _cam_looking_y()
    # one huge ground quad from behind the camera to far ahead
    verts = np.array([[-50.0, -20, 0], [50, -20, 0], [50, 80, 0], [-50, 80, 0]])
    out = render_mesh(torch.tensor(verts), torch.tensor([[0, 1, 2], [0, 2, 3]]), None, V, K, W, H)
    alpha = out["alpha"].numpy()[..., 0]
    far_row = K[1, 2] + K[1, 1] * 1.6 / 80  # where the quad's far edge (y = 80) projects
    assert alpha[int(far_row) + 2:].all()  # every pixel below it sees the ground (incl. the bottom rows, from y < 0.05)
    assert not alpha[: int(far_row) - 1].any()
    for row in (H - 1, H - 20, H // 2 + 10):
        analytic = 1.6 * K[1, 1] / (row + 0.5 - K[1, 2])
        assert out["depth"][row, 40, 0].item() == pytest.approx(analytic, rel=1e-4)
        assert out["xyz"][row, 40, 2].item() == pytest.approx(0.0, abs=1e-4)


def test_lambert_shading_and_ssaa_coverage():
    V = _cam_looking_y()
    verts = np.array([[-1.0, 4, 0.6], [1.0, 4, 0.6], [1.0, 4, 2.6], [-1.0, 4, 2.6]])  # faces the camera (normal -Y)
    cfg = MeshRenderConfig(light_dir=(0.0, -1.0, 0.0), ambient=0.3)
    out = render_mesh(torch.tensor(verts), torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.full((4, 3), 0.5), V, K, W, H, cfg)
    assert out["rgb"][60, 80, 0].item() == pytest.approx(0.5, abs=1e-5)  # light head-on: full diffuse
    cfg2 = MeshRenderConfig(light_dir=(0.0, 0.0, 1.0), ambient=0.3)
    out2 = render_mesh(torch.tensor(verts), torch.tensor([[0, 1, 2], [0, 2, 3]]), torch.full((4, 3), 0.5), V, K, W, H, cfg2)
    assert out2["rgb"][60, 80, 0].item() == pytest.approx(0.5 * 0.3, abs=1e-5)  # grazing light: ambient only
    # supersampling: a vertical edge through the middle of a pixel column gives ~half coverage
    x_edge = (80.5 - K[0, 2]) / K[0, 0] * 4.0  # world x whose projection is at u = 80.5 (middle of pixel 80)
    verts3 = np.array([[x_edge, 4, 0.6], [3.0, 4, 0.6], [3.0, 4, 2.6], [x_edge, 4, 2.6]])
    out3 = render_mesh(torch.tensor(verts3), torch.tensor([[0, 1, 2], [0, 2, 3]]), None, V, K, W, H, MeshRenderConfig(ssaa=4))
    assert out3["alpha"][60, 80, 0].item() == pytest.approx(0.5, abs=0.01)
    assert out3["alpha"][60, 82, 0].item() == 1.0 and out3["alpha"][60, 78, 0].item() == 0.0


def test_empty_and_behind_camera():
    V = _cam_looking_y()
    out = render_mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long), None, V, K, W, H, background=(0.2, 0.3, 0.4))
    assert (out["face_id"] == -1).all() and torch.allclose(out["rgb"][0, 0], torch.tensor([0.2, 0.3, 0.4]))
    behind = np.array([[-1.0, -3, 0.6], [1.0, -3, 0.6], [0.0, -3, 2.6]])
    out = render_mesh(torch.tensor(behind), torch.tensor([[0, 1, 2]]), None, V, K, W, H)
    assert out["alpha"].sum() == 0
