"""UsdSkel rigs for simulated agents: joint transforms and skin weights from the sim's joint positions and body mesh.

The sim stores joint positions only ([T,J,3], world metres) and draws bodies with BodyModel (tubes between joints,
re-framed every frame). The rig keeps the sim's skeleton (names, parents) and gives every joint a rigid world transform
per frame: translation = the joint's position; rotation = the best rigid rotation (Kabsch) of the body segment that joint
drives (torso: the root, upper arm: the shoulder, shin: the knee, ...) from the first frame to frame t; joints that drive
no segment turn with their parent. The bind pose is the first frame with world-aligned joint frames, so a body vertex on
segment s at frame t is R_s(t) (p(0) - j(0)) + j(t); vertices at a joint ring (BodyModel blends them 0.5/0.5) get two
influences. What remains is the body's stretch, which rigid joints cannot show (measured in tests/test_usd_sim.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import AgentLook, BodyModel

__all__ = ["AgentRig", "agent_rig", "skin_points", "SEGMENT_DRIVER", "COLOR_KEYS"]

# BodyModel segment -> the semantic joint (BodyModel.sem) whose transform carries it
SEGMENT_DRIVER = {"torso": "pelvis", "neck": "neck", "head": "head", "l_upper": "l_shoulder", "r_upper": "r_shoulder",
                  "l_fore": "l_elbow", "r_fore": "r_elbow", "l_hand": "l_wrist", "r_hand": "r_wrist", "l_thigh": "l_hip",
                  "r_thigh": "r_hip", "l_shin": "l_knee", "r_shin": "r_knee", "l_foot": "l_ankle", "r_foot": "r_ankle"}
COLOR_KEYS = ("shirt", "trousers", "skin", "hair", "shoes")


@dataclass
class AgentRig:
    """One agent: world [T,J,4,4] joint transforms, bind-pose body points [V,3], faces [F,3], skin joint_indices /
    joint_weights [V,2], face_group [F] (index into colors), colors [5,3] (COLOR_KEYS), extents [T,2,3]."""

    world: np.ndarray
    points: np.ndarray
    faces: np.ndarray
    joint_indices: np.ndarray
    joint_weights: np.ndarray
    face_group: np.ndarray
    colors: np.ndarray
    extents: np.ndarray
    posed: np.ndarray  # [T,V,3] BodyModel's own vertices (what the sim rendered)


def _kabsch(X0: np.ndarray, Xt: np.ndarray) -> np.ndarray:
    """Rotations [T,3,3] taking the centred point set X0 [n,3] onto Xt [T,n,3] (least squares, det +1)."""
    A = X0 - X0.mean(0)
    B = Xt - Xt.mean(1, keepdims=True)
    H = np.einsum("ni,tnj->tij", A, B)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.swapaxes(-1, -2) @ U.swapaxes(-1, -2)))
    D = np.zeros_like(H)
    D[:, 0, 0] = 1
    D[:, 1, 1] = 1
    D[:, 2, 2] = d
    return Vt.swapaxes(-1, -2) @ D @ U.swapaxes(-1, -2)


def _driver(body: BodyModel, key: str) -> int:
    j = body.sem.get(SEGMENT_DRIVER[key], -1)
    if j < 0 and key == "neck":  # skeletons without a neck joint: the head's parent carries the neck
        j = int(body.skeleton.parents[body.sem["head"]])
    return int(j)


def agent_rig(body: BodyModel, joints: np.ndarray, heading: np.ndarray, look: AgentLook) -> AgentRig:
    """The rig of one agent from its joints [T,J,3] (world metres) and headings [T]."""
    J3 = np.asarray(joints, np.float64)
    T, J = J3.shape[:2]
    posed = np.stack([body.vertices(J3[t][None], np.asarray(heading, np.float64)[t:t + 1], [look])[0] for t in range(T)])
    parents = [int(p) for p in body.skeleton.parents]
    R = np.tile(np.eye(3), (T, J, 1, 1))
    driven = np.zeros(J, bool)
    seg_joint = np.empty(len(body.segments), np.int64)
    for s, seg in enumerate(body.segments):
        j = _driver(body, seg[0])
        seg_joint[s] = j
        if driven[j]:
            continue
        sel = (body.v_seg == s) & (body.v_w == 0)
        R[:, j] = _kabsch(posed[0, sel], posed[:, sel])
        driven[j] = True
    for j, p in enumerate(parents):  # joints that drive nothing turn with their parent (parents[j] < j)
        if not driven[j] and p >= 0:
            R[:, j] = R[:, p]
    W = np.tile(np.eye(4), (T, J, 1, 1))
    W[..., :3, :3] = R
    W[..., :3, 3] = J3  # R[0] is the identity: the bind pose is frame 0 with world-aligned joint frames
    own = seg_joint[body.v_seg]
    blend = body.v_par >= 0
    other = np.where(blend, seg_joint[np.where(blend, body.v_par, 0)], own)
    w_own = 1.0 - body.v_w
    idx = np.stack([own, other], 1)
    wts = np.stack([w_own, 1.0 - w_own], 1)
    same = idx[:, 0] == idx[:, 1]
    wts[same] = [1.0, 0.0]
    key = np.array([COLOR_KEYS.index(c) for c in body.v_col])
    colors = np.array([getattr(look, k) for k in COLOR_KEYS], np.float64)
    ext = np.stack([posed.min(1), posed.max(1)], 1)
    return AgentRig(W, posed[0], body.faces.copy(), idx, wts, key[body.faces[:, 0]], colors, ext, posed)


def skin_points(rig: AgentRig, t: int) -> np.ndarray:
    """Linear-blend-skinned body points [V,3] at frame t (what a UsdSkel reader computes), for checks."""
    M = rig.world[t] @ np.linalg.inv(rig.world[0])  # [J,4,4] skinning matrices
    P = np.c_[rig.points, np.ones(len(rig.points))]
    out = np.zeros((len(P), 3))
    for k in range(rig.joint_indices.shape[1]):
        out += rig.joint_weights[:, k:k + 1] * np.einsum("vij,vj->vi", M[rig.joint_indices[:, k]], P)[:, :3]
    return out
