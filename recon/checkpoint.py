"""Training checkpoints: one safetensors file (model, Adam moments, strategy state, RNG states; JSON side in its metadata),
and the resume rules (an interrupted run is never dropped silently; differing options are listed and refused unless overridden).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realsim.assets.errors import InputError, RealsimError
from realsim.assets.scene import load_tensors, save_tensors

from .bundle import model_tensors
from .train_config import TrainConfig

__all__ = ["CKPT_FORMAT", "save_checkpoint", "load_checkpoint", "restore_optimizers", "checkpoint_step", "config_diff",
           "format_diff", "resumed_config", "guard_interrupted_run", "ckpt_dir_for"]

log = logging.getLogger("realsim.recon.trainer")

CKPT_FORMAT = "realsim-train-ckpt-1"


def ckpt_dir_for(out: Path) -> Path:
    """Where a run writing the bundle `out` keeps its checkpoint and metrics log: the sibling `.OUT.train/`."""
    return out.parent / f".{out.name}.train"


def save_checkpoint(path: Path, step: int, cfg: TrainConfig, model: nn.Module, opts: dict[str, torch.optim.Optimizer],
                    strat_state: dict[str, torch.Tensor], gen: torch.Generator, order: list[int], extra: dict[str, Any]) -> None:
    """model.*, opt.<group>.<i>.<moment>, strategy.*, rng.* in one safetensors file; the JSON side in its metadata."""
    t: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model_tensors(model).items()}
    for name, opt in opts.items():
        for i, p in enumerate(opt.param_groups[0]["params"]):
            st = opt.state.get(p)
            if not st:
                continue
            t[f"opt.{name}.{i}.exp_avg"] = st["exp_avg"]
            t[f"opt.{name}.{i}.exp_avg_sq"] = st["exp_avg_sq"]
            t[f"opt.{name}.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
    for k, v in strat_state.items():
        t[f"strategy.{k}"] = v
    t["rng.torch"] = torch.get_rng_state()
    t["rng.gen"] = gen.get_state()
    meta = {"format": CKPT_FORMAT, "step": str(step), "config": json.dumps(cfg.to_dict()), "kind": model.kind,
            "model_config": json.dumps(model.config.to_dict()), "order": json.dumps(order),
            "numpy_rng": json.dumps(_np_state()), "extra": json.dumps(extra)}
    save_tensors(path, t, meta)


def _np_state() -> list:
    s = np.random.get_state()
    return [s[0], s[1].tolist(), int(s[2]), int(s[3]), float(s[4])]


def load_checkpoint(path: Path) -> dict[str, Any]:
    tensors, meta = load_tensors(path)
    if meta.get("format") != CKPT_FORMAT:
        raise InputError(f"{path} is not a realsim training checkpoint")
    try:
        return {"tensors": tensors, "step": int(meta["step"]), "config": json.loads(meta["config"]), "kind": meta["kind"],
                "model_config": json.loads(meta["model_config"]), "order": json.loads(meta["order"]),
                "numpy_rng": json.loads(meta["numpy_rng"]), "extra": json.loads(meta.get("extra", "{}"))}
    except (KeyError, ValueError) as e:
        raise InputError(f"checkpoint {path} is malformed: {e}") from None


def restore_optimizers(opts: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor]) -> None:
    for name, opt in opts.items():
        for i, p in enumerate(opt.param_groups[0]["params"]):
            key = f"opt.{name}.{i}"
            if f"{key}.exp_avg" not in tensors:
                continue
            opt.state[p] = {"step": tensors[f"{key}.step"].reshape(()).to(torch.float32),
                            "exp_avg": tensors[f"{key}.exp_avg"].clone(), "exp_avg_sq": tensors[f"{key}.exp_avg_sq"].clone()}


def checkpoint_step(path: Path) -> int | None:
    """The iteration a checkpoint was saved at (from its header only), or None when it is unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return int((f.metadata() or {})["step"])
    except Exception:  # corrupt or foreign file: the caller says so
        return None


# TrainConfig fields a resumed run cannot change (the checkpoint's model and train/test split are fixed) / does not compare
RESUME_FIXED = ("model", "holdout_every")
RESUME_FIXED_PREFIXES = ("scaffold.", "gs3d.")  # the model's architecture comes from the checkpoint
RESUME_IGNORED = ("threads",)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_diff(old: TrainConfig, new: TrainConfig) -> list[tuple[str, Any, Any]]:
    """[(field, old, new)] where two configs differ (nested fields dotted, e.g. scaffold_strategy.update_until);
    top-level fields first, fields in RESUME_IGNORED skipped."""
    a, b = (_flat(json.loads(json.dumps(c.to_dict()))) for c in (old, new))
    diffs = [(k, a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k) and k not in RESUME_IGNORED]
    return sorted(diffs, key=lambda d: "." in d[0])


def format_diff(diffs: list[tuple[str, Any, Any]], limit: int = 8) -> str:
    """"iterations 3000 -> 500, max_width 504 -> 256, and 4 more"."""
    def f(v: Any) -> str:
        return "none" if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else str(v))

    text = ", ".join(f"{k} {f(a)} -> {f(b)}" for k, a, b in diffs[:limit])
    return text + (f", and {len(diffs) - limit} more" if len(diffs) > limit else "")


def resumed_config(saved: TrainConfig, new: TrainConfig, ckpt: Path, step: int, override: bool) -> TrainConfig:
    """The config a resumed run continues with: the checkpoint's, or with `override` the new one (one warning line).

    Differences are refused unless `override`; a different model or split is refused always.
    """
    diffs = config_diff(saved, new)
    fixed = [d for d in diffs if d[0] in RESUME_FIXED or d[0].startswith(RESUME_FIXED_PREFIXES)]
    if fixed:
        raise InputError(f"--resume: the checkpoint at {ckpt} (iteration {step}) cannot continue with {format_diff(fixed)} "
                         "(its model and train/test split are fixed): give the options it was started with, or pass "
                         "--overwrite to start over")
    if diffs and not override:
        raise InputError(f"--resume: options differ from the checkpoint at {ckpt} (iteration {step}): {format_diff(diffs)}; "
                         "give the same options, or pass --override-config to continue with the new values")
    if diffs:
        log.warning("--override-config: resuming from iteration %d with %s", step, format_diff(diffs, limit=len(diffs)))
        return new
    saved.threads = new.threads  # how many threads run it is not part of the run
    return saved


def guard_interrupted_run(out: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse to start over an interrupted run's checkpoint (beside OUT) unless asked to resume or overwrite it."""
    ck = ckpt_dir_for(Path(out)) / "checkpoint.safetensors"
    if resume or overwrite or not ck.is_file():
        return
    step = checkpoint_step(ck)
    at = f"iteration {step}" if step is not None else "unreadable"
    raise RealsimError(f"an interrupted run's checkpoint is at {ck} ({at}): pass --resume to continue it or --overwrite "
                       "to start over")
