"""Shared JIT build of realsim's C++ / CUDA extensions: built once per machine (torch caches them under
TORCH_EXTENSIONS_DIR), loaded once per process, and a failed build is remembered so 'auto' never retries it per call."""
from __future__ import annotations

import logging
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from realsim.assets.errors import RealsimError

log = logging.getLogger("realsim.render")

CSRC = Path(__file__).resolve().parent / "csrc"
# no -std flag: torch adds the standard its headers need (C++17 up to 2.13, C++20 from 2.14 on); ours would override it
CPU_CFLAGS = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
STALE_LOCK_S = 600.0  # a cold build takes under a minute here (CUDA a few): an older lock is from a killed build


def isa() -> tuple[str, list[str]]:
    """Instruction-set tag and flags for this CPU: x86-64-v3 (AVX2 + FMA) where torch sees AVX2, else a portable build.

    The tag is part of module names, so a build cache shared between different CPUs never loads the wrong one.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic", []
    import torch
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return "v3", ["-march=x86-64-v3"]
    return "v2", ["-march=x86-64-v2"]


def require_cxx(what: str) -> None:
    """RealsimError naming the missing compiler when $CXX (default c++) is not on PATH."""
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None:
        raise RealsimError(f"no C++ compiler ({cxx!r}) found to build realsim's {what}: install g++ (or set CXX), "
                           "or use backend='torch'")


def clear_stale_lock(name: str) -> None:
    """Remove the build lock a killed build left behind: torch would otherwise wait on it forever."""
    from torch.utils import cpp_extension
    try:
        lock = Path(cpp_extension._get_build_directory(name, verbose=False)) / "lock"
        age = time.time() - lock.stat().st_mtime
    except (AttributeError, OSError):
        return
    if age > STALE_LOCK_S:
        log.warning("removing a stale build lock (%.0f s old, left by an interrupted build): %s", age, lock)
        lock.unlink(missing_ok=True)
    else:
        log.info("waiting for another process that is building %s (lock %s)", name, lock)


def build(name: str, sources: Sequence[str], what: str, fallback: str, **kwargs) -> ModuleType:
    """torch.utils.cpp_extension.load of csrc/<sources>; a failure becomes one RealsimError line (details in the log)."""
    from torch.utils import cpp_extension
    clear_stale_lock(name)
    try:
        return cpp_extension.load(name=name, sources=[str(CSRC / s) for s in sources], extra_include_paths=[str(CSRC)],
                                  verbose=False, **kwargs)
    except (RuntimeError, OSError, ImportError) as e:
        tail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        log.warning("%s build failed: %s", what, e)
        raise RealsimError(f"building realsim's {what} failed ({tail}); {fallback}") from e


def build_cpu(name: str, sources: Sequence[str], what: str) -> ModuleType:
    """A C++/OpenMP CPU extension for this machine's instruction set (module name gets the ISA tag)."""
    require_cxx(what)
    tag, flags = isa()
    return build(f"{name}_{tag}", sources, what, "use backend='torch' or check the C++ toolchain",
                 extra_cflags=CPU_CFLAGS + flags, extra_ldflags=["-fopenmp"])


class CachedModule:
    """Callable returning the module made by build(); thread-safe, builds once, and re-raises the first failure."""

    def __init__(self, build_fn: Callable[[], ModuleType]) -> None:
        self._build = build_fn
        self._lock = threading.Lock()
        self._module: ModuleType | None = None
        self._error: str | None = None

    def __call__(self) -> ModuleType:
        if self._module is not None:
            return self._module
        with self._lock:
            return self._locked_build()

    def unless_building(self) -> ModuleType | None:
        """The module (built here if needed), or None at once while another thread is building it: for callers with an
        exact fallback (the mesh z-buffer's torch reference), so the demo's capture runs beside the kernel build."""
        if self._module is not None:
            return self._module
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._locked_build()
        finally:
            self._lock.release()

    def _locked_build(self) -> ModuleType:
        if self._module is None:
            if self._error is not None:
                raise RealsimError(self._error)
            try:
                self._module = self._build()
            except RealsimError as e:
                self._error = str(e)
                raise
        return self._module
