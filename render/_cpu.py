"""JIT build (once, cached under TORCH_EXTENSIONS_DIR) and load of realsim's C++ CPU kernels (render/csrc/cpu_*.cpp)."""
from __future__ import annotations

from . import _jit

SOURCES = ("cpu_project.cpp", "cpu_isect.cpp", "cpu_rasterize.cpp", "cpu_sh.cpp", "cpu_bindings.cpp")

load = _jit.CachedModule(lambda: _jit.build_cpu("realsim_cpu_kernels", SOURCES, "CPU kernels"))
load.__doc__ = "The compiled op module (ops of csrc/ops.h); RealsimError when no C++ compiler is found or the build fails."
