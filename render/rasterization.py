"""`rasterization()`: realsim's gsplat-like entry point, dispatching to the torch reference, C++/OpenMP, CUDA or gsplat."""
from __future__ import annotations

import logging
from typing import Any

import torch

from realsim.assets.errors import InputError, RealsimError

from . import ref
from .sh import spherical_harmonics

log = logging.getLogger("realsim.render")

BACKENDS = ("auto", "torch", "cpu", "cuda", "gsplat")
RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
_warned_fallback = False


def _kernel_ops(backend: str):
    """The compiled op module of a kernel backend (same op names and signatures, see render/csrc/ops.h)."""
    if backend == "cpu":
        from . import _cpu
        return _cpu.load()
    from . import _cuda  # written by the CUDA side: load() -> extension module mirroring ops.h
    return _cuda.load()


def resolve_backend(backend: str, device: torch.device) -> str:
    """Concrete backend for 'auto': cuda kernels (else gsplat) for CUDA tensors, C++ on CPU, torch if nothing compiles."""
    global _warned_fallback
    if backend not in BACKENDS:
        raise InputError(f"unknown rasterization backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if device.type == "cuda":
        try:
            _kernel_ops("cuda")
            return "cuda"
        except (RealsimError, ImportError) as e:
            log.warning("realsim CUDA kernels unavailable (%s); trying gsplat", e)
            return "gsplat"
    try:
        _kernel_ops("cpu")
        return "cpu"
    except (RealsimError, ImportError) as e:
        if not _warned_fallback:
            log.warning("C++ kernels unavailable (%s); using the slow torch reference", e)
            _warned_fallback = True
        return "torch"


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, render_mode,
                  rasterize_mode, tile_size, backgrounds, near_plane, far_plane) -> None:
    N = means.shape[0] if means.dim() == 2 else -1
    if means.dim() != 2 or means.shape[1] != 3:
        raise InputError(f"means must be [N,3], got {tuple(means.shape)}")
    if quats.shape != (N, 4) or scales.shape != (N, 3) or opacities.shape != (N,):
        raise InputError(f"quats/scales/opacities must be [N,4]/[N,3]/[N] with N={N}, got {tuple(quats.shape)}/"
                         f"{tuple(scales.shape)}/{tuple(opacities.shape)}")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise InputError(f"viewmats must be [C,4,4] and Ks [C,3,3], got {tuple(viewmats.shape)} and {tuple(Ks.shape)}")
    if int(width) <= 0 or int(height) <= 0:
        raise InputError(f"image size must be positive, got {width}x{height}")
    if not 0 < near_plane < far_plane:  # depths are sorted as non-negative floats (tile keys); perspective needs z > 0
        raise InputError(f"need 0 < near_plane < far_plane, got near_plane={near_plane}, far_plane={far_plane}")
    if sh_degree is None:
        if not (colors.dim() == 2 and colors.shape[0] == N) and not (colors.dim() == 3 and colors.shape[:2] == (
                viewmats.shape[0], N)):
            raise InputError(f"colors must be [N,D] or [C,N,D] when sh_degree is None, got {tuple(colors.shape)}")
    elif colors.dim() != 3 or colors.shape[0] != N or colors.shape[2] != 3 or colors.shape[1] < (sh_degree + 1) ** 2:
        raise InputError(f"SH colors must be [N,K>={(sh_degree + 1) ** 2},3] for degree {sh_degree}, "
                         f"got {tuple(colors.shape)}")
    if render_mode not in RENDER_MODES:
        raise InputError(f"render_mode must be one of {', '.join(RENDER_MODES)}, got {render_mode!r}")
    if rasterize_mode not in ("classic", "antialiased"):
        raise InputError(f"rasterize_mode must be 'classic' or 'antialiased', got {rasterize_mode!r}")
    if tile_size not in (8, 16, 32):
        raise InputError(f"tile_size must be 8, 16 or 32, got {tile_size}")
    if backgrounds is not None and backgrounds.shape[0] != viewmats.shape[0]:
        raise InputError(f"backgrounds must be [C,D], got {tuple(backgrounds.shape)}")


def rasterization(
    means: torch.Tensor,        # [N,3] world
    quats: torch.Tensor,        # [N,4] w,x,y,z (any norm)
    scales: torch.Tensor,       # [N,3] linear
    opacities: torch.Tensor,    # [N] in [0,1]
    colors: torch.Tensor,       # [N,D] | [C,N,D] | SH [N,K,3] when sh_degree is an int
    viewmats: torch.Tensor,     # [C,4,4] world-to-camera (OpenCV)
    Ks: torch.Tensor,           # [C,3,3]
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    backgrounds: torch.Tensor | None = None,  # [C,D]
    render_mode: str = "RGB",
    absgrad: bool = False,
    rasterize_mode: str = "classic",
    backend: str = "auto",
    tile_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Render C views of N Gaussians: (render_colors [C,H,W,D(+1)], render_alphas [C,H,W,1], meta), like gsplat.

    Differentiable w.r.t. means, quats, scales, opacities, colors, viewmats (camera poses; computed only when
    viewmats.requires_grad) and backgrounds. meta["means2d"] [C,N,2] keeps its
    .grad (and .absgrad when absgrad=True) after backward for densification; meta["radii"] [C,N,2] int32 (0 = culled).
    """
    width, height = int(width), int(height)
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, render_mode,
                  rasterize_mode, tile_size, backgrounds, near_plane, far_plane)
    backend = resolve_backend(backend, means.device)
    if backend == "gsplat":
        from . import gsplat_backend  # same signature and return convention as gsplat
        return gsplat_backend.rasterization(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height, near_plane=near_plane,
            far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree, backgrounds=backgrounds, render_mode=render_mode,
            absgrad=absgrad, rasterize_mode=rasterize_mode, tile_size=tile_size)
    C = viewmats.shape[0]
    antialiased = rasterize_mode == "antialiased"
    if means.is_floating_point():  # every float input follows the dtype of means (as the kernels require)
        dt = means.dtype
        quats, scales, opacities, colors = quats.to(dt), scales.to(dt), opacities.to(dt), colors.to(dt)
        viewmats, Ks = viewmats.to(dt), Ks.to(dt)
        backgrounds = backgrounds.to(dt) if backgrounds is not None else None
    if backend != "torch":
        if means.dtype not in (torch.float32, torch.float64):
            raise InputError(f"the {backend} kernels take float32 or float64 tensors, got {means.dtype}")
        want = "cpu" if backend == "cpu" else "cuda"
        for name, t in (("means", means), ("quats", quats), ("scales", scales), ("opacities", opacities),
                        ("colors", colors), ("viewmats", viewmats), ("Ks", Ks)):
            if t.device.type != want:
                raise InputError(f"backend {backend!r} needs {want} tensors, but {name} is on {t.device}")

    if backend == "torch":
        radii, means2d, depths, conics, comp = ref.project(means, quats, scales, opacities, viewmats, Ks, width, height,
                                                           near_plane, far_plane, eps2d, antialiased)
    else:
        from . import _functions
        ops = _kernel_ops(backend)
        radii, means2d, depths, conics, comp = _functions.project(ops, means, quats, scales, opacities, viewmats, Ks,
                                                                  width, height, near_plane, far_plane, eps2d,
                                                                  antialiased)

    if sh_degree is not None:
        campos = -(viewmats[:, :3, :3].transpose(1, 2) @ viewmats[:, :3, 3:4])[..., 0]  # [C,3] camera centres
        dirs = means[None] - campos[:, None]                                              # [C,N,3]
        if backend in ("cpu", "cuda"):  # fused kernels (cpu_sh.cpp, cuda_sh.cu); render/sh.py is the reference
            colors = torch.clamp(_functions.spherical_harmonics(ops, sh_degree, dirs, colors) + 0.5, min=0)
        else:
            colors = torch.clamp(spherical_harmonics(sh_degree, dirs, colors[None].expand(C, -1, -1, -1)) + 0.5,
                                 min=0)
    elif colors.dim() == 2:
        colors = colors[None].expand(C, -1, -1)
    if render_mode in ("D", "ED"):
        colors, backgrounds = depths[..., None], None
    elif render_mode in ("RGB+D", "RGB+ED"):
        colors = torch.cat([colors, depths[..., None]], -1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, torch.zeros_like(backgrounds[:, :1])], -1)
    opac = opacities[None] * comp if antialiased else opacities[None].expand(C, -1)       # [C,N]
    if means2d.requires_grad:
        means2d.retain_grad()

    if backend == "torch":
        render_colors, render_alphas = ref.rasterize(means2d, conics, colors, opac, depths, radii, width, height,
                                                     backgrounds, absgrad=absgrad)
        isect = {}
    else:
        render_colors, render_alphas, isect = _functions.rasterize(
            ops, means2d, conics, colors, opac, depths, radii, width, height, tile_size, backgrounds, absgrad)

    if render_mode in ("ED", "RGB+ED"):
        render_colors = torch.cat([render_colors[..., :-1],
                                   render_colors[..., -1:] / render_alphas.clamp(min=1e-10)], -1)
    meta = {
        "radii": radii, "means2d": means2d, "depths": depths, "conics": conics, "opacities": opac,
        "compensations": comp if antialiased else None, "width": width, "height": height, "tile_size": tile_size,
        "n_cameras": C, "backend": backend, **isect,
    }
    return render_colors, render_alphas, meta
