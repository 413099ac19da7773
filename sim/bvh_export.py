"""Simulated agents as BVH files (one per agent): the motion the video shows, for animation tools (Blender, MotionBuilder).

Each joint's rotation is the skinned body's (sim/skin.py `bone_rotations`, recovered from the joint positions against a
standing bind pose with the agent's own bone lengths); offsets are that bind pose's bones; the root carries the world
position. Written in metres, Y up, like `realsim motion sample` (world (x, y, z) -> BVH (y, z, x), the model frame), so
forward kinematics of the file reproduces the sim's joints up to the bind pose's rigid bones.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from realsim.assets.atomic import atomic_dir
from realsim.assets.bvh import write_bvh

from .body import _body_for
from .motion.controller import M_TO_WORLD
from .usd_record import SimRecord

__all__ = ["agent_bvh_channels", "write_agent_bvhs", "WORLD_TO_BVH"]

WORLD_TO_BVH = M_TO_WORLD.T  # world (x, y, z) +Z up -> BVH (y, z, x) +Y up, the motion model's own frame


def agent_bvh_channels(names: list[str], parents: list[int], joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets [J,3], root positions [T,3], local rotations [T,J,3,3]) in the BVH frame for one agent's joints [T,J,3]."""
    J3 = np.asarray(joints, np.float64)
    body = _body_for(tuple(names), tuple(int(p) for p in parents))
    R, B = body.track_rotations(J3)  # [T,J,3,3] world rotation of each joint from the bind pose B [1,J,3]
    par = np.asarray(parents)
    C = WORLD_TO_BVH
    offsets = np.zeros((len(names), 3))
    local = R.copy()
    for j, p in enumerate(par):
        if p >= 0:
            offsets[j] = C @ (B[0, j] - B[0, p])
            local[:, j] = np.swapaxes(R[:, p], -1, -2) @ R[:, j]
    local = C @ local @ C.T  # the same rotations seen in the BVH frame
    root = J3[:, int(np.flatnonzero(par < 0)[0])] @ C.T  # [T,3]
    return offsets, root, local


def write_agent_bvhs(rec: SimRecord, out_dir: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """One `agent_NN.bvh` per agent into out_dir (written all-or-nothing), at the sim's fps; returns the paths."""
    out_dir = Path(out_dir)
    names = []
    with atomic_dir(out_dir, overwrite) as tmp:
        for a in range(rec.n_agents):
            offsets, root, local = agent_bvh_channels(rec.names, rec.parents, rec.joints[:, a])
            name = f"agent_{a:02d}.bvh"
            write_bvh(tmp / name, list(rec.names), np.asarray(rec.parents), offsets, root, local, 1.0 / rec.fps)
            names.append(name)
    return [out_dir / n for n in names]
