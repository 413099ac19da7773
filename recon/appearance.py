"""Per-image exposure / white-balance compensation: a 3x4 affine colour transform per training image (regularised to the
identity), applied to the rendered image during training only; the model itself renders the shared appearance.

Evaluation of such models follows the usual protocol (`fit_affine_color`): the held-out image's affine is fitted on one
half of the image and the other half is scored.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["AffineAppearance", "fit_affine_color", "apply_affine"]


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
