"""How agents look (colours, build, body shape, height) and where a skeleton's body parts are (joints found by name).

Shared by the skinned body (sim/body.py), the tube body (sim/tubes.py) and the sim loop.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

__all__ = ["AgentLook", "random_looks", "semantic"]


@dataclass
class AgentLook:
    """How one agent looks: colours (RGB in [0,1]), build (girth factor), body shape and hair."""

    shirt: tuple[float, float, float]
    trousers: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shoes: tuple[float, float, float]
    build: float = 1.0
    height: float = 1.0  # skeleton scale (applied by the sim around the feet)
    shoulders: float = 1.0  # chest width factor (torso shape)
    belly: float = 0.0  # extra waist depth in metres (torso shape)
    hair_long: float = 0.0  # hair length below the skull's middle in metres (0 = short)
    sleeves: float = 0.5  # how far the shirt covers the forearm (0 = short sleeves, 1 = to the wrist)


def random_looks(n: int, rng: np.random.Generator) -> list[AgentLook]:
    skins = [(0.96, 0.80, 0.69), (0.87, 0.68, 0.55), (0.72, 0.52, 0.38), (0.55, 0.37, 0.25), (0.40, 0.27, 0.18)]
    hairs = [(0.08, 0.06, 0.05), (0.30, 0.20, 0.10), (0.65, 0.50, 0.25), (0.55, 0.55, 0.55), (0.45, 0.15, 0.08)]
    trousers = [(0.12, 0.15, 0.30), (0.10, 0.10, 0.11), (0.55, 0.48, 0.35), (0.30, 0.30, 0.32), (0.25, 0.35, 0.55)]
    out = []
    for _ in range(n):
        h = rng.uniform()
        shirt = colorsys.hsv_to_rgb(h, rng.uniform(0.45, 0.9), rng.uniform(0.55, 0.95))
        lk = AgentLook(tuple(shirt), trousers[rng.integers(len(trousers))], skins[rng.integers(len(skins))],
                       hairs[rng.integers(len(hairs))], (0.08, 0.08, 0.09) if rng.uniform() < 0.6 else (0.85, 0.85, 0.82),
                       float(rng.uniform(0.88, 1.18)), float(rng.uniform(0.92, 1.07)))
        # the shape comes from its own generator seeded by this agent's draws: the caller's stream (the sim's paths and
        # goals) is the same as before shapes existed, and the same agent seed gives the same body
        sub = np.random.default_rng(np.frombuffer(np.array([h, lk.build, lk.height]).tobytes(), np.uint32))
        lk.shoulders = float(sub.uniform(0.9, 1.12))
        lk.belly = float(np.clip(sub.normal(0.0, 0.02), 0.0, 0.05)) * lk.build
        lk.hair_long = float(sub.choice([0.0, 0.0, 0.06, 0.14]))
        lk.sleeves = float(sub.choice([0.15, 0.5, 1.0]))
        out.append(lk)
    return out


def _side(name: str) -> str | None:
    """'left' / 'right' / None from a joint name (LeftFoot, l_ankle, LToe, ...)."""
    low = name.lower()
    if ("left" in low or low.startswith(("l_", "l.")) or low.endswith(("_l", ".l"))
            or (len(name) > 1 and name[0] == "L" and name[1].isupper())):
        return "left"
    if ("right" in low or low.startswith(("r_", "r.")) or low.endswith(("_r", ".r"))
            or (len(name) > 1 and name[0] == "R" and name[1].isupper())):
        return "right"
    return None


def _find(names: list[str], *keys: str, side: str | None = None, exclude: tuple[str, ...] = ()) -> int:
    """First joint whose lower-cased name contains one of keys, is on `side` (None: unsided) and has no excluded word; else -1."""
    for k in keys:
        for i, n in enumerate(names):
            low = n.lower()
            if k in low and not any(e in low for e in exclude) and _side(n) == side:
                return i
    return -1


def semantic(skeleton) -> dict[str, int]:
    """Map body parts to joint indices of an arbitrary skeleton (names + COCO-17 map)."""
    names = list(skeleton.names)
    coco = list(skeleton.coco17())
    sem: dict[str, int] = {}
    for k, key in zip(range(5, 17), ["l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
                                      "l_knee", "r_knee", "l_ankle", "r_ankle"]):
        sem[key] = coco[k]
    parents = list(skeleton.parents)
    sem["pelvis"] = parents.index(-1)
    sem["neck"] = _find(names, "neck")
    sem["head"] = _find(names, "head", exclude=("top", "end", "nub"))
    sem["head_top"] = _find(names, "head_top", "headtop", "head_end", "headend", "head_nub")
    sem["l_toe"] = _find(names, "toe", "foot_end", side="left")
    sem["r_toe"] = _find(names, "toe", "foot_end", side="right")
    if sem["head"] < 0 and coco[0] >= 0:
        sem["head"] = coco[0]
    missing = [k for k in ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee",
                           "r_knee", "l_ankle", "r_ankle", "head") if sem.get(k, -1) < 0]
    if missing:
        raise ValueError(f"skeleton lacks joints for the body: {missing}")
    return sem
