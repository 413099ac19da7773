"""Options shared by the commands: `--threads N` (or REALSIM_THREADS), `--max-pixels` (or REALSIM_MAX_PIXELS),
`--backend` / `--preset` (choices from the library's own lists) and `--overwrite` / `--json`."""
from __future__ import annotations

import argparse
import os

from realsim.assets.errors import InputError
from realsim.cli.argtypes import pos_int

THREADS_ENV = "REALSIM_THREADS"


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset), not the machine's total."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=pos_int, metavar="N",
                   help=f"CPU threads (default: ${THREADS_ENV}, else every core this process may use)")


def resolve_threads(value: int | None) -> tuple[int, bool]:
    """(threads, explicit): the --threads value, else $REALSIM_THREADS, else the available cores (explicit False)."""
    if value is not None:
        return int(value), True
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(f"{THREADS_ENV} must be a whole number >= 1, got {env!r}")
        return n, True
    return available_cores(), False


def apply_threads(n: int) -> None:
    """Use n CPU threads in this process: torch's intra-op pool (which also runs realsim's C++ kernels) and MKL, and
    OMP_NUM_THREADS for any child process. The OpenMP wait policy is set at import (realsim.assets), before torch."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def add_max_pixels_option(p: argparse.ArgumentParser) -> None:
    from realsim.render.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV

    p.add_argument("--max-pixels", type=pos_int, metavar="N",
                   help=f"refuse frames larger than N pixels (default ${MAX_PIXELS_ENV}, else {DEFAULT_MAX_PIXELS} = 4096x4096)")


def add_backend_option(p: argparse.ArgumentParser, help: str = "rasterizer backend") -> None:
    from realsim.render.rasterization import BACKENDS

    p.add_argument("--backend", choices=list(BACKENDS), default="auto", help=help)


def add_preset_option(p: argparse.ArgumentParser, default: str, help: str | None = None) -> None:
    from realsim.recon.trainer import PRESETS

    p.add_argument("--preset", choices=list(PRESETS), default=default, help=help)


def add_output_flags(p: argparse.ArgumentParser, overwrite_help: str | None,
                     json_help: str = "print the summary as JSON") -> None:
    """--overwrite (left out when overwrite_help is None) and --json."""
    if overwrite_help is not None:
        p.add_argument("--overwrite", action="store_true", help=overwrite_help)
    p.add_argument("--json", action="store_true", help=json_help)


def check_output_file(path, overwrite: bool) -> None:
    """An output FILE argument: not a folder, not an existing file unless --overwrite, and writable (before long work)."""
    from realsim.assets.atomic import check_writable

    if path.is_dir():
        raise InputError(f"output {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise InputError(f"output {path} exists (pass --overwrite to replace it)")
    check_writable(path)
