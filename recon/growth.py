"""Scaffold-GS anchor growing as published (Lu et al., CVPR 2024, Sec. 3.3), on whatever device the model lives on.

Neural Gaussians whose mean screen-space gradient over the last interval exceeds a threshold are quantised into voxels;
an empty voxel gets a new anchor at its centre. Levels m = 0, 1, 2 use voxels of growth_factor x eps / level_factor^m
(16 eps, 4 eps, eps with the published factors; eps = the anchor voxel size), thresholds tau x 2^m, and a random
elimination that keeps each candidate with probability 1 - 0.5^(m+1) (50 / 75 / 87.5 %). A new anchor's feature is the
element-wise max over its candidates' anchor features, its offsets are zero and its scales the voxel size.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["level_rules", "grow_anchors"]


def level_rules(voxel_size: float, grad_threshold: float, depth: int, growth_factor: float = 16.0,
                level_factor: float = 4.0) -> list[tuple[float, float, float]]:
    """(voxel size, gradient threshold, keep probability) of each growth level 0..depth-1."""
    return [(voxel_size * growth_factor / level_factor ** m, grad_threshold * 2.0 ** m, 1.0 - 0.5 ** (m + 1))
            for m in range(depth)]


def _uniform(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """n uniforms drawn on the CPU (the trainer's CPU generator: the same stream on every device), then moved: [n]."""
    return torch.rand(n, generator=generator).to(device)


def grow_anchors(model: nn.Module, grads: torch.Tensor, enough: torch.Tensor, rules: list[tuple[float, float, float]],
                 max_anchors: int = 0, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """New anchors' values (anchors [n,3], offsets [n,k,3], anchor_feat [n,F], scaling [n,6]) for one growth step.

    grads [M*k]: mean screen-space gradient per neural Gaussian slot; enough [M*k] bool: slots observed often enough.
    max_anchors > 0 caps the anchor count (model's plus new): excess new voxels are dropped at random.
    """
    k, F = model.config.n_offsets, model.config.feat_dim
    dev = model.anchors.device
    with torch.no_grad():
        M = model.n_anchors
        s = torch.exp(model.scaling)
        pos = (model.anchors[:, None, :] + model.offsets * s[:, None, :3]).reshape(-1, 3)  # [M*k,3] neural Gaussians
        parent = torch.arange(M, device=dev).repeat_interleave(k)  # [M*k] anchor of each slot
        existing = model.anchors.detach()
        out: dict[str, list[torch.Tensor]] = {n: [] for n in ("anchors", "offsets", "anchor_feat", "scaling")}
        for size, thr, keep in rules:
            cand = enough & (grads >= thr) & (_uniform(M * k, generator, dev) < keep)  # random elimination
            room = max(max_anchors - existing.shape[0], 0) if max_anchors > 0 else -1  # -1: no cap
            if room == 0:
                break
            if not bool(cand.any()):
                continue
            q = torch.round(pos[cand] / size).to(torch.int64)  # [C,3] voxel of each candidate
            occ = torch.round(existing / size).to(torch.int64)  # [A,3] voxels that already hold an anchor
            lo = torch.minimum(q.amin(0), occ.amin(0))
            span = torch.maximum(q.amax(0), occ.amax(0)) - lo + 1  # [3]

            def key(v: torch.Tensor) -> torch.Tensor:
                v = v - lo
                return (v[:, 0] * span[1] + v[:, 1]) * span[2] + v[:, 2]

            kq = key(q)
            fresh = ~torch.isin(kq, key(occ))
            if not bool(fresh.any()):
                continue
            ukeys, inv = torch.unique(kq[fresh], return_inverse=True)  # [n] new voxels, [C'] voxel of each candidate
            pf = parent[cand][fresh]
            n = int(ukeys.shape[0])
            if 0 < room < n:
                chosen = torch.randperm(n, generator=generator)[:room].to(dev)
                remap = torch.full((n,), -1, dtype=torch.int64, device=dev)
                remap[chosen] = torch.arange(room, device=dev)
                ukeys = ukeys[chosen]
                inv = remap[inv]
                sel = inv >= 0
                inv, pf, n = inv[sel], pf[sel], room
            v = torch.stack([ukeys // (span[1] * span[2]), (ukeys // span[2]) % span[1], ukeys % span[2]], 1) + lo
            centres = v.to(existing.dtype) * size  # [n,3]
            feat = torch.zeros(n, F, dtype=model.anchor_feat.dtype, device=dev).scatter_reduce_(
                0, inv[:, None].expand(-1, F), model.anchor_feat[pf], "amax", include_self=False)
            out["anchors"].append(centres)
            out["anchor_feat"].append(feat)
            out["scaling"].append(torch.full((n, 6), math.log(size), dtype=model.scaling.dtype, device=dev))
            out["offsets"].append(torch.zeros(n, k, 3, dtype=model.offsets.dtype, device=dev))
            existing = torch.cat([existing, centres], 0)
        return {name: torch.cat(v, 0) for name, v in out.items() if v}
