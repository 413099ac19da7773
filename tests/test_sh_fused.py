"""Fused SH kernels (render/csrc/cuda_sh.cu; cpu_sh.cpp is covered in tests/test_sh_and_jit.py) against the torch
reference render/sh.py: the CUDA source under host emulation (tests/cuda_emu.h runs its real kernels, block by block)
for values and both gradients, on a GPU the compiled kernels (float64 gradcheck), and the rasterizer's wiring."""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest
import torch
from cuda_emu_build import build_emu

from realsim.render import _cuda, _functions, rasterization, spherical_harmonics

TESTS = Path(__file__).resolve().parent
P, I32 = ctypes.c_void_p, ctypes.c_int


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def sh_inputs(seed: int, c: int = 3, n: int = 300, k: int = 16, dtype=torch.float64):
    """Directions of random length (a few zero and tiny ones), more coefficients than any degree uses."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(c, n, 3, generator=g, dtype=torch.float64) * torch.rand(c, n, 1, generator=g, dtype=torch.float64)
    dirs[0, :3] = 0.0
    dirs[1, :3] = 1e-14  # below F.normalize's 1e-12 floor: linear there
    coeffs = torch.randn(n, k, 3, generator=g, dtype=torch.float64)
    v = torch.randn(c, n, 3, generator=g, dtype=torch.float64)
    return dirs.to(dtype), coeffs.to(dtype), v.to(dtype)


def torch_reference(degree: int, dirs, coeffs, v):
    """Values and (d dirs, d coeffs) of sum(v * SH) through render/sh.py's autograd."""
    d, c = dirs.clone().requires_grad_(True), coeffs.clone().requires_grad_(True)
    out = spherical_harmonics(degree, d, c[None].expand(dirs.shape[0], -1, -1, -1))
    (out * v).sum().backward()
    return out.detach(), (d.grad if d.grad is not None else torch.zeros_like(d)), c.grad


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    """tests/cuda_emu_sh.cpp (cuda_sh.cu compiled as C++ with the emulated launch) built with g++, loaded with ctypes."""
    lib = build_emu("cuda_emu_sh.cpp", tmp_path_factory.mktemp("cuda_emu_sh"), warnings_are_errors=True)
    for suf in ("f32", "f64"):
        getattr(lib, f"emu_sh_fwd_{suf}").argtypes = [I32, P, P, I32, I32, I32, P]
        getattr(lib, f"emu_sh_bwd_{suf}").argtypes = [I32, P, P, P, I32, I32, I32, P, P]
        getattr(lib, f"emu_sh_fwd_{suf}").restype = getattr(lib, f"emu_sh_bwd_{suf}").restype = ctypes.c_int
    return lib


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def _p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_emulated_cuda_sh_matches_torch_reference(emu, degree, dtype, tol):
    """300 Gaussians x 3 cameras: 4 forward blocks and 2 backward blocks of 256 threads, the last ones partial."""
    dirs, coeffs, v = sh_inputs(degree, dtype=dtype)
    C, N, K = dirs.shape[0], dirs.shape[1], coeffs.shape[1]
    want = torch_reference(degree, *(t.double() for t in (dirs, coeffs, v)))
    suf = "f64" if dtype == torch.float64 else "f32"
    a_dirs, a_coeffs, a_v = _np(dirs), _np(coeffs), _np(v)
    out = np.full((C, N, 3), np.nan, a_dirs.dtype)
    assert getattr(emu, f"emu_sh_fwd_{suf}")(degree, _p(a_dirs), _p(a_coeffs), C, N, K, _p(out)) == 0
    v_coeffs = np.zeros((N, K, 3), a_dirs.dtype)  # the binding zeroes it; the kernel accumulates
    v_dirs = np.full((C, N, 3), np.nan, a_dirs.dtype)
    assert getattr(emu, f"emu_sh_bwd_{suf}")(degree, _p(a_dirs), _p(a_coeffs), _p(a_v), C, N, K, _p(v_coeffs),
                                             _p(v_dirs)) == 0
    assert rel(torch.from_numpy(out), want[0]) < tol
    assert rel(torch.from_numpy(v_coeffs), want[2]) < tol
    if degree == 0:  # the constant band does not depend on the direction
        assert not np.any(v_dirs)
    else:
        assert rel(torch.from_numpy(v_dirs), want[1]) < (tol if dtype == torch.float64 else 1e-5)
    nb = (degree + 1) ** 2
    assert not np.any(v_coeffs[:, nb:]) and np.all(np.abs(v_coeffs[:, :nb]).sum((0, 2)) > 0)


def test_emulated_cuda_sh_rejects_bad_degree(emu):
    dirs, coeffs, _ = sh_inputs(0, c=2, n=4)
    out = np.zeros((2, 4, 3))
    assert emu.emu_sh_fwd_f64(4, _p(_np(dirs)), _p(_np(coeffs)), 2, 4, 16, _p(out)) == 1
    assert not out.any()


def test_rasterization_evaluates_sh_with_the_fused_kernel(monkeypatch):
    """backend='cpu' goes through _functions.spherical_harmonics (the compiled kernel), 'torch' through render/sh.py,
    and both render the same image and gradients."""
    from realsim.assets.errors import RealsimError
    from realsim.render import _cpu

    try:
        _cpu.load()
    except RealsimError as e:
        pytest.skip(f"C++ kernels unavailable: {e}")
    calls = []
    fused = _functions.spherical_harmonics
    monkeypatch.setattr(_functions, "spherical_harmonics", lambda *a: calls.append(a[1]) or fused(*a))
    g = torch.Generator().manual_seed(0)
    n = 50
    means = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.4 + torch.tensor([0, 0, 3.0], dtype=torch.float64)
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = torch.full((n, 3), 0.08, dtype=torch.float64)
    opac = torch.full((n,), 0.7, dtype=torch.float64)
    Ks = torch.tensor([[[40.0, 0, 20], [0, 40.0, 15], [0, 0, 1]]], dtype=torch.float64)
    res = {}
    for backend in ("cpu", "torch"):
        sh = (torch.randn(n, 16, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.3)
        sh.requires_grad_(True)
        img, _, _ = rasterization(means, quats, scales, opac, sh, torch.eye(4, dtype=torch.float64)[None], Ks, 40, 30,
                                  sh_degree=3, backend=backend)
        img.square().sum().backward()
        res[backend] = (img.detach(), sh.grad)
    assert calls == [3]  # once, for the cpu backend only
    assert rel(res["cpu"][0], res["torch"][0]) < 1e-12 and rel(res["cpu"][1], res["torch"][1]) < 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the compiled CUDA SH kernels need a GPU")
@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_cuda_sh_kernels_on_gpu(degree):
    """The compiled kernels against the torch reference (float64 and float32) and float64 gradcheck on the GPU."""
    ops = _cuda.load()
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        dirs, coeffs, v = sh_inputs(degree, n=1000, dtype=dtype)
        want = torch_reference(degree, *(t.double() for t in (dirs, coeffs, v)))
        d, c = dirs.cuda().requires_grad_(True), coeffs.cuda().requires_grad_(True)
        out = _functions.spherical_harmonics(ops, degree, d, c)
        (out * v.cuda()).sum().backward()
        assert rel(out.detach().cpu(), want[0]) < tol and rel(c.grad.cpu(), want[2]) < tol
        if degree > 0:
            assert rel(d.grad.cpu(), want[1]) < (tol if dtype == torch.float64 else 1e-5)
    d = dirs[:, :6].double().cuda().requires_grad_(True)
    c = coeffs[:6].double().cuda().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: _functions.spherical_harmonics(ops, degree, a, b), (d, c))
