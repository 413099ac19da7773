"""The one error type realsim raises for bad input; the CLI turns it into a single stderr line and a non-zero exit."""
from __future__ import annotations


class RealsimError(Exception):
    """A user-facing failure (bad file, bad argument, too few views): its message is the whole story."""

    exit_code: int = 2


class InputError(RealsimError):
    """Missing, corrupt or unsupported input."""
