"""Spherical harmonics (torch and the fused C++ kernel, float64 parity and gradients), raw-op input checks, and the JIT
loader's build-lock and missing-compiler behaviour."""
from __future__ import annotations

import pytest
import torch

from realsim.assets.errors import InputError


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative error ||a - b|| / ||b|| (0 when both vanish)."""
    nb = b.norm().item()
    return (a - b).norm().item() / nb if nb > 0 else (a - b).norm().item()


def test_spherical_harmonics_values_and_gradients():
    from realsim.render import spherical_harmonics
    from realsim.render.sh import sh_basis
    g = torch.Generator().manual_seed(0)
    co = torch.randn(4, 16, 3, generator=g, dtype=torch.float64)
    up = torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64).expand(4, 3)  # any norm: normalised inside
    c0, c1 = 0.28209479177387814, 0.4886025119029199
    assert torch.allclose(spherical_harmonics(1, up, co), c0 * co[:, 0] + c1 * co[:, 2])
    # deg 3 basis is orthonormal on the sphere: Monte-Carlo check of E[Y_i Y_j] * 4 pi = delta_ij
    d = torch.nn.functional.normalize(torch.randn(200000, 3, generator=g, dtype=torch.float64), dim=-1)
    B = sh_basis(3, d)
    gram = 4 * torch.pi * (B.T @ B) / d.shape[0]
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.03)
    dirs = torch.randn(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    coeffs = torch.randn(3, 16, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: spherical_harmonics(3, a, b), (dirs, coeffs))
    with pytest.raises(InputError):
        spherical_harmonics(4, dirs, coeffs)


def test_raw_cpu_ops_refuse_strided_inputs():
    """The C++ ops never read a strided view as packed memory (OpenSplat's bug): they reject it outright."""
    from realsim.render import _cpu
    ops = _cpu.load()
    means2d = torch.rand(1, 10, 2) * 16
    radii = torch.full((1, 10, 2), 2, dtype=torch.int32)
    depths = torch.rand(1, 20)[:, ::2]
    assert not depths.is_contiguous()
    with pytest.raises(RuntimeError, match="contiguous"):
        ops.isect_tiles(means2d, radii, depths, 16, 1, 1)
    _, _, flat, _ = ops.isect_tiles(means2d, radii, depths.contiguous(), 16, 1, 1)
    assert torch.equal(flat.long(), torch.argsort(depths[0], stable=True))


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_fused_cpu_sh_matches_torch_sh(degree):
    """The C++ SH kernel (used by backend='cpu') against render/sh.py: values and both gradients in float64, several
    cameras, more coefficients than the degree uses; gradcheck of the hand-derived backward."""
    from realsim.render import _cpu, _functions, spherical_harmonics
    ops = _cpu.load()
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(3, 40, 3, generator=g, dtype=torch.float64) * torch.rand(3, 40, 1, generator=g, dtype=torch.float64)
    coeffs = torch.randn(40, 16, 3, generator=g, dtype=torch.float64)
    w = torch.randn(3, 40, 3, generator=g, dtype=torch.float64)
    res = []
    for fn in (lambda d, c: _functions.spherical_harmonics(ops, degree, d, c),
               lambda d, c: spherical_harmonics(degree, d, c[None].expand(3, -1, -1, -1))):
        d, c = dirs.clone().requires_grad_(True), coeffs.clone().requires_grad_(True)
        out = fn(d, c)
        (out * w).sum().backward()
        res.append((out.detach(), d.grad, c.grad))
    for a, b in zip(*res):
        assert rel(a, b if b is not None else torch.zeros_like(a)) < 1e-12  # degree 0 does not depend on dirs
    assert torch.count_nonzero(res[0][2][:, (degree + 1) ** 2:]) == 0
    d, c = dirs[:, :5].clone().requires_grad_(True), coeffs[:5].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: _functions.spherical_harmonics(ops, degree, a, b), (d, c))
    # float32 agrees with float64 to float precision
    out32 = _functions.spherical_harmonics(ops, degree, dirs.float(), coeffs.float())
    assert rel(out32.double(), res[0][0]) < 1e-6


def test_stale_build_lock_is_cleared(tmp_path, monkeypatch):
    """A lock left by a killed extension build (torch would wait on it forever) is removed once it is old."""
    import os
    import time

    from realsim.render import _jit
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    lock = tmp_path / "realsim_x" / "lock"
    lock.parent.mkdir()
    lock.touch()
    _jit.clear_stale_lock("realsim_x")
    assert lock.exists()  # fresh: another process may be building
    old = time.time() - _jit.STALE_LOCK_S - 5
    os.utime(lock, (old, old))
    _jit.clear_stale_lock("realsim_x")
    assert not lock.exists()


def test_missing_compiler_gives_one_clear_error(tmp_path):
    """Without a C++ compiler, backend='cpu' says so in one line and 'auto' falls back to the torch reference."""
    import os
    import subprocess
    import sys
    code = """
import torch
from realsim.assets.errors import RealsimError
from realsim.render import rasterization
m = torch.zeros(1, 3); m[0, 2] = 2
args = (m, torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1), torch.ones(1), torch.ones(1, 3),
        torch.eye(4)[None], torch.tensor([[[8.0, 0, 4], [0, 8, 4], [0, 0, 1]]]), 8, 8)
try:
    rasterization(*args, backend="cpu")
except RealsimError as e:
    print("ERR", e)
print("AUTO", rasterization(*args)[2]["backend"])
"""
    env = {**os.environ, "CXX": "no-such-compiler", "TORCH_EXTENSIONS_DIR": str(tmp_path)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ERR no C++ compiler ('no-such-compiler') found" in p.stdout
    assert "AUTO torch" in p.stdout
