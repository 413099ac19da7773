"""BVH reader/writer: FK against hand-computed positions, round trip on real mocap, clear errors for malformed files."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import need_data

from realsim.assets.bvh import parse_bvh, read_bvh, write_bvh
from realsim.assets.errors import InputError
from realsim.assets.skeleton import Skeleton

TWO_BONES = """HIERARCHY
ROOT hip
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
  JOINT knee
  {
    OFFSET 0 -10 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    End Site
    {
      OFFSET 0 -10 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 2 3 0 0 90 0 0 0
0 0 0 0 0 0 90 0 0
"""


def _fk(b):
    trans, rots = b.local_transforms()
    sk = Skeleton(b.names, b.parents, b.offsets)
    return sk.fk(rots, trans[:, 0], trans)


def test_fk_matches_hand_computed_positions():
    b = parse_bvh(TWO_BONES)
    assert b.names == ["hip", "knee"] and b.parents.tolist() == [-1, 0] and b.n_frames == 2
    g, p = _fk(b)
    # frame 0: root at (1,2,3) rotated 90 deg about Z: (0,-10,0) -> (10,0,0)
    np.testing.assert_allclose(p[0, 1], [11, 2, 3], atol=1e-9)
    # frame 1: knee rotated 90 deg about Z: its own child offset turns, the knee itself stays
    np.testing.assert_allclose(p[1, 1], [0, -10, 0], atol=1e-9)
    np.testing.assert_allclose(g[1, 1] @ [0, -10, 0], [10, 0, 0], atol=1e-9)
    np.testing.assert_allclose(b.end_sites[1], [0, -10, 0])


def test_round_trip_real_mocap(tmp_path):
    src = need_data("motion/bandai_namco/dataset-1/data/dataset-1_walk_happy_001.bvh")
    b = read_bvh(src)
    g, p = _fk(b)
    # joint_Root is constant identity here: write Hips as the root with another Euler order, read it back
    trans, rots = b.local_transforms()
    assert np.abs(trans[:, 0]).max() == 0 and np.abs(rots[:, 0] - np.eye(3)).max() == 0
    out = tmp_path / "rt.bvh"
    ends = {k - 1: v for k, v in b.end_sites.items()}
    write_bvh(out, b.names[1:], b.parents[1:] - 1, trans[0, 1:], trans[:, 1], rots[:, 1:], b.frame_time, order="XYZ",
              end_sites=ends)
    b2 = read_bvh(out)
    assert b2.names == b.names[1:] and b2.n_frames == b.n_frames and abs(b2.frame_time - b.frame_time) < 1e-6
    assert b2.channels[1] == ["Xrotation", "Yrotation", "Zrotation"] and len(b2.channels[0]) == 6
    g2, p2 = _fk(b2)
    assert np.abs(p2 - p[:, 1:]).max() < 1e-3        # cm units: 10 micrometres
    assert np.abs(g2 - g[:, 1:]).max() < 1e-5


@pytest.mark.parametrize("text,msg", [
    ("", "does not start with HIERARCHY"),
    ("HIERARCHY ROOT a { OFFSET 0 0 0 CHANNELS 3 Xrotation Yrotation Wrotation } MOTION Frames: 1 Frame Time: 0.1 0 0 0",
     "unknown channel"),
    (TWO_BONES.replace("0 0 0 0 0 0 90 0 0\n", "0 0 0 0 0 0 90\n"), "truncated"),
    (TWO_BONES.replace("1 2 3", "1 x 3"), "non-numeric"),
    (TWO_BONES.replace("Frame Time: 0.0333333", "Frame Time: 0"), "bad frame time"),
    (TWO_BONES.split("MOTION")[0], "unexpected end of file"),
    (TWO_BONES.replace("OFFSET 0 -10 0\n    CHANNELS", "OFFSET 0 -10\n    CHANNELS"), "expected a number"),
])
def test_malformed_bvh_raises_clear_error(text, msg):
    with pytest.raises(InputError, match=msg):
        parse_bvh(text, source="bad.bvh")


def test_malformed_bvh_cli_one_line(tmp_path, capsys):
    from realsim.cli.main import main

    bad = tmp_path / "bad.bvh"
    bad.write_text(TWO_BONES.replace("1 2 3", "1 x 3"))
    out = tmp_path / "w.safetensors"
    rc = main(["-q", "motion", "train", str(bad), "-o", str(out), "--preset", "tiny"])
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "malformed BVH" in err
    assert not out.exists()
    rc = main(["-q", "motion", "train", str(tmp_path / "missing.bvh"), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc != 0 and "not found" in err and "Traceback" not in err
