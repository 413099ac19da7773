"""Skinned agent body: a low-poly person (head with nose and hair, neck, torso, arms, hands, legs, shoes) built around the
skeleton in a standing bind pose and posed by linear blend skinning (sim/skin.py) from the joint rotations recovered
from the sim's joint positions each frame.

The bind pose is the skeleton's bones, at the agent's own lengths, laid along fixed directions (spine up, arms hanging
ARM_ABDUCTION_DEG out, legs down, feet forward). The torso is sized from the skeleton's own shoulder and hip joints (the
mocap skeleton's shoulder joints sit 10 cm from the spine): a wider torso swallows the upper arms, which then seem to
stick out of its sides. Weights: each ring of the mesh belongs to the bone it lies on and blends into the next bone over
BLEND_M around a joint. Face keypoints (COCO nose, eyes, ears) are points of the bind head moved by the head's rotation.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .looks import AgentLook, random_looks
from .looks import semantic as _semantic
from .skin import bone_rotations, lbs, skin_matrices
from .tubes import TubeBody

__all__ = ["BodyModel", "AgentLook", "random_looks", "coco17_points", "ARM_ABDUCTION_DEG", "COLOR_KEYS"]

ARM_ABDUCTION_DEG = 12.0  # bind-pose angle of the upper arm out from vertical (the pose then turns it as the joints say)
BLEND_M = 0.05  # half-width of the weight blend across a joint (metres along the limb)
COLOR_KEYS = ("shirt", "trousers", "skin", "hair", "shoes")
_FACE = {0: (1.0, 0.0, -0.15), 1: (0.86, 0.36, 0.22), 2: (0.86, -0.36, 0.22), 3: (-0.05, 1.02, 0.0), 4: (-0.05, -1.02, 0.0)}
# COCO face points on the head ellipsoid, in its radii (front, left, up) from its centre; the nose sits on the nose tip


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


class _Mesh:
    """Accumulates rings (loops of `sides` vertices) into parts with caps; geometry per agent [A,...] arrays."""

    def __init__(self, sides: int) -> None:
        self.K = sides
        self.th = np.linspace(0, 2 * np.pi, sides, endpoint=False)
        self.verts: list[np.ndarray] = []  # [A,n,3] blocks
        self.keys: list[str] = []
        self.param: list[np.ndarray] = []  # per vertex (a, b) for colour rules
        self.wj: list[list[tuple[int, float]]] = []
        self.faces: list[list[int]] = []
        self.n = 0

    def part(self, centres, side, front, rs, rf, keys, weights, params=None) -> None:
        """Rings r with centre [A,R,3], side / front axes [A,R,3] (or [3]), radii rs, rf [A,R]; a key and weights per ring."""
        centres = np.asarray(centres)
        A, R = centres.shape[:2]
        side = np.broadcast_to(side, (A, R, 3))
        front = np.broadcast_to(front, (A, R, 3))
        c, s = np.cos(self.th), np.sin(self.th)
        ring = (centres[:, :, None] + (np.asarray(rs)[..., None] * c)[..., None] * side[:, :, None]
                + (np.asarray(rf)[..., None] * s)[..., None] * front[:, :, None])  # [A,R,K,3]
        base = self.n
        K = self.K
        self.verts.append(ring.reshape(A, R * K, 3))
        for r in range(R):
            for k in range(K):
                self.keys.append(keys[r])
                self.wj.append(weights[r])
                self.param.append(np.array(params[r][k] if params is not None else (r / max(R - 1, 1), 0.0)))
        for r in range(R - 1):
            for k in range(K):
                a, b = base + r * K + k, base + r * K + (k + 1) % K
                self.faces += [[a, b, b + K], [a, b + K, a + K]]
        for r, cap in ((0, 0), (R - 1, 1)):  # caps: centre vertices at both ends
            self.verts.append(centres[:, r:r + 1])
            self.keys.append(keys[r])
            self.wj.append(weights[r])
            self.param.append(np.array(params[r][0] if params is not None else (float(cap), 0.0)))
            ci = base + R * K + cap
            for k in range(K):
                a, b = base + r * K + k, base + r * K + (k + 1) % K
                self.faces.append([ci, b, a] if cap == 0 else [ci, a, b])
        self.n = base + R * K + 2


def blend_weights(before: int, after: int, off: float, blend: float = 1.0) -> list[tuple[int, float]]:
    """Weights of a ring `off` (in units of the blend half-width) past the joint between bone owners before / after:
    0.5 / 0.5 at the joint, smoothstep over +-blend."""
    x = float(np.clip(0.5 + off / (2 * blend), 0.0, 1.0))
    f = x * x * (3 - 2 * x)
    if before == after or f >= 1:
        return [(after, 1.0)]
    return [(before, 1 - f)] if f <= 0 else [(before, 1 - f), (after, f)]


class BodyModel:
    """The skinned body for one skeleton: `vertices(joints, heading, looks)` poses all agents at once ([A,V,3] world)."""

    def __init__(self, skeleton, sides: int = 12) -> None:
        self.skeleton = skeleton
        self.sem = _semantic(skeleton)
        self.parents = [int(p) for p in skeleton.parents]
        self._tubes = TubeBody(skeleton)  # limb segments for the physics capsules (segments, _endpoints)
        self.segments = self._tubes.segments
        self.sides = sides
        self._bind_cache: tuple | None = None
        self._key_cache: dict[tuple[float, float], np.ndarray] = {}  # color_keys per (hair_long, sleeves)
        self.dirs = self._bind_dirs()  # [J,3] unit bind direction of each joint's bone from its parent
        ref = self.bind_joints(self._template_joints())
        m = self._mesh(ref, [AgentLook((0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0))])
        self.faces = np.array(m.faces, np.int64)
        self.n_verts = m.n
        self.v_key = list(m.keys)
        self.v_param = np.stack(m.param)  # [V,2]
        kmax = max(len(w) for w in m.wj)
        self.joint_idx = np.zeros((m.n, kmax), np.int64)  # [V,K] influences (weight 0 where unused)
        self.joint_w = np.zeros((m.n, kmax))
        for v, ws in enumerate(m.wj):
            tot = sum(x for _, x in ws)
            for k, (j, x) in enumerate(ws):
                self.joint_idx[v, k], self.joint_w[v, k] = j, x / tot

    # -------------------------------------------------------------------------------------------------- bind pose
    def _ancestors(self, j: int) -> list[int]:
        out = []
        while j >= 0:
            out.append(j)
            j = self.parents[j]
        return out[::-1]

    def _descendants(self, j: int) -> list[int]:
        out = [j]
        for c in range(j + 1, len(self.parents)):
            if self.parents[c] in out:
                out.append(c)
        return out[1:]

    def _bind_dirs(self) -> np.ndarray:
        s, J = self.sem, len(self.parents)
        d = np.tile([0.0, 0.0, 1.0], (J, 1))
        spine = set(self._ancestors(s["head"]))
        a = math.radians(ARM_ABDUCTION_DEG)
        for side, y in (("l", 1.0), ("r", -1.0)):
            sh = s[f"{side}_shoulder"]
            for j in self._ancestors(sh):
                if j not in spine:  # clavicles go up and out, the shoulder out
                    d[j] = _unit([0, y, 0.85 if self.parents[j] in spine else 0.05]) if j == sh else _unit([0, 0.35 * y, 1])
            for j in self._descendants(sh):
                d[j] = _unit([0.03, y * math.sin(a), -math.cos(a)])
            hip = s[f"{side}_hip"]
            for j in self._ancestors(hip):
                if j not in spine:
                    d[j] = _unit([0, y, -0.3])
            for j in self._descendants(hip):
                d[j] = [0.0, 0.0, -1.0]
            for j in self._descendants(s[f"{side}_ankle"]):
                d[j] = _unit([0.8, 0, -0.6])
        return d

    def _template_joints(self) -> np.ndarray:
        """Joints [1,J,3] from the skeleton's rest offsets (only their lengths are used), 0.1 m where an offset is empty."""
        L = np.linalg.norm(np.asarray(self.skeleton.offsets, np.float64), axis=1)
        L = np.where(L > 1e-6, L, 0.1)
        P = np.zeros((1, len(L), 3))
        for j, p in enumerate(self.parents):
            if p >= 0:
                P[0, j] = P[0, p] + L[j] * self.dirs[j]
        return P

    def bind_joints(self, joints: np.ndarray) -> np.ndarray:
        """Standing bind pose [A,J,3] with the bone lengths of joints [A,J,3] (root at the origin, facing +X, +Z up)."""
        J3 = np.asarray(joints, np.float64)
        B = np.zeros_like(J3)
        for j, p in enumerate(self.parents):
            if p >= 0:
                B[:, j] = B[:, p] + np.linalg.norm(J3[:, j] - J3[:, p], axis=-1)[:, None] * self.dirs[j]
        return B

    def _head(self, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Head ellipsoid centre [A,3] and radii (front, side, up) [A,3] in the bind pose."""
        s = self.sem
        g = self._scale(B)[:, None]
        H = B[:, s["head"]]
        if s["head_top"] >= 0:  # a head joint at the skull's centre (a head-top joint above)
            c = H + np.array([0.01, 0.0, 0.0]) * g
        else:  # mocap skeletons put "Head" at the base of the skull
            c = H + np.array([0.015, 0.0, 0.085]) * g
        return c, np.array([0.1, 0.083, 0.115]) * g

    def _scale(self, B: np.ndarray) -> np.ndarray:
        """Body size [A]: leg length (hip to ankle) over a 0.8 m leg."""
        s = self.sem
        leg = np.abs(B[:, s["l_hip"], 2] - B[:, s["l_ankle"], 2])
        return leg / 0.8

    # ------------------------------------------------------------------------------------------------------ mesh
    def _mesh(self, B: np.ndarray, looks: list[AgentLook]) -> _Mesh:
        from .body_parts import build_parts

        m = _Mesh(self.sides)
        build_parts(self, m, B, looks)
        return m

    def bind_vertices(self, bind: np.ndarray, looks: list[AgentLook]) -> np.ndarray:
        """Bind-pose vertices [A,V,3] of agents with bind joints [A,J,3] and looks (build, shape); the last answer is
        kept (the same agents frame after frame have the same bind pose: bone lengths do not change)."""
        B = np.asarray(bind, np.float64)
        key = (B.shape, np.round(B, 7).tobytes(), repr(looks))
        if self._bind_cache is None or self._bind_cache[0] != key:
            self._bind_cache = (key, np.concatenate(self._mesh(B, looks).verts, 1))
        return self._bind_cache[1].copy()

    # ------------------------------------------------------------------------------------------------------- pose
    def rotations(self, joints: np.ndarray, bind: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rotations from the bind pose [A,J,3,3], bind joints [A,J,3]) for joints [A,J,3]."""
        J3 = np.asarray(joints, np.float64)
        B = self.bind_joints(J3) if bind is None else np.asarray(bind, np.float64)
        return bone_rotations(self.parents, B, J3), B

    def track_rotations(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One agent's track joints [T,J,3] against one bind pose with its first frame's bone lengths, as a rig (UsdSkel,
        BVH) holds it: (rotations from that bind pose [T,J,3,3], bind joints [1,J,3])."""
        J3 = np.asarray(joints, np.float64)
        B = self.bind_joints(J3[:1])
        R, _ = self.rotations(J3, np.broadcast_to(B, J3.shape))
        return R, B

    def vertices(self, joints: np.ndarray, heading: np.ndarray | None, looks: list[AgentLook],
                 bind: np.ndarray | None = None) -> np.ndarray:
        """Posed vertices [A,V,3] (world) for joints [A,J,3] (heading is not needed: the joints carry the rotations)."""
        J3 = np.asarray(joints, np.float64)
        if len(J3) == 0:
            return np.zeros((0, self.n_verts, 3))
        R, B = self.rotations(J3, bind)
        return lbs(self.bind_vertices(B, looks), skin_matrices(R, B, J3), self.joint_idx, self.joint_w)

    def color_keys(self, look: AgentLook) -> np.ndarray:
        """Index into COLOR_KEYS per vertex [V] for one agent (hair length and sleeves follow its look; cached per look:
        the per-vertex loop cost ~4 ms per agent and frame)."""
        key = (float(look.hair_long), float(look.sleeves))
        if key not in self._key_cache:
            self._key_cache[key] = self._color_keys(look)
            self._key_cache[key].flags.writeable = False
        return self._key_cache[key]

    def _color_keys(self, look: AgentLook) -> np.ndarray:
        out = np.empty(self.n_verts, np.int64)
        for i, k in enumerate(self.v_key):
            a, b = self.v_param[i]
            if k == "head":  # (a, b) = the vertex's (front, up) on the unit head ellipsoid
                k = "hair" if (b > 0.28 + 0.2 * a) or (a < -0.2 and b > -0.25 - 4 * look.hair_long) else "skin"
            elif k == "arm":  # a = fraction of the way from shoulder to wrist
                k = "shirt" if a <= 0.45 + 0.55 * look.sleeves else "skin"
            out[i] = COLOR_KEYS.index(k)
        return out

    def colors(self, looks: list[AgentLook]) -> np.ndarray:
        """Vertex colours [A,V,3]."""
        out = np.empty((len(looks), self.n_verts, 3))
        for a, lk in enumerate(looks):
            table = np.array([getattr(lk, k) for k in COLOR_KEYS], np.float64)
            out[a] = table[self.color_keys(lk)]
        return out

    def face_points(self, joints: np.ndarray) -> np.ndarray:
        """COCO face keypoints (nose, eyes, ears) [A,5,3] in world: points of the bind head turned by the head's rotation."""
        J3 = np.asarray(joints, np.float64)
        if len(J3) == 0:
            return np.zeros((0, 5, 3))
        R, B = self.rotations(J3)
        h = self.sem["head"]
        c, r = self._head(B)
        loc = np.array([_FACE[k] for k in range(5)])  # [5,3] in radii
        pts = c[:, None] + loc[None] * r[:, None]  # [A,5,3] bind
        return np.einsum("aij,anj->ani", R[:, h], pts - B[:, h][:, None]) + J3[:, h][:, None]

    def _endpoints(self, J: np.ndarray, heading: np.ndarray) -> dict[str, np.ndarray]:
        """Limb segment endpoints (the tube body's) for the physics capsules."""
        return self._tubes._endpoints(J, heading)


@functools.lru_cache(maxsize=8)
def _body_for(names: tuple[str, ...], parents: tuple[int, ...]) -> BodyModel:
    from realsim.assets.skeleton import Skeleton

    return BodyModel(Skeleton(list(names), np.array(parents), np.zeros((len(names), 3))))


def coco17_points(skeleton, joints: np.ndarray, heading: np.ndarray | None = None) -> np.ndarray:
    """COCO-17 keypoints [A,17,3] in world: body joints from the skeleton's map, the face (nose, eyes, ears) from the head
    joint's rotation (the body's head, not the walking direction)."""
    J = np.asarray(joints, np.float64)
    coco = list(skeleton.coco17())
    body = _body_for(tuple(skeleton.names), tuple(int(p) for p in skeleton.parents))
    out = np.zeros((J.shape[0], 17, 3))
    out[:, :5] = body.face_points(J)
    for k in range(5, 17):
        out[:, k] = J[:, coco[k]]
    return out
