"""Scene bundle on disk: scene.json + cameras.json + model.safetensors (+ sparse/), never pickled.

scene.json (format_version 1):
    {"format_version": 1, "generator": "realsim 0.1.0",
     "metadata": {...free-form: source, synthetic flag, notes...},
     "world": {"up": [0,0,1], "metric": true, "scale": s, "alignment": [[4x4 SfM->world]]},
     "model": {"kind": "scaffold" | "3dgs" | null, "config": {...dataclass fields...}}}
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .atomic import atomic_path, write_text_atomic
from .config import read_json
from .errors import InputError

SCENE_FORMAT_VERSION = 1


@dataclass
class WorldInfo:
    """How the SfM frame was brought to the +Z-up world, and whether units are metres."""

    metric: bool = False
    scale: float = 1.0
    alignment: np.ndarray = field(default_factory=lambda: np.eye(4))  # [4,4] SfM -> world (similarity)
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)


@dataclass
class SceneInfo:
    """Contents of scene.json."""

    world: WorldInfo = field(default_factory=WorldInfo)
    model_kind: str | None = None
    model_config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def save_scene_info(path: str | os.PathLike, info: SceneInfo) -> None:
    data = {
        "format_version": SCENE_FORMAT_VERSION,
        "generator": "realsim 0.1.0",
        "metadata": info.metadata,
        "world": {
            "up": list(info.world.up),
            "metric": bool(info.world.metric),
            "scale": float(info.world.scale),
            "alignment": np.asarray(info.world.alignment, dtype=float).tolist(),
        },
        "model": {"kind": info.model_kind, "config": info.model_config},
    }
    write_text_atomic(path, json.dumps(data, indent=1))


def load_scene_info(path: str | os.PathLike) -> SceneInfo:
    path = Path(path)
    if path.is_dir():
        path = path / "scene.json"
    data = read_json(path, "realsim scene", keys=("format_version",))
    if data["format_version"] != SCENE_FORMAT_VERSION:
        raise InputError(f"{path} has format_version {data['format_version']!r}; this realsim reads {SCENE_FORMAT_VERSION}")
    try:
        w = data.get("world", {})
        world = WorldInfo(
            metric=bool(w.get("metric", False)),
            scale=float(w.get("scale", 1.0)),
            alignment=np.asarray(w.get("alignment", np.eye(4).tolist()), dtype=np.float64).reshape(4, 4),
            up=tuple(float(x) for x in w.get("up", (0.0, 0.0, 1.0))),
        )
        m = data.get("model") or {}
        return SceneInfo(world, m.get("kind"), dict(m.get("config") or {}), dict(data.get("metadata") or {}))
    except (TypeError, ValueError) as e:
        raise InputError(f"{path} is malformed: {e}") from None


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> None:
    """safetensors file, written atomically (tensors made contiguous CPU first)."""
    from safetensors.torch import save_file

    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=meta)


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file; a missing, truncated or foreign file gives an InputError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} not found")
    try:
        out: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            for k in f.keys():
                out[k] = f.get_tensor(k)
        return out, meta
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise InputError(f"{path} is not a readable safetensors file ({type(e).__name__}: {e})") from None
