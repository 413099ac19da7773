"""Growth on absolute gradients (AbsGS, Ye et al. 2024): a large Gaussian over texture that is symmetric about its centre
gets pulled both ways, so its summed screen gradient cancels while the summed absolute per-pixel gradients do not."""
from __future__ import annotations

import math

import pytest
import torch

from realsim.recon.strategy import ADCStrategy, ScaffoldStrategy, _screen_grad_norm
from realsim.render import rasterization

W = H = 32
K = torch.tensor([[[32.0, 0.0, 16.0], [0.0, 32.0, 16.0], [0.0, 0.0, 1.0]]])


def _meta_after_backward(target: torch.Tensor, dx: float, backend: str = "cpu") -> dict:
    """One opaque grey Gaussian ~5 px wide at the image centre (+ dx px), L1 to `target` [H,W,3]; the meta after
    backward (means2d.grad and .absgrad filled)."""
    means = torch.tensor([[dx / 32.0 * 4.0, 0.0, 4.0]], requires_grad=True)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    scales = torch.full((1, 3), 0.6)  # 0.6 m at 4 m: sigma 4.8 px
    img, _, meta = rasterization(means, quats, scales, torch.tensor([0.9]), torch.full((1, 3), 0.5),
                                 torch.eye(4)[None], K, W, H, absgrad=True, backend=backend)
    meta["means2d"].retain_grad()
    (img[0] - target).abs().mean().backward()
    return meta


def _symmetric_texture() -> torch.Tensor:
    """Stripes mirrored about the image centre in x and y (pixel centres at i + 0.5): [H,W,3]."""
    c = torch.arange(W, dtype=torch.float32) + 0.5 - W / 2
    s = 0.5 + 0.45 * torch.cos(2 * math.pi * c / 3.0)  # period 3 px, even in c
    return (s[:, None] * s[None, :])[..., None].expand(H, W, 3).contiguous()


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_absolute_gradient_sees_texture_the_plain_gradient_cancels(backend):
    meta = _meta_after_backward(_symmetric_texture(), 0.0, backend)
    plain, absolute = _screen_grad_norm(meta, False), _screen_grad_norm(meta, True)
    assert plain is not None and absolute is not None
    assert float(absolute[0]) > 50 * float(plain[0])  # the pulls cancel (by symmetry) only in the plain sum
    assert float(absolute[0]) > 1e-3  # and the absolute sum stays well above the published 0.0002 threshold
    # per component the absolute sum bounds the plain one (|sum g| <= sum |g|), on any target
    meta = _meta_after_backward(torch.rand(H, W, 3, generator=torch.Generator().manual_seed(0)), 3.0, backend)
    g, a = meta["means2d"].grad[0], meta["means2d"].absgrad[0]
    assert bool((g.abs() <= a + 1e-9).all()) and float(a.abs().sum()) > 0


def test_strategies_default_to_the_published_statistic():
    assert ScaffoldStrategy().absgrad is False and ADCStrategy().absgrad is False
