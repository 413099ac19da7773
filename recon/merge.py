"""Merge block models into one scene model: each block cropped to its core (cores tile the ground plane, so no anchor is
kept twice), anchors concatenated, and the blocks' decoders stacked into one exact decoder of the standard Scaffold-GS
shape, so every command reads the merged bundle unchanged.

Stacked decoders: block b's MLP Linear(F+3, h) -> ReLU -> Linear(h, o) becomes rows b*h..(b+1)*h of one
Linear(F+B+3, B*h+B) -> ReLU -> Linear(B*h+B, o). Each anchor's feature carries a one-hot block code (B extra
channels); a hidden unit of block c gets weight -L on every other block's code, with L above any pre-activation those
features reach, so only the anchor's own block is active (ReLU gives exact zeros). B more hidden units copy the code
and carry each block's output bias. Cost: the MLPs grow B-fold (fine for a few blocks; see the README).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realsim.assets.errors import InputError

from .bundle import build_model, model_tensors
from .partition import Block, Partition

__all__ = ["crop_to_core", "merge_models", "anchor_positions_unique", "block_codes", "MERGE_MLPS", "stacked_blocks",
           "compact_decoders", "BlockMLP"]

log = logging.getLogger("realsim.recon.merge")

MERGE_MLPS = ("mlp_opacity", "mlp_cov", "mlp_color")
ANCHOR_KEYS = ("anchors", "offsets", "anchor_feat", "scaling")
GS_KEYS = ("means", "scales", "quats", "opacities", "sh0", "shN")


def crop_to_core(model: nn.Module, part: Partition, block: Block) -> tuple[dict[str, torch.Tensor], int, int]:
    """The model's tensors with only the anchors (Scaffold) / Gaussians (3DGS) whose ground position lies in the block's
    core; returns (tensors, kept, before)."""
    t = model_tensors(model)
    key, per = ("anchors", ANCHOR_KEYS) if model.kind == "scaffold" else ("means", GS_KEYS)
    pos = t[key].double().numpy()
    keep = torch.from_numpy(part.core_of(pos) == block.id)
    for k in per:
        t[k] = t[k][keep]
    return t, int(keep.sum()), len(pos)


def merge_models(kind: str, configs: list[dict[str, Any]], parts: list[dict[str, torch.Tensor]]) -> nn.Module:
    """One model from cropped block tensors (all of the same kind and shape config)."""
    if not parts:
        raise InputError("no blocks to merge")
    if kind == "3dgs":
        t = {k: torch.cat([p[k] for p in parts]) for k in GS_KEYS}
        return build_model("3dgs", configs[0], t, "merged blocks")
    if kind != "scaffold":
        raise InputError(f"cannot merge {kind!r} block models")
    return _merge_scaffold(configs, parts)


def _check_same(configs: list[dict[str, Any]]) -> dict[str, Any]:
    c0 = dict(configs[0])
    for key in ("n_offsets", "feat_dim", "hidden_dim", "use_dist", "sky_gaussians", "sky_min_z"):
        vals = {repr(c.get(key)) for c in configs}
        if len(vals) > 1:
            raise InputError(f"blocks differ in scaffold.{key} ({', '.join(sorted(vals))}): cannot merge them")
    if c0.get("appearance_dim", 0) > 0 or c0.get("feature_bank"):
        raise InputError("block merging needs scaffold.appearance_dim 0 and feature_bank off (their decoders are "
                         "per-image or mix feature channels)")
    if c0.get("use_dist"):
        raise InputError("block merging needs scaffold.use_dist off (the camera distance has no bound for the gate)")
    return c0


def _merge_scaffold(configs: list[dict[str, Any]], parts: list[dict[str, torch.Tensor]]) -> nn.Module:
    c0 = _check_same(configs)
    B, F, h = len(parts), int(c0["feat_dim"]), int(c0["hidden_dim"])
    known = set(ANCHOR_KEYS) | {f"{m}.{i}.{w}" for m in MERGE_MLPS for i in (0, 2) for w in ("weight", "bias")}
    for p in parts:
        extra = [k for k in p if k not in known and not k.startswith(("sky.", "appearance."))]
        if extra:
            raise InputError(f"cannot merge scaffold tensors {extra[:3]} (unknown to the block merge)")
    code = [torch.nn.functional.one_hot(torch.full((len(p["anchors"]),), b), B).float() for b, p in enumerate(parts)]
    feats = torch.cat([torch.cat([p["anchor_feat"], c], 1) for p, c in zip(parts, code)])  # [M, F+B]
    out: dict[str, torch.Tensor] = {"anchors": torch.cat([p["anchors"] for p in parts]),
                                    "offsets": torch.cat([p["offsets"] for p in parts]),
                                    "scaling": torch.cat([p["scaling"] for p in parts]), "anchor_feat": feats}
    for m in MERGE_MLPS:
        out.update(_stack_mlp(m, [(p[f"{m}.0.weight"], p[f"{m}.0.bias"], p[f"{m}.2.weight"], p[f"{m}.2.bias"])
                                  for p in parts], feats[:, :F], F))
    if "sky.color" in parts[0]:
        # one sky for the whole scene: the blocks' colours averaged, around the mean of their centres
        out["sky.color"] = torch.stack([p["sky.color"] for p in parts]).mean(0)
        out["sky.centre"] = torch.stack([p["sky.centre"] for p in parts]).mean(0)
        out["sky.radius"] = torch.stack([p["sky.radius"] for p in parts]).amax(0)
    cfg = dict(c0, feat_dim=F + B, hidden_dim=B * h + B, affine_appearance=False, n_appearance=0)
    return build_model("scaffold", cfg, out, "merged blocks")


def _stack_mlp(name: str, blocks: list[tuple[torch.Tensor, ...]], feat: torch.Tensor, F: int) -> dict[str, torch.Tensor]:
    """The stacked Linear -> ReLU -> Linear of `blocks` [(W1 [h,F+r], b1 [h], W2 [o,h], b2 [o])]; feat [M,F] bounds the gate."""
    B = len(blocks)
    h, inp = blocks[0][0].shape
    o = blocks[0][2].shape[0]
    rest = inp - F  # view direction (3)
    # the largest pre-activation any block's unit reaches on any anchor (|W f| + |W_dir|_2 + |b|): the gate must exceed it
    bound = 0.0
    for W1, b1, _, _ in blocks:
        pre = (feat.double() @ W1[:, :F].double().T).abs().amax(0) if len(feat) else torch.zeros(h, dtype=torch.float64)
        bound = max(bound, float((pre + W1[:, F:].double().norm(dim=1) + b1.double().abs()).max()))
    L = 2.0 * bound + 1.0
    W1m = torch.zeros(B * h + B, F + B + rest)
    b1m = torch.zeros(B * h + B)
    W2m = torch.zeros(o, B * h + B)
    for b, (W1, b1, W2, b2) in enumerate(blocks):
        r = slice(b * h, (b + 1) * h)
        W1m[r, :F] = W1[:, :F]
        W1m[r, F:F + B] = -L
        W1m[r, F + b] = 0.0
        W1m[r, F + B:] = W1[:, F:]
        b1m[r] = b1
        W1m[B * h + b, F + b] = 1.0  # copies the block code: carries b2
        W2m[:, r] = W2
        W2m[:, B * h + b] = b2
    log.debug("stacked %s: %d blocks, gate %.3g", name, B, L)
    return {f"{name}.0.weight": W1m, f"{name}.0.bias": b1m, f"{name}.2.weight": W2m, f"{name}.2.bias": torch.zeros(o)}


class BlockMLP(nn.Sequential):
    """A stacked decoder (Linear -> ReLU -> Linear -> act, the same parameters and state_dict, so saving, baking and
    LOD read it unchanged) that, for rendering, runs each anchor through only its own block's units (what the gate
    leaves active): the cost per anchor no longer grows with the number of blocks. Same maths, float rounding only.
    In training mode it runs the stacked layers as they are. Input x [m, F+B+r] (feature, block code, direction)."""

    def __init__(self, seq: nn.Sequential, n_blocks: int, feat_dim: int):
        super().__init__(*seq)
        self.n_blocks, self.feat_dim = int(n_blocks), int(feat_dim)
        self.train(seq.training)  # a loaded (eval) model stays in eval: the per-block path

    def per_block(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Block b's own layers from the stacked ones: W1 [B,h,F+r], b1 [B,h], W2 [B,o,h], b2 [B,o]."""
        B, F = self.n_blocks, self.feat_dim
        W1, b1, W2, b2 = self[0].weight, self[0].bias, self[2].weight, self[2].bias
        h = W1.shape[0] // B - 1
        W1b = torch.stack([torch.cat([W1[b * h:(b + 1) * h, :F], W1[b * h:(b + 1) * h, F + B:]], 1) for b in range(B)])
        b1b = torch.stack([b1[b * h:(b + 1) * h] for b in range(B)])
        W2b = torch.stack([W2[:, b * h:(b + 1) * h] for b in range(B)])
        b2b = torch.stack([W2[:, B * h + b] + b2 for b in range(B)])  # the code-copy unit carries the block's bias
        return W1b, b1b, W2b, b2b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)  # training (fine-tuning a merged scene): the bundle's own stacked layers
        F, B = self.feat_dim, self.n_blocks
        W1, b1, W2, b2 = self.per_block()
        code = x[:, F:F + B].argmax(1)  # [m]
        xin = torch.cat([x[:, :F], x[:, F + B:]], 1)  # [m, F+r]
        order = torch.argsort(code, stable=True)
        counts = torch.bincount(code, minlength=B).tolist()
        out = x.new_empty(x.shape[0], W2.shape[1])
        parts, start = [], 0
        for b, n in enumerate(counts):
            if n:
                rows = xin[order[start:start + n]]
                parts.append(torch.relu(rows @ W1[b].T + b1[b]) @ W2[b].T + b2[b])
            start += n
        if parts:
            out[order] = torch.cat(parts)
        return self[3](out)


def stacked_blocks(model: nn.Module) -> int:
    """The number of blocks whose decoders merge_models stacked into this Scaffold model (0: not a stacked model),
    read from the decoder's own structure (code-copy units, gates, one-hot anchor codes)."""
    if getattr(model, "kind", None) != "scaffold" or model.config.appearance_dim or model.config.feature_bank:
        return 0
    Fp, Hp = int(model.config.feat_dim), int(model.config.hidden_dim)
    W1 = model.mlp_opacity[0].weight.detach()
    codes = model.anchor_feat.detach()
    for B in range(1, Fp):
        if Hp % B or Hp // B < 2:
            continue
        h, F = Hp // B - 1, Fp - B
        copy = W1[B * h:, :]  # [B, Fp+r]: unit B*h+b copies code channel F+b
        if not torch.equal(copy[:, F:F + B], torch.eye(B)) or bool(copy[:, :F].any()) or bool(copy[:, F + B:].any()):
            continue
        c = codes[:, F:]
        if len(c) and not (bool(((c == 0) | (c == 1)).all()) and bool((c.sum(1) == 1).all())):
            continue
        return B
    return 0


def compact_decoders(model: nn.Module) -> nn.Module:
    """The model (changed in place) with its stacked decoders evaluated per block (BlockMLP: same parameters and
    state_dict, so the bundle keeps the standard shape); other models as they are. load_scene applies it."""
    B = stacked_blocks(model)
    if B < 2:  # one block's stacked decoder is one unit wider than the original: nothing to gain
        return model
    F = int(model.config.feat_dim) - B
    for name in MERGE_MLPS:
        seq = getattr(model, name)
        if not isinstance(seq, BlockMLP):
            setattr(model, name, BlockMLP(seq, B, F))
    log.info("decoders of %d stacked blocks evaluated per block", B)
    return model


def anchor_positions_unique(model: nn.Module, tol: float = 1e-6) -> bool:
    """True when no two anchors (Gaussians) of the model sit within `tol` of each other."""
    from scipy.spatial import cKDTree

    pos = (model.anchors if model.kind == "scaffold" else model.means).detach().double().numpy()
    return len(cKDTree(pos).query_pairs(tol)) == 0 if len(pos) else True


def block_codes(model: nn.Module, n_blocks: int) -> np.ndarray:
    """The block each anchor of a merged Scaffold model came from (its one-hot code): [M] int."""
    return model.anchor_feat[:, -n_blocks:].detach().argmax(1).numpy()


# ---------------------------------------------------------------------------------------------------------------- the bundle
def held_out_views(workdir: Path, cfg: Any, names: list[str] | None = None) -> list:
    """WORKDIR's test views (or the named ones) at the training resolution of cfg."""
    from .dataset import View, load_camera_source, load_image, resolve_downscale

    cams, base = load_camera_source(workdir)
    ds = resolve_downscale(cams.frames, cfg.downscale, cfg.max_width)
    views = []
    for f in sorted(cams.frames, key=lambda f: f.name):
        if (names is None and f.split != "test") or (names is not None and f.name not in names):
            continue
        w, h = max(1, int(round(f.width / ds))), max(1, int(round(f.height / ds)))
        K = f.K.copy()
        K[0] *= w / f.width
        K[1] *= h / f.height
        views.append(View(f.name, load_image(base / cams.images_dir / f.name, w, h),
                          torch.tensor(f.viewmat, dtype=torch.float32), torch.tensor(K, dtype=torch.float32), w, h))
    return views


def write_merged(workdir: str | Path, out: Path, cfg: Any, part: Partition, block_scenes: list[Path],
                 results: list[dict[str, Any]], plan_path: Path, overwrite: bool = False,
                 progress: Any = None) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """Crop, merge, evaluate (all held-out views, and those straddling a core boundary) and write the bundle OUT.

    Returns the merged metrics and per block (anchors kept, anchors trained)."""
    import json
    import tempfile

    from realsim.assets.atomic import atomic_dir
    from realsim.assets.progress import report
    from realsim.assets.scene import SceneInfo, load_scene_info

    from .bundle import load_scene, write_bundle
    from .dataset import load_camera_source
    from .evaluation import evaluate_views, model_counts

    workdir = Path(workdir)
    parts, configs, kept, kind = [], [], [], None
    for b, path in zip(part.blocks, block_scenes):
        sc = load_scene(path)
        kind = kind or sc.kind
        if sc.kind != kind:
            raise InputError(f"block {b.name} is a {sc.kind} model, the others {kind}: cannot merge them")
        t, n_kept, n_all = crop_to_core(sc.model, part, b)
        parts.append(t)
        configs.append(sc.model.config.to_dict())
        kept.append((n_kept, n_all))
    model = merge_models(kind or "scaffold", configs, parts)
    report(progress, "merge", 1, 1)
    views = held_out_views(workdir, cfg)
    n = len(views)
    report(progress, "evaluate", 0, n)
    fast = compact_decoders(model)  # the same tensors (saved below in the standard shape), each block's own decoder
    metrics: dict[str, Any] = dict(evaluate_views(fast, views, cfg.backend, cfg.background,
                                                  progress=lambda i: report(progress, "evaluate", i, n), eps2d=cfg.eps2d))
    straddle = [v for v in views if v.name in set(part.straddling)]
    if straddle:
        s = evaluate_views(fast, straddle, cfg.backend, cfg.background, eps2d=cfg.eps2d)
        metrics["straddling"] = {"n_views": len(straddle), "psnr": s.get("psnr"), "ssim": s.get("ssim"),
                                 "views": [v.name for v in straddle]}
    metrics.update(model_counts(model))
    metrics["iterations"] = int(sum(r.get("iterations") or 0 for r in results))
    metrics["blocks"] = len(part.blocks)
    cams, base = load_camera_source(workdir)
    try:
        info = load_scene_info(base / "scene.json")
    except InputError:
        info = SceneInfo(metadata={"source": str(workdir)})
    info.metadata = dict(info.metadata)
    blocks = [{"name": r["name"], "iterations": r.get("iterations"), "seconds": r.get("seconds"),
               "resumed_from": r.get("resumed_from"), "anchors_kept": k[0], "anchors_trained": k[1],
               "psnr": (r.get("metrics") or {}).get("psnr"), "host": r.get("host")} for r, k in zip(results, kept)]
    info.metadata["train"] = {"config": cfg.to_dict(), "metrics": metrics, "blocks": blocks}
    with tempfile.TemporaryDirectory() as td:
        bj = Path(td) / "blocks.json"
        bj.write_text(json.dumps({"metrics": metrics, "blocks": blocks}, indent=1))
        with atomic_dir(out, overwrite=overwrite) as tmp:
            write_bundle(tmp, model, info, cams, base, {"blocks/partition.json": plan_path, "blocks/blocks.json": bj})
    return metrics, kept
