"""Densification strategies, kept apart from the models (as gsplat's DefaultStrategy/MCMCStrategy):
`ScaffoldStrategy` grows anchors where neural Gaussians see large screen-space gradients and prunes anchors whose
Gaussians stay transparent; `ADCStrategy` is 3DGS's adaptive density control (clone, split, prune, opacity reset).

Both follow the `Strategy` protocol (gsplat's strategy/base.py: one hook signature for both) and keep their statistics,
the scene extent included, in a dict of tensors (saved in checkpoints); they edit the model's per-element parameters
together with the Adam moments of the optimiser that owns each one. The image size comes from the rasterizer's meta.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

from realsim.assets.config import ConfigDict
from realsim.render.ref import quat_to_rotmat

from .growth import grow_anchors, level_rules

Optimizers = dict[str, torch.optim.Optimizer]


@runtime_checkable
class Strategy(Protocol):
    """A densification strategy: the trainer calls, per run, check_sanity and initialize_state (or restores the state
    from a checkpoint), then per iteration step_pre_backward before loss.backward() and step_post_backward after the
    optimisers stepped. The state holds every statistic as a tensor (the checkpoint saves them as strategy.*)."""

    def check_sanity(self, model: nn.Module, optimizers: Optimizers) -> None:
        """ValueError when the model lacks a per-element parameter this strategy edits or its optimiser."""

    def initialize_state(self, model: nn.Module, scene_extent: float = 1.0) -> dict[str, torch.Tensor]:
        """Fresh statistics for `model`; scene_extent (radius of the camera centres) is kept in the state."""

    def step_pre_backward(self, meta: dict[str, Any]) -> None:
        """Before backward: keep what step_post_backward reads (the screen-space gradient of meta["means2d"])."""

    def step_post_backward(self, model: nn.Module, optimizers: Optimizers, state: dict[str, torch.Tensor], step: int,
                           info: dict[str, torch.Tensor], meta: dict[str, Any],
                           generator: torch.Generator | None = None) -> dict[str, int]:
        """After the optimisers stepped: accumulate statistics, densify / prune on schedule; returns counts of changes.
        The image size is meta["width"], meta["height"] (old callers' positional width, height are ignored)."""


def update_param(model: nn.Module, optimizers: Optimizers, name: str,
                 fn: Callable[[torch.Tensor, str], torch.Tensor]) -> None:
    """Replace model.<name> by fn(old, "param") and its Adam moments by fn(moment, "state")."""
    old = getattr(model, name)
    new = nn.Parameter(fn(old.data, "param"), requires_grad=old.requires_grad)
    setattr(model, name, new)
    opt = optimizers.get(name)
    if opt is None:
        return
    for group in opt.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    st = opt.state.pop(old, None)
    if st:
        opt.state[new] = {k: (fn(v, "state") if k in ("exp_avg", "exp_avg_sq") else v) for k, v in st.items()}


def _names(model: nn.Module) -> list[str]:
    names = list(model.dynamic_params().keys())
    if hasattr(model, "anchors"):
        names = ["anchors"] + names
    return names


def keep_elements(model: nn.Module, optimizers: Optimizers, keep: torch.Tensor) -> None:
    """Keep the elements (anchors / Gaussians) where keep [N] is True, in every per-element tensor."""
    for name in _names(model):
        update_param(model, optimizers, name, lambda t, _k: t[keep])


def append_elements(model: nn.Module, optimizers: Optimizers, new: dict[str, torch.Tensor]) -> None:
    """Append new elements (values per parameter name); their Adam moments start at zero."""
    for name in _names(model):
        v = new[name].to(getattr(model, name))

        def fn(t: torch.Tensor, kind: str, v: torch.Tensor = v) -> torch.Tensor:
            return torch.cat([t, v if kind == "param" else torch.zeros_like(v)], 0)

        update_param(model, optimizers, name, fn)


def _screen_grad_norm(meta: dict[str, Any], absgrad: bool = False) -> torch.Tensor | None:
    """|d loss / d means2d| in normalised device units (pixels x W/2, H/2), as the 0.0002 thresholds expect: [N].
    absgrad: the per-pixel gradients' absolute values summed (AbsGS), so a large Gaussian over texture whose pixels pull
    it in opposite directions still counts as under-fitted."""
    m2d = meta.get("means2d")
    g = getattr(m2d, "absgrad", None) if absgrad else getattr(m2d, "grad", None)
    if g is None:
        return None
    g = g.detach()[0].clone()  # [N,2]
    g[:, 0] *= meta["width"] / 2.0
    g[:, 1] *= meta["height"] / 2.0
    return g.norm(dim=-1)


def _new_bucket(state: dict[str, torch.Tensor], key: str, step: int, every: int) -> bool:
    """True the first time `step` reaches a new multiple of `every` (every multiple for a step-by-step schedule; at most
    once per multiple when a time budget makes the schedule jump)."""
    b = step // max(every, 1)
    if b > int(state[key]) and step >= b * every:
        state[key] = torch.tensor([b], dtype=torch.int64, device=state[key].device)
        return True
    return False


def _extent_state(scene_extent: float, device: torch.device) -> torch.Tensor:
    return torch.tensor([float(scene_extent)], dtype=torch.float64, device=device)


class _Strategy(ConfigDict):
    """What both strategies share: config (de)serialisation, the sanity check and keeping the screen-space gradient of
    means2d."""

    def check_sanity(self, model: nn.Module, optimizers: Optimizers) -> None:
        for name in _names(model):
            if not isinstance(getattr(model, name, None), nn.Parameter):
                raise ValueError(f"{type(self).__name__}: model has no parameter {name!r}")
            if name != "anchors" and name not in optimizers:
                raise ValueError(f"{type(self).__name__}: no optimiser for {name!r}")

    def step_pre_backward(self, meta: dict[str, Any]) -> None:
        m2d = meta.get("means2d")
        if m2d is not None and m2d.requires_grad:
            m2d.retain_grad()

    @staticmethod
    def scene_extent(state: dict[str, torch.Tensor]) -> float:
        """The scene extent kept in the state by initialize_state (a resumed run restores it from its checkpoint)."""
        return float(state["scene_extent"])


@dataclass
class ScaffoldStrategy(_Strategy):
    """Anchor growing as published (growth.py: voxels growth_factor x eps / level_factor^m, thresholds
    grad_threshold x 2^m, random elimination keeping 50 / 75 / 87.5 %) and opacity-based pruning; on the model's device."""

    start_stat: int = 500
    update_from: int = 1500
    update_interval: int = 100
    update_until: int = 15000
    grad_threshold: float = 0.0002
    min_opacity: float = 0.005
    success_threshold: float = 0.8
    update_depth: int = 3
    growth_factor: int = 16  # level 0 grows on voxels this many times the anchor voxel size (published: 16)
    level_factor: int = 4  # each finer level divides the voxel size by this
    max_anchors: int = 0  # 0 = no cap (the presets set one: a cap keeps runs within memory and time)
    absgrad: bool = False  # grow on summed absolute per-pixel gradients (AbsGS; raise grad_threshold with it)

    def initialize_state(self, model: nn.Module, scene_extent: float = 1.0) -> dict[str, torch.Tensor]:
        M, k, dev = model.n_anchors, model.config.n_offsets, model.anchors.device
        return {"opacity_accum": torch.zeros(M, device=dev), "anchor_denom": torch.zeros(M, device=dev),
                "offset_grad_accum": torch.zeros(M * k, device=dev), "offset_denom": torch.zeros(M * k, device=dev),
                "last_bucket": torch.zeros(1, dtype=torch.int64, device=dev),
                "scene_extent": _extent_state(scene_extent, dev)}

    def step_post_backward(self, model: nn.Module, optimizers: Optimizers, state: dict[str, torch.Tensor], step: int,
                           info: dict[str, torch.Tensor], meta: dict[str, Any],
                           generator: torch.Generator | None = None) -> dict[str, int]:
        """Accumulate statistics; grow and prune on schedule. Returns counts of what changed (Strategy protocol)."""
        if step >= self.update_until or step < self.start_stat:
            return {}
        k = model.config.n_offsets
        with torch.no_grad():
            idx = info["anchor_idx"]
            op = info["opacity_all"].reshape(-1, k).clamp_min(0).sum(1)
            state["opacity_accum"].index_add_(0, idx, op)
            state["anchor_denom"].index_add_(0, idx, torch.ones_like(op))
            gn = _screen_grad_norm(meta, self.absgrad)
            if gn is not None:
                n = int(info["slot"].shape[0])  # neural Gaussians first; a sky model's splats follow them
                gn, radii = gn[:n], meta["radii"][0][:n]
                vis = (radii > 0).all(-1) if radii.dim() == 2 else radii > 0
                slot = info["slot"][vis]
                state["offset_grad_accum"].index_add_(0, slot, gn[vis])
                state["offset_denom"].index_add_(0, slot, torch.ones_like(gn[vis]))
        if _new_bucket(state, "last_bucket", step, self.update_interval) and step > self.update_from:
            return self._adjust(model, optimizers, state, generator)
        return {}

    # ------------------------------------------------------------------ growing / pruning
    def _adjust(self, model: nn.Module, optimizers: Optimizers, state: dict[str, torch.Tensor],
                generator: torch.Generator | None) -> dict[str, int]:
        k = model.config.n_offsets
        with torch.no_grad():
            denom = state["offset_denom"]
            grads = state["offset_grad_accum"] / denom.clamp_min(1)
            enough = denom > self.update_interval * self.success_threshold * 0.5
            rules = level_rules(model.config.voxel_size, self.grad_threshold, self.update_depth, self.growth_factor,
                                self.level_factor)
            new = grow_anchors(model, grads, enough, rules, self.max_anchors, generator)
            n_new = grown = int(new["anchors"].shape[0]) if new else 0
            if n_new:
                append_elements(model, optimizers, new)
            # candidates that were considered are reset; new anchors start with empty statistics
            reset = enough.clone()
            state["offset_grad_accum"][reset] = 0
            state["offset_denom"][reset] = 0
            for key, size in (("offset_grad_accum", n_new * k), ("offset_denom", n_new * k),
                              ("opacity_accum", n_new), ("anchor_denom", n_new)):
                state[key] = torch.cat([state[key], state[key].new_zeros(size)])
            # prune anchors observed long enough whose Gaussians stayed (almost) transparent
            checked = state["anchor_denom"] > self.update_interval * self.success_threshold
            prune = checked & (state["opacity_accum"] < self.min_opacity * state["anchor_denom"])
            state["opacity_accum"][checked] = 0
            state["anchor_denom"][checked] = 0
            n_pruned = int(prune.sum())
            if n_pruned and n_pruned < model.n_anchors:
                keep = ~prune
                keep_elements(model, optimizers, keep)
                keep_k = keep[:, None].expand(-1, k).reshape(-1)
                for key in ("offset_grad_accum", "offset_denom"):
                    state[key] = state[key][keep_k]
                for key in ("opacity_accum", "anchor_denom"):
                    state[key] = state[key][keep]
            else:
                n_pruned = 0
        return {"grown": grown, "pruned": n_pruned}


@dataclass
class ADCStrategy(_Strategy):
    """3DGS adaptive density control: clone small / split large Gaussians with high view-space gradient, prune
    transparent or huge ones, reset opacities periodically."""

    refine_start: int = 500
    refine_stop: int = 15000
    refine_every: int = 100
    reset_every: int = 3000
    grow_grad2d: float = 0.0002
    grow_scale3d: float = 0.01  # x scene extent: clone below, split above
    prune_opa: float = 0.005
    prune_scale3d: float = 0.1  # x scene extent
    max_gaussians: int = 0  # 0 = no cap
    absgrad: bool = False  # densify on summed absolute per-pixel gradients (AbsGS; raise grow_grad2d with it)

    def initialize_state(self, model: nn.Module, scene_extent: float = 1.0) -> dict[str, torch.Tensor]:
        n, dev = model.n_gaussians, model.means.device
        return {"grad2d": torch.zeros(n, device=dev), "count": torch.zeros(n, device=dev),
                "last_bucket": torch.zeros(1, dtype=torch.int64, device=dev),
                "last_reset": torch.zeros(1, dtype=torch.int64, device=dev), "scene_extent": _extent_state(scene_extent, dev)}

    def step_post_backward(self, model: nn.Module, optimizers: Optimizers, state: dict[str, torch.Tensor], step: int,
                           info: dict[str, torch.Tensor], meta: dict[str, Any],
                           generator: torch.Generator | None = None) -> dict[str, int]:
        """Accumulate view-space gradients; refine and reset on schedule (Strategy protocol)."""
        if step >= self.refine_stop:
            return {}
        extent = self.scene_extent(state)
        with torch.no_grad():
            gn = _screen_grad_norm(meta, self.absgrad)
            if gn is not None:
                radii = meta["radii"][0]
                vis = (radii > 0).all(-1) if radii.dim() == 2 else radii > 0
                state["grad2d"][vis] += gn[vis]
                state["count"][vis] += 1
            out: dict[str, int] = {}
            if _new_bucket(state, "last_bucket", step, self.refine_every) and step > self.refine_start:
                out = self._refine(model, optimizers, state, step, generator, extent)
            if _new_bucket(state, "last_reset", step, self.reset_every) and step > 0:
                thr = float(torch.logit(torch.tensor(self.prune_opa * 2.0)))

                def fn(t: torch.Tensor, kind: str) -> torch.Tensor:
                    return t.clamp_max(thr) if kind == "param" else torch.zeros_like(t)

                update_param(model, optimizers, "opacities", fn)
        return out

    def _refine(self, model: nn.Module, optimizers: Optimizers, state: dict[str, torch.Tensor], step: int,
                generator: torch.Generator | None, extent: float) -> dict[str, int]:
        avg = state["grad2d"] / state["count"].clamp_min(1)
        high = avg > self.grow_grad2d
        smax = torch.exp(model.scales).amax(1)
        small = smax <= self.grow_scale3d * extent
        clone, split = high & small, high & ~small
        if self.max_gaussians:
            room = max(self.max_gaussians - model.n_gaussians, 0)
            if int(clone.sum()) + int(split.sum()) > room:
                # keep the highest-gradient candidates within the cap
                cand = (clone | split).nonzero().squeeze(1)
                top = cand[torch.argsort(avg[cand], descending=True)[:room]]
                m = torch.zeros_like(high)
                m[top] = True
                clone, split = clone & m, split & m
        n_clone, n_split = int(clone.sum()), int(split.sum())
        P = dict(model.dynamic_params())
        new: dict[str, torch.Tensor] = {kk: v.data[clone] for kk, v in P.items()}
        if n_split:
            sc = torch.exp(model.scales.data[split])  # [S,3]
            R = quat_to_rotmat(model.quats.data[split])  # normalises
            samples = torch.randn(2, n_split, 3, generator=generator).to(sc) * sc[None]  # drawn on the CPU generator
            pos = (torch.einsum("sij,nsj->nsi", R, samples) + model.means.data[split][None]).reshape(-1, 3)
            sp = {kk: v.data[split].repeat(2, *([1] * (v.dim() - 1))) for kk, v in P.items()}
            sp["means"] = pos
            sp["scales"] = torch.log(sc / 1.6).repeat(2, 1)
            new = {kk: torch.cat([new[kk], sp[kk]], 0) for kk in new}
        n0 = model.n_gaussians
        if n_clone + n_split:
            append_elements(model, optimizers, new)
            z = state["grad2d"].new_zeros(n_clone + 2 * n_split)
            state["grad2d"] = torch.cat([state["grad2d"], z])
            state["count"] = torch.cat([state["count"], z.clone()])
        remove = torch.zeros(model.n_gaussians, dtype=torch.bool, device=model.means.device)
        remove[:n0] = split
        remove |= torch.sigmoid(model.opacities.data) < self.prune_opa
        if step > self.reset_every:
            remove |= torch.exp(model.scales.data).amax(1) > self.prune_scale3d * extent
        n_pruned = int(remove.sum())
        if n_pruned and n_pruned < model.n_gaussians:
            keep = ~remove
            keep_elements(model, optimizers, keep)
            state["grad2d"] = state["grad2d"][keep]
            state["count"] = state["count"][keep]
        state["grad2d"].zero_()
        state["count"].zero_()
        return {"cloned": n_clone, "split": n_split, "pruned": n_pruned}
