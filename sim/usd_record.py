"""Read a `realsim simulate` output folder into arrays for USD export (agents, props, camera), with one-line errors."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.config import read_json
from realsim.assets.errors import InputError

from .body import AgentLook
from .sim_folder import read_sim_folder

__all__ = ["SimRecord", "load_sim_record"]


@dataclass
class SimRecord:
    """A finished simulation in world metres (+Z up): joints [T,A,J,3], heading [T,A], the skeleton (names, parents),
    agent looks, props (props.json entries, poses per frame), camera viewmats [T,4,4] / Ks [T,3,3] (OpenCV)."""

    folder: Path
    fps: float
    joints: np.ndarray
    heading: np.ndarray
    names: list[str]
    parents: list[int]
    looks: list[AgentLook]
    viewmats: np.ndarray
    Ks: np.ndarray
    width: int
    height: int
    scale: float = 1.0  # metres per scene unit of the scene it was made from
    scene: str | None = None
    props: list[dict[str, Any]] = field(default_factory=list)
    boxes: np.ndarray | None = None  # [N,6] the static collider boxes MuJoCo used (props.json), None when not recorded

    @property
    def n_frames(self) -> int:
        return int(self.viewmats.shape[0])

    @property
    def n_agents(self) -> int:
        return int(self.joints.shape[1])


def _look(d: dict) -> AgentLook:
    base = AgentLook((0.6, 0.6, 0.6), (0.2, 0.2, 0.3), (0.8, 0.65, 0.5), (0.1, 0.08, 0.06), (0.1, 0.1, 0.1))
    known = {f.name for f in fields(AgentLook)}
    for k, v in (d or {}).items():
        if k in known:
            setattr(base, k, tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v))
    return base


def load_sim_record(sim_dir: str | os.PathLike, scene_root: str | os.PathLike | None = None) -> SimRecord:
    """The sim folder's agents, props and camera; InputError when it is missing, incomplete (it needs cameras.json
    here), or (with scene_root) made from another scene (sim.json provenance)."""
    sf = read_sim_folder(sim_dir, scene_root, need=("cameras.json",))
    d = sf.folder
    cams = read_json(d / "cameras.json", "camera file", ("frames",))
    frames = cams["frames"]
    if not frames:
        raise InputError(f"{d}/cameras.json has no frames")
    V = np.array([f["viewmat"] for f in frames], np.float64)
    K = np.array([f["K"] for f in frames], np.float64)
    props, boxes = [], None
    if sf.props is not None:
        props = sf.props["props"]
        sc = sf.props.get("static_colliders")
        if isinstance(sc, dict) and sc.get("boxes") is not None:
            boxes = np.asarray(sc["boxes"], np.float64).reshape(-1, 6)
    try:
        T = min([len(V), sf.joints.shape[0]] + [len(p["position"]) for p in props])
    except (KeyError, TypeError) as e:
        raise InputError(f"{d}/props.json: a prop without positions ({type(e).__name__}: {e})") from None
    looks = [_look(lk) for lk in sf.looks()]
    return SimRecord(d, sf.fps, sf.joints[:T], sf.heading[:T], sf.names, sf.parents, looks, V[:T], K[:T],
                     int(frames[0]["width"]), int(frames[0]["height"]), sf.scale, sf.scene, props, boxes)
