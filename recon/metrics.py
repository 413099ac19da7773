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


@functools.lru_cache(maxsize=8)
def _window_1d(size: int, sigma: float, channels: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised 1-D Gaussian as depthwise conv weights along H ([C,1,size,1]) and along W ([C,1,1,size])."""
    g = torch.exp(-((torch.arange(size, dtype=torch.float64) - size // 2) ** 2) / (2 * sigma**2))
    g = (g / g.sum()).to(dtype)
    return g.view(1, 1, size, 1).expand(channels, 1, size, 1).contiguous(), g.view(1, 1, 1, size).expand(channels, 1, 1, size).contiguous()


def _blur(x: torch.Tensor, wh: torch.Tensor, ww: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of [B,C,H,W] with zero 'same' padding: the separable form of the 2-D window (2*size taps, not size^2)."""
    pad = wh.shape[2] // 2
    return F.conv2d(F.conv2d(x, wh, padding=(pad, 0), groups=x.shape[1]), ww, padding=(0, pad), groups=x.shape[1])


def ssim_map(pred: torch.Tensor, target: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of [H,W,C] (or [B,H,W,C]) images; 'same' padding with zeros like the 3DGS loss. Differentiable."""
    x = pred if pred.dim() == 4 else pred[None]
    y = target if target.dim() == 4 else target[None]
    x, y = x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2)
    C = x.shape[1]
    wh, ww = (w.to(x.device) for w in _window_1d(size, sigma, C, x.dtype))
    # five separate blurs: stacking them into one [B,5C,H,W] conv measured slower (the cat and split copies)
    mu_x, mu_y, exx, eyy, exy = (_blur(z, wh, ww) for z in (x, y, x * x, y * y, x * y))
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
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


def heldout_split(per_view: dict[str, list[float]], test_names: list[str], all_names: list[str]) -> dict[str, object]:
    """Held-out means split into interpolated views and extrapolated ones (the first / last photo by name: outside the
    walk, as bench/train.py splits them), plus the all-views mean named as such. per_view: {"psnr": [...], ...} in test order."""
    order = sorted(all_names)
    ends = {order[0], order[-1]} if order else set()
    extra = [i for i, n in enumerate(test_names) if n in ends]
    interp = [i for i in range(len(test_names)) if i not in extra]
    out: dict[str, object] = {"views_interp": [test_names[i] for i in interp], "views_extrap": [test_names[i] for i in extra]}
    for key, vals in per_view.items():
        if len(vals) != len(test_names):
            raise ValueError(f"per-view {key} has {len(vals)} values for {len(test_names)} held-out views")
        out[f"{key}_all_views"] = float(sum(vals) / len(vals)) if vals else None
        out[f"{key}_interp"] = float(sum(vals[i] for i in interp) / len(interp)) if interp else None
        out[f"{key}_extrap"] = float(sum(vals[i] for i in extra) / len(extra)) if extra else None
    return out


def laplacian_variance(img: torch.Tensor) -> float:
    """Sharpness: variance of the 4-neighbour Laplacian of the grey image ([H,W,3] in [0,1]), borders excluded."""
    g = img.float().clamp(0, 1).mean(-1)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())
