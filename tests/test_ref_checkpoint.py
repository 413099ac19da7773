"""The torch reference recomputes each pixel chunk in backward (memory of one chunk): same image, gradients and absgrad."""
from __future__ import annotations

import torch

from realsim.render import ref as R


def _run(checkpoint: bool) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n, w, h = 300, 40, 30
    means = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.5 + torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64)
    params = [means, torch.randn(n, 4, generator=g, dtype=torch.float64),
              torch.rand(n, 3, generator=g, dtype=torch.float64) * 0.1 + 0.02,
              torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, 3, generator=g, dtype=torch.float64)]
    ps = [p.clone().requires_grad_(True) for p in params]
    vm = torch.eye(4, dtype=torch.float64)[None]
    K = torch.tensor([[[40.0, 0, 20], [0, 40, 15], [0, 0, 1]]], dtype=torch.float64)
    radii, m2d, depths, conics, comp = R.project(ps[0], ps[1], ps[2], ps[3], vm, K, w, h)
    rc, ra = R.rasterize(m2d, conics, ps[4][None], ps[3][None] * comp, depths, radii, w, h, absgrad=True,
                         max_elems=5000, checkpoint=checkpoint)  # 5000 elements: many chunks of a few pixels
    (rc * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) + ra).sum().backward()
    return [rc.detach(), ra.detach(), *[p.grad for p in ps], m2d.absgrad]


def test_checkpointed_chunks_match_the_plain_graph():
    plain, ckpt = _run(False), _run(True)
    assert float(plain[-1].abs().sum()) > 1.0  # absgrad is filled, not trivially zero
    for a, b in zip(plain, ckpt):
        assert a is not None and b is not None
        assert torch.equal(a, b)
