"""UsdSkel rigs for simulated agents: the sim's own skinned body (sim/body.py) as a UsdSkel skeleton, animation and mesh.

The rig keeps the sim's skeleton (names, parents). Joint k's world transform at frame t is [R_k(t) | j_k(t)]: its
rotation from the standing bind pose (recovered from the joint positions, sim/skin.py) and its position; the bind
transforms are [I | jbar_k] (the bind pose, world-aligned), the points are the bind-pose body and the skin weights are
the body's. UsdSkel's skinning (W(t) W_bind^-1, blended by the weights) is then the same linear blend skinning the video
was drawn with, vertex for vertex (tests/test_usd_sim.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import COLOR_KEYS, AgentLook, BodyModel

__all__ = ["AgentRig", "agent_rig", "skin_points", "COLOR_KEYS"]


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
    bind: np.ndarray  # [J,4,4] world bind transforms


def agent_rig(body: BodyModel, joints: np.ndarray, heading: np.ndarray, look: AgentLook) -> AgentRig:
    """The rig of one agent from its joints [T,J,3] (world metres); heading [T] is not needed (kept for callers)."""
    J3 = np.asarray(joints, np.float64)
    T, J = J3.shape[:2]
    R, B = body.track_rotations(J3)  # [T,J,3,3] from the bind pose B [1,J,3] (the first frame's bone lengths)
    posed = body.vertices(J3, None, [look] * T, bind=np.broadcast_to(B, J3.shape))
    W = np.tile(np.eye(4), (T, J, 1, 1))
    W[..., :3, :3] = R
    W[..., :3, 3] = J3
    Wb = np.tile(np.eye(4), (J, 1, 1))
    Wb[:, :3, 3] = B[0]
    points = body.bind_vertices(B, [look])[0]
    key = body.color_keys(look)
    colors = np.array([getattr(look, k) for k in COLOR_KEYS], np.float64)
    ext = np.stack([posed.min(1), posed.max(1)], 1)
    return AgentRig(W, points, body.faces.copy(), body.joint_idx.copy(), body.joint_w.copy(), key[body.faces[:, 0]], colors,
                    ext, posed, Wb)


def skin_points(rig: AgentRig, t: int) -> np.ndarray:
    """Linear-blend-skinned body points [V,3] at frame t (what a UsdSkel reader computes), for checks."""
    M = rig.world[t] @ np.linalg.inv(rig.bind)  # [J,4,4] skinning matrices
    P = np.c_[rig.points, np.ones(len(rig.points))]
    out = np.zeros((len(P), 3))
    for k in range(rig.joint_indices.shape[1]):
        out += rig.joint_weights[:, k:k + 1] * np.einsum("vij,vj->vi", M[rig.joint_indices[:, k]], P)[:, :3]
    return out
