"""Scaffold-GS (Lu et al., CVPR 2024), written from the paper: anchors on a voxel grid of SfM points, each decoding
k neural Gaussians (offsets, opacity, covariance, colour) with small MLPs from its feature and the viewing direction.

Only anchors whose neighbourhood sphere meets the view frustum decode Gaussians; neural Gaussians with non-positive
opacity are dropped before rasterization.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realsim.assets.config import ConfigDict

from realsim.render.prefilter import anchor_prefilter

from .appearance import AffineAppearance
from .sky import SkySphere, append_splats, sky_radius_for
from .splats import Splats


@dataclass
class ScaffoldConfig(ConfigDict):
    """Model shape. voxel_size <= 0 picks the median nearest-neighbour distance of the SfM points."""

    voxel_size: float = 0.0
    n_offsets: int = 10  # k neural Gaussians per anchor
    feat_dim: int = 32
    hidden_dim: int = 32
    use_dist: bool = False  # feed the camera distance to the MLPs
    appearance_dim: int = 0  # per-training-image appearance embedding (0 = off)
    n_appearance: int = 0  # number of training images the embedding covers
    feature_bank: bool = False  # multi-resolution feature bank (view-dependent blend of 3 feature resolutions)
    affine_appearance: bool = False  # per-training-image 3x4 colour affine (exposure / white balance); other cameras blend them
    sky_gaussians: int = 0  # sky sphere lattice size (0 = off); see sky.py
    sky_min_z: float = -0.3  # lattice directions below this z (+Z up) are dropped (the ground hides them)
    sky_radius_factor: float = 3.0  # sphere radius: this x the 99th-percentile SfM point distance from their median


def _mlp(inp: int, hidden: int, out: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(True), nn.Linear(hidden, out), act)


def median_nn_distance(xyz: np.ndarray) -> float:
    from scipy.spatial import cKDTree

    d, _ = cKDTree(xyz).query(xyz, k=2)
    return float(np.median(d[:, 1]))


def voxelize(xyz: np.ndarray, voxel: float) -> np.ndarray:
    """Centres of the occupied voxels: [M,3]."""
    q = np.unique(np.round(xyz / voxel).astype(np.int64), axis=0)
    return (q * voxel).astype(np.float32)


def knn_mean_dist(xyz: np.ndarray, k: int = 3) -> np.ndarray:
    """Root-mean-square distance to the k nearest other points: [M]."""
    from scipy.spatial import cKDTree

    k = min(k, len(xyz) - 1)
    d, _ = cKDTree(xyz).query(xyz, k=k + 1)
    return np.sqrt((d[:, 1:] ** 2).mean(1)).astype(np.float32)


class ScaffoldModel(nn.Module):
    """Anchors [M,3] with offsets [M,k,3], features [M,F], scaling [M,6] (log); MLP decoders shared by all anchors."""

    kind = "scaffold"

    def __init__(self, config: ScaffoldConfig, n_anchors: int = 0) -> None:
        super().__init__()
        c = self.config = config
        M, k = n_anchors, c.n_offsets
        self.anchors = nn.Parameter(torch.zeros(M, 3), requires_grad=False)  # fixed positions (never optimised)
        self.offsets = nn.Parameter(torch.zeros(M, k, 3))
        self.anchor_feat = nn.Parameter(torch.zeros(M, c.feat_dim))
        self.scaling = nn.Parameter(torch.zeros(M, 6))  # log; [:3] scales offsets, [3:] base Gaussian scale
        inp = c.feat_dim + 3 + (1 if c.use_dist else 0)
        self.mlp_opacity = _mlp(inp, c.hidden_dim, k, nn.Tanh())
        self.mlp_cov = _mlp(inp, c.hidden_dim, 7 * k, nn.Identity())
        self.mlp_color = _mlp(inp + c.appearance_dim, c.hidden_dim, 3 * k, nn.Sigmoid())
        self.embedding = nn.Embedding(max(c.n_appearance, 1), c.appearance_dim) if c.appearance_dim > 0 else None
        self.mlp_bank = (nn.Sequential(nn.Linear(3 + 1, c.feat_dim), nn.ReLU(True), nn.Linear(c.feat_dim, 3), nn.Softmax(dim=1))
                         if c.feature_bank else None)
        self.appearance = AffineAppearance(c.n_appearance) if c.affine_appearance else None
        self.sky = SkySphere(c.sky_gaussians, c.sky_min_z) if c.sky_gaussians > 0 else None

    # ------------------------------------------------------------ construction
    @classmethod
    def from_points(cls, xyz: np.ndarray, config: ScaffoldConfig, seed: int = 0) -> "ScaffoldModel":
        """Anchors from voxelised SfM points; scaling from neighbour distances, offsets and features zero."""
        xyz = np.asarray(xyz, np.float64)
        if config.voxel_size <= 0:
            config.voxel_size = median_nn_distance(xyz)
        anchors = voxelize(xyz, config.voxel_size)
        torch.manual_seed(seed)
        m = cls(config, len(anchors))
        with torch.no_grad():
            m.anchors.copy_(torch.from_numpy(anchors))
            d = np.maximum(knn_mean_dist(anchors), 1e-7)
            m.scaling.copy_(torch.from_numpy(np.log(d))[:, None].repeat(1, 6))
        if m.sky is not None:
            centre = np.median(xyz, 0)
            m.sky.place(centre, sky_radius_for(xyz, centre, config.sky_radius_factor))
        return m

    @classmethod
    def empty_like_state(cls, config: ScaffoldConfig, tensors: dict[str, torch.Tensor]) -> "ScaffoldModel":
        return cls(config, int(tensors["anchors"].shape[0]))

    # ------------------------------------------------------------ optimisation interface
    def dynamic_params(self) -> dict[str, nn.Parameter]:
        """Per-anchor tensors whose first dim changes with growing/pruning."""
        return {"offsets": self.offsets, "anchor_feat": self.anchor_feat, "scaling": self.scaling}

    def static_groups(self) -> dict[str, list[nn.Parameter]]:
        g = {"mlp_opacity": list(self.mlp_opacity.parameters()), "mlp_cov": list(self.mlp_cov.parameters()),
             "mlp_color": list(self.mlp_color.parameters())}
        if self.embedding is not None:
            g["embedding"] = list(self.embedding.parameters())
        if self.mlp_bank is not None:
            g["mlp_bank"] = list(self.mlp_bank.parameters())
        if self.appearance is not None:
            g["appearance"] = [self.appearance.delta]
        if self.sky is not None:
            g["sky"] = [self.sky.color]
        return g

    @property
    def n_anchors(self) -> int:
        return int(self.anchors.shape[0])

    def anchor_radii(self) -> torch.Tensor:
        """World radius around each anchor that holds its neural Gaussians (3 sigma of the largest): [M]."""
        s = torch.exp(self.scaling)
        off = (self.offsets * s[:, None, :3]).norm(dim=-1).amax(1)
        return off + 3.0 * s[:, 3:].amax(1)

    def visible_anchors(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                        backend: str = "auto") -> torch.Tensor:
        """Frustum prefilter over anchors: [M] bool."""
        with torch.no_grad():
            return anchor_prefilter(self.anchors, self.anchor_radii(), viewmat, K, int(width), int(height), backend=backend)

    # ------------------------------------------------------------ decoding
    def decode(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, cam_index: int | None = None,
               backend: str = "auto") -> tuple[Splats, dict[str, torch.Tensor]]:
        """Neural Gaussians of the visible anchors for one view. info: anchor_mask [M], slot [N] (index into M*k), raw scales."""
        c, k = self.config, self.config.n_offsets
        viewmat = viewmat.to(self.anchors)
        vis = self.visible_anchors(viewmat, K.to(self.anchors), width, height, backend)
        idx = vis.nonzero().squeeze(1)
        R, t = viewmat[:3, :3], viewmat[:3, 3]
        cam = -R.T @ t  # camera centre [3]
        # index_select, not [idx]: on CPU its backward (index_add) is ~2x faster than advanced indexing's (index_put)
        a = self.anchors.index_select(0, idx)
        feat = self.anchor_feat.index_select(0, idx)
        s = torch.exp(self.scaling.index_select(0, idx))  # [m,6]
        d = a - cam
        dist = d.norm(dim=1, keepdim=True).clamp_min(1e-8)
        dirs = d / dist
        if self.mlp_bank is not None:
            w = self.mlp_bank(torch.cat([dirs, dist], 1))  # [m,3]
            Fd = feat.shape[1]
            f1 = feat[:, ::2].repeat(1, 2)[:, :Fd]
            f2 = feat[:, ::4].repeat(1, 4)[:, :Fd]
            feat = feat * w[:, :1] + f1 * w[:, 1:2] + f2 * w[:, 2:]
        x = torch.cat([feat, dirs, dist], 1) if c.use_dist else torch.cat([feat, dirs], 1)
        m = a.shape[0]
        opac = self.mlp_opacity(x).reshape(m * k)
        xc = x
        if self.embedding is not None:
            ci = 0 if cam_index is None else int(cam_index) % self.embedding.num_embeddings
            emb = self.embedding.weight[ci][None].expand(m, -1)
            xc = torch.cat([x, emb], 1)
        col = self.mlp_color(xc).reshape(m * k, 3)
        cov = self.mlp_cov(x).reshape(m * k, 7)
        keep = opac > 0.0
        sel = keep.nonzero().squeeze(1)
        ai = sel // k  # the visible anchor [N] of each kept slot
        s_rep = s.index_select(0, ai)  # [N,6]
        a_rep = a.index_select(0, ai)  # [N,3]
        off = self.offsets.index_select(0, idx).reshape(m * k, 3).index_select(0, sel) * s_rep[:, :3]
        cov = cov.index_select(0, sel)
        scales = s_rep[:, 3:] * torch.sigmoid(cov[:, :3])
        quats = F.normalize(cov[:, 3:7], dim=1)
        splats = Splats(a_rep + off, quats, scales, opac.index_select(0, sel), colors=col.index_select(0, sel))
        slot = (idx[:, None] * k + torch.arange(k, device=idx.device)).reshape(-1)[sel]
        info = {"anchor_mask": vis, "anchor_idx": idx, "slot": slot, "opacity_all": opac.detach(), "scales": scales,
                "n_neural": torch.tensor(len(splats))}
        if self.sky is not None:  # behind everything; the strategy reads the first n_neural splats only
            splats = append_splats(splats, self.sky.splats())
        return splats, info

    def splats(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, cam_index: int | None = None,
               backend: str = "auto") -> Splats:
        return self.decode(torch.as_tensor(viewmat), torch.as_tensor(K), width, height, cam_index, backend)[0]

    def n_gaussians_max(self) -> int:
        return self.n_anchors * self.config.n_offsets

    def volume_loss(self, info: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean product of the neural Gaussians' scales (the paper's volume regulariser)."""
        s = info["scales"]
        return s.prod(dim=1).mean() if s.numel() else s.sum()


def lr_schedule_scaffold(extent: float) -> dict[str, tuple[float, float]]:
    """Published initial/final learning rates (exponential decay over the run); offsets scale with the scene extent."""
    return {
        "offsets": (0.01 * extent, 0.0001 * extent),
        "anchor_feat": (0.0075, 0.0075),
        "scaling": (0.007, 0.007),
        "mlp_opacity": (0.002, 0.00002),
        "mlp_cov": (0.004, 0.004),
        "mlp_color": (0.008, 0.00005),
        "embedding": (0.05, 0.0005),
        "mlp_bank": (0.01, 0.00001),
        "appearance": (0.005, 0.0005),
        "sky": (0.05, 0.005),
    }


def exp_lr(lr0: float, lr1: float, step: int, max_steps: int) -> float:
    """Log-linear interpolation from lr0 to lr1 over max_steps."""
    if lr0 <= 0 or lr1 <= 0:
        return lr0
    t = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return math.exp(math.log(lr0) * (1 - t) + math.log(lr1) * t)
