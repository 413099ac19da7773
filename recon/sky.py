"""Sky / far background: a fixed sphere of opaque Gaussians far beyond the scene whose colours are learned, so the sky
and distant background are explained by something behind every surface instead of by floaters in front of the cameras.

It is part of the model (its colours are saved with it) and is appended to the model's splats, so every renderer (bundle,
sim, viewer, export) draws it without change.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .splats import Splats

__all__ = ["SkySphere", "fibonacci_directions", "sky_radius_for", "append_splats", "neural_part"]


def fibonacci_directions(n: int, min_z: float = -1.0) -> np.ndarray:
    """Near-uniform unit directions on the sphere (Fibonacci lattice of n points), those with z >= min_z: [m,3]."""
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    d = np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)
    return d[z >= min_z].astype(np.float32)


def sky_radius_for(points: np.ndarray, centre: np.ndarray, factor: float = 3.0) -> float:
    """A sphere radius beyond (nearly) all SfM points: factor x their 99th-percentile distance from the centre."""
    d = np.linalg.norm(np.asarray(points, np.float64) - centre[None], axis=1)
    return float(factor * max(np.percentile(d, 99.0), 1e-3))


class SkySphere(nn.Module):
    """n_total lattice directions (+Z up: those below min_z are dropped) on a sphere of `radius` around `centre`; one
    isotropic opaque Gaussian per direction, as wide as the lattice spacing, with a learned colour (sigmoid of `color`)."""

    def __init__(self, n_total: int, min_z: float = -0.3) -> None:
        super().__init__()
        dirs = torch.from_numpy(fibonacci_directions(n_total, min_z))
        self.n_total = n_total
        self.register_buffer("dirs", dirs, persistent=False)  # [S,3] recomputed from the config
        self.centre = nn.Parameter(torch.zeros(3), requires_grad=False)
        self.radius = nn.Parameter(torch.ones(1), requires_grad=False)
        self.color = nn.Parameter(torch.zeros(len(dirs), 3))  # logits; 0 -> grey 0.5

    @property
    def n(self) -> int:
        return int(self.dirs.shape[0])

    def place(self, centre: np.ndarray, radius: float) -> None:
        with torch.no_grad():
            self.centre.copy_(torch.as_tensor(centre, dtype=torch.float32))
            self.radius.fill_(float(radius))

    def splats(self) -> Splats:
        """The sky Gaussians (world frame): [S] opaque, isotropic, sigma = lattice spacing x radius."""
        S = self.n
        r = self.radius.reshape(())
        spacing = math.sqrt(4.0 * math.pi / self.n_total)  # angular spacing of the lattice (radians)
        means = self.centre[None] + r * self.dirs.to(self.centre)
        scales = (r * spacing).expand(S, 3)
        quats = torch.zeros(S, 4, dtype=means.dtype, device=means.device)
        quats[:, 0] = 1.0
        opac = torch.full((S,), 0.99, dtype=means.dtype, device=means.device)
        return Splats(means, quats, scales, opac, colors=torch.sigmoid(self.color))


def append_splats(a: Splats, b: Splats) -> Splats:
    """a followed by b (both with RGB colours)."""
    assert a.colors is not None and b.colors is not None
    return Splats(torch.cat([a.means, b.means]), torch.cat([a.quats, b.quats]), torch.cat([a.scales, b.scales]),
                  torch.cat([a.opacities, b.opacities]), colors=torch.cat([a.colors, b.colors]))


def neural_part(splats: Splats, info: dict[str, torch.Tensor]) -> Splats:
    """The model's own Gaussians of a decode (a sky model's splats, appended after them, dropped)."""
    n = int(info.get("n_neural", torch.tensor(len(splats))))
    if n == len(splats):
        return splats
    f = lambda t: None if t is None else t[:n]  # noqa: E731
    return Splats(f(splats.means), f(splats.quats), f(splats.scales), f(splats.opacities), f(splats.colors), f(splats.sh),
                  splats.sh_degree)
