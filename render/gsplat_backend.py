"""backend="gsplat": delegate rasterization to gsplat (CUDA only), returning realsim's conventions, for cross-checks."""
from __future__ import annotations

from typing import Any

import torch

from realsim.assets.errors import RealsimError


def gsplat_available() -> bool:
    """True when gsplat imports and a CUDA device is present."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except Exception:
        return False
    return True


def rasterization(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                  colors: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor, width: int, height: int,
                  near_plane: float = 0.01, far_plane: float = 1e10, eps2d: float = 0.3, sh_degree: int | None = None,
                  backgrounds: torch.Tensor | None = None, render_mode: str = "RGB", absgrad: bool = False,
                  rasterize_mode: str = "classic", tile_size: int = 16,
                  ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """gsplat.rasterization with realsim's arguments (unpacked layout); meta["radii"] is [C,N,2] int32 like realsim's.

    RealsimError when the tensors are not on CUDA or gsplat is not installed.
    """
    if not means.is_cuda:
        raise RealsimError(f"backend 'gsplat' needs CUDA tensors (means are on {means.device}); use backend='cpu'")
    try:
        import gsplat
    except Exception as e:  # ImportError, or gsplat's own CUDA build failing at import
        raise RealsimError(f"backend 'gsplat' needs the gsplat package (pip install 'realsim[gpu]'): {e}") from e
    render_colors, render_alphas, meta = gsplat.rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height), near_plane=near_plane,
        far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree, packed=False, tile_size=tile_size,
        backgrounds=backgrounds, render_mode=render_mode, absgrad=absgrad, rasterize_mode=rasterize_mode)
    meta = dict(meta)
    radii = meta.get("radii")
    if radii is not None:
        if radii.dim() == 2:  # gsplat < 1.5: one radius per Gaussian
            radii = radii[..., None].expand(*radii.shape, 2)
        meta["radii"] = radii.to(torch.int32)
    means2d = meta.get("means2d")
    if isinstance(means2d, torch.Tensor) and means2d.requires_grad:
        means2d.retain_grad()  # .grad feeds densification, as with realsim's own backends
    meta.update(width=int(width), height=int(height), tile_size=tile_size, n_cameras=viewmats.shape[0],
                backend="gsplat")
    return render_colors, render_alphas, meta
