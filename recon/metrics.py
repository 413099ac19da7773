"""Image quality metrics: PSNR, SSIM (Gaussian window 11, sigma 1.5, as in Wang et al. 2004 and the 3DGS evaluation).

LPIPS is computed only when the `lpips` package and its weights are already on disk (nothing is downloaded).
"""
from __future__ import annotations

import functools
import logging
import math

import torch
import torch.nn.functional as F

log = logging.getLogger("realsim.recon.metrics")


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio (dB) for images in [0,1] (both clamped to it)."""
    mse = F.mse_loss(pred.float().clamp(0, 1), target.float().clamp(0, 1)).item()
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


@functools.lru_cache(maxsize=4)
def _window(size: int, sigma: float, channels: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    w = (g[:, None] @ g[None, :]).to(dtype)
    return w.expand(channels, 1, size, size).contiguous()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of [H,W,C] (or [B,H,W,C]) images; 'same' padding with zeros like the 3DGS loss. Differentiable."""
    x = pred if pred.dim() == 4 else pred[None]
    y = target if target.dim() == 4 else target[None]
    x, y = x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)
    C = x.shape[1]
    w = _window(size, sigma, C, x.dtype).to(x.device)
    pad = size // 2
    mu_x = F.conv2d(x, w, padding=pad, groups=C)
    mu_y = F.conv2d(y, w, padding=pad, groups=C)
    # one conv for the three second moments
    sxx = F.conv2d(x * x, w, padding=pad, groups=C) - mu_x**2
    syy = F.conv2d(y * y, w, padding=pad, groups=C) - mu_y**2
    sxy = F.conv2d(x * y, w, padding=pad, groups=C) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (tensor, differentiable)."""
    return ssim_map(pred, target).mean()


_LPIPS: object | None = None


def lpips_fn():
    """An LPIPS(vgg) callable if the package and its weights are present locally, else None (never downloads)."""
    global _LPIPS
    if _LPIPS is not None:
        return _LPIPS or None
    _LPIPS = False
    try:
        import importlib.util
        import os

        spec = importlib.util.find_spec("lpips")
        if spec is None or spec.origin is None:
            return None
        wpath = os.path.join(os.path.dirname(spec.origin), "weights", "v0.1", "vgg.pth")
        hub = torch.hub.get_dir()
        backbone = [f for f in (os.listdir(os.path.join(hub, "checkpoints")) if os.path.isdir(os.path.join(hub, "checkpoints")) else [])
                    if f.startswith("vgg16")]
        if not os.path.isfile(wpath) or not backbone:
            return None
        import lpips  # type: ignore

        net = lpips.LPIPS(net="vgg", verbose=False).eval()

        def f(pred: torch.Tensor, target: torch.Tensor) -> float:
            with torch.no_grad():
                a = pred.permute(2, 0, 1)[None] * 2 - 1
                b = target.permute(2, 0, 1)[None] * 2 - 1
                return float(net.to(a.device)(a, b).item())  # the images' device (a GPU-trained model's)

        _LPIPS = f
    except Exception as e:  # a broken optional install must not break evaluation
        log.warning("LPIPS unavailable: %s", e)
        _LPIPS = False
    return _LPIPS or None


def laplacian_variance(img: torch.Tensor) -> float:
    """Sharpness: variance of the 4-neighbour Laplacian of the grey image ([H,W,3] in [0,1]), borders excluded."""
    g = img.float().clamp(0, 1).mean(-1)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())
