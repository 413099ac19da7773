"""Kinematic skeleton (names, parents, rest offsets in metres) with forward kinematics; numpy or torch arrays alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# COCO-17 keypoint names, in order (keypoints.json "categories").
COCO17 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
          "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
          "right_ankle"]

# Candidate joint names for each COCO-17 keypoint (first match wins): mocap names (Bandai-Namco, CMU-style BVH), then the
# COCO name itself (the procedural walker's skeleton, sim/gait.py, names its joints that way).
_COCO_CANDIDATES: list[tuple[str, ...]] = [
    (*cands, coco) for cands, coco in zip([
        ("Head", "head", "Nose"), ("LeftEye",), ("RightEye",), ("LeftEar",), ("RightEar",),
        ("UpperArm_L", "LeftArm", "LeftShoulder"), ("UpperArm_R", "RightArm", "RightShoulder"),
        ("LowerArm_L", "LeftForeArm"), ("LowerArm_R", "RightForeArm"),
        ("Hand_L", "LeftHand"), ("Hand_R", "RightHand"),
        ("UpperLeg_L", "LeftUpLeg"), ("UpperLeg_R", "RightUpLeg"),
        ("LowerLeg_L", "LeftLeg"), ("LowerLeg_R", "RightLeg"),
        ("Foot_L", "LeftFoot"), ("Foot_R", "RightFoot"),
    ], COCO17)
]


@dataclass
class Skeleton:
    """A joint tree: parents[j] < j for every non-root joint (root has -1); offsets are rest translations from the parent."""

    names: list[str]        # [J]
    parents: np.ndarray     # [J] int64
    offsets: np.ndarray     # [J,3] metres, in the parent's frame

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        J = len(self.names)
        if self.parents.shape != (J,) or self.offsets.shape != (J, 3):
            raise ValueError("Skeleton: names, parents [J], offsets [J,3] disagree")
        if self.parents[0] != -1 or any(self.parents[j] >= j or self.parents[j] < 0 for j in range(1, J)):
            raise ValueError("Skeleton: parents must be topologically ordered with the root first")

    @property
    def n_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def fk(self, local_rot, root_pos, local_trans=None):
        """Forward kinematics. local_rot [...,J,3,3], root_pos [...,3] -> (global_rot [...,J,3,3], positions [...,J,3]).

        local_trans [...,J,3], if given, replaces the rest offsets per frame (BVH position channels)."""
        is_torch = not isinstance(local_rot, np.ndarray)
        offs = self.offsets
        if is_torch:
            import torch

            offs = torch.as_tensor(offs, dtype=local_rot.dtype, device=local_rot.device)
        g_rot = [local_rot[..., 0, :, :]]
        g_pos = [root_pos]
        for j in range(1, self.n_joints):
            p = int(self.parents[j])
            o = offs[j] if local_trans is None else local_trans[..., j, :]
            g_pos.append(g_pos[p] + (g_rot[p] @ o[..., None])[..., 0])
            g_rot.append(g_rot[p] @ local_rot[..., j, :, :])
        if is_torch:
            import torch

            return torch.stack(g_rot, -3), torch.stack(g_pos, -2)
        return np.stack(g_rot, -3), np.stack(g_pos, -2)

    def coco17(self) -> list[int]:
        """Joint index for each COCO-17 keypoint, or -1 where the skeleton has no such joint."""
        out = []
        for cands in _COCO_CANDIDATES:
            idx = next((self.names.index(c) for c in cands if c in self.names), -1)
            out.append(idx)
        return out

    def to_dict(self) -> dict:
        return {"names": list(self.names), "parents": self.parents.tolist(), "offsets": self.offsets.tolist()}

    @staticmethod
    def from_dict(d: dict) -> "Skeleton":
        return Skeleton(list(d["names"]), np.asarray(d["parents"]), np.asarray(d["offsets"]))
