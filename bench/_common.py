"""What every benchmark records beside its numbers, in one spelling: the machine, its load, the versions, the commit, the
command; and how results are written (JSON, atomically, under bench/results/).

    machine_info() -> {"cpu_model", "cores", "cpu_count", "load_avg", "platform", "python", "torch", "torch_threads",
                       "numpy", "git_commit", "git_dirty"}
    load_avg() -> [1 min, 5 min, 15 min] (None where the OS has none)
    stamp() -> {"command", "machine", "date"}  -- for a result or for one row of a file that merges runs
    write_result(path, data, stamp_it=True) -- data (after stamp() unless stamp_it=False) written atomically as indented JSON
    read_result(path, default) -- an earlier result file (for benches that merge runs), default when absent or unreadable
    data_root() -- the real data folder: $REALSIM_DATA, default ../shared/data beside the repo

The bench scripts run as `python bench/NAME.py`, so they import this as `from _common import ...`.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def data_root() -> Path:
    return Path(os.environ.get("REALSIM_DATA", REPO.parent / "shared" / "data"))


def load_avg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    """The machine a result was taken on; a shared machine's load average inflates wall times when load > cores."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "load_avg": load_avg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        info.update(torch=None, torch_threads=None)
    commit = _git("rev-parse", "--short", "HEAD")
    info.update(git_commit=commit, git_dirty=bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None)
    return info


def command() -> str:
    return " ".join(["python", os.path.relpath(sys.argv[0], REPO) if sys.argv[0] else "?", *sys.argv[1:]])


def read_result(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def stamp() -> dict[str, Any]:
    """The command, the machine and the time (UTC) of this run."""
    return {"command": command(), "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def write_result(path: str | os.PathLike, data: dict[str, Any], stamp_it: bool = True) -> Path:
    """Write data as JSON, atomically; first the command, machine and date of this run unless stamp_it is False (files
    that merge rows of several runs stamp each row instead)."""
    path = Path(path)
    out = {**(stamp() if stamp_it else {}), **data}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, path)
    return path


def apply_sets(cfg: Any, sets: list[str]) -> dict[str, Any]:
    """KEY=VALUE overrides (dotted keys into nested configs; the value parsed as JSON, else kept as a string); returns them."""
    over: dict[str, Any] = {}
    for item in sets:
        key, _, val = item.partition("=")
        try:
            v = json.loads(val)
        except json.JSONDecodeError:
            v = val
        obj = cfg
        *path, last = key.split(".")
        for k in path:
            obj = getattr(obj, k)
        if not hasattr(obj, last):
            raise SystemExit(f"--set: unknown config field {key!r}")
        setattr(obj, last, v)
        over[key] = v
    return over
