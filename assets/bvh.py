"""BVH motion-capture files: a reader for any skeleton (any channel layout) and a writer; malformed files raise InputError."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError

_AXES = {"X": 0, "Y": 1, "Z": 2}


@dataclass
class BVH:
    """A parsed BVH file. Units are whatever the file uses (often cm); rotations are in degrees in `motion`."""

    names: list[str]                 # [J] joint names (End Sites are not joints)
    parents: np.ndarray              # [J] int, -1 for the root
    offsets: np.ndarray              # [J,3] rest offsets from the parent
    channels: list[list[str]]        # per joint, e.g. ["Xposition", ..., "Zrotation", "Xrotation", "Yrotation"]
    frame_time: float                # seconds per frame
    motion: np.ndarray               # [T,C] float64 raw channel values
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)  # joint index -> End Site offset [3]

    @property
    def n_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame local translations [T,J,3] (offset, or the position channels) and rotations [T,J,3,3]."""
        T, J = self.n_frames, len(self.names)
        trans = np.broadcast_to(self.offsets, (T, J, 3)).copy()
        rots = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
        col = 0
        for j, chans in enumerate(self.channels):
            for c in chans:
                v = self.motion[:, col]
                col += 1
                kind, ax = c[1:], _AXES[c[0].upper()]
                if kind.lower() == "position":
                    trans[:, j, ax] = v
                else:
                    rots[:, j] = rots[:, j] @ _axis_rot(ax, np.deg2rad(v))
        return trans, rots


def _axis_rot(ax: int, a: np.ndarray) -> np.ndarray:
    """Rotation matrices [T,3,3] about axis `ax` by angles `a` [T] (radians)."""
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(a.shape + (3, 3))
    i, k = [(1, 2), (2, 0), (0, 1)][ax]
    R[..., ax, ax] = 1
    R[..., i, i] = c
    R[..., k, k] = c
    R[..., i, k] = -s
    R[..., k, i] = s
    return R


def _err(path: str | os.PathLike, msg: str) -> InputError:
    return InputError(f"malformed BVH file {path}: {msg}")


def read_bvh(path: str | os.PathLike) -> BVH:
    """Parse a BVH file; any structural problem raises InputError naming the file and the reason."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"BVH file {p} not found")
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, OSError) as e:
        raise _err(p, f"cannot read as text ({type(e).__name__})") from None
    return parse_bvh(text, source=str(p))


def parse_bvh(text: str, source: str = "<string>") -> BVH:
    """Parse BVH text (see read_bvh)."""
    tokens = text.split()
    pos = 0

    def nxt(expect: str | None = None, what: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise _err(source, f"unexpected end of file (expected {expect or what or 'more data'})")
        t = tokens[pos]
        pos += 1
        if expect is not None and t.upper() != expect.upper():
            raise _err(source, f"expected '{expect}' but found '{t[:40]}'")
        return t

    def num() -> float:
        t = nxt()
        try:
            return float(t)
        except ValueError:
            raise _err(source, f"expected a number but found '{t[:40]}'") from None

    if not tokens or tokens[0].upper() != "HIERARCHY":
        raise _err(source, "does not start with HIERARCHY")
    pos = 1
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_sites: dict[int, np.ndarray] = {}

    def parse_joint(parent: int) -> None:
        name = nxt()
        j = len(names)
        names.append(name)
        parents.append(parent)
        nxt("{")
        nxt("OFFSET")
        offsets.append([num(), num(), num()])
        chans: list[str] = []
        if pos < len(tokens) and tokens[pos].upper() == "CHANNELS":
            nxt()
            try:
                n = int(nxt())
            except ValueError:
                raise _err(source, f"bad CHANNELS count for joint {name}") from None
            if not 0 <= n <= 6:
                raise _err(source, f"joint {name} has {n} channels (0..6 allowed)")
            for _ in range(n):
                c = nxt()
                if len(c) < 2 or c[0].upper() not in _AXES or c[1:].lower() not in ("position", "rotation"):
                    raise _err(source, f"unknown channel '{c[:40]}' in joint {name}")
                chans.append(c)
        channels.append(chans)
        while True:
            t = nxt(what="JOINT, End Site or }")
            u = t.upper()
            if u == "}":
                return
            if u == "JOINT":
                parse_joint(j)
            elif u == "END":
                nxt("Site")
                nxt("{")
                nxt("OFFSET")
                end_sites[j] = np.array([num(), num(), num()])
                nxt("}")
            else:
                raise _err(source, f"unexpected token '{t[:40]}' inside joint {name}")

    nxt("ROOT")
    parse_joint(-1)
    if pos < len(tokens) and tokens[pos].upper() == "ROOT":
        raise _err(source, "more than one ROOT (not supported)")
    nxt("MOTION")
    nxt("Frames:")
    try:
        n_frames = int(nxt())
    except ValueError:
        raise _err(source, "bad frame count") from None
    nxt("Frame")
    nxt("Time:")
    frame_time = num()
    if not (frame_time > 0 and np.isfinite(frame_time)):
        raise _err(source, f"bad frame time {frame_time}")
    n_ch = sum(len(c) for c in channels)
    rest = tokens[pos:]
    if n_frames < 1:
        raise _err(source, "no frames")
    if len(rest) < n_frames * n_ch:
        raise _err(source, f"motion data truncated: {len(rest)} values for {n_frames} frames x {n_ch} channels")
    if len(rest) > n_frames * n_ch:
        raise _err(source, f"motion data has {len(rest) - n_frames * n_ch} extra values (frame count or channels wrong)")
    try:
        motion = np.asarray(rest, dtype=np.float64).reshape(n_frames, n_ch)
    except ValueError:
        raise _err(source, "non-numeric value in motion data") from None
    if not np.isfinite(motion).all():
        raise _err(source, "NaN or infinite value in motion data")
    return BVH(names, np.array(parents, dtype=np.int64), np.array(offsets, dtype=np.float64), channels, float(frame_time),
               motion, end_sites)


def _euler_from_matrix(R: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles [T,3] (degrees, in `order`, e.g. 'ZXY') such that R = R_order[0] @ R_order[1] @ R_order[2]."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler(order.upper(), degrees=True).reshape(R.shape[:-2] + (3,))


def write_bvh(path: str | os.PathLike, names: list[str], parents: np.ndarray, offsets: np.ndarray, root_pos: np.ndarray,
              local_rot: np.ndarray, frame_time: float, order: str = "ZXY",
              end_sites: dict[int, np.ndarray] | None = None) -> None:
    """Write a BVH: root gets 6 channels (position + rotation), others 3 rotation channels in `order`.

    root_pos [T,3], local_rot [T,J,3,3]; parents must list each parent before its children. Written atomically.
    """
    J = len(names)
    T = root_pos.shape[0]
    parents = np.asarray(parents)
    if local_rot.shape != (T, J, 3, 3):
        raise ValueError(f"local_rot shape {local_rot.shape} != {(T, J, 3, 3)}")
    children: dict[int, list[int]] = {j: [] for j in range(-1, J)}
    for j in range(J):
        children[int(parents[j])].append(j)
    end_sites = dict(end_sites or {})
    rot_ch = " ".join(f"{a}rotation" for a in order.upper())
    lines = ["HIERARCHY"]
    ordered: list[int] = []

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        kw = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{ind}{kw} {names[j]}")
        lines.append(f"{ind}{{")
        o = offsets[j]
        lines.append(f"{ind}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if parents[j] < 0:
            lines.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition {rot_ch}")
        else:
            lines.append(f"{ind}  CHANNELS 3 {rot_ch}")
        ordered.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            e = end_sites.get(j, np.zeros(3))
            lines.append(f"{ind}  End Site")
            lines.append(f"{ind}  {{")
            lines.append(f"{ind}    OFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}")
            lines.append(f"{ind}  }}")
        lines.append(f"{ind}}}")

    roots = children[-1]
    if len(roots) != 1:
        raise ValueError("write_bvh needs exactly one root joint")
    emit(roots[0], 0)
    eul = _euler_from_matrix(local_rot[:, ordered], order)  # [T,J,3]
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {frame_time:.8f}"]
    for t in range(T):
        vals = [root_pos[t]] + [eul[t, i] for i in range(J)]
        lines.append(" ".join(f"{v:.6f}" for v in np.concatenate(vals)))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
