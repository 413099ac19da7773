"""JIT build (once, cached under TORCH_EXTENSIONS_DIR) and load of realsim's CUDA kernels (render/csrc/cuda_*.cu).

The module has the ops of csrc/ops.h (same names as the CPU extension, float32 and float64) plus anchor_prefilter.
The kernels are plain CUDA C++ (csrc/cuda_api.h) so they also compile stand-alone with nvcc (see kernel_sources and
nvcc_command, used by tests/test_cuda_build.py on machines without a GPU).
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from types import ModuleType

from realsim.assets.errors import RealsimError

log = logging.getLogger("realsim.render")

CSRC = Path(__file__).resolve().parent / "csrc"
KERNELS = ("cuda_project.cu", "cuda_isect.cu", "cuda_rasterize.cu", "prefilter_cuda.cu")
BINDING = "cuda_bindings.cpp"
NVCC_FLAGS = ["-O3", "-std=c++17"]
_lock = threading.Lock()
_module: ModuleType | None = None
_error: str | None = None


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


def load() -> ModuleType:
    """The compiled CUDA op module; RealsimError (one clear line) without a CUDA device, nvcc, or when the build fails."""
    global _module, _error
    if _module is not None:
        return _module
    with _lock:
        if _module is not None:
            return _module
        if _error is not None:
            raise RealsimError(_error)
        import torch
        from torch.utils import cpp_extension

        if not torch.cuda.is_available():
            _error = ("realsim's CUDA kernels need a CUDA GPU and a CUDA build of torch (torch.cuda.is_available() is "
                      "False); use backend='cpu' or 'torch'")
            raise RealsimError(_error)
        if cpp_extension.CUDA_HOME is None or find_nvcc() is None:
            _error = "nvcc (the CUDA toolkit) was not found to build realsim's CUDA kernels: set CUDA_HOME or use backend='gsplat'"
            raise RealsimError(_error)
        try:
            _module = cpp_extension.load(
                name="realsim_cuda_kernels", sources=[str(CSRC / BINDING), *map(str, kernel_sources())],
                extra_include_paths=[str(CSRC)], extra_cflags=["-O3", "-std=c++17"], extra_cuda_cflags=NVCC_FLAGS,
                verbose=False)
        except (RuntimeError, OSError, ImportError) as e:
            tail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            _error = f"building realsim's CUDA kernels failed ({tail}); use backend='gsplat' or check the CUDA toolkit"
            log.warning("CUDA kernel build failed: %s", e)
            raise RealsimError(_error) from e
        return _module


def available() -> bool:
    """True when the CUDA kernels can be used here (a GPU is present and they build)."""
    try:
        load()
        return True
    except RealsimError:
        return False
