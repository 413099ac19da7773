"""Camera pose gradients and refinement: the SE(3) parametrisation against the matrix exponential, viewmat gradients of
the C++ kernels against the torch reference (float64, SH view directions included), and a perturbed camera recovered by
optimising recon/pose_refine.py's corrections through the rasterizer."""
from __future__ import annotations

import pytest
import torch

from realsim.recon.pose_refine import PoseRefineConfig, PoseRefiner, pose_errors, se3_delta, so3_exp
from realsim.recon.scaffold import exp_lr
from realsim.render import rasterization


@pytest.fixture(scope="module")
def cpu_kernels():
    from realsim.render import _cpu
    return _cpu.load()


def test_so3_exp_matches_matrix_exponential_and_has_finite_gradients_at_zero():
    g = torch.Generator().manual_seed(0)
    w = torch.cat([torch.randn(6, 3, generator=g, dtype=torch.float64),
                   1e-5 * torch.randn(3, 3, generator=g, dtype=torch.float64),       # series branch
                   torch.tensor([[0.0, 0, 0], [3.0, 0.2, -0.1]], dtype=torch.float64)])
    K = torch.zeros(w.shape[0], 3, 3, dtype=torch.float64)
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    K = K - K.transpose(1, 2)
    assert torch.allclose(so3_exp(w), torch.linalg.matrix_exp(K), atol=1e-13)
    for w0 in (torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[1e-3, -2e-3, 5e-4]], dtype=torch.float64),
               torch.tensor([[0.4, -0.2, 0.9]], dtype=torch.float64)):
        assert torch.autograd.gradcheck(so3_exp, (w0.requires_grad_(True),))
    # d R / d w at 0 is the cross-product basis: d R[1,0] / d w_z = 1
    w0 = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    so3_exp(w0)[0, 1, 0].backward()
    assert torch.equal(w0.grad, torch.tensor([[0.0, 0, 1]], dtype=torch.float64))


def test_zero_corrections_leave_poses_unchanged():
    vm = torch.eye(4).repeat(3, 1, 1)
    vm[:, :3, 3] = torch.randn(3, 3)
    ref = PoseRefiner(3, extent=5.0)
    assert torch.equal(ref(vm, torch.arange(3)), vm) and torch.equal(ref(vm[1], 1), vm[1])
    ref2 = PoseRefiner(3, config=PoseRefineConfig(start_iteration=10))
    assert ref2(vm, torch.arange(3), step=3) is vm


def _scene(n: int = 400, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * 0.8
    z = 1.5 + 4.5 * torch.rand(n, generator=g)  # depths 1.5-6: parallax separates rotation from translation
    means[:, 2] = z
    means[:, :2] *= z[:, None] / 3
    return (means, torch.randn(n, 4, generator=g), torch.exp(-2.6 + 0.4 * torch.randn(n, 3, generator=g)),
            0.5 + 0.5 * torch.rand(n, generator=g), torch.rand(n, 3, generator=g))


def _cameras(C: int, W: int, H: int):
    vm = torch.eye(4).repeat(C, 1, 1)
    for i in range(C):
        a = torch.tensor(0.15 * (i - 1))
        vm[i, :3, :3] = torch.tensor([[a.cos(), 0, a.sin()], [0, 1, 0], [-a.sin(), 0, a.cos()]])
        vm[i, :3, 3] = torch.tensor([0.3 * (i - 1), 0.05 * i, 0.1])
    return vm, torch.tensor([[60.0, 0, W / 2], [0, 60.0, H / 2], [0, 0, 1]]).repeat(C, 1, 1)


@pytest.mark.parametrize("sh", [False, True])
def test_cpu_viewmat_gradient_matches_reference(cpu_kernels, sh):
    """d loss / d viewmats of the C++ kernels = the torch reference's autograd, float64 (SH: view dirs move too)."""
    means, quats, scales, opac, colors = (t.double() for t in _scene(150))
    if sh:
        colors = 0.3 * torch.randn(150, 9, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    vm, Ks = (t.double() for t in _cameras(2, 40, 30))
    grads = {}
    for be in ("torch", "cpu"):
        v = vm.clone().requires_grad_(True)
        rc, ra, _ = rasterization(means, quats, scales, opac, colors, v, Ks, 40, 30, backend=be,
                                  sh_degree=2 if sh else None, render_mode="RGB+D")
        w = torch.rand(rc.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        ((rc * w).sum() + ra.square().sum()).backward()
        grads[be] = v.grad
    assert grads["torch"][:, :3].abs().min() > 0 and torch.all(grads["cpu"][:, 3] == 0)
    assert ((grads["cpu"] - grads["torch"]).norm() / grads["torch"].norm()) < 1e-10


def test_no_viewmat_gradient_unless_asked(cpu_kernels):
    means, quats, scales, opac, colors = _scene(50)
    vm, Ks = _cameras(1, 32, 24)
    m = means.clone().requires_grad_(True)
    rc, _, _ = rasterization(m, quats, scales, opac, colors, vm, Ks, 32, 24, backend="cpu")
    rc.sum().backward()
    assert vm.grad is None and m.grad.abs().sum() > 0


def test_perturbed_cameras_are_recovered(cpu_kernels):
    """Three cameras knocked off by 2-2.5 degrees and 7 cm (scene 1.5-6 m deep) come back to < 0.06 degrees / 1.5 mm by
    optimising only their corrections against the images of the true poses."""
    W, H, C, steps = 64, 48, 3, 240
    scene = _scene()
    vm_true, Ks = _cameras(C, W, H)
    with torch.no_grad():
        target, _, _ = rasterization(*scene, vm_true, Ks, W, H, backend="cpu")
    pert = torch.tensor([[0.03, -0.02, 0.025, 0.05, -0.04, 0.03], [-0.02, 0.03, -0.01, -0.03, 0.05, -0.04],
                         [0.01, 0.025, -0.03, 0.04, 0.02, 0.05]])
    vm0 = se3_delta(pert) @ vm_true
    rot0, tr0 = pose_errors(vm0.double(), vm_true.double())
    assert rot0.min() > 0.035 and tr0.min() > 0.06
    ref = PoseRefiner(C, extent=1.0, config=PoseRefineConfig(lr_init=1e-2, lr_final=1e-4, weight_decay=0.0))
    opt = ref.make_optimizer()
    losses = []
    for s in range(steps):
        for group in opt.param_groups:
            group["lr"] = exp_lr(*ref.lr_range(), s, steps)
        img, _, _ = rasterization(*scene, ref(vm0, torch.arange(C)), Ks, W, H, backend="cpu")
        loss = (img - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    rot, tr = pose_errors(ref.refined(vm0).double(), vm_true.double())
    assert losses[-1] < 1e-4 * losses[0]
    assert rot.max() < 1e-3 and tr.max() < 1.5e-3, (rot, tr)
