"""The CUDA kernels really compile with nvcc (no GPU needed), broken sources really fail, and the torch binding compiles
against ops.h; the kernel sources also run under a host emulation (tests/cuda_emu.h) and match the C++ CPU kernels;
without a GPU the cuda/gsplat backends fail with one clear RealsimError."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from cuda_emu_build import build_emu

from realsim.assets.errors import RealsimError
from realsim.render import _cuda

ARCH = "sm_80"


def _nvcc() -> str:
    nvcc = _cuda.find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (set CUDA_HOME or put nvcc on PATH): CUDA kernels cannot be compile-checked here")
    return nvcc


def _run_parallel(cmds: dict[str, list[str]], jobs: int = 2) -> dict[str, subprocess.CompletedProcess]:
    """Run commands, `jobs` at a time; results by key."""
    out: dict[str, subprocess.CompletedProcess] = {}
    pending = list(cmds.items())
    running: list[tuple[str, list[str], subprocess.Popen]] = []
    while pending or running:
        while pending and len(running) < jobs:
            key, cmd = pending.pop(0)
            running.append((key, cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        key, cmd, proc = running.pop(0)
        stdout, stderr = proc.communicate(timeout=600)
        out[key] = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    return out


def _binding_syntax_cmd(shim: Path) -> list[str] | None:
    """g++ -fsyntax-only of cuda_bindings.cpp with torch's and the CUDA toolkit's headers; None if they are missing."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("g++")
    nvcc = _cuda.find_nvcc()
    if cxx is None or nvcc is None:
        return None
    from torch.utils.cpp_extension import include_paths

    cuda_inc = Path(os.path.realpath(nvcc)).parent.parent / "include"
    if not (cuda_inc / "cuda_runtime_api.h").is_file():
        cuda_inc = Path("/usr/local/cuda/include")
    torch_inc = [Path(p) for p in include_paths()]
    if not (cuda_inc / "cuda_runtime_api.h").is_file() or not any((p / "c10/cuda/CUDAGuard.h").is_file() for p in torch_inc):
        return None
    # CPU builds of torch ship the c10/cuda headers but not this one generated file (it only sets an export macro).
    gen = shim / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    gen.parent.mkdir(parents=True, exist_ok=True)
    gen.write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
    incs = [str(_cuda.CSRC), *map(str, torch_inc), str(cuda_inc), sysconfig.get_paths()["include"]]
    if not any((torch_inc_p / "c10/cuda/impl/cuda_cmake_macros.h").is_file() for torch_inc_p in torch_inc):
        incs.append(str(shim))
    return [cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wno-unused-parameter", "-Wno-unknown-pragmas",
            *[f"-I{p}" for p in incs], "-DTORCH_EXTENSION_NAME=realsim_cuda_kernels", "-DTORCH_API_INCLUDE_EXTENSION_H",
            str(_cuda.CSRC / _cuda.BINDING)]


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Compile every kernel source once (two at a time) plus the binding syntax check; results by file name."""
    nvcc = _nvcc()
    out_dir = tmp_path_factory.mktemp("cuda_objs")
    cmds, outputs = {}, {}
    binding = _binding_syntax_cmd(out_dir / "shim")
    if binding is not None:
        cmds[_cuda.BINDING] = binding  # longest first
    for src in _cuda.kernel_sources():
        outputs[src.name] = out_dir / (src.stem + ".o")
        cmds[src.name] = _cuda.nvcc_command(src, outputs[src.name], arch=ARCH, nvcc=nvcc)
    res = _run_parallel(cmds)
    return {k: (res[k], outputs.get(k, Path())) for k in res}


@pytest.mark.parametrize("name", list(_cuda.KERNELS))
def test_kernel_source_compiles_with_nvcc(builds, name):
    proc, obj = builds[name]
    assert proc.returncode == 0, f"nvcc failed on {name}:\n{proc.stderr[-4000:]}"
    assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
    data = obj.read_bytes()
    assert b".nv_fatbin" in data, "object has no embedded device code"
    # The device kernels themselves were compiled (their mangled names are in the object).
    expected = {"cuda_project.cu": [b"project_forward_kernel", b"project_backward_kernel"],
                "cuda_isect.cu": [b"isect_count_kernel", b"isect_emit_kernel", b"isect_offsets_kernel", b"DeviceRadixSort"],
                "cuda_rasterize.cu": [b"rasterize_forward_kernel", b"rasterize_backward_kernel"],
                "cuda_sh.cu": [b"sh_forward_kernel", b"sh_backward_kernel"],
                "prefilter_cuda.cu": [b"anchor_prefilter_kernel"]}[name]
    for sym in expected:
        assert sym in data, f"{sym!r} missing from {name}'s object"


def test_kernels_are_plain_cuda_without_torch_headers():
    for src in _cuda.kernel_sources():
        text = src.read_text()
        assert "torch/" not in text and "ATen/" not in text, f"{src.name} must not include torch headers"


def test_binding_compiles_against_ops_h(builds):
    if _cuda.BINDING not in builds:
        pytest.skip("torch's c10/cuda headers or the CUDA toolkit headers are missing: binding not checked")
    proc, _ = builds[_cuda.BINDING]
    assert proc.returncode == 0, f"cuda_bindings.cpp does not compile:\n{proc.stderr[-4000:]}"


@pytest.mark.parametrize("breakage", ["syntax", "device"])
def test_broken_kernel_source_fails_to_compile(tmp_path, breakage):
    """The compile check is real: a syntax error, or host code called from a kernel (a device-side error), fails."""
    nvcc = _nvcc()
    src = _cuda.CSRC / "prefilter_cuda.cu"
    text = src.read_text()
    if breakage == "syntax":
        text = text.replace("mask[i] = realsim_prefilter::sphere_meets_frustum(f, p, radii[i]);",
                            "mask[i] = realsim_prefilter::sphere_meets_frustum(f, p, radii[i])")  # missing ';'
        needle = "error"
    else:
        text = text.replace("namespace realsim_cuda {", "float host_only_fn() { return 1.f; }\nnamespace realsim_cuda {", 1)
        text = text.replace("mask[i] = realsim_prefilter::sphere_meets_frustum(f, p, radii[i]);",
                            "mask[i] = realsim_prefilter::sphere_meets_frustum(f, p, radii[i] * host_only_fn());")
        needle = "host_only_fn"
    assert text != src.read_text()
    broken = tmp_path / "prefilter_cuda.cu"
    broken.write_text(text)
    proc = subprocess.run(_cuda.nvcc_command(broken, tmp_path / "broken.o", arch=ARCH, nvcc=nvcc),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert needle in proc.stderr
    assert not (tmp_path / "broken.o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_cuda_backend_without_gpu_is_a_clear_error():
    with pytest.raises(RealsimError, match="CUDA"):
        _cuda.load()
    assert _cuda.available() is False


def test_gsplat_backend_rejects_cpu_tensors():
    from realsim.render import gsplat_backend

    n = 4
    args = (torch.zeros(n, 3), torch.tensor([[1.0, 0, 0, 0]] * n), torch.ones(n, 3), torch.ones(n), torch.ones(n, 3),
            torch.eye(4)[None], torch.eye(3)[None], 8, 8)
    with pytest.raises(RealsimError, match="CUDA tensors"):
        gsplat_backend.rasterization(*args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ---------------------------------------------------------------------------------------------------------------------
# Host emulation: the CUDA kernel sources compiled as C++ (tests/cuda_emu.h runs each block's threads as std::threads,
# with real barriers and warp exchanges), so the kernels' arithmetic AND their block/warp logic (batching, early exit,
# reverse traversal, warp reductions) are checked against the C++ CPU kernels here, without a GPU. cub's scan/sort are
# replaced by numpy; the binding's padding and stream handling are not covered (tests/test_cuda_parity.py on a GPU).
# ---------------------------------------------------------------------------------------------------------------------
TESTS = Path(__file__).resolve().parent
P, I32, I64, F64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_double
_SIGS = {
    "emu_project_fwd": [P] * 6 + [I32] * 4 + [F64] * 3 + [I32] + [P] * 5,
    "emu_project_bwd": [P] * 5 + [I32] * 4 + [F64, I32] + [P] * 11,
    "emu_isect_count": [P, P] + [I32] * 5 + [P],
    "emu_isect_emit": [P] * 4 + [I32] * 6 + [P, P],
    "emu_raster_fwd": [P] * 8 + [I32] * 7 + [I64] + [P] * 3,
    "emu_raster_bwd": [P] * 8 + [I32] * 7 + [I64] + [P] * 9,
}


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    """The emulation driver built with g++ (C++20 for std::barrier) and loaded with ctypes."""
    lib = build_emu("cuda_emu_driver.cpp", tmp_path_factory.mktemp("cuda_emu"))
    for base, sig in _SIGS.items():
        for suf in ("f32", "f64"):
            fn = getattr(lib, f"{base}_{suf}")
            fn.argtypes, fn.restype = sig, ctypes.c_int if base.startswith("emu_raster") else None
    lib.emu_isect_offsets.argtypes, lib.emu_isect_offsets.restype = [P, I64, I32, I32, I32, P], None
    lib.emu_launch_limit_error.argtypes, lib.emu_launch_limit_error.restype = [I32, I64, I32, I64], ctypes.c_char_p
    lib.emu_raster_smem_bytes.argtypes, lib.emu_raster_smem_bytes.restype = [I32] * 4, I64
    return lib


@pytest.fixture(scope="module")
def cpu_ops():
    from realsim.render import _cpu

    try:
        return _cpu.load()
    except RealsimError as e:
        pytest.skip(f"C++ CPU kernels unavailable for the comparison: {e}")


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def _p(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (nb if nb > 0 else 1.0))


EW, EH = 37, 21  # not multiples of the tile size


def _emu_scene(seed: int, dtype, n: int = 70, c: int = 2):
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=torch.float64) * 0.6
    means[:, 2] = 1.5 + 2.0 * torch.rand(n, generator=g, dtype=torch.float64)
    means[:6, 2] = -1.0  # behind the camera
    means[6:12, 0] = 1.2  # across the right border
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    scales = torch.exp(-2.6 + 0.5 * torch.randn(n, 3, generator=g, dtype=torch.float64))
    scales[12:15] = 0.8  # huge
    opac = 0.1 + 0.89 * torch.rand(n, generator=g, dtype=torch.float64)
    opac[15:20] = 0.003  # below 1/255: culled
    vm = torch.eye(4, dtype=torch.float64).repeat(c, 1, 1)
    for i in range(1, c):
        a = torch.tensor(0.25 * i, dtype=torch.float64)
        vm[i, :3, :3] = torch.tensor([[a.cos(), 0, a.sin()], [0, 1, 0], [-a.sin(), 0, a.cos()]], dtype=torch.float64)
        vm[i, :3, 3] = torch.tensor([0.15 * i, -0.05, 0.1])
    Ks = torch.tensor([[30.0, 0, EW / 2 + 0.4], [0, 28.0, EH / 2 - 0.3], [0, 0, 1]], dtype=torch.float64).repeat(c, 1, 1)
    return [t.to(dtype) for t in (means, quats, scales, opac, vm, Ks)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("antialiased", [False, True])
def test_emulated_projection_matches_cpu_kernels(emu, cpu_ops, dtype, antialiased):
    suf = "f64" if dtype == torch.float64 else "f32"
    means, quats, scales, opac, vm, Ks = _emu_scene(1, dtype)
    C, N = vm.shape[0], means.shape[0]
    ref = cpu_ops.project_fwd(means, quats, scales, opac, vm, Ks, EW, EH, 0.3, 0.01, 1e10, antialiased)
    npd = np.float64 if dtype == torch.float64 else np.float32
    ins = [_np(t) for t in (means, quats, scales, opac, vm, Ks)]
    radii = np.zeros((C, N, 2), np.int32)
    m2, dp, con, comp = (np.zeros(s, npd) for s in ((C, N, 2), (C, N), (C, N, 3), (C, N)))
    getattr(emu, f"emu_project_fwd_{suf}")(*map(_p, ins), C, N, EW, EH, 0.3, 0.01, 1e10, int(antialiased),
                                           *map(_p, (radii, m2, dp, con, comp)))
    tol = 1e-13 if dtype == torch.float64 else 1e-6
    assert (radii != _np(ref[0])).any(-1).mean() <= (0 if dtype == torch.float64 else 0.02)
    vis = (radii > 0).all(-1) & (_np(ref[0]) > 0).all(-1)
    assert vis.sum() > 60 and (~vis).sum() > 20
    assert _rel(dp, _np(ref[2])) < tol
    for got, want in ((m2, ref[1]), (con, ref[3]), (comp, ref[4])):
        assert _rel(got[vis], _np(want)[vis]) < tol
    # backward: same radii/conics as the CPU forward, random output gradients
    g = torch.Generator().manual_seed(2)
    vs = [torch.randn(t.shape, generator=g, dtype=torch.float64).to(dtype) for t in (ref[1], ref[2], ref[3], ref[4])]
    # (the real kernel: 256-thread blocks, warps reduce the viewmat gradient; N = 70 puts a camera boundary mid-warp)
    want = cpu_ops.project_bwd(means, quats, scales, vm, Ks, EW, EH, 0.3, antialiased, ref[0], ref[3], ref[4], *vs,
                               True)
    assert want[3].shape == (C, 4, 4) and torch.all(want[3][:, 3] == 0) and want[3][:, :3].abs().min() > 0
    for with_view in (True, False):
        outs = [np.zeros(s, npd) for s in ((N, 3), (N, 4), (N, 3), (C, 4, 4))]
        getattr(emu, f"emu_project_bwd_{suf}")(*map(_p, [ins[0], ins[1], ins[2], ins[4], ins[5]]), C, N, EW, EH, 0.3,
                                               int(antialiased), *map(_p, [_np(t) for t in (ref[0], ref[3], ref[4])]),
                                               *map(_p, [_np(v) for v in vs]), *map(_p, outs[:3]),
                                               _p(outs[3]) if with_view else None)
        for got, w in zip(outs if with_view else outs[:3], want):
            assert _rel(got, _np(w)) < (1e-11 if dtype == torch.float64 else 1e-4)
        if not with_view:
            assert not outs[3].any()


def _emu_isect(emu, suf, radii, m2, depths, C, N, ts, tw, th):
    tpg = np.zeros(C * N, np.int32)
    getattr(emu, f"emu_isect_count_{suf}")(_p(radii), _p(m2), C, N, ts, tw, th, _p(tpg))
    cum = np.cumsum(tpg.astype(np.int64))  # cub::DeviceScan::InclusiveSum
    n = int(cum[-1])
    keys, vals = np.zeros(n, np.int64), np.zeros(n, np.int32)
    tile_bits = int(tw * th).bit_length()
    getattr(emu, f"emu_isect_emit_{suf}")(_p(radii), _p(m2), _p(depths), _p(cum), C, N, ts, tw, th, tile_bits,
                                          _p(keys), _p(vals))
    order = np.argsort(keys.view(np.uint64), kind="stable")  # cub::DeviceRadixSort::SortPairs (stable)
    keys, vals = np.ascontiguousarray(keys[order]), np.ascontiguousarray(vals[order])
    offs = np.full((C, th, tw), -7, np.int32)
    emu.emu_isect_offsets(_p(keys), n, C, tw * th, tile_bits, _p(offs))
    return tpg.reshape(C, N), keys, vals, offs


@pytest.mark.parametrize("ts", [8, 16])
def test_emulated_tile_intersection_matches_cpu_kernels(emu, cpu_ops, ts):
    means, quats, scales, opac, vm, Ks = _emu_scene(3, torch.float32, n=120, c=3)
    radii, m2, depths, _, _ = cpu_ops.project_fwd(means, quats, scales, opac, vm, Ks, EW, EH, 0.3, 0.01, 1e10, False)
    depths = depths.clone()
    depths[:, 30:40] = depths[:, 40:50]  # exact ties: Gaussian-index order on both sides
    tw, th = -(-EW // ts), -(-EH // ts)
    want = cpu_ops.isect_tiles(m2, radii, depths, ts, tw, th)
    got = _emu_isect(emu, "f32", _np(radii), _np(m2), _np(depths), 3, 120, ts, tw, th)
    for name, a, b in zip(("tiles_per_gauss", "isect_ids", "flatten_ids", "isect_offsets"), got, want):
        assert np.array_equal(a, _np(b)), name
    assert got[1].size > 200


@pytest.mark.parametrize("dtype,ts,D,bg", [(torch.float64, 8, 3, True), (torch.float32, 16, 4, False)])
def test_emulated_rasterizer_matches_cpu_kernels(emu, cpu_ops, dtype, ts, D, bg):
    """The block kernels (shared-memory batches, early exit, reverse walk, warp reductions) vs the CPU rasterizer."""
    suf = "f64" if dtype == torch.float64 else "f32"
    means, quats, scales, opac, vm, Ks = _emu_scene(4, dtype, c=2 if ts == 8 else 1)  # (256-thread blocks are slow)
    C, N = vm.shape[0], means.shape[0]
    radii, m2, depths, con, comp = cpu_ops.project_fwd(means, quats, scales, opac, vm, Ks, EW, EH, 0.3, 0.01, 1e10,
                                                       False)
    tw, th = -(-EW // ts), -(-EH // ts)
    _, _, flat, offs = cpu_ops.isect_tiles(m2, radii, depths, ts, tw, th)
    g = torch.Generator().manual_seed(5)
    colors = torch.rand(C, N, D, generator=g, dtype=torch.float64).to(dtype)
    op = (opac[None] * comp).contiguous()
    op[:, 20:40] = 0.995  # alpha clamped at 0.999: saturates pixels, exercises early termination
    bgs = torch.rand(C, D, generator=g, dtype=torch.float64).to(dtype) if bg else None
    rc, ra, last = cpu_ops.rasterize_fwd(m2, con, colors, op, bgs, radii, EW, EH, ts, offs, flat)
    assert float(ra.max()) > 0.999 - 1e-6 and float(ra.min()) < 0.5
    npd = np.float64 if dtype == torch.float64 else np.float32
    ins = [_np(t) if t is not None else None for t in (m2, con, colors, op, bgs, radii, offs, flat)]
    e_rc, e_ra, e_last = np.zeros((C, EH, EW, D), npd), np.zeros((C, EH, EW, 1), npd), np.zeros((C, EH, EW), np.int32)
    n = int(flat.numel())
    assert getattr(emu, f"emu_raster_fwd_{suf}")(*map(_p, ins), C, D, EW, EH, ts, tw, th, n,
                                                 *map(_p, (e_rc, e_ra, e_last))) == 0
    fwd_tol = 1e-13 if dtype == torch.float64 else 2e-6
    assert _rel(e_rc, _np(rc)) < fwd_tol and _rel(e_ra, _np(ra)) < fwd_tol
    same_last = (e_last == _np(last)).mean()
    assert same_last == 1.0 if dtype == torch.float64 else same_last > 0.99
    v_rc = torch.randn(rc.shape, generator=g, dtype=torch.float64).to(dtype)
    v_ra = torch.randn(ra.shape, generator=g, dtype=torch.float64).to(dtype)
    want = cpu_ops.rasterize_bwd(m2, con, colors, op, bgs, radii, EW, EH, ts, offs, flat, ra, last, v_rc, v_ra, True)
    outs = [np.zeros(s, npd) for s in ((C, N, 2), (C, N, 3), (C, N, D), (C, N), (C, N, 2))]
    assert getattr(emu, f"emu_raster_bwd_{suf}")(*map(_p, ins), C, D, EW, EH, ts, tw, th, n, _p(_np(ra)),
                                                 _p(_np(last)), _p(_np(v_rc)), _p(_np(v_ra)), *map(_p, outs)) == 0
    for name, got, w in zip(("v_means2d", "v_conics", "v_colors", "v_opacities", "v_means2d_abs"), outs, want):
        assert np.abs(_np(w)).sum() > 0, name
        assert _rel(got, _np(w)) < (1e-11 if dtype == torch.float64 else 1e-4), name


def test_emulated_launch_limits(emu):
    """The rasterizer's launch check: a 32x32 tile (1024 threads) against a register-limited build, and 64 float64
    channels at tile 32 against an H100/H200's 227 KB of shared memory, are refused with a reason, not launched."""
    optin = 232_448  # cudaDevAttrMaxSharedMemoryPerBlockOptin of sm_90
    assert emu.emu_launch_limit_error(256, 20_000, 1024, optin) == b""
    err = emu.emu_launch_limit_error(1024, 20_000, 640, optin).decode()
    assert "1024 threads" in err and "allows 640" in err and "tile_size" in err
    big = emu.emu_raster_smem_bytes(1, 1, 64, 32)
    assert big == 1024 * (8 * 8 + 8 * 64 + 4) + 32 * 4 > optin  # Splat<double> is 8 doubles
    assert "shared memory" in emu.emu_launch_limit_error(1024, big, 1024, optin).decode()
    for backward in (0, 1):
        for f64 in (0, 1):
            assert 0 < emu.emu_raster_smem_bytes(backward, f64, 64, 16) <= optin  # tile 16 always fits


def test_tile_size_follows_what_the_cuda_kernels_can_launch(caplog):
    """The CUDA path asks the binding (max_tile_size: register budget and shared memory of each kernel build) and
    falls back to the largest tile that launches, once per (device, dtype, channels); none at all is one clear error."""
    from realsim.render import _functions

    class FakeOps:  # stands for the CUDA extension on a GPU whose float64 builds cannot run 32x32 blocks
        calls = 0

        def max_tile_size(self, f64: bool, channels: int) -> int:
            FakeOps.calls += 1
            return 0 if channels > 64 else (16 if f64 else 32)

    ops, m64, m32 = FakeOps(), torch.zeros(1, 2, 2, dtype=torch.float64), torch.zeros(1, 2, 2)
    _functions._TILE_FIT.clear()
    with caplog.at_level("WARNING", logger="realsim.render"):
        assert _functions.fitting_tile_size(ops, 32, m64, 3) == 16
        assert _functions.fitting_tile_size(ops, 32, m64, 3) == 16
    assert FakeOps.calls == 1 and sum("does not fit" in r.message for r in caplog.records) == 1
    assert _functions.fitting_tile_size(ops, 8, m64, 3) == 8
    assert _functions.fitting_tile_size(ops, 32, m32, 4) == 32
    with pytest.raises(RealsimError, match="cannot launch"):
        _functions.fitting_tile_size(ops, 16, m32, 100)
    _functions._TILE_FIT.clear()
    assert _functions.fitting_tile_size(object(), 32, m64, 3) == 32  # the CPU kernels take any tile up to 32
