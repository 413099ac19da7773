"""The one COLMAP room (recon/colmap_io.py): model search, points in id order (also without images, as LLFF ships them),
and distorted cameras refused with the command that undistorts them, never read as pinhole."""
from __future__ import annotations

import numpy as np
import pytest

from realsim.assets.errors import InputError
from realsim.recon import colmap_io
from realsim.recon.dataset import load_camera_source, load_points

pycolmap = pytest.importorskip("pycolmap")


def _model(root, cam_model: str = "PINHOLE", n_points: int = 50):
    params = {"PINHOLE": [80.0, 82.0, 40.0, 30.0], "SIMPLE_RADIAL": [80.0, 40.0, 30.0, 0.05]}[cam_model]
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(pycolmap.Camera(model=cam_model, width=80, height=60, params=params, camera_id=1))
    for i in range(3):
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(np.eye(3)), np.array([0.1 * i, 0.0, 0.0]))
        rec.add_image_with_trivial_frame(pycolmap.Image(name=f"{i:02d}.png", camera_id=1, image_id=i + 1), pose)
    rng = np.random.default_rng(0)
    for i in range(n_points):
        rec.add_point3D(rng.normal(size=3), pycolmap.Track(), np.array([i % 256, 7, 9], np.uint8))
    sparse = root / "sparse" / "0"
    colmap_io.write_model(rec, sparse)
    (root / "images").mkdir(parents=True, exist_ok=True)
    return rec, sparse


def test_points_in_id_order_with_and_without_images(tmp_path):
    rec, sparse = _model(tmp_path)
    xyz, rgb = load_points(tmp_path)
    ids = sorted(rec.points3D.keys())
    np.testing.assert_array_equal(xyz, np.stack([rec.points3D[i].xyz for i in ids]).astype(np.float32))
    assert colmap_io.find_model(tmp_path) == sparse
    for stem in ("cameras", "images", "frames", "rigs"):  # points3D alone, as in LLFF's sparse/0: read without pycolmap
        for f in sparse.glob(f"{stem}.*"):
            f.unlink()
    xyz2, rgb2 = colmap_io.read_points(tmp_path)
    np.testing.assert_array_equal(xyz2, xyz)
    np.testing.assert_array_equal(rgb2, rgb)
    with pytest.raises(InputError, match="no SfM points"):
        colmap_io.read_points(tmp_path / "images")


def test_pinhole_model_loads_and_distorted_is_refused(tmp_path):
    _model(tmp_path / "a")
    cams, base = load_camera_source(tmp_path / "a")
    assert base == tmp_path / "a" and [f.name for f in cams.frames] == ["00.png", "01.png", "02.png"]
    np.testing.assert_allclose(cams.frames[0].K, [[80, 0, 40], [0, 82, 30], [0, 0, 1]])
    _model(tmp_path / "b", "SIMPLE_RADIAL")
    with pytest.raises(InputError, match="SIMPLE_RADIAL.*realsim poses"):
        load_camera_source(tmp_path / "b")
