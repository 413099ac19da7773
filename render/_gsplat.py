"""Name under which render/rasterization.py imports the gsplat delegate (implementation: gsplat_backend.py)."""
from .gsplat_backend import gsplat_available, rasterization

__all__ = ["gsplat_available", "rasterization"]
