"""Read a `realsim simulate` output folder into arrays for USD export (agents, props, camera), with one-line errors."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.config import read_json
from realsim.assets.errors import InputError

from .body import AgentLook

__all__ = ["SimRecord", "load_sim_record", "same_path"]


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


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when a and b name the same file or folder (a sim folder's provenance vs the scene it is used with)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _look(d: dict) -> AgentLook:
    base = AgentLook((0.6, 0.6, 0.6), (0.2, 0.2, 0.3), (0.8, 0.65, 0.5), (0.1, 0.08, 0.06), (0.1, 0.1, 0.1))
    known = {f.name for f in fields(AgentLook)}
    for k, v in (d or {}).items():
        if k in known:
            setattr(base, k, tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v))
    return base


def load_sim_record(sim_dir: str | os.PathLike, scene_root: str | os.PathLike | None = None) -> SimRecord:
    """The sim folder's agents, props and camera; InputError when it is missing, incomplete, or (with scene_root) made
    from another scene (sim.json provenance)."""
    from realsim.assets.scene import load_tensors

    d = Path(sim_dir)
    if not d.is_dir():
        raise InputError(f"sim folder {d} not found")
    for name in ("sim.json", "cameras.json", "motion.safetensors", "trajectories.json"):
        if not (d / name).is_file():
            raise InputError(f"{d} is not a realsim sim output folder (no {name}): make one with `realsim simulate`")
    meta = read_json(d / "sim.json", "sim summary")
    src = (meta.get("provenance") or {}).get("scene")
    if scene_root is not None and src and not same_path(src, scene_root):
        raise InputError(f"sim folder {d} was made from scene {src}, not {scene_root}")
    traj = read_json(d / "trajectories.json", "trajectories file")
    cams = read_json(d / "cameras.json", "camera file", ("frames",))
    tensors, tmeta = load_tensors(d / "motion.safetensors")
    if "joints" not in tensors:
        raise InputError(f"{d}/motion.safetensors has no 'joints' tensor")
    joints = tensors["joints"].double().numpy()
    if joints.ndim != 4 or joints.shape[-1] != 3:
        raise InputError(f"{d}/motion.safetensors joints have shape {tuple(joints.shape)}, expected [T,A,J,3]")
    heading = tensors["heading"].double().numpy() if "heading" in tensors else np.zeros(joints.shape[:2])
    skel = json.loads(tmeta.get("skeleton", "{}") or "{}")
    names, parents = list(skel.get("names", [])), [int(p) for p in skel.get("parents", [])]
    if len(parents) != joints.shape[2] or len(names) != joints.shape[2]:
        raise InputError(f"{d}/motion.safetensors: skeleton has {len(parents)} joints, motion {joints.shape[2]}")
    frames = cams["frames"]
    if not frames:
        raise InputError(f"{d}/cameras.json has no frames")
    V = np.array([f["viewmat"] for f in frames], np.float64)
    K = np.array([f["K"] for f in frames], np.float64)
    props, boxes = [], None
    if (d / "props.json").is_file():
        pj = read_json(d / "props.json", "props file", ("props",))
        props = pj["props"]
        sc = pj.get("static_colliders")
        if isinstance(sc, dict) and sc.get("boxes") is not None:
            boxes = np.asarray(sc["boxes"], np.float64).reshape(-1, 6)
    T = min([len(V), joints.shape[0]] + [len(p["position"]) for p in props])
    agents = traj.get("agents") or []
    looks = [_look((agents[a].get("look") if a < len(agents) else None) or {}) for a in range(joints.shape[1])]
    fps = float(meta.get("fps") or cams.get("fps") or traj.get("fps") or 30.0)
    scale = float((meta.get("world") or {}).get("scale") or 1.0)
    return SimRecord(d, fps, joints[:T], heading[:T], names, parents, looks, V[:T], K[:T], int(frames[0]["width"]),
                     int(frames[0]["height"]), scale, src, props, boxes)
