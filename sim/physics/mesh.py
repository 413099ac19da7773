"""Triangle meshes of props for the mesh renderer: one local mesh per prop, posed per frame from props.json's state."""
from __future__ import annotations

import numpy as np

from ..scenario import PropSpec
from .engine import quat_rotate
from .model import mujoco_size

__all__ = ["PropMeshes", "prop_mesh"]


def prop_mesh(p: PropSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices [V,3] in the prop's frame, faces [F,3], colours [V,3]); a darker band on +x so spin shows."""
    import trimesh

    s = mujoco_size(p)
    if p.shape == "sphere":
        m = trimesh.creation.icosphere(subdivisions=3, radius=s[0])
    elif p.shape == "box":
        m = trimesh.creation.box(extents=[2 * s[0], 2 * s[1], 2 * s[2]])
        m = m.subdivide()
    elif p.shape == "capsule":
        m = trimesh.creation.capsule(height=2 * s[1], radius=s[0], count=[16, 16])
    else:
        m = trimesh.creation.cylinder(radius=s[0], height=2 * s[1], sections=24)
    v = np.asarray(m.vertices, np.float64)
    f = np.asarray(m.faces, np.int64)
    col = np.tile(np.asarray(p.color, np.float64), (len(v), 1))
    ext = np.abs(v).max(0)
    band = v[:, 0] > 0.55 * ext[0]
    col[band] *= 0.45
    return v, f, col


class PropMeshes:
    """All props' meshes concatenated: `vertices(quat [P,4], pos [P,3])` poses them; face_prop [F] says whose face is which."""

    def __init__(self, props: list[PropSpec]) -> None:
        parts = [prop_mesh(p) for p in props]
        self.local = [p[0] for p in parts]
        off = np.cumsum([0] + [len(p[0]) for p in parts])
        self.faces = np.concatenate([p[1] + off[i] for i, p in enumerate(parts)]) if parts else np.zeros((0, 3), np.int64)
        self.colors = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, 3))
        self.face_prop = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)]) if parts else np.zeros(0, int)
        self.vert_prop = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)]) if parts else np.zeros(0, int)
        self.radius = np.array([np.linalg.norm(v, axis=1).max() for v in self.local])

    def vertices(self, quat: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return np.concatenate([quat_rotate(quat[i][None], v) + pos[i] for i, v in enumerate(self.local)])
