"""The long SYNTHETIC street (issue 20): the demo street is unchanged, a longer one repeats its props along the whole
length inside its walls, the walk covers it, and the capture says it is synthetic."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from realsim.assets.frames import camera_center
from realsim.sim.capture import CaptureConfig, build_street, make_capture, walk_cameras


def _digest(scene) -> str:
    h = hashlib.sha256()
    for a in (scene.vertices, scene.faces, scene.material, scene.params):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr(scene.obstacles).encode())
    h.update(repr(scene.walk_extent).encode())
    return h.hexdigest()


def test_demo_street_and_walk_unchanged():
    """The demo's street and walk, pinned to what they were before the long street existed."""
    assert _digest(build_street(0)) == "03e07067e6460871056d28a3e630c8781595080d84fef9d650fbd1bba4a9fe02"
    walk = np.stack(walk_cameras(CaptureConfig()))  # [30,4,4]
    # to the micrometre, not the bit: the exact bytes' hash pinned on one VM failed on another with the same code (float
    # results such as libm's sin/cos may differ in the last bit between CPUs); + 0.0 makes a rounded -0.0 bytes of 0.0
    walk = np.round(walk, 6) + 0.0
    assert hashlib.sha256(walk.tobytes()).hexdigest() == "49688b3f45fd232c068a46760e25c8e01f6548d6e43931a74491fec6724eb518"
    assert _digest(build_street(0, 54.0)) == _digest(build_street(0))  # 54 m is the demo street


@pytest.mark.parametrize("length", [212.0, 300.0])
def test_long_street_repeats_props_inside_its_walls(length):
    s = build_street(0, length)
    x0, x1, y0, y1 = s.walk_extent
    assert (y0, y1) == (-6.0, -6.0 + length)
    stretches = int((y1 + 6.0 - 48.0) // 48.0) + 1  # a stretch of props every 48 m that ends 6 m before the far wall
    assert len(s.obstacles) == 18 * stretches
    ys = np.array([o["center"][1] for o in s.obstacles])
    assert ys.min() > y0 and ys.max() < y1 and ys.max() > y1 - 60.0  # props reach the far end
    v = s.vertices
    assert v[:, 1].min() == pytest.approx(y0) and v[:, 1].max() == pytest.approx(y1)
    for sgn in (-1, 1):  # facades on each side along the whole length
        f = s.faces[(np.abs(v[s.faces][:, :, 0] - sgn * 6.0) < 1e-4).all(1) & (v[s.faces][:, :, 2].max(1) > 7.0)]
        lo, hi = v[f][:, :, 1].min(1), v[f][:, :, 1].max(1)
        order = np.argsort(lo)
        reach = np.maximum.accumulate(hi[order])
        assert lo.min() == pytest.approx(y0) and hi.max() == pytest.approx(y1)
        assert (lo[order][1:] <= reach[:-1] + 1e-4).all()  # no gap between facade tiles
    with pytest.raises(ValueError, match="at least the demo street's 54 m"):
        build_street(0, 30.0)


def test_long_capture_walks_the_street_and_is_labelled_synthetic(tmp_path):
    cfg = CaptureConfig(n_images=4, width=64, height=48, focal=53.0, ssaa=1, street_length_m=212.0)
    C = camera_center(np.stack(walk_cameras(cfg)))
    assert C[0, 1] == pytest.approx(0.0) and C[-1, 1] == pytest.approx(200.0)  # 6 m short of the far wall
    cap = make_capture(tmp_path / "cap", cfg)
    meta = json.loads((cap / "capture.json").read_text())
    assert meta["synthetic"] is True and "SYNTHETIC" in meta["label"] and meta["config"]["street_length_m"] == 212.0
    assert meta["walk_extent"][3] == 206.0 and len(meta["obstacles"]) == 72
    assert all(p.name.startswith("SYNTHETIC_") for p in (cap / "images").iterdir())
