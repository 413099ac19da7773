"""The physics colliders cached beside a scene bundle: `colliders.json`, keyed by the scene's content and the collider settings.

Building the static colliders of a reconstruction decodes its Gaussians for several views (seconds to minutes); the result
depends only on the bundle's geometry files and the settings, so it is kept in the bundle folder and reused while both are
unchanged. The key is sha256(content hash of scene.json, cameras.json, model.safetensors and sparse/**, settings as
canonical JSON); a file whose key differs (the scene was retrained, or other settings were asked) is rebuilt and replaced.
A bundle folder that cannot be written (read-only shared data) just goes uncached.

File layout (JSON): {"format": "realsim-colliders", "version": 1, "key": hex, "scene_hash": hex, "settings": {...},
"boxes": [[x0, y0, z0, x1, y1, z1], ...] (world metres, +Z up), "info": {...}}.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic

__all__ = ["COLLIDER_FILE", "scene_content_hash", "collider_key", "load_colliders", "save_colliders"]

log = logging.getLogger("realsim.assets.colliders")

COLLIDER_FILE = "colliders.json"
FORMAT, VERSION = "realsim-colliders", 1
_GEOMETRY_FILES = ("scene.json", "cameras.json", "model.safetensors")


def scene_content_hash(scene_dir: str | os.PathLike) -> str:
    """sha256 (hex) of the files that define a bundle's geometry: scene.json, cameras.json, model.safetensors, sparse/**."""
    root = Path(scene_dir)
    files = [root / f for f in _GEOMETRY_FILES if (root / f).is_file()]
    if (root / "sparse").is_dir():
        files += sorted(p for p in (root / "sparse").rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def collider_key(scene_hash: str, settings: dict[str, Any]) -> str:
    """The cache key: the scene's content hash and the settings (canonical JSON), hashed together."""
    blob = json.dumps({"scene": scene_hash, "settings": settings, "version": VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_colliders(scene_dir: str | os.PathLike, key: str) -> dict[str, Any] | None:
    """The cached colliders when `scene_dir/colliders.json` holds this key; None when absent, stale or unreadable."""
    p = Path(scene_dir) / COLLIDER_FILE
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION or data.get("key") != key:
        return None
    if not isinstance(data.get("boxes"), list):
        return None
    return data


def save_colliders(scene_dir: str | os.PathLike, key: str, scene_hash: str, settings: dict[str, Any],
                   boxes: list[list[float]], info: dict[str, Any] | None = None) -> bool:
    """Write the cache atomically (replacing a stale one); False (and a debug log line) when the folder is not writable."""
    data = {"format": FORMAT, "version": VERSION, "key": key, "scene_hash": scene_hash, "settings": settings,
            "boxes": [[round(float(x), 5) for x in b] for b in boxes], "info": info or {}}
    try:
        write_text_atomic(Path(scene_dir) / COLLIDER_FILE, json.dumps(data))
    except Exception as e:  # noqa: BLE001  (a cache: any failure to write it only costs the rebuild next time)
        log.debug("collider cache not written in %s: %s", scene_dir, e)
        return False
    return True
