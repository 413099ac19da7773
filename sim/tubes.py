"""The earlier tube body: 15 tapered elliptical tubes between joints, re-framed every frame by the root heading.

Kept for the physics engine's limb capsules (segment endpoints, `_endpoints`) and as the bench's reference row; the video
draws the skinned body of sim/body.py.
"""
from __future__ import annotations

import math

import numpy as np

from .looks import AgentLook, semantic

__all__ = ["TubeBody"]


# segment: (name, start, end, radii profile over rings, colour key per ring, depth/side ratio, hard end offsets)
_RINGS = 6


class TubeBody:
    """Topology of the low-poly body for one skeleton; `vertices(joints, heading, looks)` poses all agents at once."""

    def __init__(self, skeleton, sides: int = 10) -> None:
        self.skeleton = skeleton
        self.sem = semantic(skeleton)
        self.sides = sides
        t = np.linspace(0, 1, _RINGS)
        sph = np.sqrt(np.clip(np.sin(np.pi * np.clip(t, 0.02, 0.98)), 0, 1))
        # (key, A, B, radii [R], colours [R], depth ratio, blend-with-parent segment or None)
        self.segments = [
            ("torso", "pelvis_low", "neck", np.array([0.15, 0.16, 0.15, 0.16, 0.19, 0.13]), ["trousers", "trousers", "shirt", "shirt", "shirt", "shirt"], 0.62, None),
            ("neck", "neck", "head_low", np.full(_RINGS, 0.055), ["skin"] * _RINGS, 1.0, None),
            ("head", "head_low", "head_top", 0.105 * sph + 0.01, ["skin", "skin", "skin", "skin", "hair", "hair"], 1.1, None),
            ("l_upper", "l_shoulder", "l_elbow", np.linspace(0.058, 0.045, _RINGS), ["shirt"] * _RINGS, 1.0, None),
            ("r_upper", "r_shoulder", "r_elbow", np.linspace(0.058, 0.045, _RINGS), ["shirt"] * _RINGS, 1.0, None),
            ("l_fore", "l_elbow", "l_wrist", np.linspace(0.044, 0.034, _RINGS), ["shirt", "shirt", "skin", "skin", "skin", "skin"], 1.0, "l_upper"),
            ("r_fore", "r_elbow", "r_wrist", np.linspace(0.044, 0.034, _RINGS), ["shirt", "shirt", "skin", "skin", "skin", "skin"], 1.0, "r_upper"),
            ("l_hand", "l_wrist", "l_hand_end", np.array([0.034, 0.04, 0.04, 0.036, 0.03, 0.015]), ["skin"] * _RINGS, 0.55, "l_fore"),
            ("r_hand", "r_wrist", "r_hand_end", np.array([0.034, 0.04, 0.04, 0.036, 0.03, 0.015]), ["skin"] * _RINGS, 0.55, "r_fore"),
            ("l_thigh", "l_hip", "l_knee", np.linspace(0.092, 0.062, _RINGS), ["trousers"] * _RINGS, 1.0, None),
            ("r_thigh", "r_hip", "r_knee", np.linspace(0.092, 0.062, _RINGS), ["trousers"] * _RINGS, 1.0, None),
            ("l_shin", "l_knee", "l_ankle", np.linspace(0.06, 0.045, _RINGS), ["trousers"] * _RINGS, 1.0, "l_thigh"),
            ("r_shin", "r_knee", "r_ankle", np.linspace(0.06, 0.045, _RINGS), ["trousers"] * _RINGS, 1.0, "r_thigh"),
            ("l_foot", "l_heel", "l_toe", np.array([0.045, 0.05, 0.05, 0.048, 0.044, 0.03]), ["shoes"] * _RINGS, 0.6, None),
            ("r_foot", "r_heel", "r_toe", np.array([0.045, 0.05, 0.05, 0.048, 0.044, 0.03]), ["shoes"] * _RINGS, 0.6, None),
        ]
        self._build()

    def _build(self) -> None:
        R, K = _RINGS, self.sides
        names = [s[0] for s in self.segments]
        th = np.linspace(0, 2 * np.pi, K, endpoint=False)
        verts_seg, verts_t, verts_cs, verts_col, verts_par, verts_w = [], [], [], [], [], []
        faces = []
        base = 0
        for si, (name, _a, _b, radii, cols, ratio, parent) in enumerate(self.segments):
            pi = names.index(parent) if parent else -1
            for r in range(R):
                t = r / (R - 1)
                for k in range(K):
                    verts_seg.append(si)
                    verts_t.append(t)
                    # cross-section: (side, forward) offsets; "forward" for feet is vertical-ish (flattened)
                    verts_cs.append([radii[r] * math.cos(th[k]), radii[r] * ratio * math.sin(th[k])])
                    verts_col.append(cols[r])
                    verts_par.append(pi if (r == 0 and pi >= 0) else -1)
                    verts_w.append(0.5 if (r == 0 and pi >= 0) else 0.0)
            for r in range(R - 1):
                for k in range(K):
                    a = base + r * K + k
                    b = base + r * K + (k + 1) % K
                    c = base + (r + 1) * K + (k + 1) % K
                    d = base + (r + 1) * K + k
                    faces += [[a, b, c], [a, c, d]]
            # caps: centre vertices at both ends
            for r, tt in ((0, 0.0), (R - 1, 1.0)):
                verts_seg.append(si); verts_t.append(tt); verts_cs.append([0.0, 0.0]); verts_col.append(cols[r])
                verts_par.append(-1); verts_w.append(0.0)
                cidx = base + R * K + (0 if r == 0 else 1)
                for k in range(K):
                    a = base + r * K + k
                    b = base + r * K + (k + 1) % K
                    faces.append([cidx, b, a] if r == 0 else [cidx, a, b])
            base += R * K + 2
        self.v_seg = np.array(verts_seg)
        self.v_t = np.array(verts_t)
        self.v_cs = np.array(verts_cs)
        self.v_col = verts_col
        self.v_par = np.array(verts_par)
        self.v_w = np.array(verts_w)
        self.faces = np.array(faces, np.int64)
        self.n_verts = len(verts_seg)

    def _endpoints(self, J: np.ndarray, heading: np.ndarray) -> dict[str, np.ndarray]:
        """Named points [A,3] the segments run between, from joints [A,J,3]."""
        s = self.sem
        up = np.array([0.0, 0.0, 1.0])
        fwd = np.stack([np.cos(heading), np.sin(heading), np.zeros_like(heading)], -1)
        P = {k: J[:, v] for k, v in s.items() if v >= 0 and k not in ("head_top", "l_toe", "r_toe", "neck")}
        P["neck"] = J[:, s["neck"]] if s["neck"] >= 0 else 0.5 * (P["l_shoulder"] + P["r_shoulder"]) + up * 0.03
        P["pelvis_low"] = 0.5 * (P["l_hip"] + P["r_hip"]) - up * 0.06
        if s["head_top"] >= 0:  # head joint at the skull's centre, a head-top joint above it
            P["head_low"] = P["head"] - up * 0.1
            P["head_top"] = J[:, s["head_top"]] + up * 0.02
        else:  # mocap skeletons put "Head" at the base of the skull
            P["head_low"] = P["head"] - up * 0.03
            P["head_top"] = P["head"] + up * 0.22
        for sd in ("l", "r"):
            fa = P[f"{sd}_wrist"] - P[f"{sd}_elbow"]
            fa = fa / np.linalg.norm(fa, axis=-1, keepdims=True).clip(1e-9)
            P[f"{sd}_hand_end"] = P[f"{sd}_wrist"] + fa * 0.17
            ank = P[f"{sd}_ankle"]
            if s[f"{sd}_toe"] >= 0:
                toe = J[:, s[f"{sd}_toe"]]
                fdir = toe - ank
                fdir[..., 2] = 0
                fdir = fdir / np.linalg.norm(fdir, axis=-1, keepdims=True).clip(1e-9)
            else:
                fdir = fwd
            ground = ank[..., 2] - 0.07
            P[f"{sd}_heel"] = np.concatenate([ank[..., :2] - fdir[..., :2] * 0.06, (ground + 0.045)[..., None]], -1)
            P[f"{sd}_toe"] = np.concatenate([ank[..., :2] + fdir[..., :2] * 0.19, (ground + 0.035)[..., None]], -1)
        return P

    def vertices(self, joints: np.ndarray, heading: np.ndarray, looks: list[AgentLook]) -> np.ndarray:
        """Posed vertices [A,V,3] (world) for joints [A,J,3] and headings [A]."""
        J = np.asarray(joints, np.float64)
        A = J.shape[0]
        P = self._endpoints(J, np.asarray(heading, np.float64))
        Apt = np.stack([P[s[1]] for s in self.segments], 1)  # [A,S,3]
        Bpt = np.stack([P[s[2]] for s in self.segments], 1)
        d = Bpt - Apt
        d = d / np.linalg.norm(d, axis=-1, keepdims=True).clip(1e-9)
        h = np.stack([np.cos(heading), np.sin(heading), np.zeros(A)], -1)[:, None].repeat(len(self.segments), 1)
        up = np.broadcast_to(np.array([0.0, 0, 1]), h.shape)
        ref = np.where((np.abs((d * h).sum(-1)) > 0.9)[..., None], up, h)
        side = np.cross(d, ref)
        side = side / np.linalg.norm(side, axis=-1, keepdims=True).clip(1e-9)
        fw = np.cross(side, d)
        build = np.array([lk.build for lk in looks])[:, None, None]

        def place(seg: np.ndarray, t: np.ndarray) -> np.ndarray:  # [A,V,3]
            cs = self.v_cs[None] * build
            return (Apt[:, seg] + t[None, :, None] * (Bpt[:, seg] - Apt[:, seg])
                    + cs[..., 0:1] * side[:, seg] + cs[..., 1:2] * fw[:, seg])

        own = place(self.v_seg, self.v_t)
        blend = self.v_par >= 0
        if blend.any():
            par = np.where(blend, self.v_par, self.v_seg)
            other = place(par, np.where(blend, 1.0, self.v_t))
            w = self.v_w[None, :, None]
            own = (1 - w) * own + w * other
        return own

    def colors(self, looks: list[AgentLook]) -> np.ndarray:
        """Vertex colours [A,V,3]."""
        out = np.empty((len(looks), self.n_verts, 3))
        for a, lk in enumerate(looks):
            table = {"shirt": lk.shirt, "trousers": lk.trousers, "skin": lk.skin, "hair": lk.hair, "shoes": lk.shoes}
            out[a] = np.array([table[c] for c in self.v_col])
        return out
