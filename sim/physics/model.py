"""The MuJoCo model of a sim World: ground (plane or height field), static voxel-box colliders, props, agents' limb capsules.

Colliders from the reconstruction: the ground is the World's fitted plane (a MuJoCo height field when the World has per-cell
heights); static scene geometry is axis-aligned boxes: by default 0.1 m voxel columns fitted to the scene's Gaussians
(physics.colliders, cached in the bundle), or the World's obstacle grid (cells where reconstructed points stand 0.25-2.2 m
above the ground) merged per grid row run (`collider_boxes`, used when no scene is given). Boxes need no mesh extraction or
convex decomposition and are convex by construction.

Contact parameters (MuJoCo's direct solref form, documented in README "Props"): every contact with a prop uses the prop's
own solref = (-k, -b), a spring-damper on penetration with k = (pi / t_c)^2 (t_c: contact duration, CONTACT_STEPS physics
steps) and b = 2 zeta sqrt(k), where zeta is the damping ratio at which the contact, integrated as MuJoCo does (semi-implicit
Euler at dt, impedance 0.999, a contact that cannot pull), returns a fraction e of the normal approach speed (restitution e),
solved by bisection (`damping_ratio`). The linear-oscillator formula zeta = -ln(e) / sqrt(pi^2 + ln(e)^2) bounces too high
(e = 0.5 gives 0.57: a unilateral contact lets go when -k x - b v reaches 0, before the spring is relaxed). Static geoms and limbs get solmix 0 so a prop's values win;
two props mix their solrefs half and half. solimp is pinned near 1 (0.999) so the contact follows the spring-damper.
Friction: MuJoCo takes the larger of two geoms' frictions and static geoms / limbs have 0, so a prop's friction is the
contact's; a prop with friction 0 gets condim 1 (frictionless contact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from realsim.assets.errors import InputError

from ..scenario import PropSpec
from ..world import World

__all__ = ["CONTACT_STEPS", "restitution_solref", "collider_boxes", "collider_fit", "PhysicsModelSpec", "build_mjcf", "prop_mass",
           "mujoco_size", "LIMB_SEGMENTS", "damping_ratio", "contact_restitution", "check_prop_positions",
           "inscribed_radius"]

CONTACT_STEPS = 40  # physics steps a contact lasts (t_c = CONTACT_STEPS * dt): long enough to integrate, short = stiff
IMPEDANCE = 0.999
SOLIMP = f"{IMPEDANCE} {IMPEDANCE} 0.001 0.5 2"
# body segments used as kinematic limb capsules: (BodyModel segment key, capsule radius in m before the agent's build)
LIMB_SEGMENTS = {"torso": 0.14, "head": 0.1, "l_upper": 0.05, "r_upper": 0.05, "l_fore": 0.04, "r_fore": 0.04,
                 "l_thigh": 0.08, "r_thigh": 0.08, "l_shin": 0.055, "r_shin": 0.055, "l_foot": 0.05, "r_foot": 0.05}


def contact_restitution(zeta: float, contact_steps: int = CONTACT_STEPS, d: float = IMPEDANCE, phase: float = 0.5) -> float:
    """Restitution of one contact as MuJoCo integrates it (semi-implicit Euler, impedance d): a body enters a contact with
    solref (-w^2, -2 zeta w), w = pi / (contact_steps dt), at speed 1 (`phase` of a step before touching) and leaves at the
    returned speed. The contact cannot pull: the acceleration is max(d * (-k x - b v), 0). Dimensionless (dt = 1)."""
    w = math.pi / contact_steps
    k, b = w * w, 2 * zeta * w
    x, v = phase, -1.0
    for _ in range(50 * contact_steps):
        a = max(d * (-k * x - b * v), 0.0) if x < 0 else 0.0
        v += a
        x += v
        if x > 0 and v > 0:
            return v
    return 0.0


_PHASES = (np.arange(8) + 0.5) / 8  # where in a step the contact begins: calibrate on the average


def damping_ratio(e: float, contact_steps: int = CONTACT_STEPS) -> float:
    """The damping ratio zeta whose contact gives restitution e (bisection on contact_restitution)."""
    if e >= 1.0:
        return 0.0
    lo, hi = 0.0, 2.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if np.mean([contact_restitution(mid, contact_steps, phase=ph) for ph in _PHASES]) > e:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def restitution_solref(e: float, dt: float, contact_steps: int = CONTACT_STEPS) -> tuple[float, float]:
    """MuJoCo direct-form solref (-k, -b) for restitution e in [0, 1] at physics step dt (see the module doc)."""
    e = float(np.clip(e, 0.0, 1.0))
    tc = contact_steps * dt
    w = math.pi / tc
    return -w * w, -2.0 * damping_ratio(e, contact_steps) * w


def mujoco_size(p: PropSpec) -> list[float]:
    """The MuJoCo geom size of a prop (half sizes; capsule: radius + half the cylinder part)."""
    s = p.size
    if p.shape == "sphere":
        return [s[0]]
    if p.shape == "box":
        return [s[0] / 2, s[1] / 2, s[2] / 2]
    if p.shape == "capsule":
        return [s[0], max(s[1] / 2 - s[0], 1e-4)]
    return [s[0], s[1] / 2]  # cylinder


def _volume(p: PropSpec) -> float:
    s = p.size
    if p.shape == "sphere":
        return 4 / 3 * math.pi * s[0] ** 3
    if p.shape == "box":
        return s[0] * s[1] * s[2]
    if p.shape == "capsule":
        return math.pi * s[0] ** 2 * (s[1] - 2 * s[0]) + 4 / 3 * math.pi * s[0] ** 3
    return math.pi * s[0] ** 2 * s[1]


def prop_mass(p: PropSpec) -> float:
    return float(p.mass) if p.mass is not None else float(p.density * _volume(p))


def collider_boxes(world: World, points: np.ndarray | None = None, top: float | None = None) -> np.ndarray:
    """Static voxel boxes [N,6] (x0, y0, z0, x1, y1, z1) from the World's obstacle grid, merged along +y runs of cells.

    A box reaches from 0.3 m below the ground to the highest of `points` [P,3] (metres) standing in its cells below
    `top` (default WorldConfig.obstacle_max + 1 m), or to obstacle_max above the ground when no points are given.
    """
    cfg = world.config
    obst = world.obstacle
    if not obst.any():
        return np.zeros((0, 6))
    cmax = cfg.obstacle_max + 1.0 if top is None else float(top)
    ii, jj = np.meshgrid(np.arange(obst.shape[0]), np.arange(obst.shape[1]), indexing="ij")
    ground = world.height(world.to_world(np.stack([ii, jj], -1)))  # [NX,NY]
    ztop = ground + cfg.obstacle_max
    if points is not None and len(points):
        P = np.asarray(points, np.float64).reshape(-1, 3)
        ij = world.to_cell(P[:, :2])
        ok = world.in_grid(ij)
        P, ij = P[ok], ij[ok]
        h = P[:, 2] - ground[ij[:, 0], ij[:, 1]]
        band = (h > cfg.obstacle_min) & (h < cmax)
        hi = np.full(obst.shape, -np.inf)
        np.maximum.at(hi, (ij[band, 0], ij[band, 1]), P[band, 2])
        ztop = np.where(np.isfinite(hi), np.maximum(hi, ground + cfg.obstacle_min), ztop)
    out = []
    c = world.cell
    for i in range(obst.shape[0]):
        j = 0
        while j < obst.shape[1]:
            if not obst[i, j]:
                j += 1
                continue
            j1 = j
            while j1 + 1 < obst.shape[1] and obst[i, j1 + 1]:
                j1 += 1
            x0 = world.origin[0] + i * c
            y0 = world.origin[1] + j * c
            out.append([x0, y0, float(ground[i, j:j1 + 1].min()) - 0.3, x0 + c, world.origin[1] + (j1 + 1) * c,
                        float(ztop[i, j:j1 + 1].max())])
            j = j1 + 1
    return np.array(out)


def collider_fit(world: World, boxes: np.ndarray, points: np.ndarray, weights: np.ndarray | None = None,
                 within: tuple[float, ...] = (0.05, 0.10, 0.25)) -> dict[str, float]:
    """How well the colliders (the World's ground + static boxes [N,6]) fit the reconstruction: the weighted fraction of
    points [P,3] (e.g. Gaussian centres weighted by opacity) within each distance of a collider surface (metres)."""
    P = np.asarray(points, np.float64).reshape(-1, 3)
    w = np.ones(len(P)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    dist = np.abs(P[:, 2] - world.height(P[:, :2]))  # vertical distance to the ground (it is near level)
    B = np.asarray(boxes, np.float64).reshape(-1, 6)
    if len(B) and len(P):
        # points bucketed in a 2-D grid: each box only looks at the points whose xy lies within `reach` of its footprint
        reach, c = max(within), 0.25
        o = P[:, :2].min(0)
        ij = np.floor((P[:, :2] - o) / c).astype(np.int64)
        ny = int(ij[:, 1].max()) + 1
        key = ij[:, 0] * ny + ij[:, 1]
        order = np.argsort(key, kind="stable")
        skey = key[order]
        for b in B:
            lo_c = np.floor((b[:2] - reach - o) / c).astype(np.int64)
            hi_c = np.floor((b[3:5] + reach - o) / c).astype(np.int64)
            lo_c, hi_c = np.maximum(lo_c, 0), np.minimum(hi_c, [int(ij[:, 0].max()), ny - 1])
            if (hi_c < lo_c).any():
                continue
            rows = np.arange(lo_c[0], hi_c[0] + 1) * ny
            a = np.searchsorted(skey, rows + lo_c[1])
            e = np.searchsorted(skey, rows + hi_c[1] + 1)
            if not (e > a).any():
                continue
            idx = order[np.concatenate([np.arange(x, y) for x, y in zip(a, e)])]
            Q = P[idx]
            lo, hi = b[:3], b[3:]
            out = np.maximum(np.maximum(lo - Q, Q - hi), 0.0)
            d_out = np.linalg.norm(out, axis=1)
            d_in = np.minimum(Q - lo, hi - Q).min(1)  # inside: to the nearest face
            dist[idx] = np.minimum(dist[idx], np.where(d_out > 0, d_out, np.maximum(d_in, 0.0)))
    tot = max(float(w.sum()), 1e-12)
    return {f"within_{int(round(100 * r))}cm": float(w[dist <= r].sum() / tot) for r in within}


@dataclass
class PhysicsModelSpec:
    """What build_mjcf made: the XML, and which geom / body belongs to what (for contact events and mocap updates)."""

    xml: str
    dt: float
    prop_bodies: list[str]
    limb_bodies: list[tuple[int, str]] = field(default_factory=list)  # (agent, segment) per mocap body, in mocap order
    limb_radius: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [L]
    limb_halflen: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [L]
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))


def _f(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.atleast_1d(v))


def _ground_xml(world: World) -> tuple[str, str]:
    """(asset xml, geom xml) for the ground: a height field when the World has one, else its fitted plane."""
    common = 'contype="0" conaffinity="1" friction="0 0 0" solmix="0" condim="1"'
    if world.heights is None:
        n = np.asarray(world.plane[:3], np.float64)
        n = n / np.linalg.norm(n)
        d = float(world.plane[3])
        p0 = -d * n  # the plane point nearest the origin
        z = np.array([0.0, 0.0, 1.0])
        ax = np.cross(z, n)
        s = np.linalg.norm(ax)
        ang = math.atan2(s, float(n @ z))
        q = [1.0, 0.0, 0.0, 0.0] if s < 1e-12 else [math.cos(ang / 2), *(ax / s * math.sin(ang / 2))]
        return "", f'<geom name="ground" type="plane" size="0 0 1" pos="{_f(p0)}" quat="{_f(q)}" {common}/>'
    H = np.asarray(world.heights, np.float64)  # [NX,NY] at cell centres
    nx, ny = H.shape
    zmin, zmax = float(H.min()), float(H.max())
    rng = max(zmax - zmin, 1e-3)
    elev = ((H - zmin) / rng).T  # MuJoCo rows run along y, columns along x
    rx, ry = (nx - 1) * world.cell / 2, (ny - 1) * world.cell / 2
    cx, cy = world.origin + world.cell / 2 + np.array([rx, ry])
    asset = (f'<hfield name="terrain" nrow="{ny}" ncol="{nx}" size="{rx:.6g} {ry:.6g} {rng:.6g} 0.5" '
             f'elevation="{_f(elev.ravel())}"/>')
    return asset, f'<geom name="ground" type="hfield" hfield="terrain" pos="{cx:.6g} {cy:.6g} {zmin:.6g}" {common}/>'


def build_mjcf(world: World, props: list[PropSpec], positions: np.ndarray, dt: float, boxes: np.ndarray | None = None,
               limbs: list[tuple[int, str, float, float]] | None = None) -> PhysicsModelSpec:
    """MJCF for the world's colliders, the props at positions [P,3] and kinematic limb capsules (agent, segment, radius, half
    length); boxes [N,6] static colliders (default collider_boxes(world))."""
    if boxes is None:
        boxes = collider_boxes(world)
    asset, ground = _ground_xml(world)
    static = 'contype="0" conaffinity="1" friction="0 0 0" solmix="0" condim="1"'
    geoms = [ground]
    for k, b in enumerate(boxes):
        c, h = (b[:3] + b[3:]) / 2, (b[3:] - b[:3]) / 2
        geoms.append(f'<geom name="static{k}" type="box" pos="{_f(c)}" size="{_f(h)}" {static} rgba="0.5 0.2 0.2 1"/>')
    bodies = []
    names = []
    for i, p in enumerate(props):
        k, b = restitution_solref(p.restitution, dt)
        m = prop_mass(p)
        cond = 3 if p.friction > 0 else 1
        name = f"prop{i}"
        names.append(name)
        bodies.append(
            f'<body name="{name}" pos="{_f(positions[i])}" quat="{_f(p.quat)}"><freejoint name="{name}_free"/>'
            f'<geom name="{name}_geom" type="{p.shape}" size="{_f(mujoco_size(p))}" mass="{m:.6g}" contype="1" '
            f'conaffinity="1" condim="{cond}" friction="{p.friction:.6g} 0 0" solref="{k:.6g} {b:.6g}" solimp="{SOLIMP}" '
            f'solmix="1" rgba="{_f(p.color)} 1"/></body>')
    limb_names, lr, lh = [], [], []
    for a, seg, r, hl in limbs or []:
        nm = f"agent{a}_{seg}"
        limb_names.append((a, seg))
        lr.append(r)
        lh.append(hl)
        bodies.append(f'<body name="{nm}" mocap="true" pos="0 0 -100"><geom name="{nm}_geom" type="capsule" '
                      f'size="{r:.4g} {hl:.4g}" {static}/></body>')
    xml = (f'<mujoco model="realsim"><option timestep="{dt:.9g}" gravity="0 0 -9.81" integrator="Euler" cone="elliptic" '
           f'impratio="1"/><size memory="64M"/>'
           f'<asset>{asset}</asset><worldbody>{"".join(geoms)}{"".join(bodies)}</worldbody></mujoco>')
    return PhysicsModelSpec(xml, dt, names, limb_names, np.array(lr), np.array(lh), boxes)


def _box_distance(q: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Signed distance [N] from a point q [3] to boxes [N,6] (negative inside: minus the depth to the nearest face)."""
    lo, hi = boxes[:, :3], boxes[:, 3:]
    out = np.linalg.norm(np.maximum(np.maximum(lo - q, q - hi), 0.0), axis=1)
    depth = np.minimum(q - lo, hi - q).min(1)
    return np.where(out > 0, out, -depth)


def inscribed_radius(p: PropSpec) -> float:
    """The radius of the largest ball inside the prop about its centre (a prop whose centre is nearer a wall overlaps it)."""
    return float(min(mujoco_size(p)))


def check_prop_positions(props: list[PropSpec], positions: np.ndarray, boxes: np.ndarray | None, world: World,
                         obstacle_boxes: np.ndarray | None = None) -> None:
    """One InputError line for a prop that overlaps a static collider (its centre nearer a box than its inscribed radius,
    less 1 cm), whose centre stands in one of the World's obstacle columns (`obstacle_boxes`), or is below the ground."""
    boxes = np.zeros((0, 6)) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 6)
    obst = np.zeros((0, 6)) if obstacle_boxes is None else np.asarray(obstacle_boxes, np.float64).reshape(-1, 6)
    for i, (p, q) in enumerate(zip(props, np.asarray(positions, np.float64))):
        r = max(inscribed_radius(p) - 0.01, 0.0)
        hit = (len(boxes) and _box_distance(q, boxes).min() < r) or (len(obst) and _box_distance(q, obst).min() < 0)
        if hit:
            raise InputError(f"props[{i}] ({p.shape}) at ({q[0]:.2f}, {q[1]:.2f}, {q[2]:.2f}) is inside a wall or obstacle "
                             "of the scene (a static collider): move it onto free ground")
        g = float(world.height(q[None, :2])[0])
        if q[2] < g:
            raise InputError(f"props[{i}] ({p.shape}) at ({q[0]:.2f}, {q[1]:.2f}, {q[2]:.2f}) is below the ground "
                             f"(z = {g:.2f} there)")
