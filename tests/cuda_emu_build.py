"""Builds a host-emulation driver of the CUDA kernels (tests/cuda_emu_*.cpp) with g++ and loads it with ctypes."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from realsim.render import _cuda

TESTS = Path(__file__).resolve().parent


def build_emu(driver: str, out_dir: Path, warnings_are_errors: bool = False) -> ctypes.CDLL:
    """Compile tests/<driver> (C++20 for std::barrier) into out_dir and load it; skip without g++ or CUDA headers."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("g++")
    nvcc = _cuda.find_nvcc()
    if cxx is None or nvcc is None:
        pytest.skip("g++ and the CUDA toolkit headers are needed for the host emulation of the CUDA kernels")
    cuda_inc = Path(os.path.realpath(nvcc)).parent.parent / "include"
    if not (cuda_inc / "cuda_runtime_api.h").is_file():
        cuda_inc = Path("/usr/local/cuda/include")
    so = out_dir / (Path(driver).stem + ".so")
    cmd = [cxx, "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-Wno-unknown-pragmas", "-Wno-attributes",
           f"-I{_cuda.CSRC}", f"-I{TESTS}", f"-I{cuda_inc}", str(TESTS / driver), "-o", str(so)]
    if warnings_are_errors:
        cmd.insert(5, "-Wall")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    if warnings_are_errors:
        assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
    return ctypes.CDLL(str(so))
