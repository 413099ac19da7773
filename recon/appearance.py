"""Per-image exposure / white-balance compensation: a 3x4 affine colour transform per training image (regularised to the
identity), learned during training; the model itself renders the shared appearance.

A novel camera gets the appearance of the photos taken near it (`NeighbourAppearance`: an inverse-distance blend of the
training affines by camera centre), so a walk video looks like the photos where it passes them. Evaluation reports that
and the shared appearance; the usual protocol for such models (`fit_affine_color`: the held-out image's affine fitted on
one half of the image, the other half scored) is a third figure.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from realsim.assets.frames import camera_center

__all__ = ["AffineAppearance", "NeighbourAppearance", "fit_affine_color", "apply_affine"]


def apply_affine(img: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """img [H,W,3] -> A[:, :3] @ rgb + A[:, 3] per pixel; A [3,4]."""
    return img @ A[:, :3].T + A[:, 3]


class AffineAppearance(nn.Module):
    """One 3x4 colour affine per training image, stored as the offset from [I | 0]: `delta` [n,3,4], zero at start."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(max(int(n), 1), 3, 4))

    def matrix(self, i: int) -> torch.Tensor:
        """The affine of training image i: [3,4]."""
        eye = torch.eye(3, 4, dtype=self.delta.dtype, device=self.delta.device)
        return eye + self.delta[int(i) % self.delta.shape[0]]

    def forward(self, img: torch.Tensor, i: int) -> torch.Tensor:
        return apply_affine(img, self.matrix(i))

    def reg(self, i: int) -> torch.Tensor:
        """Squared distance of image i's affine from the identity (the regulariser)."""
        return (self.delta[int(i) % self.delta.shape[0]] ** 2).sum()


def fit_affine_color(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                     ridge: float = 1e-3) -> torch.Tensor:
    """Least-squares 3x4 affine A with A @ [pred, 1] ~ target over the masked pixels ([H,W] bool), ridge-regularised
    towards the identity: [3,4]."""
    p = pred.reshape(-1, 3).double()
    t = target.reshape(-1, 3).double()
    if mask is not None:
        m = mask.reshape(-1)
        p, t = p[m], t[m]
    X = torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1)  # [P,4]
    eye = torch.eye(4, 3, dtype=p.dtype)  # the identity map, transposed
    lam = ridge * max(len(p), 1)
    sol = torch.linalg.solve(X.T @ X + lam * torch.eye(4, dtype=p.dtype), X.T @ t + lam * eye)  # [4,3]
    return sol.T.float()


class NeighbourAppearance:
    """The colour affine of a camera anywhere: Shepard interpolation (weights |c - c_i|^-power) of the training photos'
    affines at their camera centres c_i; exactly photo i's own affine at c_i, continuous along any camera path."""

    def __init__(self, app: AffineAppearance, centres: np.ndarray, power: float = 4.0) -> None:
        self.delta = app.delta.detach().cpu().double()  # [n,3,4]
        self.centres = np.asarray(centres, np.float64).reshape(-1, 3)  # [n,3], the training photos in name order
        self.power = float(power)

    @classmethod
    def for_model(cls, model: nn.Module, cameras: Any, power: float = 4.0) -> NeighbourAppearance | None:
        """For a model with per-image affines and the CameraSet it trained on (training frames in name order, as the
        trainer indexes them); None without affines or when the training frames do not match their count."""
        app = getattr(model, "appearance", None)
        if not isinstance(app, AffineAppearance):
            return None
        train = sorted((f for f in cameras.frames if f.split != "test"), key=lambda f: f.name)
        if len(train) != app.delta.shape[0]:
            return None
        return cls(app, np.stack([camera_center(np.asarray(f.viewmat, np.float64)) for f in train]), power)

    def matrix(self, viewmat: Any) -> torch.Tensor:
        """[3,4] float32 affine for a world-to-camera viewmat [4,4]."""
        c = camera_center(np.asarray(viewmat.detach().cpu() if isinstance(viewmat, torch.Tensor) else viewmat, np.float64))
        d = np.linalg.norm(self.centres - c, axis=1)  # [n]
        if d.min() < 1e-9:
            w = (d == d.min()).astype(np.float64)
        else:
            w = np.exp(-self.power * (np.log(d) - np.log(d.min())))  # d^-p scaled by d_min^p: no overflow
        w = torch.from_numpy(w / w.sum())
        return (torch.eye(3, 4, dtype=torch.float64) + (w[:, None, None] * self.delta).sum(0)).float()

    def __call__(self, img: torch.Tensor, viewmat: Any) -> torch.Tensor:
        """img [H,W,3] in the shared appearance -> the camera's appearance, clamped to [0,1]."""
        return apply_affine(img, self.matrix(viewmat).to(img.device, img.dtype)).clamp(0, 1)
