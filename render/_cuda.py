"""JIT build (once, cached under TORCH_EXTENSIONS_DIR) and load of realsim's CUDA kernels (render/csrc/cuda_*.cu).

The module has the ops of csrc/ops.h (same names as the CPU extension, float32 and float64, fused SH included) plus
anchor_prefilter.
The kernels are plain CUDA C++ (csrc/cuda_api.h) so they also compile stand-alone with nvcc (see kernel_sources and
nvcc_command, used by tests/test_cuda_build.py on machines without a GPU).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType

from realsim.assets.errors import RealsimError

from . import _jit

CSRC = _jit.CSRC
KERNELS = ("cuda_project.cu", "cuda_isect.cu", "cuda_rasterize.cu", "cuda_sh.cu", "prefilter_cuda.cu")
BINDING = "cuda_bindings.cpp"
NVCC_FLAGS = ["-O3", "-std=c++17"]  # stand-alone nvcc (no torch headers); the torch build lets torch pick -std


def kernel_sources() -> list[Path]:
    """The .cu files (plain CUDA C++, no torch headers) that make up the CUDA kernels."""
    return [CSRC / s for s in KERNELS]


def find_nvcc() -> str | None:
    """Path of nvcc: $CUDA_HOME/bin/nvcc, else the one on PATH, else the usual install location; None if absent."""
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    found = shutil.which("nvcc")
    if found:
        return found
    default = Path("/usr/local/cuda/bin/nvcc")
    return str(default) if default.is_file() else None


def nvcc_command(source: Path, output: Path, arch: str = "sm_80", nvcc: str | None = None) -> list[str]:
    """nvcc command compiling one kernel source to an object file for one GPU architecture (host code included)."""
    return [nvcc or find_nvcc() or "nvcc", *NVCC_FLAGS, f"-arch={arch}", "-Xcompiler", "-Wall,-Wno-unknown-pragmas",
            "-I", str(CSRC), "-c", str(source), "-o", str(output)]


def _build() -> ModuleType:
    import torch
    from torch.utils import cpp_extension

    if not torch.cuda.is_available():
        raise RealsimError("realsim's CUDA kernels need a CUDA GPU and a CUDA build of torch (torch.cuda.is_available() "
                           "is False); use backend='cpu' or 'torch'")
    if cpp_extension.CUDA_HOME is None or find_nvcc() is None:
        raise RealsimError("nvcc (the CUDA toolkit) was not found to build realsim's CUDA kernels: set CUDA_HOME or use "
                           "backend='gsplat'")
    return _jit.build("realsim_cuda_kernels", [BINDING, *KERNELS], "CUDA kernels",
                      "use backend='gsplat' or check the CUDA toolkit", extra_cflags=["-O3"],
                      extra_cuda_cflags=["-O3"])


load = _jit.CachedModule(_build)
load.__doc__ = "The compiled CUDA op module; RealsimError (one clear line) without a CUDA device, nvcc, or a build."


def available() -> bool:
    """True when the CUDA kernels can be used here (a GPU is present and they build)."""
    try:
        load()
        return True
    except RealsimError:
        return False
