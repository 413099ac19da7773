"""Level of detail for Scaffold-GS scenes (in the spirit of Octree-GS, our own code): coarser anchors for distant content.

Level 0 is the trained anchors. Level l groups them in voxels 2^l x the anchor voxel (aligned, so each level-l cell is a
union of level l-1 cells) and stands for each group with one representative anchor (the member nearest the group's
mean) whose neural Gaussians are spread and enlarged by sqrt(group size) (capped at 2^l), so one anchor covers the
group's surface. At render time each region takes the coarsest level whose voxel projects to at most `pixel_error`
pixels, decided top-down over the cell tree so every fine anchor is drawn exactly once (by itself or by one
ancestor). The structure lives beside the model at render time only; the bundle is unchanged, and LOD off is exact.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from realsim.assets.config import ConfigDict
from realsim.assets.errors import InputError

from .merge import compact_decoders
from .scaffold import ScaffoldModel, median_nn_distance

__all__ = ["LODConfig", "LODScaffoldModel", "with_lod", "lod_levels"]

log = logging.getLogger("realsim.recon.lod")


@dataclass
class LODConfig(ConfigDict):
    """levels: 1 = off (exact), else the trained anchors plus levels-1 coarser ones; pixel_error: the largest on-screen
    size (pixels) of a coarse voxel (0 = off)."""

    levels: int = 4
    pixel_error: float = 2.0


def _groups(pos: np.ndarray, cell: float) -> tuple[np.ndarray, int]:
    """Cell index [M] of each point in a lattice of `cell` metres, and the number of cells."""
    key = np.floor(pos / cell).astype(np.int64)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    return inv, int(inv.max()) + 1 if len(inv) else 0


def lod_levels(anchors: np.ndarray, voxel: float, levels: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per coarse level l = 1..levels-1: (parent [M] cell index of each fine anchor, rep [G] fine index standing for
    each cell, size [G] members per cell)."""
    out = []
    pos = np.asarray(anchors, np.float64)
    for lv in range(1, levels):
        parent, G = _groups(pos, voxel * 2 ** lv)
        size = np.bincount(parent, minlength=G)
        mean = np.zeros((G, 3))
        np.add.at(mean, parent, pos)
        mean /= np.maximum(size, 1)[:, None]
        d = np.linalg.norm(pos - mean[parent], axis=1)
        order = np.lexsort((np.arange(len(pos)), d, parent))  # per cell: nearest to its mean first (ties: lowest index)
        first = np.ones(len(order), bool)
        first[1:] = parent[order][1:] != parent[order][:-1]
        rep = np.empty(G, np.int64)
        rep[parent[order][first]] = order[first]
        out.append((parent, rep, size))
    return out


class LODScaffoldModel(ScaffoldModel):
    """A Scaffold model whose anchor rows are [the M trained anchors; level 1 reps; level 2 reps; ...]; the frustum
    prefilter also keeps only the rows the camera's distance selects (rows >= M are never drawn with LOD off)."""

    def setup_lod(self, n_fine: int, voxel: float, parents: list[torch.Tensor], reps: list[torch.Tensor],
                  cfg: LODConfig) -> None:
        self.n_fine, self.voxel, self.lod = n_fine, float(voxel), cfg
        self.parents = parents  # per coarse level: [M] cell of each fine anchor
        self.reps = reps  # per coarse level: [G_l] fine index of each cell's representative
        starts = np.cumsum([n_fine] + [len(r) for r in reps])
        self.row_start = [int(s) for s in starts]  # first row of level l (l >= 1 at index l-1), end last

    def lod_select(self, viewmat: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """Rows drawn from this camera: [M + sum G_l] bool (exactly one row per fine anchor's region)."""
        rows = self.anchors.shape[0]
        M = self.n_fine
        sel = torch.zeros(rows, dtype=torch.bool, device=self.anchors.device)
        pe = float(self.lod.pixel_error)
        if not self.reps or pe <= 0:
            sel[:M] = True
            return sel
        R, t = viewmat[:3, :3].to(self.anchors), viewmat[:3, 3].to(self.anchors)
        cam = -R.T @ t
        f = float(max(K[0, 0], K[1, 1]))
        fine = self.anchors[:M]
        chosen = torch.zeros(M, dtype=torch.long, device=fine.device)
        for lv in range(len(self.reps), 0, -1):  # top-down: the coarsest level whose voxel is small enough on screen
            rep_pos = fine[self.reps[lv - 1]]  # [G,3]
            d = (rep_pos - cam).norm(dim=1)
            ok_cell = f * self.voxel * 2 ** lv <= pe * d  # [G]
            ok = ok_cell[self.parents[lv - 1]] & (chosen == 0)
            chosen[ok] = lv
        sel[:M] = chosen == 0
        for lv in range(1, len(self.reps) + 1):
            drawn = torch.zeros(len(self.reps[lv - 1]), dtype=torch.bool, device=fine.device)
            drawn[self.parents[lv - 1][chosen == lv]] = True
            sel[self.row_start[lv - 1]:self.row_start[lv]] = drawn
        return sel

    def visible_anchors(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                        backend: str = "auto") -> torch.Tensor:
        vis = super().visible_anchors(viewmat, K, width, height, backend)
        return vis & self.lod_select(viewmat, K)

    def n_gaussians_max(self) -> int:
        return self.n_fine * self.config.n_offsets


def with_lod(model: nn.Module, cfg: LODConfig | None = None) -> nn.Module:
    """A new model with a level-of-detail structure for rendering (and a merged scene's stacked decoders evaluated per
    block, merge.compact_decoders); a 3DGS model or levels <= 1 comes back unchanged."""
    cfg = cfg or LODConfig()
    if cfg.levels < 1 or not math.isfinite(cfg.pixel_error) or cfg.pixel_error < 0:
        raise InputError(f"level of detail needs levels >= 1 and pixel_error >= 0, got {cfg.levels}, {cfg.pixel_error}")
    if getattr(model, "kind", None) != "scaffold" or cfg.levels == 1 or model.n_anchors < 2:
        return model
    if isinstance(model, LODScaffoldModel):
        model = _base_copy(model)
    a = model.anchors.detach()
    voxel = float(model.config.voxel_size) if model.config.voxel_size > 0 else median_nn_distance(a.double().numpy())
    lv = lod_levels(a.double().numpy(), voxel, cfg.levels)
    rows = {k: [getattr(model, k).detach()] for k in ("anchors", "offsets", "anchor_feat", "scaling")}
    for i, (_, rep, size) in enumerate(lv, start=1):
        r = torch.from_numpy(rep)
        grow = torch.from_numpy(np.log(np.minimum(np.sqrt(size), 2.0 ** i))).to(a)[:, None]  # [G,1] log factor
        rows["anchors"].append(a[r])
        rows["offsets"].append(model.offsets.detach()[r])
        rows["anchor_feat"].append(model.anchor_feat.detach()[r])
        rows["scaling"].append(model.scaling.detach()[r] + grow)
    total = sum(len(x) for x in rows["anchors"])
    out = LODScaffoldModel(model.config, total)
    state = {k: v for k, v in model.state_dict().items() if k not in rows}
    state.update({k: torch.cat(v) for k, v in rows.items()})
    out.load_state_dict(state)
    out.eval()
    out.setup_lod(model.n_anchors, voxel, [torch.from_numpy(p) for p, _, _ in lv], [torch.from_numpy(r) for _, r, _ in lv], cfg)
    compact_decoders(out)  # a merged --blocks scene: each anchor runs only its own block's decoder
    log.info("level of detail: %d anchors + %s coarse (voxel %.3g m, %g px)", model.n_anchors,
             "/".join(str(len(r)) for _, r, _ in lv), voxel, cfg.pixel_error)
    return out


def _base_copy(m: LODScaffoldModel) -> ScaffoldModel:
    """The trained model under a LOD model (its first n_fine rows)."""
    base = ScaffoldModel(m.config, m.n_fine)
    state = m.state_dict()
    for k in ("anchors", "offsets", "anchor_feat", "scaling"):
        state[k] = state[k][:m.n_fine]
    base.load_state_dict(state)
    return base.eval()
