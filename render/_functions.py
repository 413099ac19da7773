"""autograd.Functions over a compiled op module (CPU or CUDA extension with the ops of render/csrc/ops.h), gsplat's way."""
from __future__ import annotations

import logging
from typing import Any

import torch

from realsim.assets.errors import RealsimError

log = logging.getLogger("realsim.render")
_TILE_FIT: dict[tuple[Any, bool, int], int] = {}  # (device, float64, channels) -> largest tile the CUDA kernels run


class _Project(torch.autograd.Function):
    """project_fwd / project_bwd: 3D Gaussians -> radii, means2d, depths, conics, compensations.

    Differentiable w.r.t. means, quats, scales and viewmats (the last only computed when viewmats.requires_grad)."""

    @staticmethod
    def forward(ctx, means, quats, scales, opacities, viewmats, Ks, ops, width, height, eps2d, near, far, antialiased):
        radii, means2d, depths, conics, comp = ops.project_fwd(means, quats, scales, opacities, viewmats, Ks, width,
                                                               height, eps2d, near, far, antialiased)
        ctx.save_for_backward(means, quats, scales, viewmats, Ks, radii, conics, comp)
        ctx.ops, ctx.size, ctx.eps2d, ctx.antialiased = ops, (width, height), eps2d, antialiased
        ctx.mark_non_differentiable(radii)
        return radii, means2d, depths, conics, comp

    @staticmethod
    def backward(ctx, v_radii, v_means2d, v_depths, v_conics, v_comp):
        means, quats, scales, viewmats, Ks, radii, conics, comp = ctx.saved_tensors
        v_means, v_quats, v_scales, v_viewmats = ctx.ops.project_bwd(
            means, quats, scales, viewmats, Ks, ctx.size[0], ctx.size[1], ctx.eps2d, ctx.antialiased, radii, conics,
            comp, v_means2d.contiguous(), v_depths.contiguous(), v_conics.contiguous(), v_comp.contiguous(),
            ctx.needs_input_grad[4])  # d loss / d viewmats [C,4,4] only when the caller refines poses
        return v_means, v_quats, v_scales, None, v_viewmats, *([None] * 8)


class _Rasterize(torch.autograd.Function):
    """rasterize_fwd / rasterize_bwd over tiles sorted by isect_tiles."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, backgrounds, ops, radii, width, height, tile_size,
                isect_offsets, flatten_ids, absgrad):
        rc, ra, last_ids = ops.rasterize_fwd(means2d, conics, colors, opacities, backgrounds, radii, width, height,
                                             tile_size, isect_offsets, flatten_ids)
        ctx.save_for_backward(means2d, conics, colors, opacities, radii, isect_offsets, flatten_ids, ra, last_ids)
        ctx.backgrounds = backgrounds
        ctx.ops, ctx.size, ctx.tile_size, ctx.absgrad = ops, (width, height), tile_size, absgrad
        ctx.means2d = means2d  # the caller's tensor: absgrad is attached to it, as gsplat does
        return rc, ra

    @staticmethod
    def backward(ctx, v_rc, v_ra):
        means2d, conics, colors, opacities, radii, offsets, flat, ra, last_ids = ctx.saved_tensors
        bg = ctx.backgrounds
        v_m, v_con, v_col, v_op, v_abs = ctx.ops.rasterize_bwd(
            means2d, conics, colors, opacities, bg, radii, ctx.size[0], ctx.size[1], ctx.tile_size, offsets, flat,
            ra, last_ids, v_rc.contiguous(), v_ra.contiguous(), ctx.absgrad)
        if ctx.absgrad:
            prev = getattr(ctx.means2d, "absgrad", None)
            ctx.means2d.absgrad = v_abs if prev is None or prev.shape != v_abs.shape else prev + v_abs
        v_bg = None
        if bg is not None and ctx.needs_input_grad[4]:
            v_bg = (v_rc * (1 - ra)).sum((1, 2))
        return v_m, v_con, v_col, v_op, v_bg, *([None] * 8)


class _SphericalHarmonics(torch.autograd.Function):
    """sh_fwd / sh_bwd: SH coefficients [N,K,3] toward view directions [C,N,3] -> colours [C,N,3]."""

    @staticmethod
    def forward(ctx, degree, dirs, coeffs, ops):
        ctx.save_for_backward(dirs, coeffs)
        ctx.degree, ctx.ops = degree, ops
        return ops.sh_fwd(degree, dirs, coeffs)

    @staticmethod
    def backward(ctx, v_colors):
        dirs, coeffs = ctx.saved_tensors
        v_coeffs, v_dirs = ctx.ops.sh_bwd(ctx.degree, dirs, coeffs, v_colors.contiguous())
        return None, v_dirs, v_coeffs, None


def spherical_harmonics(ops, degree: int, dirs: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Fused SH colours [C,N,3] of coeffs [N,K,3] toward dirs [C,N,3]; same values as render/sh.py."""
    return _SphericalHarmonics.apply(degree, dirs.contiguous(), coeffs.to(dirs.dtype).contiguous(), ops)


def project(ops, means, quats, scales, opacities, viewmats, Ks, width: int, height: int, near_plane: float,
            far_plane: float, eps2d: float, antialiased: bool):
    """Differentiable projection through compiled ops; same outputs as ref.project."""
    dt = means.dtype
    return _Project.apply(means.contiguous(), quats.to(dt).contiguous(), scales.to(dt).contiguous(),
                          opacities.to(dt).contiguous(),
                          viewmats.to(dt).contiguous(), Ks.to(dt).contiguous(), ops, width, height, float(eps2d),
                          float(near_plane), float(far_plane), antialiased)


def fitting_tile_size(ops, tile_size: int, means2d: torch.Tensor, channels: int) -> int:
    """tile_size, or the largest smaller one whose blocks the CUDA rasterizer can launch on this GPU for this dtype and
    channel count (a 32x32 tile needs 1024 threads, more than some builds' register budget allows)."""
    if not hasattr(ops, "max_tile_size"):  # the CPU kernels take any tile size up to 32
        return tile_size
    key = (means2d.device, means2d.dtype == torch.float64, int(channels))
    if key not in _TILE_FIT:
        _TILE_FIT[key] = int(ops.max_tile_size(key[1], key[2]))
        if 0 < _TILE_FIT[key] < tile_size:
            log.warning("tile_size %d does not fit the CUDA rasterizer for %s with %d channels on this GPU; using %d",
                        tile_size, means2d.dtype, channels, _TILE_FIT[key])
    fit = _TILE_FIT[key]
    if fit == 0:
        raise RealsimError(f"the CUDA rasterizer cannot launch on this GPU for {means2d.dtype} with {channels} channels "
                           "(registers or shared memory); use fewer channels, float32 or backend='gsplat'")
    return min(tile_size, fit)


def rasterize(ops, means2d, conics, colors, opacities, depths, radii, width: int, height: int, tile_size: int,
              backgrounds, absgrad: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Tile intersection + differentiable blending; returns (render_colors, render_alphas, isect info for meta)."""
    tile_size = fitting_tile_size(ops, tile_size, means2d, colors.shape[-1])
    tiles_w, tiles_h = -(-width // tile_size), -(-height // tile_size)
    with torch.no_grad():
        tiles_per_gauss, isect_ids, flatten_ids, isect_offsets = ops.isect_tiles(
            means2d.detach().contiguous(), radii.contiguous(), depths.detach().contiguous(), tile_size, tiles_w,
            tiles_h)
    if backgrounds is not None:
        backgrounds = backgrounds.to(colors.dtype).contiguous()
    colors, opacities = colors.to(means2d.dtype), opacities.to(means2d.dtype)
    rc, ra = _Rasterize.apply(means2d, conics.contiguous(), colors.contiguous(), opacities.contiguous(), backgrounds,
                              ops, radii, width, height, tile_size, isect_offsets, flatten_ids, absgrad)
    info = {"tiles_per_gauss": tiles_per_gauss, "isect_ids": isect_ids, "flatten_ids": flatten_ids,
            "isect_offsets": isect_offsets, "tile_width": tiles_w, "tile_height": tiles_h, "tile_size": tile_size}
    return rc, ra, info
