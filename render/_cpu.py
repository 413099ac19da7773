"""JIT build (once, cached under TORCH_EXTENSIONS_DIR) and load of realsim's C++ CPU kernels and anchor prefilter
(render/csrc/cpu_*.cpp and prefilter_cpu.cpp, compiled as one translation unit: csrc/cpu_kernels.cpp)."""
from __future__ import annotations

from . import _jit

SOURCES = ("cpu_kernels.cpp",)  # includes cpu_{project,isect,rasterize,sh}.cpp, prefilter_cpu.cpp, cpu_bindings.cpp

load = _jit.CachedModule(lambda: _jit.build_cpu("realsim_cpu_kernels", SOURCES, "CPU kernels"))
load.__doc__ = "The compiled op module (ops of csrc/ops.h); RealsimError when no C++ compiler is found or the build fails."
