"""Where training runs: `--device auto|cpu|cuda` resolved to a torch device and a rasterizer backend that runs there, and
the training views moved to it (8-bit photos kept as uint8: a quarter of the float32 memory, converted per step)."""
from __future__ import annotations

from typing import Any

import torch

from realsim.assets.errors import InputError
from realsim.render.rasterization import resolve_backend

from .dataset import View

__all__ = ["DEVICES", "resolve_device", "train_backend", "view_to", "image_float", "checkpoint_to"]

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str | torch.device = "auto", backend: str = "auto") -> torch.device:
    """The torch device to train on: `auto` is cuda when torch sees a GPU (unless the backend runs on the CPU only);
    an explicit `cuda` without a GPU is an InputError (one line)."""
    if isinstance(device, torch.device):
        name = device.type
    else:
        name = str(device).split(":")[0]
        if name not in DEVICES:
            raise InputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if backend != "cpu" and torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device cuda: no CUDA GPU is available here (torch {torch.__version__} sees none); "
                         "use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise InputError(f"training runs on cpu or cuda, not {name!r}")
    return device if isinstance(device, torch.device) else torch.device(str(device) if ":" in str(device) else name)


def train_backend(backend: str, device: torch.device) -> str:
    """The concrete rasterizer backend for training on `device`: auto picks realsim's CUDA kernels (gsplat if they do
    not load) on a GPU and the C++ kernels on the CPU; a backend that cannot run on `device` is an InputError."""
    if device.type == "cuda" and backend == "cpu":
        raise InputError("--backend cpu runs on the CPU: pass --device cpu, or --backend cuda / gsplat on the GPU")
    if device.type == "cpu" and backend in ("cuda", "gsplat"):
        hint = "" if torch.cuda.is_available() else " (no CUDA GPU is available here)"
        raise InputError(f"--backend {backend} needs a CUDA device{hint}: pass --device cuda, or --backend cpu")
    return resolve_backend(backend, device)


def _exact_u8(img: torch.Tensor) -> torch.Tensor | None:
    """img [H,W,3] float in [0,1] as uint8 when every value is k/255 exactly (8-bit photos), else None."""
    if img.dtype == torch.uint8:
        return img
    q = (img * 255.0).round().clamp(0, 255).to(torch.uint8)
    return q if torch.equal(q.to(img.dtype) / 255.0, img) else None


def view_to(view: View, device: torch.device, compact: bool = True) -> View:
    """A copy of `view` on `device` (image uint8 when compact and that is exact, else float32)."""
    img = _exact_u8(view.image) if compact else None
    img = view.image.float() if img is None else img
    return View(view.name, img.to(device), view.viewmat.to(device), view.K.to(device), view.width, view.height)


def image_float(img: torch.Tensor) -> torch.Tensor:
    """An image tensor as float32 in [0,1] (uint8 divided by 255, exactly as the photo loader does): [H,W,3]."""
    return img.float() / 255.0 if img.dtype == torch.uint8 else img


def checkpoint_to(ck: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A loaded checkpoint with its tensors on `device` (the RNG states stay on the CPU, where torch keeps them)."""
    ts = {k: (v if k.startswith("rng.") else v.to(device)) for k, v in ck["tensors"].items()}
    return {**ck, "tensors": ts}
