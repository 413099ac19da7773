"""recon.metrics: the separable SSIM equals the 2-D Gaussian-window SSIM (Wang et al. 2004), and the held-out split."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F


def _ssim_2d(pred: torch.Tensor, target: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Reference: the full size x size window as one depthwise conv per moment ([B,H,W,C] in, [B,C,H,W] map out)."""
    x, y = pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2)
    C, pad = x.shape[1], size // 2
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - pad) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] @ g[None, :]).to(x.dtype).expand(C, 1, size, size).contiguous()
    blur = lambda z: F.conv2d(z, w, padding=pad, groups=C)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


@pytest.mark.parametrize("shape", [(1, 37, 53, 3), (2, 16, 12, 1)])
def test_separable_ssim_equals_the_2d_window(shape):
    from realsim.recon.metrics import ssim_map

    g = torch.Generator().manual_seed(0)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (a + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    pa = a.clone().requires_grad_()
    got = ssim_map(pa, b)
    ref = _ssim_2d(a, b)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-10
    # and its gradient (the training loss backpropagates through it)
    got.mean().backward()
    pr = a.clone().requires_grad_()
    _ssim_2d(pr, b).mean().backward()
    assert (pa.grad - pr.grad).abs().max().item() < 1e-10


def test_ssim_of_identical_images_is_one_and_single_image_shapes():
    from realsim.recon.metrics import ssim, ssim_map

    a = torch.rand(20, 30, 3, dtype=torch.float64)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-12)
    assert ssim_map(a, a).shape == (1, 3, 20, 30)


def test_heldout_split_separates_the_walk_ends():
    from realsim.recon.metrics import heldout_split

    names = [f"img_{i:04d}.jpg" for i in range(30)]
    test = names[::8]  # 0, 8, 16, 24: only img_0000 is an end of the walk (img_0029 is a training view)
    r = heldout_split({"psnr": [19.0, 24.0, 25.0, 26.0], "ssim": [0.5, 0.7, 0.8, 0.9]}, test, names[::-1])
    assert r["views_extrap"] == ["img_0000.jpg"] and r["views_interp"] == test[1:]
    assert r["psnr_extrap"] == pytest.approx(19.0) and r["psnr_interp"] == pytest.approx(25.0)
    assert r["psnr_all_views"] == pytest.approx(23.5) and r["ssim_interp"] == pytest.approx(0.8)
    assert heldout_split({"psnr": [20.0]}, ["img_0008.jpg"], names)["psnr_extrap"] is None
    with pytest.raises(ValueError):
        heldout_split({"psnr": [1.0, 2.0]}, ["img_0008.jpg"], names)
