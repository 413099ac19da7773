"""Floater control: how many training cameras see each point, and dropping initial anchors / Gaussians that too few
cameras see (on sparse captures they cannot be constrained and end up as blobs in front of other views)."""
from __future__ import annotations

import torch
from torch import nn

from .dataset import View

__all__ = ["views_seeing", "drop_unseen"]


def views_seeing(points: torch.Tensor, views: list[View], near: float = 0.05) -> torch.Tensor:
    """Number of views whose frustum (in front of the camera, projecting inside the image) holds each point: [N] int."""
    cnt = torch.zeros(points.shape[0], dtype=torch.int64)
    p = points.detach().float()
    for v in views:
        cam = p @ v.viewmat[:3, :3].T + v.viewmat[:3, 3]  # [N,3]
        z = cam[:, 2]
        uv = cam @ v.K.T
        u, w = uv[:, 0] / z.clamp_min(1e-9), uv[:, 1] / z.clamp_min(1e-9)
        cnt += ((z > near) & (u >= 0) & (u < v.width) & (w >= 0) & (w < v.height)).long()
    return cnt


def drop_unseen(model: nn.Module, views: list[View], min_views: int) -> int:
    """Before training: remove the model's elements (anchors / Gaussians) seen by fewer than min_views views; returns
    how many were removed (none if that would remove all)."""
    if min_views <= 0:
        return 0
    pts = model.anchors if model.kind == "scaffold" else model.means
    keep = views_seeing(pts, views) >= min_views
    n_drop = int((~keep).sum())
    if n_drop == 0 or not keep.any():
        return 0
    names = list(model.dynamic_params().keys()) + (["anchors"] if model.kind == "scaffold" else [])
    with torch.no_grad():
        for name in names:
            old = getattr(model, name)
            setattr(model, name, nn.Parameter(old.data[keep].clone(), requires_grad=old.requires_grad))
    return n_drop
