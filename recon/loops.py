"""Loop-closure pairs checked against aliasing (a long street repeats its props: far photos of look-alike places match).

A loop pair (i, j) (further apart in the sequence than the sequential overlap) is kept only when it is
  * verified with a general two-view geometry (COLMAP's CALIBRATED / UNCALIBRATED: 3D structure with parallax) and at
    least `min_inliers` inliers: a pair that one homography explains (PLANAR / PANORAMIC) is what a repeated ground
    texture or a copy of a prop seen from the same relative spot gives; and
  * consistent with its sequential neighbours: a real revisit holds for the next or previous photos too, so at least one
    of (i+1, j+1), (i-1, j-1) (walking the same way) or (i+1, j-1), (i-1, j+1) (walking back) passes the same test,
    where each step (i, i+-1), (j, j+-1) is itself a verified sequential pair (a cut in the sequence links nothing).
Rejected pairs lose their verified geometry in the database, so neither mapper uses them; sequential pairs are untouched.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LoopCheck", "loop_neighbour_pairs", "judge_loops", "check_loops"]

log = logging.getLogger("realsim.recon.loops")

DIAG = ((1, 1), (-1, -1), (1, -1), (-1, 1))


@dataclass
class LoopCheck:
    """What check_loops kept and rejected (index pairs into the sorted image names)."""

    kept: list[tuple[int, int]] = field(default_factory=list)
    rejected: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"loop_pairs": len(self.kept) + len(self.rejected), "kept": len(self.kept), "rejected": len(self.rejected)}


def loop_neighbour_pairs(pairs: set[tuple[int, int]], n: int, overlap: int) -> set[tuple[int, int]]:
    """The diagonal neighbours (i+-1, j+-1) of every loop pair (j - i > overlap), which judge_loops needs matched too."""
    out = set()
    for i, j in pairs:
        if j - i <= overlap:
            continue
        for di, dj in DIAG:
            a, b = i + di, j + dj
            if 0 <= a < n and 0 <= b < n and b - a > overlap:
                out.add((a, b))
    return out - set(pairs)


def judge_loops(good: dict[tuple[int, int], bool], overlap: int) -> LoopCheck:
    """good[(i, j)]: the pair verified with a general geometry and enough inliers. Every loop pair of `good` judged."""
    res = LoopCheck()
    for (i, j), ok in sorted(good.items()):
        if j - i <= overlap:
            continue
        held = ok and any(good.get((i + di, j + dj), False) and _step(good, i, di) and _step(good, j, dj)
                          for di, dj in DIAG)
        (res.kept if held else res.rejected).append((i, j))
    return res


def _step(good: dict[tuple[int, int], bool], i: int, d: int) -> bool:
    """Photos i and i+d (d = +-1) are sequential neighbours: their own pair verified."""
    return good.get((min(i, i + d), max(i, i + d)), False)


def check_loops(db: Path, names: list[str], pairs: list[tuple[str, str]], overlap: int,
                min_inliers: int = 30) -> LoopCheck:
    """Judge the loop pairs among the matched `pairs` (names in sequence order) and delete the rejected ones'
    verified geometry from the COLMAP database `db`."""
    import pycolmap

    C = pycolmap.TwoViewGeometryConfiguration
    general = {C.CALIBRATED, C.UNCALIBRATED, C.CALIBRATED_RIG}
    index = {x: k for k, x in enumerate(names)}
    with pycolmap.Database.open(str(db)) as d:
        id_of = {im.name: im.image_id for im in d.read_all_images()}
        good: dict[tuple[int, int], bool] = {}
        for a, b in pairs:
            i, j = sorted((index[a], index[b]))
            ia, ib = id_of[a], id_of[b]
            ok = False
            if d.exists_two_view_geometry(ia, ib):
                g = d.read_two_view_geometry(ia, ib)
                ok = g.config in general and len(g.inlier_matches) >= min_inliers
            good[(i, j)] = ok
        res = judge_loops(good, overlap)
        for i, j in res.rejected:
            ia, ib = id_of[names[i]], id_of[names[j]]
            if d.exists_two_view_geometry(ia, ib):
                d.delete_two_view_geometry(ia, ib)
    log.info("loop closure: kept %d of %d loop pairs (%d rejected as aliased or unconfirmed)", len(res.kept),
             len(res.kept) + len(res.rejected), len(res.rejected))
    return res
