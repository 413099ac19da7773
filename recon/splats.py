"""`Splats`: the explicit Gaussians a model produces for one view, and the one place that calls the rasterizer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Splats:
    """Gaussians ready for rasterization: view-evaluated RGB in `colors`, or SH coefficients in `sh` with `sh_degree`."""

    means: torch.Tensor  # [N,3] world
    quats: torch.Tensor  # [N,4] w,x,y,z (normalised)
    scales: torch.Tensor  # [N,3] linear
    opacities: torch.Tensor  # [N] in [0,1]
    colors: torch.Tensor | None = None  # [N,3] RGB in [0,1]
    sh: torch.Tensor | None = None  # [N,K,3]
    sh_degree: int | None = None

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def detach(self) -> "Splats":
        f = lambda t: None if t is None else t.detach()  # noqa: E731
        return Splats(f(self.means), f(self.quats), f(self.scales), f(self.opacities), f(self.colors), f(self.sh), self.sh_degree)


def rasterize_splats(splats: Splats, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, *,
                     backend: str = "auto", background: torch.Tensor | tuple[float, float, float] | None = None,
                     render_mode: str = "RGB", absgrad: bool = False, **kw: Any) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Rasterize one view: returns (colors [H,W,3(+1)], alphas [H,W,1], meta) via realsim.render.rasterization."""
    from realsim.render import rasterization

    dev, dt = splats.means.device, splats.means.dtype
    bg = None
    if background is not None:
        bg = torch.as_tensor(background, dtype=dt, device=dev).reshape(1, -1)
        if render_mode in ("D", "ED"):
            bg = None  # the depth channel of RGB+D / RGB+ED gets a zero background inside rasterization
    if splats.sh is not None:
        colors, deg = splats.sh, splats.sh_degree
    else:
        colors, deg = splats.colors, None
    out, alpha, meta = rasterization(
        splats.means, splats.quats, splats.scales, splats.opacities, colors,
        viewmat[None].to(dev, dt), K[None].to(dev, dt), int(width), int(height),
        sh_degree=deg, backgrounds=bg, render_mode=render_mode, absgrad=absgrad, backend=backend, **kw,
    )
    return out[0], alpha[0], meta
