"""The C++ mesh z-buffer (render/csrc/mesh_cpu.cpp) against its torch reference (render/mesh.py `_rasterize`): the same
winning triangle at every pixel for random soups (overlaps, slivers, triangles crossing the borders, near/far limits),
and the same images from render_mesh on the synthetic street and a skinned body."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realsim.render.mesh import MeshRenderConfig, _rasterize, render_mesh


@pytest.fixture(scope="module")
def ext():
    from realsim.render import _cpu

    return _cpu.load()


@pytest.mark.parametrize("seed,n,W,H", [(0, 300, 97, 61), (1, 2000, 160, 120), (2, 40, 33, 257)])
def test_zbuffer_matches_the_torch_reference_exactly(ext, seed, n, W, H):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(n, 1, 2, generator=g) * torch.tensor([W * 1.4, H * 1.4]) - torch.tensor([W * 0.2, H * 0.2])
    size = torch.rand(n, 1, 1, generator=g) ** 3 * 0.5 * max(W, H) + 0.3  # mostly small, some huge, some sub-pixel
    uv = (c + (torch.rand(n, 3, 2, generator=g) - 0.5) * size).contiguous()
    z = (torch.rand(n, 3, generator=g) * 9 + 0.02).contiguous()
    z[: n // 10] = 0.5  # equal depths: the lower index wins in both
    uv[n // 10: n // 5, 2] = uv[n // 10: n // 5, 0] + 1e-4 * (uv[n // 10: n // 5, 1] - uv[n // 10: n // 5, 0])  # slivers
    for near, far in ((0.05, 1e6), (1.0, 6.0)):
        ref = _rasterize(uv, z, W, H, near, far, 1 << 16)
        got = ext.mesh_zbuffer(uv, z, W, H, near, far)
        assert got.dtype == torch.int64 and got.shape == (H * W,)
        assert (ref >= 0).float().mean() > 0.2  # a real test: many pixels are covered (28-90% here)
        assert torch.equal(got, ref), f"{int((got != ref).sum())} of {H * W} pixels differ"


def test_render_mesh_same_images_both_backends():
    from realsim.sim.capture import CaptureConfig, build_street, walk_cameras  # test-only use of sim: the richest mesh

    cfg = CaptureConfig()
    scene = build_street(0)
    view = walk_cameras(cfg)[7]
    K = np.array([[cfg.focal / 4, 0, cfg.width / 8], [0, cfg.focal / 4, cfg.height / 8], [0, 0, 1.0]])
    colors = np.random.default_rng(0).random((len(scene.vertices), 3))
    outs = [render_mesh(scene.vertices, scene.faces, colors, view, K, cfg.width // 4, cfg.height // 4,
                        MeshRenderConfig(backend=b, ssaa=2)) for b in ("torch", "cpu")]
    assert (outs[0]["alpha"] > 0).float().mean() > 0.5
    for k in outs[0]:
        assert torch.equal(outs[0][k], outs[1][k]), k


def test_bad_backend_is_one_clear_error():
    from realsim.assets.errors import RealsimError

    with pytest.raises(RealsimError, match="unknown backend"):
        render_mesh(np.eye(3), np.array([[0, 1, 2]]), None, np.eye(4), np.eye(3), 8, 8, MeshRenderConfig(backend="gl"))


def test_auto_backend_does_not_wait_for_a_build_in_another_thread(ext, monkeypatch):
    """While another thread builds the kernels (the demo's prebuild beside its capture), "auto" renders with the exact
    torch reference at once instead of blocking on the build; afterwards with the C++ kernel. Same pixels either way."""
    import threading

    from realsim.render import _cpu, _jit

    started, release = threading.Event(), threading.Event()

    def slow_build():
        started.set()
        release.wait(30)
        return ext

    mod = _jit.CachedModule(slow_build)
    monkeypatch.setattr(_cpu, "load", mod)
    builder = threading.Thread(target=mod)
    builder.start()
    assert started.wait(10)
    calls = []
    real = _jit.CachedModule._locked_build
    monkeypatch.setattr(_jit.CachedModule, "_locked_build", lambda self: calls.append(1) or real(self))
    assert mod.unless_building() is None
    verts = np.array([[-1.0, -1, 4], [1, -1, 4], [0, 1, 4], [-2, -2, 6], [2, -2, 6], [0, 2, 6]])
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    K = np.array([[20.0, 0, 16], [0, 20, 12], [0, 0, 1]])
    during = render_mesh(verts, faces, None, np.eye(4), K, 32, 24, MeshRenderConfig())  # returns while the build waits
    assert builder.is_alive() and not calls
    release.set()
    builder.join(10)
    assert mod.unless_building() is ext
    after = render_mesh(verts, faces, None, np.eye(4), K, 32, 24, MeshRenderConfig())
    assert (during["face_id"] >= 0).any() and all(torch.equal(during[k], after[k]) for k in during)
