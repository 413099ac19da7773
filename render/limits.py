"""Frame-size guard: refuse absurd render sizes up front, with the memory they would need, instead of running out of it.

Bytes per pixel were measured as the peak-RSS rise of `render` (write_video_bundle: rasterizer RGB + depth + alpha
float buffers and per-tile work, the numpy copies, colour-mapped depth, normals and the video encoders' frames):
about 230-270 B per pixel at 1-4 MP. `simulate` adds the agent mesh layer at ssaa x ssaa samples per pixel.
"""
from __future__ import annotations

import os

from realsim.assets.errors import InputError

DEFAULT_MAX_PIXELS = 4096 * 4096  # 16.8 MP
MAX_PIXELS_ENV = "REALSIM_MAX_PIXELS"
FRAME_BYTES_PER_PIXEL = 256
AGENT_BYTES_PER_SAMPLE = 64  # mesh rasterizer: colour, depth, face id, coverage and the box-filter buffers per sample


def max_pixels(value: int | None = None) -> int:
    """The pixel limit: `value`, else $REALSIM_MAX_PIXELS, else DEFAULT_MAX_PIXELS."""
    if value is not None:
        if int(value) < 1:
            raise InputError(f"--max-pixels must be >= 1, got {value}")
        return int(value)
    env = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not env:
        return DEFAULT_MAX_PIXELS
    try:
        n = int(float(env))
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{MAX_PIXELS_ENV} must be a whole number of pixels >= 1, got {env!r}")
    return n


def frame_bytes(width: int, height: int, ssaa: int = 0) -> int:
    """Estimated peak memory of rendering one width x height frame (ssaa > 0: plus agents at ssaa^2 samples per pixel)."""
    px = int(width) * int(height)
    return px * FRAME_BYTES_PER_PIXEL + (px * ssaa * ssaa * AGENT_BYTES_PER_SAMPLE if ssaa > 0 else 0)


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n} pixels"


def _size(n: float) -> str:
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


def _machine_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_frame_size(width: int, height: int, limit: int | None = None, ssaa: int = 0, what: str = "render size") -> None:
    """InputError naming the size, the memory it would need and how to allow it, when width x height is above the limit."""
    lim = max_pixels(limit)
    px = int(width) * int(height)
    if px <= lim:
        return
    need = frame_bytes(width, height, ssaa)
    per = FRAME_BYTES_PER_PIXEL + (ssaa * ssaa * AGENT_BYTES_PER_SAMPLE if ssaa > 0 else 0)
    detail = f"{per} bytes per pixel" + (f" with agents at ssaa {ssaa} ({ssaa}x{ssaa} samples per pixel)" if ssaa > 0 else "")
    mem = _machine_memory()
    have = f"; this machine has {_size(mem)}" if mem else ""
    raise InputError(f"{what} {width}x{height} ({_pixels(px)}) is above the limit of {_pixels(lim)}: one frame "
                     f"would need about {_size(need)} of memory ({detail}){have}. Pass --max-pixels {px} "
                     f"(or set {MAX_PIXELS_ENV}={px}) to allow it")


def frames_in_flight(width: int, height: int, ssaa: int = 0, wanted: int = 2, share: float = 0.25) -> int:
    """How many frames may render at once: `wanted`, fewer when they would need more than `share` of the machine's memory."""
    mem = _machine_memory()
    if mem is None:
        return 1
    return max(1, min(int(wanted), int(share * mem // max(frame_bytes(width, height, ssaa), 1))))
