"""argparse value types shared by the commands: bad values become argparse's one-line error."""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None


def pos_int(text: str) -> int:
    """A whole number > 0."""
    v = int(_number(text, int))
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """A whole number >= 0."""
    v = int(_number(text, int))
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


def pos_float(text: str) -> float:
    """A finite number > 0."""
    v = float(_number(text, float))
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v
