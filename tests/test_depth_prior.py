"""SfM sparse depth prior (issue 13): the robust loss and its gradient, the occlusion test, and that it moves a Gaussian
rendered at the wrong depth to the SfM depth through the rasterizer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import need_data

from realsim.recon.dataset import View, load_dataset
from realsim.recon.depth_prior import DepthPrior, SparseDepth, project_depths, sparse_depth_loss, visible_nearest
from realsim.recon.splats import Splats, rasterize_splats


def test_loss_is_huber_of_relative_error_and_its_gradient_is_exact():
    depth = torch.tensor([[2.0, 4.0, 6.0], [8.0, 10.0, 12.0]], dtype=torch.float64, requires_grad=True)  # [H=2,W=3]
    # pixels (u=0,v=0) z=2.1 (r=-1/21, inside delta), (u=2,v=1) z=6 (r=1, outside)
    sd = SparseDepth(torch.tensor([[0.1, 0.2], [0.9, 0.7]]), torch.tensor([2.1, 6.0]))
    loss = sparse_depth_loss(depth, sd, delta=0.1)
    r1, r2 = (2.0 - 2.1) / 2.1, (12.0 - 6.0) / 6.0
    want = (0.5 * r1**2 + 0.1 * (abs(r2) - 0.05)) / 2
    assert float(loss.detach()) == pytest.approx(want, rel=1e-5)
    loss.backward()
    g = torch.zeros(2, 3, dtype=torch.float64)
    g[0, 0] = r1 / 2.1 / 2
    g[1, 2] = 0.1 / 6.0 / 2
    torch.testing.assert_close(depth.grad, g, rtol=1e-5, atol=1e-9)
    d2 = depth.detach().clone().requires_grad_(True)
    sd64 = SparseDepth(sd.uv, sd.z.double())
    assert torch.autograd.gradcheck(lambda d: sparse_depth_loss(d, sd64, 0.1), (d2,))
    assert float(sparse_depth_loss(depth, SparseDepth(torch.zeros(0, 2), torch.zeros(0)))) == 0.0


def test_occlusion_keeps_the_nearest_point_of_a_cell():
    uv = np.array([[3.0, 3.0], [4.0, 5.0], [20.0, 3.0]])
    z = np.array([5.0, 2.0, 9.0])
    assert visible_nearest(uv, z, cell=8.0).tolist() == [False, True, True]


def _view(vm: torch.Tensor, W: int = 32, H: int = 32) -> View:
    K = torch.tensor([[30.0, 0, W / 2], [0, 30.0, H / 2], [0, 0, 1]])
    return View("a.png", torch.zeros(H, W, 3), vm, K, W, H)


def test_projection_gives_camera_depths():
    vm = torch.eye(4)
    vm[2, 3] = 1.0  # camera 1 m behind the world origin
    pts = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -3.0], [5.0, 0.0, 1.0]])
    uv, z, idx = project_depths(pts, _view(vm))
    assert idx.tolist() == [0] and z.tolist() == [3.0] and uv.tolist() == [[16.0, 16.0]]


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_prior_pulls_a_wrong_depth_gaussian_to_the_sfm_depth(backend):
    """A Gaussian on the optical axis at 3 m; the SfM says 2 m at the centre pixels: the depth loss alone, through the
    rasterizer's expected depth, brings it there."""
    view = _view(torch.eye(4))
    mean = torch.tensor([[0.0, 0.0, 3.0]], requires_grad=True)
    uv = torch.tensor([[u, v] for u in (13.5, 18.5) for v in (13.5, 18.5)]) / 32  # around the principal point (16, 16)
    prior = DepthPrior([SparseDepth(uv, torch.full((4,), 2.0))], delta=0.1)
    opt = torch.optim.Adam([mean], lr=0.05)
    for _ in range(60):
        sp = Splats(mean, torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.3), torch.tensor([0.9]),
                    colors=torch.ones(1, 3))
        out, _a, _m = rasterize_splats(sp, view.viewmat, view.K, 32, 32, backend=backend, render_mode="RGB+ED")
        loss = prior.loss(out[..., 3:], 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert abs(float(mean[0, 2]) - 2.0) < 0.05, float(mean[0, 2])
    assert abs(float(mean[0, 0])) < 0.05 and abs(float(mean[0, 1])) < 0.05


def test_fern_prior_depths_match_the_sfm_points_in_view():
    """On a real scene (LLFF fern: points without tracks): every training view gets hundreds of in-image depths, all
    in front of the camera within the points' depth range."""
    root = need_data("scenes/llff_fern/images_4").parent
    ds = load_dataset(root, downscale=16)
    prior = DepthPrior.from_dataset(ds, 1.0)
    assert prior is not None and DepthPrior.from_dataset(ds, 0.0) is None
    for v, sd in zip(ds.train, prior.depths):
        _uv, z_all, _ = project_depths(ds.points, v)
        assert 100 < len(sd.z) <= len(z_all)
        assert float(sd.uv.min()) >= 0 and float(sd.uv.max()) < 1
        assert float(sd.z.min()) >= z_all.min() - 1e-4 and float(sd.z.max()) <= z_all.max() + 1e-4


def _prior_loss(model, ds, prior) -> float:
    """Mean depth-prior loss of a trained model over the training views (its own rendered expected depth)."""
    tot = 0.0
    with torch.no_grad():
        for i, v in enumerate(ds.train):
            sp, _ = model.decode(v.viewmat, v.K, v.width, v.height, backend="cpu")
            out, _a, _m = rasterize_splats(sp, v.viewmat, v.K, v.width, v.height, backend="cpu", render_mode="RGB+ED")
            tot += float(prior.loss(out[..., 3:], i))
    return tot / len(ds.train)


def test_trainer_hook_lowers_the_sfm_depth_error_on_fern(tmp_path):
    """The same short fern run with and without lambda_depth: with it, rendered depths end closer to the SfM depths."""
    root = need_data("scenes/llff_fern/images_4").parent
    ds = load_dataset(root, downscale=16)
    from realsim.recon.trainer import preset_config, train

    prior = DepthPrior.from_dataset(ds, 1.0)
    losses = []
    for lam in (0.0, 1.0):
        cfg = preset_config("cpu-fast", "scaffold", 80)
        cfg.downscale, cfg.eval_every, cfg.checkpoint_every, cfg.threads, cfg.backend = 16, 0, 0, 2, "cpu"
        cfg.lambda_depth, cfg.scaffold.voxel_size = lam, 1.2
        res = train(root, tmp_path / f"s{lam}", cfg, dataset=ds, overwrite=True)
        losses.append(_prior_loss(res.model, ds, prior))
    assert losses[1] < 0.8 * losses[0], losses
