"""The SYNTHETIC street's geometry: a triangle soup with per-face materials, and the footprints of props that block walking.

World: +Z up, metres, the street runs along +Y, ground at z = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# material ids
COBBLE, SLAB, KERB, BRICK, PLASTER, WOOD, METAL, FOLIAGE, STONE, POSTER, CAR, ROOF = range(12)


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


PROP_PERIOD_M = 48.0  # a long street repeats the props (kiosk, benches, trees, lamps, car) every this many metres


def build_street(seed: int = 0, length_m: float | None = None) -> ProceduralScene:
    """A 12 m wide street between two rows of buildings, closed at both ends, with benches, trees, a kiosk, lamps and a car.

    length_m: wall to wall along +Y (None: the demo's 54 m, y -6..48); a longer street repeats the props every 48 m."""
    rng = np.random.default_rng(seed)
    b = _Builder()
    y0, y1, half = -6.0, 48.0, 6.0
    if length_m is not None:
        if not length_m >= 54.0:
            raise ValueError(f"street length {length_m} m: at least the demo street's 54 m")
        y1 = y0 + float(length_m)
    nt = 27 if length_m is None else max(1, int(round((y1 - y0) / 2.0)))  # ground tiles along the street (2 m)
    # ground: street (cobbles) between kerbs, pavements (slabs); tiled so no triangle is huge
    b.quad([-3.5, y0, 0], [7.0, 0, 0], [0, y1 - y0, 0], COBBLE, [0.52, 0.50, 0.47, 1], 4, nt)
    for sgn in (-1, 1):
        xk = 3.5 if sgn > 0 else -3.7
        b.quad([xk, y0, 0], [0.2, 0, 0], [0, y1 - y0, 0], KERB, [0.70, 0.69, 0.66, 2], 1, nt)
        xp = 3.7 if sgn > 0 else -half
        b.quad([xp, y0, 0], [half - 3.7, 0, 0], [0, y1 - y0, 0], SLAB, [0.62, 0.58, 0.54, 3], 2, nt)
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
    # props (obstacles for the sim), repeated along a long street
    dy = 0.0
    while dy == 0.0 or dy + PROP_PERIOD_M <= y1 + 6.0:  # a stretch ends 6 m before the far wall
        _props(b, rng, dy)
        dy += PROP_PERIOD_M
    return b.build((-half, half, y0, y1))


def _props(b: _Builder, rng: np.random.Generator, dy: float) -> None:
    """The kiosk, benches, trees, lamps and parked car of one 48 m stretch, shifted dy metres along +Y."""
    b.box([-1.2, dy + 19.0, 1.3], [2.2, 2.2, 2.6], POSTER, [0.20, 0.35, 0.25, 77], top_mat=METAL, obstacle="kiosk")
    b.box([-1.2, dy + 19.0, 2.75], [2.8, 2.8, 0.3], METAL, [0.18, 0.25, 0.20, 78])
    for yb, sgn in ((7.0, 1), (15.0, -1), (27.0, 1), (35.0, -1)):
        b.box([sgn * 4.9, dy + yb, 0.45], [0.6, 2.0, 0.1], WOOD, [0.55, 0.36, 0.20, yb], obstacle="bench")
        for dz in (-0.8, 0.8):
            b.box([sgn * 4.9, dy + yb + dz, 0.2], [0.5, 0.1, 0.4], METAL, [0.2, 0.2, 0.22, yb])
        b.box([sgn * 5.2, dy + yb, 0.75], [0.08, 2.0, 0.5], WOOD, [0.55, 0.36, 0.20, yb + 1])
    for yt, sgn in ((11.0, -1), (23.0, 1), (31.0, -1), (3.0, 1)):
        x = sgn * 4.6
        b.box([x, dy + yt, 0.3], [1.2, 1.2, 0.6], STONE, [0.60, 0.58, 0.55, yt], obstacle="planter")
        b.box([x, dy + yt, 1.5], [0.22, 0.22, 1.8], WOOD, [0.35, 0.25, 0.18, yt])
        b.blob([x, dy + yt, 3.1], 1.2, FOLIAGE, [0.25, 0.45, 0.20, yt], rng)
    for yl in (5.0, 17.0, 29.0, 41.0):
        for sgn in (-1, 1):
            b.box([sgn * 3.95, dy + yl + 2 * sgn, 2.0], [0.14, 0.14, 4.0], METAL, [0.15, 0.17, 0.18, yl], obstacle="lamp")
            b.box([sgn * 3.7, dy + yl + 2 * sgn, 4.0], [0.6, 0.2, 0.12], METAL, [0.15, 0.17, 0.18, yl])
    # a parked car in the street
    b.box([2.3, dy + 33.0, 0.65], [1.8, 4.2, 0.9], CAR, [0.70, 0.12, 0.10, 5], obstacle="car")
    b.box([2.3, dy + 32.8, 1.4], [1.6, 2.2, 0.6], CAR, [0.15, 0.18, 0.22, 6])


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
