"""The motion model's fixed frame: the canonical skeleton every clip is retargeted onto, the per-frame feature layout
(see data.py) and the rotation helpers both use. Model frame: Y up, metres, 30 fps.
"""
from __future__ import annotations

import numpy as np

from realsim.assets.skeleton import Skeleton

from ..skin import swing

FPS = 30.0
_CANON = [  # (name, parent, rest offset in metres): the Bandai-Namco skeleton without its constant joint_Root
    ("Hips", -1, (0.0, 0.0, 0.0)),
    ("Spine", 0, (0.157357, 0.0, 0.0)),
    ("Chest", 1, (0.089846, -0.004062, 0.0)),
    ("Neck", 2, (0.163773, 0.0, 0.0)),
    ("Head", 3, (0.064567, 0.0, 0.0)),
    ("Shoulder_L", 2, (0.129942, -0.002427, 0.049804)),
    ("UpperArm_L", 5, (0.053481, 0.0, 0.0)),
    ("LowerArm_L", 6, (0.243286, 0.0, 0.0)),
    ("Hand_L", 7, (0.222916, 0.0, 0.0)),
    ("Shoulder_R", 2, (0.129945, -0.002427, -0.049804)),
    ("UpperArm_R", 9, (-0.053481, 0.0, 0.0)),
    ("LowerArm_R", 10, (-0.243289, 0.000003, 0.0)),
    ("Hand_R", 11, (-0.222915, -0.000001, 0.0)),
    ("UpperLeg_L", 0, (-0.021925, -0.064694, 0.0)),
    ("LowerLeg_L", 13, (0.390811, 0.0, 0.0)),
    ("Foot_L", 14, (0.409854, 0.0, 0.0)),
    ("Toes_L", 15, (0.117543, 0.0, 0.0)),
    ("UpperLeg_R", 0, (-0.021925, 0.064694, 0.0)),
    ("LowerLeg_R", 17, (-0.390811, -0.000023, -0.000402)),
    ("Foot_R", 18, (-0.409854, 0.0, 0.0)),
    ("Toes_R", 19, (-0.117543, 0.0, 0.0)),
]
FOOT_JOINTS = (("Foot_L", "Toes_L"), ("Foot_R", "Toes_R"))
SOLE_HEIGHT = {"Foot": 0.117, "Toes": 0.042}  # rest height of ankle / toe joints above the floor when standing (m)


def canonical_skeleton() -> Skeleton:
    """The one skeleton every clip is retargeted onto (21 joints, metres, Y up)."""
    return Skeleton([n for n, _, _ in _CANON], np.array([p for _, p, _ in _CANON]), np.array([o for _, _, o in _CANON]))


SKELETON = canonical_skeleton()
J = SKELETON.n_joints
D_FEAT = 4 + 9 * J + 2
SL_VEL, SL_YAW, SL_H = slice(0, 2), 2, 3
SL_ROT = slice(4, 4 + 6 * J)
SL_POS = slice(4 + 6 * J, 4 + 9 * J)
SL_CONTACT = slice(4 + 9 * J, 4 + 9 * J + 2)
FOOT_IDX = [(SKELETON.index(a), SKELETON.index(b)) for a, b in FOOT_JOINTS]


# ----------------------------------------------------------------------------------------------------- rotation helpers
def rot_y(theta: np.ndarray) -> np.ndarray:
    """Rotations [...,3,3] about +Y by theta [...]."""
    c, s = np.cos(theta), np.sin(theta)
    R = np.zeros(np.shape(theta) + (3, 3))
    R[..., 0, 0] = c
    R[..., 0, 2] = s
    R[..., 1, 1] = 1
    R[..., 2, 0] = -s
    R[..., 2, 2] = c
    return R


def mat_to_6d(R: np.ndarray) -> np.ndarray:
    """[...,3,3] -> [...,6]: the first two columns (Zhou et al. 2019)."""
    return np.concatenate([R[..., :, 0], R[..., :, 1]], -1)


def sixd_to_mat(x):
    """[...,6] -> [...,3,3] by Gram-Schmidt; works for numpy and torch."""
    if isinstance(x, np.ndarray):
        a, b = x[..., :3], x[..., 3:]
        a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-8)
        b = b - (a * b).sum(-1, keepdims=True) * a
        b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-8)
        return np.stack([a, b, np.cross(a, b)], -1)
    import torch

    a, b = x[..., :3], x[..., 3:]
    a = torch.nn.functional.normalize(a, dim=-1)
    b = torch.nn.functional.normalize(b - (a * b).sum(-1, keepdim=True) * a, dim=-1)
    return torch.stack([a, b, torch.cross(a, b, dim=-1)], -1)


def wrap_angle(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations R [T,3,3] minimising sum |R src_i - dst_i|^2; src [N,3], dst [T,N,3]."""
    H = np.einsum("ni,tnj->tij", src, dst)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    S = np.broadcast_to(np.eye(3), H.shape).copy()
    S[:, 2, 2] = d
    return np.swapaxes(Vt, -1, -2) @ S @ np.swapaxes(U, -1, -2)


_swing = swing  # smallest rotation between directions, shared with the skinned bodies (sim/skin.py)
