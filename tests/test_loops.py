"""Loop-closure aliasing (recon/loops.py, issue 20): on the long SYNTHETIC street the props repeat every 48 m, so a photo
matches its look-alike 48 m on with hundreds of inliers; the check rejects every such loop and keeps a real revisit."""
from __future__ import annotations

import math

import numpy as np
import pytest

from realsim.recon.loops import judge_loops, loop_neighbour_pairs

W, H, F = 320, 240, 260.0


def test_judge_needs_a_confirming_neighbour():
    steps = {(i, i + 1): True for i in range(50)} | {(4, 5): False, (30, 31): False}
    good = steps | {(0, 10): True, (1, 11): True, (2, 20): True, (3, 21): False, (4, 30): False, (5, 31): True,
                    (6, 40): True, (7, 39): True, (10, 20): True, (11, 19): True, (30, 47): True, (31, 48): True}
    res = judge_loops(good, overlap=2)
    assert res.kept == [(0, 10), (1, 11), (6, 40), (7, 39), (10, 20), (11, 19)]  # same way, or walking back
    # alone, failed itself, its neighbour failed, or linked across a cut (4-5 and 30-31 did not verify)
    assert res.rejected == [(2, 20), (3, 21), (4, 30), (5, 31), (30, 47), (31, 48)]
    assert loop_neighbour_pairs({(0, 1), (3, 10)}, 12, 2) == {(4, 11), (2, 9), (4, 9), (2, 11)}


@pytest.fixture(scope="module")
def three_passes(tmp_path_factory):
    """15 photos, 5 per pass 1.5 m apart: pass A at y 8..14, pass B the same walk 48 m on (look-alike props, other
    facades), pass C a real revisit of A (0.6 m to the side, turned 4 deg). Names in capture order 00..14."""
    from PIL import Image

    from realsim.render.paths import look_at
    from realsim.sim.capture import build_street, render_view

    root = tmp_path_factory.mktemp("loops")
    (root / "images").mkdir()
    street = build_street(0, 150.0)
    K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])
    names = []
    for p, (dy, dx, dyaw) in enumerate([(0.0, 0.0, 0.0), (48.0, 0.0, 0.0), (0.0, 0.6, 4.0)]):
        for k in range(5):
            yaw = math.radians(10 * math.sin(k) + dyaw)
            eye = np.array([dx - 0.5, 8 + 1.5 * k + dy, 1.6])
            V = look_at(eye, eye + np.array([-math.sin(yaw), math.cos(yaw), -0.1]))
            rgb = render_view(street, V, K, W, H, ssaa=1)["rgb"]
            names.append(f"{5 * p + k:02d}.png")
            Image.fromarray((rgb.clip(0, 1) * 255 + 0.5).astype(np.uint8)).save(root / "images" / names[-1])
    return root, names


def test_aliased_loops_rejected_real_revisit_kept(three_passes):
    import pycolmap

    from realsim.recon import sfm
    from realsim.recon.inputs import StagedImages
    from realsim.recon.loops import check_loops

    root, names = three_passes
    opts = sfm.SfmOptions(overlap=2, num_threads=1, single_camera=True)
    db = root / "db.db"
    db.unlink(missing_ok=True)
    sfm.extract(StagedImages(root / "images", names, [], {n: (1,) for n in names}), db, opts)
    seq = {(5 * p + k, 5 * p + k + d) for p in range(3) for k in range(5) for d in (1, 2) if k + d < 5}
    cand = {(k, 5 + k) for k in range(5)} | {(k, 10 + k) for k in range(5)}  # look-alike, and the real revisit
    idx = sorted(seq | cand | loop_neighbour_pairs(cand, 15, 2))
    pairs = [(names[i], names[j]) for i, j in idx]
    sfm.match(db, pairs, root, opts)
    with pycolmap.Database.open(str(db)) as d:
        ids = {im.name: im.image_id for im in d.read_all_images()}

        def inliers(i, j):
            a, b = ids[names[i]], ids[names[j]]
            return len(d.read_two_view_geometry(a, b).inlier_matches) if d.exists_two_view_geometry(a, b) else 0

        aliased = [inliers(k, 5 + k) for k in range(5)]
    # the look-alike places match strongly: an inlier count alone would take them as loop closures
    assert max(aliased) > 150 and sum(a >= 30 for a in aliased) >= 4, aliased
    res = check_loops(db, names, pairs, overlap=2, min_inliers=30)
    wrong = [(i, j) for i, j in res.kept if i < 5 <= j < 10]
    assert not wrong, wrong  # no loop from pass A to the look-alike pass B survives
    assert {(k, 10 + k) for k in range(5)} <= set(res.kept)  # the real revisit closes the loop at every photo
    with pycolmap.Database.open(str(db)) as d:
        for i, j in res.rejected:  # rejected pairs are gone from what the mappers read; sequential pairs stay
            assert not d.exists_two_view_geometry(ids[names[i]], ids[names[j]])
        assert all(d.exists_two_view_geometry(ids[names[i]], ids[names[j]]) for i, j in seq)
