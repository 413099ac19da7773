"""SYNTHETIC capture: a procedural street (ground, facades, props, procedural textures) photographed along a walk.

The demo's input when no real photos are given. Rendered by realsim's own mesh rasteriser (render/mesh.py) with textures
evaluated per pixel in world space (cobbles, slabs, bricks, plaster, windows, posters, wood, foliage), so structure from
motion finds plenty of features. Every file it writes says SYNTHETIC (file names and capture.json), and the exact cameras
are written beside the images as cameras_gt.json. World: +Z up, metres, the street runs along +Y, ground at z = 0.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from realsim.assets.atomic import atomic_dir
from realsim.assets.cameras import CameraFrame, CameraSet, holdout_split, save_cameras
from realsim.assets.errors import RealsimError
from realsim.assets.progress import ProgressFn, report
from realsim.render.mesh import MeshRenderConfig, render_mesh

__all__ = ["CaptureConfig", "ProceduralScene", "build_street", "shade_scene", "render_view", "walk_cameras",
           "make_capture", "look_at_viewmat"]

# material ids
COBBLE, SLAB, KERB, BRICK, PLASTER, WOOD, METAL, FOLIAGE, STONE, POSTER, CAR, ROOF = range(12)


@dataclass
class CaptureConfig:
    """What the synthetic capture looks like and how it is photographed."""

    n_images: int = 30
    width: int = 480
    height: int = 360
    focal: float = 400.0  # pixels (horizontal FOV ~62 degrees at 480 px)
    camera_height: float = 1.6  # metres above the ground
    walk_length: float | None = None  # metres along the street (None: 0.83 m between photos, at most 24 m)
    ssaa: int = 2
    seed: int = 0
    jpeg_quality: int = 95


@dataclass
class ProceduralScene:
    """Triangle soup with per-face material id and parameters; footprints of the props that block walking."""

    vertices: np.ndarray  # [V,3] float32 world
    faces: np.ndarray  # [F,3] int64
    material: np.ndarray  # [F] int64
    params: np.ndarray  # [F,4] float32: base rgb + variant seed
    obstacles: list[dict] = field(default_factory=list)  # {"kind", "center" [2], "size" [2], "yaw", "height"}
    walk_extent: tuple[float, float, float, float] = (-6.0, 6.0, -4.0, 46.0)  # x0, x1, y0, y1 of the open ground


class _Builder:
    def __init__(self) -> None:
        self.v: list[np.ndarray] = []
        self.f: list[np.ndarray] = []
        self.m: list[np.ndarray] = []
        self.p: list[np.ndarray] = []
        self.n = 0
        self.obstacles: list[dict] = []

    def add(self, verts: np.ndarray, faces: np.ndarray, mat: int, param) -> None:
        self.v.append(np.asarray(verts, np.float32))
        self.f.append(np.asarray(faces, np.int64) + self.n)
        self.m.append(np.full(len(faces), mat, np.int64))
        self.p.append(np.tile(np.asarray(param, np.float32), (len(faces), 1)))
        self.n += len(verts)

    def quad(self, p0, du, dv, mat: int, param, nu: int = 1, nv: int = 1) -> None:
        """A planar quad p0 + s*du + t*dv, split into nu x nv cells (2 triangles each)."""
        p0, du, dv = (np.asarray(x, np.float64) for x in (p0, du, dv))
        s = np.linspace(0, 1, nu + 1)
        t = np.linspace(0, 1, nv + 1)
        S, Tt = np.meshgrid(s, t, indexing="ij")
        verts = p0 + S.reshape(-1, 1) * du + Tt.reshape(-1, 1) * dv
        faces = []
        for i in range(nu):
            for j in range(nv):
                a = i * (nv + 1) + j
                b = (i + 1) * (nv + 1) + j
                faces += [[a, b, b + 1], [a, b + 1, a + 1]]
        self.add(verts, np.array(faces), mat, param)

    def box(self, center, size, mat: int, param, yaw: float = 0.0, top_mat: int | None = None, obstacle: str | None = None) -> None:
        """An axis box (rotated by yaw about +Z) standing on z = center[2] - size[2]/2."""
        c = np.asarray(center, np.float64)
        sx, sy, sz = (np.asarray(size, np.float64) / 2)
        corners = np.array([[x, y, z] for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)])
        cy, sn = math.cos(yaw), math.sin(yaw)
        R = np.array([[cy, -sn, 0], [sn, cy, 0], [0, 0, 1]])
        v = corners @ R.T + c
        sides = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4]]  # -x, +x, -y, +y, -z
        faces = []
        for q in sides:
            faces += [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]
        self.add(v, np.array(faces), mat, param)
        self.add(v, np.array([[1, 5, 7], [1, 7, 3]]), mat if top_mat is None else top_mat, param)  # +z
        if obstacle:
            self.obstacles.append({"kind": obstacle, "center": [float(c[0]), float(c[1])], "size": [2 * sx, 2 * sy],
                                   "yaw": float(yaw), "height": float(c[2] + sz)})

    def blob(self, center, radius: float, mat: int, param, rng: np.random.Generator) -> None:
        """A lumpy icosphere (tree crowns)."""
        t = (1 + 5 ** 0.5) / 2
        v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                      [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], np.float64)
        f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6],
             [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10],
             [8, 6, 7], [9, 8, 1]]
        verts = list(v / np.linalg.norm(v, axis=1, keepdims=True))
        faces = f
        for _ in range(2):  # subdivide twice
            cache: dict[tuple[int, int], int] = {}
            nf = []

            def mid(a: int, b: int) -> int:
                k = (min(a, b), max(a, b))
                if k not in cache:
                    m = (verts[a] + verts[b]) / 2
                    verts.append(m / np.linalg.norm(m))
                    cache[k] = len(verts) - 1
                return cache[k]

            for a, b, c in faces:
                ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
                nf += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
            faces = nf
        V = np.array(verts)
        V *= radius * (1 + 0.18 * rng.standard_normal((len(V), 1)).clip(-1.5, 1.5))
        V[:, 2] *= 0.85
        self.add(V + np.asarray(center), np.array(faces), mat, param)

    def build(self, extent) -> ProceduralScene:
        return ProceduralScene(np.concatenate(self.v), np.concatenate(self.f), np.concatenate(self.m),
                               np.concatenate(self.p), self.obstacles, extent)


def build_street(seed: int = 0) -> ProceduralScene:
    """A 12 m wide street between two rows of buildings, closed at both ends, with benches, trees, a kiosk, lamps and a car."""
    rng = np.random.default_rng(seed)
    b = _Builder()
    y0, y1, half = -6.0, 48.0, 6.0
    # ground: street (cobbles) between kerbs, pavements (slabs); tiled so no triangle is huge
    b.quad([-3.5, y0, 0], [7.0, 0, 0], [0, y1 - y0, 0], COBBLE, [0.52, 0.50, 0.47, 1], 4, 27)
    for sgn in (-1, 1):
        xk = 3.5 if sgn > 0 else -3.7
        b.quad([xk, y0, 0], [0.2, 0, 0], [0, y1 - y0, 0], KERB, [0.70, 0.69, 0.66, 2], 1, 27)
        xp = 3.7 if sgn > 0 else -half
        b.quad([xp, y0, 0], [half - 3.7, 0, 0], [0, y1 - y0, 0], SLAB, [0.62, 0.58, 0.54, 3], 2, 27)
    # facades: buildings of varying width, height and material on both sides, plus the two end walls
    palette = [[0.72, 0.38, 0.28], [0.85, 0.78, 0.62], [0.62, 0.66, 0.72], [0.80, 0.60, 0.42], [0.55, 0.30, 0.25],
               [0.90, 0.86, 0.80], [0.70, 0.75, 0.60], [0.78, 0.50, 0.45]]
    for sgn in (-1, 1):
        y = y0
        while y < y1:
            w = float(min(rng.uniform(6.0, 10.0), y1 - y))
            h = float(rng.uniform(8.0, 14.0))
            mat = BRICK if rng.random() < 0.5 else PLASTER
            col = palette[int(rng.integers(len(palette)))]
            seed_b = float(rng.integers(1, 10_000))
            x = sgn * half
            # facade faces the street (normal towards -sgn x)
            if sgn > 0:
                b.quad([x, y, 0], [0, w, 0], [0, 0, h], mat, col + [seed_b], 3, 4)
            else:
                b.quad([x, y + w, 0], [0, -w, 0], [0, 0, h], mat, col + [seed_b], 3, 4)
            # roof slab / cornice: a box on top so the skyline has depth
            b.box([x + sgn * 1.0, y + w / 2, h + 0.25], [2.4, w, 0.5], ROOF, [0.35, 0.30, 0.30, seed_b + 1])
            y += w
    for yy, sgn in ((y1, 1), (y0, -1)):
        col = palette[int(rng.integers(len(palette)))]
        if sgn > 0:
            b.quad([-half, yy, 0], [2 * half, 0, 0], [0, 0, 12.0], BRICK, col + [float(rng.integers(1, 10_000))], 4, 4)
        else:
            b.quad([half, yy, 0], [-2 * half, 0, 0], [0, 0, 12.0], PLASTER, col + [float(rng.integers(1, 10_000))], 4, 4)
    # props (obstacles for the sim)
    b.box([-1.2, 19.0, 1.3], [2.2, 2.2, 2.6], POSTER, [0.20, 0.35, 0.25, 77], top_mat=METAL, obstacle="kiosk")
    b.box([-1.2, 19.0, 2.75], [2.8, 2.8, 0.3], METAL, [0.18, 0.25, 0.20, 78])
    for yb, sgn in ((7.0, 1), (15.0, -1), (27.0, 1), (35.0, -1)):
        b.box([sgn * 4.9, yb, 0.45], [0.6, 2.0, 0.1], WOOD, [0.55, 0.36, 0.20, yb], obstacle="bench")
        for dy in (-0.8, 0.8):
            b.box([sgn * 4.9, yb + dy, 0.2], [0.5, 0.1, 0.4], METAL, [0.2, 0.2, 0.22, yb])
        b.box([sgn * 5.2, yb, 0.75], [0.08, 2.0, 0.5], WOOD, [0.55, 0.36, 0.20, yb + 1])
    for yt, sgn in ((11.0, -1), (23.0, 1), (31.0, -1), (3.0, 1)):
        x = sgn * 4.6
        b.box([x, yt, 0.3], [1.2, 1.2, 0.6], STONE, [0.60, 0.58, 0.55, yt], obstacle="planter")
        b.box([x, yt, 1.5], [0.22, 0.22, 1.8], WOOD, [0.35, 0.25, 0.18, yt])
        b.blob([x, yt, 3.1], 1.2, FOLIAGE, [0.25, 0.45, 0.20, yt], rng)
    for yl in (5.0, 17.0, 29.0, 41.0):
        for sgn in (-1, 1):
            b.box([sgn * 3.95, yl + 2 * sgn, 2.0], [0.14, 0.14, 4.0], METAL, [0.15, 0.17, 0.18, yl], obstacle="lamp")
            b.box([sgn * 3.7, yl + 2 * sgn, 4.0], [0.6, 0.2, 0.12], METAL, [0.15, 0.17, 0.18, yl])
    # a parked car in the street
    b.box([2.3, 33.0, 0.65], [1.8, 4.2, 0.9], CAR, [0.70, 0.12, 0.10, 5], obstacle="car")
    b.box([2.3, 32.8, 1.4], [1.6, 2.2, 0.6], CAR, [0.15, 0.18, 0.22, 6])
    return b.build((-half, half, y0, y1))


# ---------------------------------------------------------------------------------------------------------------------
# procedural textures (numpy, evaluated per pixel in world coordinates)

def _hash(ix: np.ndarray, iy: np.ndarray, seed: float | np.ndarray) -> np.ndarray:
    """Integer lattice hash -> uniform [0,1) (wrapping uint32 arithmetic, deterministic)."""
    with np.errstate(over="ignore"):
        u = lambda a: np.asarray(a).astype(np.int64).astype(np.uint32)  # noqa: E731  (two's complement wrap)
        h = u(ix) * np.uint32(374761393) + u(iy) * np.uint32(668265263) + u(seed) * np.uint32(2246822519)
        h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
        h = h ^ (h >> np.uint32(16))
    return h.astype(np.float64) * (1.0 / 4294967296.0)


def _noise(x: np.ndarray, y: np.ndarray, seed) -> np.ndarray:
    """Smooth value noise in [0,1]."""
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    ux, uy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash(ix, iy, seed), _hash(ix + 1, iy, seed)
    c, d = _hash(ix, iy + 1, seed), _hash(ix + 1, iy + 1, seed)
    return (a * (1 - ux) + b * ux) * (1 - uy) + (c * (1 - ux) + d * ux) * uy


def _fbm(x: np.ndarray, y: np.ndarray, seed, octaves: int = 4) -> np.ndarray:
    out = np.zeros_like(x)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        out += amp * _noise(x, y, seed + 17 * o)
        tot += amp
        x, y, amp = x * 2.03, y * 2.03, amp * 0.5
    return out / tot


def _cells(u: np.ndarray, v: np.ndarray, w: float, h: float, stagger: float = 0.5):
    """Running-bond cells: (column, row, local u in [0,1), local v in [0,1))."""
    r = np.floor(v / h)
    uu = u / w + stagger * (r % 2)
    c = np.floor(uu)
    return c, r, uu - c, v / h - r


def _edge(lu: np.ndarray, lv: np.ndarray, mu: float, mv: float) -> np.ndarray:
    """1 inside a cell, 0 in the mortar/gap (soft edges)."""
    eu = np.minimum(lu, 1 - lu) / max(mu, 1e-6)
    ev = np.minimum(lv, 1 - lv) / max(mv, 1e-6)
    return np.clip(np.minimum(eu, ev), 0, 1)


def shade_scene(scene: ProceduralScene, xyz: np.ndarray, normal: np.ndarray, face_id: np.ndarray) -> np.ndarray:
    """Albedo [N,3] of the scene at world points xyz [N,3] with normals [N,3] on faces face_id [N]."""
    mat = scene.material[face_id]
    par = scene.params[face_id]
    base, sd = par[:, :3].astype(np.float64), par[:, 3].astype(np.float64)
    x, y, z = xyz[:, 0].astype(np.float64), xyz[:, 1].astype(np.float64), xyz[:, 2].astype(np.float64)
    # planar texture coordinates: ground uses (x, y); walls use (along-wall, z)
    vertical = np.abs(normal[:, 2]) < 0.7
    along = np.where(np.abs(normal[:, 0]) > np.abs(normal[:, 1]), y, x)
    u = np.where(vertical, along, x)
    v = np.where(vertical, z, y)
    out = base.copy()
    grain = _fbm(u * 6, v * 6, sd + 3, 3)

    def sel(m: int) -> np.ndarray:
        return mat == m

    m = sel(COBBLE)
    if m.any():
        c, r, lu, lv = _cells(u[m] + 0.3 * _noise(v[m] * 2, u[m] * 2, 9), v[m], 0.22, 0.16, 0.5)
        tint = 0.6 + 0.55 * _hash(c, r, 11)[:, None] * np.array([1.0, 0.95, 0.9])
        hue = np.stack([_hash(c, r, 12), _hash(c, r, 13), _hash(c, r, 14)], 1) * 0.08 - 0.04
        e = _edge(lu, lv, 0.22, 0.3) ** 0.6
        col = base[m] * tint + hue + 0.15 * (grain[m, None] - 0.5)
        out[m] = col * (0.25 + 0.75 * e[:, None])
    m = sel(SLAB)
    if m.any():
        c, r, lu, lv = _cells(u[m], v[m], 0.6, 0.6, 0.0)
        tint = 0.8 + 0.35 * _hash(c, r, 21)[:, None]
        e = _edge(lu, lv, 0.03, 0.03)
        speck = (_hash(np.floor(u[m] * 40), np.floor(v[m] * 40), 22) > 0.93)[:, None] * -0.15
        out[m] = (base[m] * tint + 0.2 * (grain[m, None] - 0.5) + speck) * (0.45 + 0.55 * e[:, None])
    m = sel(KERB)
    if m.any():
        c, r, lu, lv = _cells(v[m], u[m], 1.0, 10.0, 0.0)
        out[m] = base[m] * (0.85 + 0.3 * _hash(c, r, 31)[:, None]) * (0.5 + 0.5 * _edge(lu, lv, 0.02, 0.001)[:, None])
    for wallmat in (BRICK, PLASTER):
        m = sel(wallmat)
        if not m.any():
            continue
        uu, vv, s = u[m], v[m], sd[m]
        if wallmat == BRICK:
            c, r, lu, lv = _cells(uu, vv, 0.25, 0.075, 0.5)
            e = _edge(lu, lv, 0.06, 0.18)
            tint = 0.7 + 0.5 * _hash(c, r, s)[:, None]
            wall = base[m] * tint * (0.55 + 0.45 * e[:, None]) + np.array([0.8, 0.78, 0.75]) * 0.25 * (1 - e[:, None])
        else:
            stain = _fbm(uu * 0.8, vv * 0.8, s + 5, 4)
            wall = base[m] * (0.75 + 0.45 * stain[:, None]) + 0.12 * (grain[m, None] - 0.5)
            # plaster rustication: horizontal grooves on the ground floor
            groove = (vv < 3.0) & ((vv % 0.5) < 0.04)
            wall = np.where(groove[:, None], wall * 0.6, wall)
        # windows: per building a window grid; floors of 3 m; ground floor shop windows, doors and posters
        bw = 2.4 + 1.2 * _hash(s, 1, 41)
        fl = np.floor(vv / 3.0)
        col = np.floor(uu / bw)
        lu = uu / bw - col
        lv = vv / 3.0 - fl
        ww = 0.35 + 0.2 * _hash(s, 2, 42)
        win = (fl >= 1) & (np.abs(lu - 0.5) < ww / 2 + 0.0) & (lv > 0.28) & (lv < 0.82) & (vv < 30)
        frame = win & ((np.abs(lu - 0.5) > ww / 2 - 0.03) | (lv < 0.31) | (lv > 0.79) | (np.abs(lu - 0.5) < 0.012) | (np.abs(lv - 0.58) < 0.012))
        glass = win & ~frame
        sky = 0.25 + 0.35 * _fbm(uu * 1.5 + 3 * col, vv * 1.5, s + 7, 3)
        lit = _hash(col, fl, s + 8) > 0.75
        gcol = np.stack([sky * 0.6, sky * 0.75, sky * 0.95], 1)
        gcol = np.where(lit[:, None], np.array([0.95, 0.8, 0.45]) * (0.7 + 0.3 * sky[:, None]), gcol)
        fcol = np.where((_hash(s, 3, 43) > 0.5), 0.92, 0.35)[:, None] * np.array([1.0, 0.97, 0.92])
        wall = np.where(glass[:, None], gcol, wall)
        wall = np.where(frame[:, None], fcol, wall)
        sill = (fl >= 1) & (np.abs(lu - 0.5) < ww / 2 + 0.06) & (lv > 0.22) & (lv < 0.28)
        wall = np.where(sill[:, None], wall * 0.55 + 0.35, wall)
        # ground floor: shop windows with posters / doors
        shop = (fl == 0) & (np.abs(lu - 0.5) < 0.36) & (vv > 0.45) & (vv < 2.4)
        kind = _hash(col, s, 44)
        stripes = (np.floor(vv * 9 + 3 * _noise(uu * 3, vv, s)) % 2)
        poster = np.stack([_hash(col, s, 45), _hash(col, s, 46), _hash(col, s, 47)], 1)
        pcol = poster * (0.6 + 0.4 * stripes[:, None]) * (0.7 + 0.3 * _fbm(uu * 8, vv * 8, s + 9, 2))[:, None]
        door = (kind < 0.35)
        dcol = np.array([0.35, 0.22, 0.12]) * (0.7 + 0.6 * _fbm(uu * 20, vv * 1.5, s + 11, 2))[:, None]
        shopcol = np.where(door[:, None], dcol, np.where((kind > 0.7)[:, None], pcol, gcol * 0.8))
        wall = np.where(shop[:, None], shopcol, wall)
        sign = (fl == 0) & (vv > 2.55) & (vv < 2.9) & (np.abs(lu - 0.5) < 0.45)
        letters = (_hash(np.floor(uu * 6), np.floor(vv * 9), s + 12) > 0.5)
        scol = np.where(letters[:, None], np.array([0.95, 0.92, 0.85]), poster[:, ::-1] * 0.6)
        wall = np.where(sign[:, None], scol, wall)
        out[m] = wall
    m = sel(ROOF)
    if m.any():
        out[m] = base[m] * (0.7 + 0.6 * _fbm(u[m] * 3, v[m] * 3, sd[m], 3))[:, None]
    m = sel(WOOD)
    if m.any():
        rings = np.sin((u[m] + v[m] * 0.05) * 40 + 8 * _fbm(u[m] * 2, v[m] * 8, 51, 3))
        out[m] = base[m] * (0.75 + 0.25 * rings[:, None]) * (0.85 + 0.3 * grain[m, None])
    m = sel(METAL)
    if m.any():
        out[m] = base[m] * (0.8 + 0.5 * _fbm(u[m] * 10, v[m] * 10, sd[m], 2))[:, None]
    m = sel(STONE)
    if m.any():
        c, r, lu, lv = _cells(u[m] + x[m], v[m], 0.4, 0.2, 0.5)
        out[m] = base[m] * (0.7 + 0.4 * _hash(c, r, 61)[:, None]) * (0.6 + 0.4 * _edge(lu, lv, 0.05, 0.1)[:, None])
    m = sel(FOLIAGE)
    if m.any():
        leaf = _fbm(x[m] * 9 + z[m] * 3, y[m] * 9 - z[m] * 5, 71, 4)
        out[m] = base[m] * (0.4 + 1.2 * leaf[:, None]) + np.array([0.05, 0.08, 0.0]) * _hash(np.floor(x[m] * 30), np.floor(y[m] * 30 + z[m] * 30), 72)[:, None]
    m = sel(POSTER)
    if m.any():
        c, r, lu, lv = _cells(u[m], v[m], 0.7, 1.0, 0.0)
        pc = np.stack([_hash(c, r, 81), _hash(c, r, 82), _hash(c, r, 83)], 1)
        txt = (_hash(np.floor(u[m] * 14), np.floor(v[m] * 18), 84) > 0.45) & (lv > 0.6) & (lv < 0.9)
        body = pc * (0.5 + 0.5 * _fbm(u[m] * 5, v[m] * 5, 85, 3))[:, None]
        body = np.where(txt[:, None], 1 - pc * 0.3, body)
        out[m] = np.where((_edge(lu, lv, 0.03, 0.03) < 1)[:, None], base[m], body)
    m = sel(CAR)
    if m.any():
        out[m] = base[m] * (0.85 + 0.3 * _fbm(u[m] * 4, v[m] * 4, 91, 2))[:, None]
    return np.clip(out, 0, 1)


def _sky(dirs: np.ndarray) -> np.ndarray:
    """Sky colour [N,3] for world ray directions [N,3]: a gradient with soft clouds."""
    up = np.clip(dirs[:, 2], 0, 1)[:, None]
    col = np.array([0.85, 0.88, 0.92]) * (1 - up) + np.array([0.45, 0.62, 0.88]) * up
    d = dirs / np.maximum(dirs[:, 2:3], 0.05)
    cloud = np.clip((_fbm(d[:, 0] * 0.6, d[:, 1] * 0.6, 99, 4) - 0.5) * 2.5, 0, 1)[:, None]
    return col * (1 - 0.7 * cloud) + 0.97 * 0.7 * cloud


def render_view(scene: ProceduralScene, viewmat: np.ndarray, K: np.ndarray, width: int, height: int, ssaa: int = 2,
                light_dir=(0.35, -0.45, 0.82)) -> dict[str, np.ndarray]:
    """Textured, Lambert-shaded render of the procedural scene: {"rgb" [H,W,3], "depth" [H,W,1]} numpy float32."""
    s = max(1, int(ssaa))
    Ks = np.asarray(K, np.float64).copy()
    Ks[:2] *= s
    W, H = width * s, height * s
    cfg = MeshRenderConfig(shading="none", near=0.05)
    o = render_mesh(torch.from_numpy(scene.vertices), torch.from_numpy(scene.faces), None, viewmat, Ks, W, H, cfg)
    fid = o["face_id"].numpy().reshape(-1)
    hit = fid >= 0
    xyz = o["xyz"].numpy().reshape(-1, 3)[hit]
    nrm = o["normal"].numpy().reshape(-1, 3)[hit]
    alb = shade_scene(scene, xyz, nrm, fid[hit])
    L = np.asarray(light_dir, np.float64)
    L /= np.linalg.norm(L)
    lam = 0.5 + 0.5 * np.clip(nrm @ L, 0, 1)
    # cheap ambient occlusion towards the ground-wall junction and under props
    ao = 1 - 0.25 * np.exp(-np.clip(xyz[:, 2], 0, None) / 0.4) * (np.abs(nrm[:, 2]) < 0.7)
    img = np.zeros((H * W, 3))
    img[hit] = alb * (lam * ao)[:, None]
    # sky for empty pixels: world ray directions
    miss = ~hit
    if miss.any():
        idx = np.nonzero(miss)[0]
        px = np.stack([(idx % W) + 0.5, (idx // W) + 0.5, np.ones(len(idx))], 1)
        dc = px @ np.linalg.inv(Ks).T
        Rm = np.asarray(viewmat, np.float64)[:3, :3]
        dw = dc @ Rm  # camera -> world rotation is R^T: d_w = R^T d_c  (row form: d_c @ R)
        dw /= np.linalg.norm(dw, axis=1, keepdims=True)
        img[miss] = _sky(dw)
    img = img.reshape(H, W, 3)
    depth = o["depth"].numpy()
    if s > 1:
        img = img.reshape(height, s, width, s, 3).mean((1, 3))
        dd = depth.reshape(height, s, width, s)
        depth = dd.min((1, 3))[..., None]
    return {"rgb": np.clip(img, 0, 1).astype(np.float32), "depth": depth.astype(np.float32)}


def look_at_viewmat(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV world-to-camera [4,4] for a camera at `eye` looking at `target` (+Z-up world)."""
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    r /= np.linalg.norm(r)
    d = np.cross(f, r)  # camera y (down)
    R = np.stack([r, d, f])  # rows: camera axes in world
    V = np.eye(4)
    V[:3, :3] = R
    V[:3, 3] = -R @ eye
    return V


def walk_cameras(cfg: CaptureConfig) -> list[np.ndarray]:
    """Viewmats [4,4] along a walk up the street: gentle weaving, alternating yaw, slight pitch down, a small head bob."""
    rng = np.random.default_rng(cfg.seed + 1)
    out = []
    n = cfg.n_images
    length = cfg.walk_length if cfg.walk_length is not None else min(24.0, 0.83 * (n - 1))
    for i in range(n):
        t = i / max(1, n - 1)
        y = 0.0 + length * t
        x = 1.2 * math.sin(2 * math.pi * t * 1.5)
        z = cfg.camera_height + 0.03 * math.sin(i * 2.1)
        yaw = math.radians(22.0 * math.sin(i * 1.3) + rng.uniform(-4, 4))  # about +Z, 0 = looking +Y
        pitch = math.radians(-7.0 + rng.uniform(-2, 2))
        fwd = np.array([math.sin(-yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), math.sin(pitch)])
        eye = np.array([x, y, z])
        out.append(look_at_viewmat(eye, eye + fwd))
    return out


def make_capture(out_dir: str | os.PathLike, cfg: CaptureConfig | None = None, overwrite: bool = False,
                 progress: ProgressFn | None = None) -> Path:
    """Write OUT/images/SYNTHETIC_street_XXXX.jpg, OUT/cameras_gt.json (exact cameras), OUT/capture.json, OUT/geometry.safetensors."""
    from PIL import Image

    from realsim.assets.scene import save_tensors

    cfg = cfg or CaptureConfig()
    if cfg.n_images < 3 or cfg.width < 32 or cfg.height < 32:
        raise RealsimError("synthetic capture needs at least 3 images of at least 32x32 pixels")
    scene = build_street(cfg.seed)
    K = np.array([[cfg.focal, 0, cfg.width / 2], [0, cfg.focal, cfg.height / 2], [0, 0, 1.0]])
    views = walk_cameras(cfg)
    out_dir = Path(out_dir)
    names = [f"SYNTHETIC_street_{i:04d}.jpg" for i in range(len(views))]
    split = holdout_split(names)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        frames = []
        for i, (V, name) in enumerate(zip(views, names)):
            r = render_view(scene, V, K, cfg.width, cfg.height, cfg.ssaa)
            img = Image.fromarray((r["rgb"] * 255 + 0.5).astype(np.uint8))
            exif = Image.Exif()
            exif[0x010F] = "realsim SYNTHETIC"  # Make
            exif[0x0110] = "procedural street"  # Model
            exif[0x010E] = "SYNTHETIC render by realsim.sim.capture (not a photograph)"  # ImageDescription
            img.save(tmp / "images" / name, quality=cfg.jpeg_quality, exif=exif)
            frames.append(CameraFrame(name, K.copy(), V, cfg.width, cfg.height, split[i]))
            report(progress, "synthetic capture", i + 1, len(views))
        save_cameras(tmp / "cameras_gt.json", CameraSet(frames, "images"))
        meta = {"synthetic": True, "label": "SYNTHETIC procedural street rendered by realsim (not real photos)",
                "generator": "realsim.sim.capture", "config": asdict(cfg), "camera_height": cfg.camera_height,
                "world": {"up": [0, 0, 1], "units": "metres", "ground_z": 0.0},
                "obstacles": scene.obstacles, "walk_extent": list(scene.walk_extent)}
        (tmp / "capture.json").write_text(json.dumps(meta, indent=1))
        save_tensors(tmp / "geometry.safetensors", {"vertices": torch.from_numpy(scene.vertices), "faces": torch.from_numpy(scene.faces),
                                                     "material": torch.from_numpy(scene.material)}, {"synthetic": "true"})
    return out_dir


def sample_surface_points(scene: ProceduralScene, n: int, seed: int = 0, visible_from: list[np.ndarray] | None = None) -> np.ndarray:
    """Points [n,3] spread over the scene's surfaces by area (a stand-in for SfM points in tests)."""
    rng = np.random.default_rng(seed)
    tri = scene.vertices[scene.faces].astype(np.float64)  # [F,3,3]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    f = rng.choice(len(tri), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[f]
    return (t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])).astype(np.float32)


def pose_error_vs_ground_truth(est: CameraSet, gt: CameraSet) -> dict[str, float]:
    """Camera centres and rotations of estimated cameras against the exact ones after a similarity (Umeyama) alignment.

    Returns rmse / max centre error (metres of the ground truth), max rotation error (degrees), the fitted scale, matched count.
    """
    from realsim.assets.frames import camera_center

    g = {f.name: f for f in gt.frames}
    pairs = [(f, g[f.name]) for f in est.frames if f.name in g]
    if len(pairs) < 3:
        return {"matched": float(len(pairs))}
    A = np.array([camera_center(e.viewmat) for e, _ in pairs])
    B = np.array([camera_center(t.viewmat) for _, t in pairs])
    ma, mb = A.mean(0), B.mean(0)
    Ac, Bc = A - ma, B - mb
    U, S, Vt = np.linalg.svd(Bc.T @ Ac / len(A))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / (Ac ** 2).sum(1).mean())
    err = np.linalg.norm((s * (R @ Ac.T)).T + mb - B, axis=1)
    rot = []
    for e, t in pairs:
        # camera-to-world rotations: R_t ~ R @ R_e  =>  angle of R_t^T R R_e
        Re, Rt = e.viewmat[:3, :3].T, t.viewmat[:3, :3].T
        M = Rt.T @ R @ Re
        rot.append(np.degrees(np.arccos(np.clip((np.trace(M) - 1) / 2, -1, 1))))
    return {"matched": float(len(pairs)), "centre_rmse_m": float(np.sqrt((err ** 2).mean())), "centre_max_m": float(err.max()),
            "rotation_max_deg": float(max(rot)), "scale_to_gt": s}
