"""The one error type realsim raises for bad input; the CLI turns it into a single stderr line and a non-zero exit."""
from __future__ import annotations

import os


class RealsimError(Exception):
    """A user-facing failure (bad file, bad argument, too few views): its message is the whole story."""

    exit_code: int = 2


class InputError(RealsimError):
    """Missing, corrupt or unsupported input."""


class OutputError(RealsimError):
    """An output that cannot be written (disk full, read-only, not a folder, ...): names the path and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str, action: str = "write") -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.action = action
        super().__init__(f"cannot {action} {self.path}: {reason}")
