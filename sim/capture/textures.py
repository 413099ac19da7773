"""Procedural textures of the SYNTHETIC street (numpy, evaluated per pixel in world coordinates): cobbles, slabs, bricks,
plaster, windows, posters, wood, foliage, and the sky; rich in features so structure from motion finds plenty.
"""
from __future__ import annotations

import numpy as np

from .street import BRICK, CAR, COBBLE, FOLIAGE, KERB, METAL, PLASTER, POSTER, ROOF, SLAB, STONE, WOOD, ProceduralScene


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


def sky(dirs: np.ndarray) -> np.ndarray:
    """Sky colour [N,3] for world ray directions [N,3]: a gradient with soft clouds."""
    up = np.clip(dirs[:, 2], 0, 1)[:, None]
    col = np.array([0.85, 0.88, 0.92]) * (1 - up) + np.array([0.45, 0.62, 0.88]) * up
    d = dirs / np.maximum(dirs[:, 2:3], 0.05)
    cloud = np.clip((_fbm(d[:, 0] * 0.6, d[:, 1] * 0.6, 99, 4) - 0.5) * 2.5, 0, 1)[:, None]
    return col * (1 - 0.7 * cloud) + 0.97 * 0.7 * cloud
