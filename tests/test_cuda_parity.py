"""CUDA kernels op by op against the C++ CPU kernels (float64: near bit-for-bit; float32: within rounding), float64
gradcheck of the cuda backend, channel padding, and the CUDA anchor prefilter. Needs a CUDA GPU: skipped otherwise.

End-to-end image/gradient parity of backend="cuda" / "gsplat" against the torch reference lives in
tests/test_raster_parity.py (parametrised over backends); this file checks the pieces in between.
"""
from __future__ import annotations

import pytest
import torch

from realsim.render import anchor_prefilter, rasterization

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device (torch.cuda.is_available() is False): CUDA parity tests need a GPU")

W, H, TILE = 70, 45, 16
TW, TH = -(-W // TILE), -(-H // TILE)


@pytest.fixture(scope="module")
def ops():
    from realsim.render import _cpu, _cuda

    return _cpu.load(), _cuda.load()


def scene(seed: int, n: int = 400, c: int = 2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.8
    means[:, 2] = 1.0 + 3.0 * torch.rand(n, generator=g, dtype=torch.float64)
    means[: n // 10, 2] *= -1  # some behind the camera
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = torch.exp(-3.0 + 0.7 * torch.randn(n, 3, generator=g, dtype=torch.float64))
    opac = torch.rand(n, generator=g, dtype=torch.float64)
    vm = torch.eye(4, dtype=torch.float64).repeat(c, 1, 1)
    for i in range(1, c):
        a = torch.tensor(0.2 * i, dtype=torch.float64)
        vm[i, :3, :3] = torch.tensor([[a.cos(), 0, a.sin()], [0, 1, 0], [-a.sin(), 0, a.cos()]], dtype=torch.float64)
        vm[i, :3, 3] = torch.tensor([0.1 * i, 0.05, 0.2 * i])
    Ks = torch.tensor([[62.0, 0, W / 2 + 0.7], [0, 58.0, H / 2 - 1.1], [0, 0, 1]], dtype=torch.float64).repeat(c, 1, 1)
    t = [means, quats, scales, opac, vm, Ks]
    return [x.to(dtype) for x in t]


def on(dev, tensors):
    return [x.to(dev).contiguous() if isinstance(x, torch.Tensor) else x for x in tensors]


def close(a, b, tol):
    a, b = a.double().cpu(), b.double().cpu()
    nb = b.norm().item()
    err = (a - b).norm().item() / (nb if nb > 0 else 1.0)
    assert err <= tol, f"relative error {err:.3g} > {tol:g}"


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("antialiased", [False, True])
def test_projection_forward_and_backward(ops, dtype, tol, antialiased):
    cpu, cuda = ops
    args = scene(0, dtype=dtype)
    outs = {}
    for name, mod, dev in (("cpu", cpu, "cpu"), ("cuda", cuda, "cuda")):
        means, quats, scales, opac, vm, Ks = on(dev, args)
        fwd = mod.project_fwd(means, quats, scales, opac, vm, Ks, W, H, 0.3, 0.01, 1e10, antialiased)
        radii, m2, depths, conics, comp = fwd
        g = torch.Generator().manual_seed(1)
        vs = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(dev, dtype) for t in (m2, depths, conics, comp)]
        bwd = mod.project_bwd(means, quats, scales, vm, Ks, W, H, 0.3, antialiased, radii, conics, comp, *vs, True)
        outs[name] = (fwd, bwd)
    (rc, m2c, dc, cc, compc), bc = outs["cpu"]
    (rg, m2g, dg, cg, compg), bg = outs["cuda"]
    if dtype == torch.float64:
        assert torch.equal(rc, rg.cpu())
    else:  # a ceil() on the other side of an integer can move a radius by one pixel
        assert (rc != rg.cpu()).any(-1).float().mean() < 0.01
    vis = (rc > 0).all(-1) & (rg.cpu() > 0).all(-1)
    assert vis.sum() > 100
    close(dg, dc, tol)
    close(m2g.cpu()[vis], m2c[vis], tol)
    close(cg.cpu()[vis], cc[vis], tol)
    close(compg.cpu()[vis], compc[vis], tol)
    assert bc[3].shape == (2, 4, 4) and bc[3][:, :3].abs().min() > 0  # v_viewmats computed on request
    if dtype == torch.float64:
        for a, b in zip(bg, bc):  # v_means, v_quats, v_scales, v_viewmats
            close(a, b, 1e-11)


def test_tile_intersection_is_identical(ops):
    """Same projected inputs into both isect_tiles: identical ids, order (depth, ties by index) and offsets."""
    cpu, cuda = ops
    means, quats, scales, opac, vm, Ks = scene(2, n=600, c=3, dtype=torch.float32)
    radii, m2, depths, _, _ = cpu.project_fwd(means, quats, scales, opac, vm, Ks, W, H, 0.3, 0.01, 1e10, False)
    depths = depths.clone()
    depths[:, :50] = depths[:, 50:100]  # exact depth ties must keep Gaussian-index order on both sides
    res = {"cpu": cpu.isect_tiles(m2, radii, depths, TILE, TW, TH),
           "cuda": [t.cpu() for t in cuda.isect_tiles(m2.cuda(), radii.cuda(), depths.cuda(), TILE, TW, TH)]}
    names = ("tiles_per_gauss", "isect_ids", "flatten_ids", "isect_offsets")
    for n, a, b in zip(names, res["cuda"], res["cpu"]):
        assert a.dtype == b.dtype and a.shape == b.shape, n
        assert torch.equal(a, b), n
    assert res["cpu"][1].numel() > 1000


def _raster_inputs(cpu, dtype, seed, D, bg: bool):
    """Projected, tiled inputs computed once by the CPU ops, so both rasterizers see identical data."""
    means, quats, scales, opac, vm, Ks = scene(seed, dtype=dtype)
    radii, m2, depths, conics, comp = cpu.project_fwd(means, quats, scales, opac, vm, Ks, W, H, 0.3, 0.01, 1e10, False)
    _, _, flat, offs = cpu.isect_tiles(m2, radii, depths, TILE, TW, TH)
    g = torch.Generator().manual_seed(seed + 100)
    C, N = radii.shape[:2]
    colors = torch.rand(C, N, D, generator=g, dtype=torch.float64).to(dtype)
    op = (opac[None] * comp).contiguous()
    backgrounds = torch.rand(C, D, generator=g, dtype=torch.float64).to(dtype) if bg else None
    return [m2, conics, colors, op, backgrounds, radii, offs, flat]


@pytest.mark.parametrize("D", [3, 5, 20])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-11), (torch.float32, 1e-5)])
def test_rasterize_forward_backward(ops, D, dtype, tol):
    """Channel counts without a compiled kernel (5, 20) go through zero padding; background and absgrad included."""
    cpu, cuda = ops
    res = {}
    inputs = _raster_inputs(cpu, dtype, 3, D, bg=True)
    for name, mod, dev in (("cpu", cpu, "cpu"), ("cuda", cuda, "cuda")):
        m2, conics, colors, opac, bgs, radii, offs, flat = [t.to(dev) if t is not None else None for t in inputs]
        rc, ra, last = mod.rasterize_fwd(m2, conics, colors, opac, bgs, radii, W, H, TILE, offs, flat)
        g = torch.Generator().manual_seed(7)
        v_rc = torch.randn(rc.shape, generator=g, dtype=torch.float64).to(dev, dtype)
        v_ra = torch.randn(ra.shape, generator=g, dtype=torch.float64).to(dev, dtype)
        bwd = mod.rasterize_bwd(m2, conics, colors, opac, bgs, radii, W, H, TILE, offs, flat, ra, last, v_rc, v_ra,
                                True)
        res[name] = (rc, ra, last, bwd)
    rc_c, ra_c, last_c, bwd_c = res["cpu"]
    rc_g, ra_g, last_g, bwd_g = res["cuda"]
    assert rc_g.shape == (2, H, W, D)
    assert ra_c.max() > 0.9  # early termination happens somewhere
    close(rc_g, rc_c, tol)
    close(ra_g, ra_c, tol)
    if dtype == torch.float64:
        assert torch.equal(last_g.cpu(), last_c)
    for a, b in zip(bwd_g, bwd_c):
        close(a, b, 2e-4 if dtype == torch.float32 else tol)


def test_gradcheck_cuda_float64():
    """Analytic CUDA backward (float64 kernels) against finite differences, both raster modes, depth channel."""
    g = torch.Generator().manual_seed(21)
    n, w, h = 4, 12, 10
    means = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.3
    means[:, 2] = 2.0 + torch.rand(n, generator=g, dtype=torch.float64)
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = torch.exp(-1.8 + 0.2 * torch.randn(n, 3, generator=g, dtype=torch.float64))
    opac = 0.2 + 0.7 * torch.rand(n, generator=g, dtype=torch.float64)
    colors = torch.rand(n, 3, generator=g, dtype=torch.float64)
    vm = torch.eye(4, dtype=torch.float64)[None].cuda()
    Ks = torch.tensor([[[12.0, 0, w / 2], [0, 12.0, h / 2], [0, 0, 1]]], dtype=torch.float64).cuda()
    for mode in ("classic", "antialiased"):
        def f(m, q, s, o, c, mode=mode):
            rc, ra, _ = rasterization(m, q, s, o, c, vm, Ks, w, h, backend="cuda", rasterize_mode=mode,
                                      render_mode="RGB+D", tile_size=8)
            return rc, ra
        inputs = tuple(t.cuda().requires_grad_(True) for t in (means, quats, scales, opac, colors))
        assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
        # the camera pose gradient (viewmats [C,4,4]) through the same kernels
        def fv(viewmats, mode=mode):
            rc, ra, _ = rasterization(means.cuda(), quats.cuda(), scales.cuda(), opac.cuda(), colors.cuda(), viewmats,
                                      Ks, w, h, backend="cuda", rasterize_mode=mode, render_mode="RGB+D",
                                      tile_size=8)
            return rc, ra
        assert torch.autograd.gradcheck(fv, (vm.clone().requires_grad_(True),), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_large_scene_float32_matches_cpu():
    """100k Gaussians, float32: the CUDA image agrees with the C++ one (different summation order only)."""
    g = torch.Generator().manual_seed(5)
    n = 100_000
    means = torch.randn(n, 3, generator=g) * 1.5
    means[:, 2] = 2.0 + 6.0 * torch.rand(n, generator=g)
    quats = torch.randn(n, 4, generator=g)
    scales = torch.exp(-4.0 + 0.6 * torch.randn(n, 3, generator=g))
    opac = torch.rand(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    vm = torch.eye(4)[None]
    Ks = torch.tensor([[[300.0, 0, 128.0], [0, 300.0, 96.0], [0, 0, 1]]])
    out = {}
    for be, dev in (("cpu", "cpu"), ("cuda", "cuda")):
        t = [x.to(dev) for x in (means, quats, scales, opac, colors, vm, Ks)]
        rc, ra, meta = rasterization(*t, 256, 192, backend=be)
        out[be] = (rc.cpu(), ra.cpu(), meta["radii"].cpu())
    close(out["cuda"][0], out["cpu"][0], 1e-5)
    close(out["cuda"][1], out["cpu"][1], 1e-5)
    assert (out["cuda"][2] != out["cpu"][2]).any(-1).float().mean() < 1e-3


def test_anchor_prefilter_cuda_matches_cpu():
    g = torch.Generator().manual_seed(8)
    anchors = (torch.rand(200_000, 3, generator=g) - 0.5) * 20
    radii = torch.rand(200_000, generator=g) * 2
    vm = torch.eye(4)
    vm[:3, 3] = torch.tensor([0.5, -0.3, 1.0])
    K = torch.tensor([[200.0, 0, 160.0], [0, 200.0, 120.0], [0, 0, 1]])
    for pad in (0.0, 10.0):
        cpu = anchor_prefilter(anchors, radii, vm, K, 320, 240, 0.05, pad, backend="cpu")
        gpu = anchor_prefilter(anchors.cuda(), radii.cuda(), vm.cuda(), K.cuda(), 320, 240, 0.05, pad, backend="cuda")
        assert gpu.device.type == "cuda" and gpu.dtype == torch.bool
        assert (gpu.cpu() != cpu).sum() <= 5  # float rounding at the exact boundary only
        assert 0.05 < cpu.float().mean() < 0.95
    auto = anchor_prefilter(anchors.cuda(), radii.cuda(), vm.cuda(), K.cuda(), 320, 240, 0.05)
    assert auto.device.type == "cuda"
