"""Run the props through MuJoCo at a fixed internal step, sampled once per video frame; agents push them as kinematic capsules.

Physics is a post-pass over the finished agent motion: agents stay kinematic (the motion model drives them and props never
push back); each agent's limbs are MuJoCo mocap capsules whose poses are interpolated linearly between the sim's frames at
every physics step. Contacts are events with hysteresis (physics.contacts: one per touch, not one per step). The internal
step is dt = 1 / (fps * substeps) with substeps = ceil(rate / fps), so the physics rate is at least `rate` (default 4000 Hz)
whatever the video fps, and frame t is the state at exactly t / fps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realsim.assets.errors import InputError, RealsimError

from ..scenario import PropSpec
from ..world import World
from .contacts import CONTACT_HOLD_S, ContactTracker
from .model import LIMB_SEGMENTS, build_mjcf, check_prop_positions, collider_boxes, mujoco_size, prop_mass

__all__ = ["PropsResult", "simulate_props", "auto_positions", "quat_rotate", "DEFAULT_RATE"]

DEFAULT_RATE = 4000.0  # Hz, the least internal physics rate (contacts last CONTACT_STEPS steps = 10 ms)


def _mujoco():
    try:
        import mujoco
    except ImportError as e:  # part of the normal install; say so instead of a traceback
        raise RealsimError(f"props need MuJoCo (pip install mujoco): {e}") from None
    return mujoco


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v [...,3] by unit quaternions q [...,4] (w, x, y, z)."""
    q = np.asarray(q, np.float64)
    w, u = q[..., :1], q[..., 1:]
    v = np.asarray(v, np.float64)
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def _half_height(p: PropSpec) -> float:
    """Vertical half extent of a prop in its orientation (resting height of its centre above flat ground)."""
    s = mujoco_size(p)
    R = np.stack([quat_rotate(np.array(p.quat), e) for e in np.eye(3)], 1)  # columns: local axes in world
    rz = np.abs(R[2])  # |z component| of each local axis
    if p.shape == "sphere":
        return s[0]
    if p.shape == "box":
        return float(rz @ np.array(s))
    if p.shape == "capsule":
        return float(s[0] + rz[2] * s[1])
    return float(rz[2] * s[1] + s[0] * math.sqrt(max(0.0, 1 - rz[2] ** 2)))


def auto_positions(world: World, props: list[PropSpec], rng: np.random.Generator, spawn_mask: np.ndarray | None = None,
                   avoid: np.ndarray | None = None) -> np.ndarray:
    """Positions [P,3]: given ones as they are; `auto` ones on free walkable ground (in view first), resting on it."""
    out = np.zeros((len(props), 3))
    auto = [i for i, p in enumerate(props) if p.position is None]
    taken = [] if avoid is None else [np.asarray(a, np.float64) for a in np.asarray(avoid).reshape(-1, 2)]
    for i, p in enumerate(props):
        if p.position is not None:
            out[i] = p.position
            taken.append(out[i, :2])
    if auto:
        w = world
        if spawn_mask is not None and (spawn_mask & world.walkable).any():
            w = World(world.plane, world.origin, world.cell, world.walkable & spawn_mask, world.obstacle, world.support,
                      world.heights, world.scale, world.config)
        xy, _ = w.place(len(auto), rng, 1.5, min_clearance=0.3, avoid=np.array(taken).reshape(-1, 2), body_sep=0.5)
        if len(xy) < len(auto):
            more, _ = world.place(len(auto) - len(xy), rng, 1.0, avoid=np.vstack([np.array(taken).reshape(-1, 2), xy]),
                                  body_sep=0.3)
            xy = np.vstack([xy, more])
        if len(xy) < len(auto):
            raise InputError(f"no free ground for {len(auto)} props with position auto")
        for k, i in enumerate(auto):
            g = float(world.height(xy[k][None])[0])
            out[i] = [xy[k, 0], xy[k, 1], g + _half_height(props[i]) + 1e-3]
    return out


@dataclass
class PropsResult:
    """Props per video frame (world metres, +Z up): position [T,P,3], quat [T,P,4] (w,x,y,z), velocity [T,P,3], angular
    velocity [T,P,3] (world), contact events (start / end, physics.contacts), and the physics settings."""

    fps: float
    props: list[PropSpec]
    position: np.ndarray
    quat: np.ndarray
    velocity: np.ndarray
    angular_velocity: np.ndarray
    masses: np.ndarray
    dt: float
    substeps: int
    contacts: list[dict[str, Any]] = field(default_factory=list)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    engine: str = "mujoco"
    collider_info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_props(self) -> int:
        return len(self.props)

    @property
    def n_frames(self) -> int:
        return self.position.shape[0]

    def physics_summary(self) -> dict[str, Any]:
        return {"engine": self.engine, "dt_s": self.dt, "rate_hz": round(1.0 / self.dt, 3), "substeps": self.substeps,
                "props": self.n_props, "static_colliders": f"{len(self.boxes)} voxel boxes ({self.collider_method()})",
                "colliders": {"boxes": int(len(self.boxes)), **self.collider_info},
                "contacts": len(self.contacts), "contact_hold_s": CONTACT_HOLD_S}

    def collider_method(self) -> str:
        m = self.collider_info.get("method", "grid")
        return "World obstacle grid" if m == "grid" else f"{m} fitted to the Gaussians, {self.collider_info.get('voxel_m')} m"

    def to_json(self, frames: int | None = None) -> dict[str, Any]:
        T = self.n_frames if frames is None else min(frames, self.n_frames)
        out = {"fps": self.fps, "frames": T, "units": "metres", "world_up": [0, 0, 1], "quat_order": "wxyz",
               "physics": self.physics_summary(), "props": [],
               "static_colliders": {"boxes": np.round(self.boxes, 5).tolist(), "format": "x0 y0 z0 x1 y1 z1 (world metres)"}, "contacts": [_clip_event(c, T) for c in self.contacts if c["frame"] < T]}
        for i, p in enumerate(self.props):
            out["props"].append({"id": i, "name": p.name, "shape": p.shape, "size": list(p.size), "mass_kg": float(self.masses[i]),
                                 "friction": p.friction, "restitution": p.restitution, "color": list(p.color),
                                 "position": np.round(self.position[:T, i], 5).tolist(),
                                 "quat": np.round(self.quat[:T, i], 5).tolist(),
                                 "velocity": np.round(self.velocity[:T, i], 5).tolist(),
                                 "angular_velocity": np.round(self.angular_velocity[:T, i], 5).tolist()})
        return out


def _clip_event(c: dict[str, Any], T: int) -> dict[str, Any]:
    """A contact event as seen in the first T frames: one that ends later is still open at the clip's end."""
    if c["end_frame"] is not None and c["end_frame"] >= T:
        return {**c, "end_time": None, "end_frame": None}
    return c


def _limb_tracks(sim) -> tuple[list[tuple[int, str]], np.ndarray, np.ndarray, np.ndarray]:
    """Per limb (agent, segment): endpoints a, b [T,L,3] from the sim's joints and the capsule radius [L]."""
    from ..body import BodyModel

    body = BodyModel(sim.skeleton)
    segs = [s[0] for s in body.segments if s[0] in LIMB_SEGMENTS]
    ends = {s[0]: (s[1], s[2]) for s in body.segments}
    T, A = sim.n_frames, sim.n_agents
    a_pts = np.zeros((T, A, len(segs), 3))
    b_pts = np.zeros_like(a_pts)
    for t in range(T):
        P = body._endpoints(np.asarray(sim.joints[t], np.float64), np.asarray(sim.heading[t], np.float64))
        for k, s in enumerate(segs):
            a_pts[t, :, k] = P[ends[s][0]]
            b_pts[t, :, k] = P[ends[s][1]]
    build = np.array([lk.build for lk in sim.looks])
    radius = np.array([[LIMB_SEGMENTS[s] * build[a] for s in segs] for a in range(A)])
    labels = [(a, s) for a in range(A) for s in segs]
    L = len(labels)
    return labels, a_pts.reshape(T, L, 3), b_pts.reshape(T, L, 3), radius.reshape(L)


def _quat_z_to(d: np.ndarray) -> np.ndarray:
    """Quaternions [L,4] turning +z onto unit directions d [L,3]."""
    z = np.array([0.0, 0.0, 1.0])
    c = d @ z
    ax = np.cross(np.broadcast_to(z, d.shape), d)
    q = np.concatenate([(1.0 + c)[:, None], ax], 1)
    flip = c < -0.999999
    q[flip] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def simulate_props(world: World, props: list[PropSpec], frames: int, fps: float, sim=None, rate: float = DEFAULT_RATE,
                   spawn_mask: np.ndarray | None = None, seed: int = 0, boxes: np.ndarray | None = None,
                   collider_info: dict[str, Any] | None = None) -> PropsResult:
    """Simulate `props` for `frames` video frames at `fps` (frame t = time t / fps). `sim`: a SimResult whose agents push
    the props (kinematic limb capsules; its frames must be at the same fps). boxes [N,6]: static colliders (default from
    the World's obstacle grid; physics.colliders fits them to a scene's Gaussians); collider_info goes to sim.json."""
    mujoco = _mujoco()
    if not props:
        raise RealsimError("no props to simulate")
    substeps = max(1, int(math.ceil(rate / fps - 1e-9)))
    dt = 1.0 / (fps * substeps)
    rng = np.random.default_rng(seed + 7919)
    avoid = None
    if sim is not None and sim.n_agents:
        avoid = np.asarray(sim.joints[0, :, 0, :2])
    pos0 = auto_positions(world, props, rng, spawn_mask, avoid)
    if boxes is None:
        boxes = collider_boxes(world)
    given = [i for i, p in enumerate(props) if p.position is not None]  # `auto` ones were placed on free ground
    check_prop_positions([props[i] for i in given], pos0[given], boxes, world)
    limbs, la, lb, lr = None, None, None, None
    if sim is not None and sim.n_agents:
        labels, la, lb, lr = _limb_tracks(sim)
        half = np.maximum(np.median(np.linalg.norm(lb - la, axis=-1), 0) / 2, 0.01)
        limbs = [(a, s, float(lr[k]), float(half[k])) for k, (a, s) in enumerate(labels)]
    spec = build_mjcf(world, props, pos0, dt, boxes, limbs)
    try:
        model = mujoco.MjModel.from_xml_string(spec.xml)
    except ValueError as e:
        raise RealsimError(f"MuJoCo rejected the physics model: {str(e).splitlines()[0]}") from None
    data = mujoco.MjData(model)
    P = len(props)
    jadr = [model.jnt_qposadr[model.joint(f"prop{i}_free").id] for i in range(P)]
    vadr = [model.jnt_dofadr[model.joint(f"prop{i}_free").id] for i in range(P)]
    for i, p in enumerate(props):
        data.qvel[vadr[i]:vadr[i] + 3] = p.velocity
        # free joints take angular velocity in the body frame: rotate the world-frame value by the inverse orientation
        qc = np.array(p.quat) * np.array([1, -1, -1, -1])
        data.qvel[vadr[i] + 3:vadr[i] + 6] = quat_rotate(qc, np.array(p.angular_velocity))
    # who each geom is, for contact events
    label = ["static"] * model.ngeom
    label[model.geom("ground").id] = "ground"
    prop_gid = {model.geom(f"prop{i}_geom").id: i for i in range(P)}
    for g, i in prop_gid.items():
        label[g] = f"prop:{i}"
    for k, (a, s) in enumerate(spec.limb_bodies):
        label[model.geom(f"agent{a}_{s}_geom").id] = f"agent:{a}:{s}"

    def set_mocap(t: int, f: float) -> None:
        if la is None:
            return
        t1 = min(t + 1, la.shape[0] - 1)
        a = la[t] * (1 - f) + la[t1] * f
        b = lb[t] * (1 - f) + lb[t1] * f
        d = b - a
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        data.mocap_pos[:] = 0.5 * (a + b)
        data.mocap_quat[:] = _quat_z_to(d)

    set_mocap(0, 0.0)
    mujoco.mj_forward(model, data)
    pos = np.zeros((frames, P, 3))
    quat = np.zeros((frames, P, 4))
    vel = np.zeros((frames, P, 3))
    ang = np.zeros((frames, P, 3))
    tracker = ContactTracker(float(fps))
    T_agents = la.shape[0] if la is not None else 0
    for t in range(frames):
        for i in range(P):
            pos[t, i] = data.qpos[jadr[i]:jadr[i] + 3]
            quat[t, i] = data.qpos[jadr[i] + 3:jadr[i] + 7]
            vel[t, i] = data.qvel[vadr[i]:vadr[i] + 3]
            ang[t, i] = quat_rotate(quat[t, i], data.qvel[vadr[i] + 3:vadr[i] + 6])
        if t == frames - 1:
            break
        for s in range(substeps):
            if la is not None and t < T_agents:
                set_mocap(t, (s + 1) / substeps)
            mujoco.mj_step(model, data)
            now: dict[tuple[int, str], np.ndarray] = {}
            for c in range(data.ncon):
                con = data.contact[c]
                g1, g2 = int(con.geom[0]), int(con.geom[1])
                for ga, gb in ((g1, g2), (g2, g1)):
                    if ga in prop_gid:
                        now.setdefault((prop_gid[ga], label[gb]), con.pos.copy())
            tracker.update(t / fps + (s + 1) * dt, now)
    contacts = tracker.events
    masses = np.array([prop_mass(p) for p in props])
    return PropsResult(float(fps), list(props), pos, quat, vel, ang, masses, dt, substeps, contacts, boxes,
                       f"mujoco {mujoco.__version__}", dict(collider_info or {}))
