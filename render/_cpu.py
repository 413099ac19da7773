"""JIT build (once, cached under TORCH_EXTENSIONS_DIR) and load of realsim's C++ CPU kernels (render/csrc/cpu_*.cpp)."""
from __future__ import annotations

import logging
import os
import platform
import shutil
import threading
from pathlib import Path
from types import ModuleType

from realsim.assets.errors import RealsimError

log = logging.getLogger("realsim.render")

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = ("cpu_project.cpp", "cpu_rasterize.cpp", "cpu_sh.cpp", "cpu_bindings.cpp")
CFLAGS = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]


def _isa() -> tuple[str, list[str]]:
    """Instruction-set tag and flags for this CPU: x86-64-v3 (AVX2 + FMA) where torch sees AVX2, else a portable build.

    The tag is part of the module name, so a build cache shared between different CPUs never loads the wrong one.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic", []
    import torch
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return "v3", ["-march=x86-64-v3"]
    return "v2", ["-march=x86-64-v2"]
_lock = threading.Lock()
_module: ModuleType | None = None
_error: str | None = None


def load() -> ModuleType:
    """The compiled op module (ops of csrc/ops.h); RealsimError when no C++ compiler is found or the build fails."""
    global _module, _error
    if _module is not None:
        return _module
    with _lock:
        if _module is not None:
            return _module
        if _error is not None:
            raise RealsimError(_error)
        cxx = os.environ.get("CXX", "c++")
        if shutil.which(cxx) is None:
            _error = (f"no C++ compiler ({cxx!r}) found to build realsim's CPU kernels: install g++ (or set CXX), "
                      "or use backend='torch'")
            raise RealsimError(_error)
        from torch.utils import cpp_extension
        tag, isa_flags = _isa()
        try:
            _module = cpp_extension.load(
                name=f"realsim_cpu_kernels_{tag}", sources=[str(CSRC / s) for s in SOURCES],
                extra_include_paths=[str(CSRC)], extra_cflags=CFLAGS + isa_flags, extra_ldflags=["-fopenmp"], verbose=False)
        except (RuntimeError, OSError, ImportError) as e:
            tail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            _error = f"building realsim's CPU kernels failed ({tail}); use backend='torch' or check the C++ toolchain"
            log.warning("CPU kernel build failed: %s", e)
            raise RealsimError(_error) from e
        return _module
