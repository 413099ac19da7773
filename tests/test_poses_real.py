"""`realsim poses` on real photos: lund_street (forward walk, GPS), Middlebury temple (gantry ground truth), buddha (P matrices)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import need_data
from test_poses_synth import rotation_errors_deg

from realsim.assets.cameras import load_cameras
from realsim.assets.frames import camera_center
from realsim.cli.main import main
from realsim.recon import load_sfm_points
from realsim.recon.colmap_io import read_model, viewmat_of
from realsim.recon.nerfstudio import read_transforms


def _poses(tmp_path_factory, images, *extra):
    out = tmp_path_factory.mktemp("poses") / "wd"
    rc = main(["-q", "poses", str(images), "-o", str(out), *extra])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def lund(tmp_path_factory):
    return _poses(tmp_path_factory, need_data("scenes/lund_street/images"), "--max-image-size", "640", "--matcher", "sequential")


def test_lund_forward_walk_registers(lund):
    info = json.loads((lund / "scene.json").read_text())
    meta = info["metadata"]
    assert meta["n_images"] == 29
    assert meta["n_registered"] >= 27
    assert meta["mean_reprojection_error_px"] < 1.5
    # COLMAP's default initialisation fails on this walk; the relaxed retry is what registers it.
    assert meta["mapping_attempts"][0]["registered"] < 27 <= meta["mapping_attempts"][-1]["registered"]
    cams = load_cameras(lund / "cameras.json")
    assert len(cams.frames) == meta["n_registered"] and len({f.camera_id for f in cams.frames}) == 1
    names = sorted(f.name for f in cams.frames)
    assert [f.split for f in sorted(cams.frames, key=lambda f: f.name)] == ["test" if i % 8 == 0 else "train" for i in range(len(names))]
    for f in cams.frames:
        assert (lund / "images" / f.name).is_file()


def test_lund_metric_and_gravity(lund):
    info = json.loads((lund / "scene.json").read_text())
    assert info["world"]["metric"] is True and info["metadata"]["scale_source"] == "gps"
    al = info["metadata"]["alignment_info"]
    assert al["gps_rmse_m"] < 10.0  # phone GPS is good to ~10 m over a 180 m walk
    cams = load_cameras(lund / "cameras.json")
    C = camera_center(np.stack([f.viewmat for f in cams.frames]))
    # Ground plane at z = 0 and metres: a hand-held phone is 0.8-2.5 m above the street.
    assert 0.8 < np.median(C[:, 2]) < 2.5
    # +Z up: photos are taken upright, so each camera's image-up (-y) points mostly along +Z.
    ups = np.stack([-f.viewmat[1, :3] for f in cams.frames])
    assert np.median(ups[:, 2]) > 0.95


def test_lund_files_agree(lund):
    """sparse/0 is in the world frame (same poses as cameras.json); transforms.json reads back; points load."""
    cams = {f.name: f for f in load_cameras(lund / "cameras.json").frames}
    rec = read_model(lund / "sparse" / "0")
    for im in rec.images.values():
        np.testing.assert_allclose(viewmat_of(im), cams[im.name].viewmat, atol=1e-9)
    frames, ply = read_transforms(lund / "transforms.json")
    assert ply is not None and ply.is_file()
    for fr in frames:
        np.testing.assert_allclose(fr.viewmat, cams[fr.path.name].viewmat, atol=1e-9)
        np.testing.assert_allclose([fr.fx, fr.cx], [cams[fr.path.name].K[0, 0], cams[fr.path.name].K[0, 2]])
    xyz, rgb = load_sfm_points(lund)
    assert xyz.dtype == np.float32 and rgb.dtype == np.uint8 and xyz.shape == rgb.shape and len(xyz) > 1000
    # Ground at z = 0 (one plane over a gently sloping 180 m street): next to nothing below -1.5 m, a third within 1 m.
    assert np.percentile(xyz[:, 2], 2) > -1.5
    assert np.mean(np.abs(xyz[:, 2]) < 1.0) > 0.3


def _temple_gt(folder):
    gt = {}
    for line in (folder / "templeSR_par.txt").read_text().splitlines()[1:]:
        p = line.split()
        if len(p) >= 22:
            V = np.eye(4)
            V[:3, :3] = np.array(p[10:19], float).reshape(3, 3)
            V[:3, 3] = np.array(p[19:22], float)
            gt[p[0]] = V
    return gt


def test_camera_sharing_from_exif(tmp_path):
    """One shared camera for one phone (lund), one camera per image for internet photos (sacre_coeur)."""
    from realsim.recon.inputs import single_camera, stage_image_folder

    lund = stage_image_folder(need_data("scenes/lund_street/images"), tmp_path / "a", 160)
    sacre = stage_image_folder(need_data("scenes/sacre_coeur/mapping"), tmp_path / "b", 160)
    assert single_camera(lund) and not single_camera(sacre)


def test_temple_against_gantry(tmp_path_factory):
    folder = need_data("scenes/middlebury_temple")
    out = _poses(tmp_path_factory, folder)
    est = {f.name: f.viewmat for f in load_cameras(out / "cameras.json").frames}
    assert len(est) == 16
    errs, rmse = rotation_errors_deg(est, _temple_gt(folder))
    # Measured: centre RMSE 3.1 mm on a 0.56 m-radius ring; rotations 0.3-1.1 deg (COLMAP keeps the principal point at the
    # image centre, 18 px from the gantry's, which alone tilts the cameras by ~0.7 deg).
    assert rmse < 0.010
    assert errs.max() < 2.0


def test_buddha_registers(tmp_path_factory):
    folder = need_data("scenes/buddha")
    out = _poses(tmp_path_factory, folder / "images")
    cams = load_cameras(out / "cameras.json")
    assert len(cams.frames) >= 11
    # Compare with the dataset's projection matrices: P = K [R | -R C] (RQ decomposition), centre C = null space of P.
    from scipy.linalg import rq

    gt = {}
    for f in cams.frames:
        P = np.loadtxt(folder / "P" / f"{f.name[:-4]}_P.txt")
        K, R = rq(P[:, :3])
        S = np.diag(np.sign(np.diag(K)))
        R = S @ R
        R *= np.sign(np.linalg.det(R))
        C = -np.linalg.solve(P[:, :3], P[:, 3])
        V = np.eye(4)
        V[:3, :3], V[:3, 3] = R, -R @ C
        gt[f.name] = V
    errs, rmse = rotation_errors_deg({f.name: f.viewmat for f in cams.frames}, gt)
    Cg = camera_center(np.stack(list(gt.values())))
    spread = np.linalg.norm(Cg - Cg.mean(0), axis=1).mean()
    # Measured (11/13 registered at 1368x770): rotations 0.05-0.21 deg, centre RMSE 0.26% of the camera spread.
    assert errs.max() < 1.0, errs
    assert rmse < 0.01 * spread, (rmse, spread)
