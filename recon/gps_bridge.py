"""Bridge the components of a partitioned map with GPS: each component placed in one east/north/up frame by its photos' fixes.

Why: a walk past a blank wall leaves nothing to match across it (photos 68-69 of the 200 m SYNTHETIC walk,
bench/loops.py), so mapping starts a new component there, and a visual bridge forced through it lands metres off. GPS is
another measurement of the same cameras: each component is levelled by the ground plane of its points (its cameras'
mean up when none is found: hand-held cameras pitch down, so that is a few degrees off), then placed by a 2-D
similarity of its camera centres onto the fixes' east/north (GPS's best axes); scale and height as place_components
says. A component whose fixes are too few or span too little to fix its scale is left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import ground_up, rotation_between, umeyama

__all__ = ["BridgeConfig", "Placement", "place_components", "place_component", "bridge_components"]


@dataclass
class BridgeConfig:
    """When a component can be placed by its fixes."""

    min_fixes: int = 5  # GPS fixes among its registered images
    min_span_m: float = 10.0  # horizontal extent of those fixes (below it the scale is a guess)
    outlier_factor: float = 3.0  # fixes farther than this x the median residual are dropped once (a GPS jump) and refitted
    seed: int = 0


@dataclass
class Placement:
    """world = s * R @ x + t for one component, and how well its fixes agree."""

    s: float
    R: np.ndarray  # [3,3]
    t: np.ndarray  # [3]
    info: dict = field(default_factory=dict)


def _level(R_cw: np.ndarray, C: np.ndarray, points: np.ndarray, seed: int) -> tuple[np.ndarray, float | None, str]:
    """Levelling rotation [3,3] of a component (its ground plane's normal to +Z, else its cameras' mean up) and the
    levelled ground height (None without a plane)."""
    up, plane, _ = ground_up(R_cw, C, points, seed)
    R = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    return (R, None, "camera_up") if plane is None else (R, -plane[1], "ground_plane")


def _inliers(c: np.ndarray, en: np.ndarray, cfg: BridgeConfig) -> np.ndarray:
    """Fixes [N] kept after one refit without those farther than outlier_factor x the median residual (a GPS jump)."""
    keep = np.ones(len(c), bool)
    for _ in range(2):
        s, R2, t2 = umeyama(c[keep], en[keep])
        res = np.linalg.norm(s * c @ R2.T + t2 - en, axis=1)  # [N] metres
        new = res <= cfg.outlier_factor * max(float(np.median(res[keep])), 1e-6)
        if new.sum() < cfg.min_fixes or (new == keep).all():
            break
        keep = new
    return keep


def place_components(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                     cfg: BridgeConfig | None = None) -> list[Placement | None]:
    """Similarities from each component's frame to east/north/up metres. items: per component (R_cw [N,3,3], C [N,3] of
    its cameras with fixes, fixes [N,3] ENU, its points [P,3]). None for a component whose fixes cannot fix its scale.

    Each is levelled by its ground plane and scaled, turned and shifted by its own fixes (east/north). Height: when every
    placeable component has a ground plane, each ground is put at z = 0 (GPS altitude is a phone's worst axis: on the
    200 m SYNTHETIC walk with 2 m fixes the second component lands 0.48 m off vertically this way, 1.06 m by the median
    altitude); otherwise every one by its fixes' median altitude residual. A shared scale through the camera height above
    each ground was tried and dropped: a chained component's ground plane is off by a few degrees and 20 % in height.
    """
    cfg = cfg or BridgeConfig()
    lev: list[dict | None] = []
    for R_cw, C, fixes, pts in items:
        span = float(np.linalg.norm(fixes[:, :2].max(0) - fixes[:, :2].min(0))) if len(C) else 0.0
        if len(C) < cfg.min_fixes or span < cfg.min_span_m:
            lev.append(None)
            continue
        Rg, ground_z, up = _level(R_cw, C, pts, cfg.seed)
        c = C @ Rg.T  # [N,3] levelled, component units
        keep = _inliers(c[:, :2], fixes[:, :2], cfg)
        lev.append({"Rg": Rg, "ground_z": ground_z, "c": c, "fixes": fixes, "keep": keep, "up": up, "span": span})
    ground = all(x["ground_z"] is not None for x in lev if x is not None)
    out: list[Placement | None] = []
    for x in lev:
        if x is None:
            out.append(None)
            continue
        c, g = x["c"][x["keep"]], x["fixes"][x["keep"]]
        s, R2, t2 = umeyama(c[:, :2], g[:, :2])
        tz = -s * x["ground_z"] if ground else float(np.median(g[:, 2] - s * c[:, 2]))
        res = np.linalg.norm(s * c[:, :2] @ R2.T + t2 - g[:, :2], axis=1)
        R = np.eye(3)
        R[:2, :2] = R2
        info = {"fixes": int(len(x["c"])), "fixes_used": int(x["keep"].sum()), "span_m": round(x["span"], 1),
                "horizontal_rmse_m": round(float(np.sqrt((res ** 2).mean())), 3), "up": x["up"],
                "height_from": "ground" if ground else "gps_altitude"}
        out.append(Placement(float(s), R @ x["Rg"], np.array([t2[0], t2[1], tz]), info))
    return out


def place_component(R_cw: np.ndarray, C: np.ndarray, fixes: np.ndarray, points: np.ndarray,
                    cfg: BridgeConfig | None = None) -> Placement | None:
    """place_components for one component."""
    return place_components([(R_cw, C, fixes, points)], cfg)[0]


def bridge_components(comps: list[dict], comp_points: list[np.ndarray], gps: dict[str, np.ndarray],
                      cfg: BridgeConfig | None = None) -> tuple[dict, list[dict]]:
    """Components {name: (R_cw [3,3], centre [3], camera_id, rank)} each in its own frame, their points [P,3] and GPS
    east/north/up per image name -> one dict of every placeable component in the ENU frame, and a row per component
    (placed or not, its fixes, fit residual, how it was levelled). An image in two components keeps the higher-ranked pose."""
    cfg = cfg or BridgeConfig()
    have = [[x for x in comp if x in gps] for comp in comps]
    items = [(np.stack([comp[x][0] for x in h]) if h else np.zeros((0, 3, 3)),
              np.stack([comp[x][1] for x in h]) if h else np.zeros((0, 3)),
              np.stack([gps[x] for x in h]) if h else np.zeros((0, 3)), pts) for comp, h, pts in zip(comps, have, comp_points)]
    merged: dict = {}
    rows: list[dict] = []
    for k, (comp, pl) in enumerate(zip(comps, place_components(items, cfg))):
        row = {"component": k, "images": len(comp)}
        if pl is None:
            rows.append(row | {"placed": False, "fixes": len(have[k])})
            continue
        rows.append(row | {"placed": True, "scale": round(pl.s, 5)} | pl.info)
        for x, (Rc, Cc, cid, rank) in comp.items():
            if x not in merged or rank > merged[x][3]:
                merged[x] = (Rc @ pl.R.T, pl.s * pl.R @ Cc + pl.t, cid, rank)
    return merged, rows
