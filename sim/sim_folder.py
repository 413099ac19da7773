"""One reader of a `realsim simulate` / `demo` output folder: the files every reader needs, its provenance, the agents'
joints and skeleton, with one-line errors. The USD export (usd_record) and `realsim view` (cli/viewer/data) build on it."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.config import read_json
from realsim.assets.errors import InputError

__all__ = ["SimFolder", "read_sim_folder", "same_path", "SIM_FILES"]

SIM_FILES = ("sim.json", "trajectories.json", "motion.safetensors")  # what every sim folder has (sim/outputs.py)


@dataclass
class SimFolder:
    """A sim folder as written, world metres (+Z up): joints [T,A,J,3], root [T,A,3], heading [T,A], the skeleton, the
    frame rate, metres per scene unit of its scene, that scene (sim.json provenance), and the parsed JSON files."""

    folder: Path
    meta: dict[str, Any]  # sim.json
    traj: dict[str, Any]  # trajectories.json
    joints: np.ndarray  # [T,A,J,3] float64
    root: np.ndarray  # [T,A,3] float64 (the first joint where the folder has no root)
    heading: np.ndarray  # [T,A] float64 radians (zeros where the folder has none)
    names: list[str]
    parents: list[int]
    fps: float
    scale: float  # metres per scene unit
    scene: str | None  # the scene folder it was made from
    props: dict[str, Any] | None = None  # props.json (sim/physics), None when the sim has no props

    @property
    def n_agents(self) -> int:
        return int(self.joints.shape[1])

    def looks(self) -> list[dict[str, Any]]:
        """Each agent's `look` entry of trajectories.json ({} where it has none)."""
        agents = self.traj.get("agents") or []
        return [dict((agents[a].get("look") if a < len(agents) else None) or {}) for a in range(self.n_agents)]


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when a and b name the same file or folder (a sim folder's provenance vs the scene it is used with)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def read_sim_folder(sim_dir: str | os.PathLike, scene_root: str | os.PathLike | None = None,
                    need: tuple[str, ...] = ()) -> SimFolder:
    """The sim folder's common part; InputError when it is missing, lacks one of SIM_FILES or `need`, is malformed, or
    (with scene_root) was made from another scene."""
    from realsim.assets.scene import load_tensors

    d = Path(sim_dir)
    if not d.is_dir():
        raise InputError(f"sim folder {d} not found")
    for name in SIM_FILES + tuple(need):
        if not (d / name).is_file():
            raise InputError(f"{d} is not a realsim sim output folder (no {name}): make one with `realsim simulate`")
    meta = read_json(d / "sim.json", "sim summary")
    traj = read_json(d / "trajectories.json", "trajectories file")
    if not isinstance(meta, dict) or not isinstance(traj, dict):
        raise InputError(f"{d}: sim.json and trajectories.json must each hold a JSON object")
    src = (meta.get("provenance") or {}).get("scene")
    if scene_root is not None and src and not same_path(src, scene_root):
        raise InputError(f"sim folder {d} was made from scene {src}, not {scene_root}")
    tensors, tmeta = load_tensors(d / "motion.safetensors")
    if "joints" not in tensors:
        raise InputError(f"{d}/motion.safetensors has no 'joints' tensor")
    joints = tensors["joints"].double().numpy()
    if joints.ndim != 4 or joints.shape[-1] != 3:
        raise InputError(f"{d}/motion.safetensors joints have shape {tuple(joints.shape)}, expected [T,A,J,3]")
    root = tensors["root"].double().numpy() if "root" in tensors else joints[:, :, 0].copy()
    heading = tensors["heading"].double().numpy() if "heading" in tensors else np.zeros(joints.shape[:2])
    if root.shape != joints.shape[:2] + (3,) or heading.shape != joints.shape[:2]:
        raise InputError(f"{d}/motion.safetensors: root {tuple(root.shape)} / heading {tuple(heading.shape)} do not "
                         f"match joints {tuple(joints.shape)}")
    try:
        skel = json.loads(tmeta.get("skeleton", "{}") or "{}")
        names, parents = [str(n) for n in skel.get("names", [])], [int(p) for p in skel.get("parents", [])]
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as e:
        raise InputError(f"{d}/motion.safetensors: bad skeleton metadata ({e})") from None
    if len(parents) != joints.shape[2] or len(names) != joints.shape[2]:
        raise InputError(f"{d}/motion.safetensors: skeleton has {len(parents)} joints ({len(names)} names), motion "
                         f"{joints.shape[2]}")
    props = read_json(d / "props.json", "props file", ("props",)) if (d / "props.json").is_file() else None
    if props is not None and not isinstance(props["props"], list):
        raise InputError(f"{d / 'props.json'}: 'props' must be a list")
    fps = float(meta.get("fps") or traj.get("fps") or tmeta.get("fps") or 30.0)
    scale = float((meta.get("world") or {}).get("scale") or 1.0)
    return SimFolder(d, meta, traj, joints, root, heading, names, parents, fps, scale, src, props)
