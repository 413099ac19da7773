"""Scenario files (YAML): agents with start, goals/waypoints, style, speed; camera; duration; seed. Validated with clear errors.

Example:
    seed: 3
    duration: 8            # seconds
    fps: 30
    scale: null            # metres per scene unit, only for non-metric scenes
    agents:
      - start: [0.5, 2.0]  # metres in the scene's world (x, y), on walkable ground (else an error); omit for a random place
        goals: [[1.0, 12.0], [-1.0, 20.0]]   # visited in order (waypoints; off walkable ground: moved, with a warning)
        style: neutral
        speed: 1.3         # m/s
      - count: 4           # four more agents at random places, wandering
        speed: [1.0, 1.5]  # a range to draw from
    camera:
      path: interp         # interp (through the capture cameras) | orbit | spiral | follow | static | FILE.json
      width: 480
      height: 360
    props:                 # rigid bodies simulated by MuJoCo (realsim.sim.physics); `agents: []` is allowed with props
      - shape: sphere      # sphere | box | capsule | cylinder
        size: [0.11]       # metres: sphere [radius]; box [x, y, z] full extents; capsule / cylinder [radius, length]
        position: auto     # [x, y, z] world metres, or auto (a free spot in view, resting on the ground)
        quat: [1, 0, 0, 0] # orientation w, x, y, z
        velocity: [4, 0, 1.5]           # m/s, world frame
        angular_velocity: [0, 0, 0]     # rad/s, world frame
        mass: 0.43         # kg (or density: kg/m^3; default density 500)
        friction: 0.5      # sliding friction coefficient (0 = frictionless)
        restitution: 0.8   # 0 = no bounce .. 1 = elastic
        color: [0.9, 0.3, 0.1]
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realsim.assets.errors import InputError

__all__ = ["AgentSpec", "CameraSpec", "PropSpec", "PROP_SHAPES", "parse_prop", "Scenario", "load_scenario", "parse_scenario", "default_scenario"]

_TOP_KEYS = {"seed", "duration", "fps", "scale", "agents", "camera", "name", "props"}
_AGENT_KEYS = {"start", "goals", "waypoints", "style", "speed", "count", "loop", "name"}
_CAMERA_KEYS = {"path", "width", "height", "height_m", "distance", "fps"}
CAMERA_PATHS = ("interp", "orbit", "spiral", "follow", "static")
_PROP_KEYS = {"shape", "size", "position", "quat", "velocity", "angular_velocity", "mass", "density", "friction", "restitution",
              "color", "name"}
PROP_SHAPES = {"sphere": 1, "box": 3, "capsule": 2, "cylinder": 2}  # shape -> number of size values


@dataclass
class AgentSpec:
    """One agent (count > 1 repeats it with random places)."""

    start: tuple[float, float] | None = None
    goals: list[tuple[float, float]] = field(default_factory=list)
    style: str = "neutral"
    speed: tuple[float, float] = (1.1, 1.5)  # drawn uniformly (lo == hi for a fixed speed)
    count: int = 1
    loop: bool = False
    name: str | None = None


@dataclass
class PropSpec:
    """One rigid prop (simulated by realsim.sim.physics). Sizes in metres: sphere (radius,), box (x, y, z) full extents,
    capsule / cylinder (radius, length end to end). position None = auto (a free spot in view, resting on the ground)."""

    shape: str = "sphere"
    size: tuple[float, ...] = (0.11,)
    position: tuple[float, float, float] | None = None
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angular_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mass: float | None = None  # kg; None: from density
    density: float = 500.0  # kg/m^3
    friction: float = 0.5
    restitution: float = 0.5
    color: tuple[float, float, float] = (0.85, 0.35, 0.1)
    name: str | None = None


@dataclass
class CameraSpec:
    path: str = "interp"  # one of CAMERA_PATHS or a camera_path.json file
    width: int | None = None
    height: int | None = None


@dataclass
class Scenario:
    agents: list[AgentSpec] = field(default_factory=list)
    duration: float = 8.0
    fps: float = 30.0
    seed: int = 0
    scale: float | None = None
    camera: CameraSpec = field(default_factory=CameraSpec)
    name: str = "scenario"
    props: list[PropSpec] = field(default_factory=list)

    @property
    def n_agents(self) -> int:
        return sum(a.count for a in self.agents)


def _num(v: Any, where: str, lo: float | None = None, hi: float | None = None, integer: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{where} must be a number, got {v!r}")
    if integer and int(v) != v:
        raise InputError(f"{where} must be a whole number, got {v!r}")
    if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise InputError(f"{where} = {v!r} is outside {rng}")
    return int(v) if integer else float(v)


def _xy(v: Any, where: str) -> tuple[float, float]:
    if not isinstance(v, (list, tuple)) or len(v) not in (2, 3):
        raise InputError(f"{where} must be [x, y] in metres, got {v!r}")
    return (_num(v[0], f"{where}[0]"), _num(v[1], f"{where}[1]"))


def _unknown(d: dict, allowed: set[str], where: str) -> None:
    bad = sorted(set(d) - allowed)
    if bad:
        raise InputError(f"{where}: unknown key(s) {', '.join(map(str, bad))} (allowed: {', '.join(sorted(allowed))})")


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    """Validate a scenario dict (as read from YAML) into a Scenario; InputError naming the bad field otherwise."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{source}: a scenario is a mapping (seed, duration, agents, camera), got {type(data).__name__}")
    _unknown(data, _TOP_KEYS, source)
    sc = Scenario(name=str(data.get("name", Path(source).stem)))
    if "seed" in data:
        sc.seed = _num(data["seed"], f"{source}: seed", 0, integer=True)  # type: ignore[assignment]
    if "duration" in data:
        sc.duration = _num(data["duration"], f"{source}: duration", 0.1, 600)
    if "fps" in data:
        sc.fps = _num(data["fps"], f"{source}: fps", 1, 120)
    if data.get("scale") is not None:
        sc.scale = _num(data["scale"], f"{source}: scale", 1e-6)
        if sc.scale <= 0:
            raise InputError(f"{source}: scale must be positive")
    agents = data.get("agents", [])
    if not isinstance(agents, list):
        raise InputError(f"{source}: agents must be a list")
    for i, a in enumerate(agents):
        w = f"{source}: agents[{i}]"
        if not isinstance(a, dict):
            raise InputError(f"{w} must be a mapping (start, goals, style, speed), got {a!r}")
        _unknown(a, _AGENT_KEYS, w)
        spec = AgentSpec()
        if a.get("start") is not None:
            spec.start = _xy(a["start"], f"{w}.start")
        goals = a.get("goals", a.get("waypoints"))
        if goals is not None:
            if not isinstance(goals, list) or (goals and not isinstance(goals[0], (list, tuple))):
                goals = [goals] if isinstance(goals, list) and len(goals) in (2, 3) else goals
            if not isinstance(goals, list):
                raise InputError(f"{w}.goals must be a list of [x, y] points")
            spec.goals = [_xy(g, f"{w}.goals[{k}]") for k, g in enumerate(goals)]
        if "style" in a:
            if not isinstance(a["style"], str) or not a["style"]:
                raise InputError(f"{w}.style must be a style name (e.g. neutral)")
            spec.style = a["style"]
        if "speed" in a:
            s = a["speed"]
            if isinstance(s, (list, tuple)):
                if len(s) != 2:
                    raise InputError(f"{w}.speed range must be [lo, hi] m/s")
                lo, hi = _num(s[0], f"{w}.speed[0]", 0.1, 4.0), _num(s[1], f"{w}.speed[1]", 0.1, 4.0)
                if hi < lo:
                    raise InputError(f"{w}.speed range [{lo}, {hi}] is reversed")
                spec.speed = (lo, hi)
            else:
                v = _num(s, f"{w}.speed", 0.1, 4.0)
                spec.speed = (v, v)
        if "count" in a:
            spec.count = _num(a["count"], f"{w}.count", 1, 200, integer=True)  # type: ignore[assignment]
            if spec.count > 1 and spec.start is not None:
                raise InputError(f"{w}: count > 1 cannot share one start point")
        if "loop" in a:
            spec.loop = bool(a["loop"])
        spec.name = a.get("name")
        sc.agents.append(spec)
    props = data.get("props", []) or []
    if not isinstance(props, list):
        raise InputError(f"{source}: props must be a list")
    sc.props = [parse_prop(p, f"{source}: props[{i}]") for i, p in enumerate(props)]
    cam = data.get("camera", {}) or {}
    if not isinstance(cam, dict):
        raise InputError(f"{source}: camera must be a mapping (path, width, height)")
    _unknown(cam, _CAMERA_KEYS, f"{source}: camera")
    if "path" in cam:
        p = cam["path"]
        if not isinstance(p, str) or not (p in CAMERA_PATHS or p.endswith(".json")):
            raise InputError(f"{source}: camera.path must be one of {', '.join(CAMERA_PATHS)} or a camera_path .json file, got {p!r}")
        if p.endswith(".json"):
            base = Path(source).parent if os.path.exists(source) else Path(".")
            q = Path(p) if Path(p).is_absolute() else base / p
            if not q.is_file():
                raise InputError(f"{source}: camera path file {q} not found")
            p = str(q)
        sc.camera.path = p
    for k in ("width", "height"):
        if cam.get(k) is not None:
            v = _num(cam[k], f"{source}: camera.{k}", 16, 4096, integer=True)
            if int(v) % 2:
                raise InputError(f"{source}: camera.{k} must be even (H.264)")
            setattr(sc.camera, k, int(v))
    return sc


def _vec(v: Any, n: int, where: str, lo: float | None = None, hi: float | None = None) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise InputError(f"{where} must be a list of {n} numbers, got {v!r}")
    return tuple(_num(x, f"{where}[{k}]", lo, hi) for k, x in enumerate(v))


def parse_prop(p: Any, where: str) -> PropSpec:
    """One `props:` item -> PropSpec; InputError naming the field otherwise."""
    if not isinstance(p, dict):
        raise InputError(f"{where} must be a mapping (shape, size, position, ...), got {p!r}")
    _unknown(p, _PROP_KEYS, where)
    spec = PropSpec()
    shape = p.get("shape", "sphere")
    if shape not in PROP_SHAPES:
        raise InputError(f"{where}.shape {shape!r} is not one of {', '.join(PROP_SHAPES)}")
    spec.shape = shape
    n = PROP_SHAPES[shape]
    default = {"sphere": (0.11,), "box": (0.4, 0.4, 0.4), "capsule": (0.1, 0.5), "cylinder": (0.15, 0.4)}[shape]
    size = p.get("size", list(default))
    if isinstance(size, (int, float)) and not isinstance(size, bool) and n == 1:
        size = [size]
    spec.size = _vec(size, n, f"{where}.size", 0.005, 20.0)
    if shape == "capsule" and spec.size[1] < 2 * spec.size[0]:
        raise InputError(f"{where}.size: a capsule's length {spec.size[1]} is shorter than its diameter {2 * spec.size[0]}")
    pos = p.get("position", "auto")
    if pos is not None and pos != "auto":
        spec.position = _vec(pos, 3, f"{where}.position")  # type: ignore[assignment]
    if "quat" in p:
        q = _vec(p["quat"], 4, f"{where}.quat")
        nq = sum(x * x for x in q) ** 0.5
        if nq < 1e-9:
            raise InputError(f"{where}.quat must not be zero")
        spec.quat = tuple(x / nq for x in q)  # type: ignore[assignment]
    for k in ("velocity", "angular_velocity"):
        if k in p:
            setattr(spec, k, _vec(p[k], 3, f"{where}.{k}", -200.0, 200.0))
    if p.get("mass") is not None:
        m = _num(p["mass"], f"{where}.mass")
        if not m > 0:
            raise InputError(f"{where}.mass must be positive kg, got {m}")
        spec.mass = m
    if p.get("density") is not None:
        d = _num(p["density"], f"{where}.density")
        if not d > 0:
            raise InputError(f"{where}.density must be positive kg/m^3, got {d}")
        spec.density = d
    if "friction" in p:
        spec.friction = _num(p["friction"], f"{where}.friction", 0.0, 10.0)
    if "restitution" in p:
        spec.restitution = _num(p["restitution"], f"{where}.restitution", 0.0, 1.0)
    if "color" in p:
        spec.color = _vec(p["color"], 3, f"{where}.color", 0.0, 1.0)  # type: ignore[assignment]
    if p.get("name") is not None:
        spec.name = str(p["name"])
    return spec


def load_scenario(path: str | os.PathLike) -> Scenario:
    """Read and validate a YAML scenario file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"scenario file {p} not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise InputError(f"scenario file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise InputError(f"scenario file {p} is not a text file") from None
    return parse_scenario(data, str(p))


def default_scenario(n_agents: int = 6, seconds: float = 8.0, seed: int = 0) -> Scenario:
    """N wandering agents at random free places."""
    return Scenario(agents=[AgentSpec(count=int(n_agents))] if n_agents > 0 else [], duration=float(seconds), seed=int(seed))
