"""Gravity alignment and metric scale (recon.align) on an exactly known scene hidden behind a random similarity."""
from __future__ import annotations

import math

import numpy as np
import pytest

from realsim.assets.errors import InputError
from realsim.recon.align import compute_alignment, rotation_between, umeyama


def _random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def _street(rng, n_cams=12, height=1.6):
    """World (+Z up, metres): cameras walking along +X at `height`, tilted slightly; ground points at z=0, facades at y=+-6."""
    C = np.stack([np.array([2.0 * i, 0.3 * math.sin(i), height + 0.05 * rng.normal()]) for i in range(n_cams)])
    R_cw = []
    for i in range(n_cams):
        fwd = np.array([1.0, 0.1 * math.cos(i), -0.1])
        fwd /= np.linalg.norm(fwd)
        x = np.cross(fwd, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        R_cw.append(np.stack([x, np.cross(fwd, x), fwd]))
    ground = np.c_[rng.uniform(-5, 30, 600), rng.uniform(-6, 6, 600), 0.005 * rng.normal(size=600)]
    facade = np.c_[rng.uniform(-5, 30, 500), rng.choice([-6.0, 6.0], 500), rng.uniform(0, 8, 500)]
    return np.stack(R_cw), C, np.vstack([ground, facade])


def _to_sfm(R_cw, C, P, s, R, t):
    """Express the world scene in an SfM frame x_sfm = s R x + t."""
    return R_cw @ R.T, s * C @ R.T + t, s * P @ R.T + t


def _apply(al, R_cw, C):
    M = al.matrix
    sR = M[:3, :3]
    R = sR / al.scale
    return R_cw @ R.T, C @ sR.T + M[:3, 3]


@pytest.fixture()
def scene():
    rng = np.random.default_rng(3)
    R_cw, C, P = _street(rng)
    s, R, t = 0.37, _random_rotation(rng), rng.normal(size=3) * 5
    return (R_cw, C, P), _to_sfm(R_cw, C, P, s, R, t), s


def test_camera_height_gives_metres_and_up(scene):
    (R_w, C_w, _), (R_s, C_s, P_s), _ = scene
    h = float(np.median(C_w[:, 2]))  # --camera-height means the median camera's height above the ground
    al = compute_alignment(R_s, C_s, P_s, [f"{i}" for i in range(len(C_s))], camera_height=h)
    assert al.metric and al.scale_source == "camera_height" and al.up_source == "ground_plane"
    R_a, C_a = _apply(al, R_s, C_s)
    assert abs(np.median(C_a[:, 2]) - h) < 0.01  # heights above the ground plane, metres
    # Up recovered: the aligned frame differs from the true world only by a rotation about Z.
    D = R_a.transpose(0, 2, 1) @ R_w  # world_true -> world_aligned, per camera (all equal)
    assert np.allclose(D[:, 2, :], [0, 0, 1], atol=2e-3)
    # Pairwise distances are metric.
    d_true = np.linalg.norm(C_w[0] - C_w[-1])
    assert abs(np.linalg.norm(C_a[0] - C_a[-1]) - d_true) < 0.003 * d_true


def test_gps_gives_scale_and_heading(scene):
    (R_w, C_w, _), (R_s, C_s, P_s), _ = scene
    rng = np.random.default_rng(1)
    names = [f"{i:02d}.jpg" for i in range(len(C_s))]
    gps = {n: C_w[i] + np.r_[rng.normal(scale=0.3, size=2), 3.0 * rng.normal()] for i, n in enumerate(names)}  # noisy altitude
    al = compute_alignment(R_s, C_s, P_s, names, gps_enu=gps)
    assert al.metric and al.scale_source == "gps"
    R_a, C_a = _apply(al, R_s, C_s)
    # East/north as GPS (up to the centroid shift), heading included: rotations match the true world's.
    ang = [math.degrees(math.acos(np.clip((np.trace(a @ b.T) - 1) / 2, -1, 1))) for a, b in zip(R_a, R_w)]
    assert max(ang) < 1.0
    off = (C_a - C_w)[:, :2]
    assert np.abs(off - off.mean(0)).max() < 0.5
    assert al.info["gps_rmse_m"] < 1.0


def test_non_metric_without_scale_and_user_scale(scene):
    _, (R_s, C_s, P_s), s = scene
    names = [str(i) for i in range(len(C_s))]
    al = compute_alignment(R_s, C_s, P_s, names)
    assert not al.metric and al.scale == 1.0 and al.scale_source == "none"
    al2 = compute_alignment(R_s, C_s, P_s, names, scale=1 / s)
    assert al2.metric and abs(al2.scale - 1 / s) < 1e-12
    with pytest.raises(InputError):
        compute_alignment(R_s, C_s, P_s, names, scale=1.0, camera_height=1.6)
    with pytest.raises(InputError, match="ground plane"):  # no points -> no ground for --camera-height
        compute_alignment(R_s, C_s, P_s[:0], names, camera_height=1.6)


def test_umeyama_and_rotation_between():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    R = _random_rotation(rng)
    s, R2, t = umeyama(X, 2.5 * X @ R.T + [1, 2, 3])
    assert abs(s - 2.5) < 1e-12 and np.allclose(R2, R) and np.allclose(t, [1, 2, 3])
    for a in (np.array([0, 0, 1.0]), np.array([0, 0, -1.0]), rng.normal(size=3)):
        Rb = rotation_between(a, np.array([0, 0, 1.0]))
        assert np.allclose(Rb @ (a / np.linalg.norm(a)), [0, 0, 1]) and np.isclose(np.linalg.det(Rb), 1)


def test_assumed_camera_height_when_nothing_else_fixes_metres(scene, caplog):
    """`demo --images` without GPS: the assumed hand-held height gives metres (one warning); GPS or a user value wins."""
    (_, C_w, _), (R_s, C_s, P_s), s = scene
    names = [str(i) for i in range(len(C_s))]
    with caplog.at_level("WARNING", logger="realsim.recon.align"):
        al = compute_alignment(R_s, C_s, P_s, names, assumed_camera_height=1.6)
    assert al.metric and al.scale_source == "assumed_camera_height"
    assert len([r for r in caplog.records if "assuming a hand-held camera 1.6 m" in r.getMessage()]) == 1
    R_a, C_a = _apply(al, R_s, C_s)
    assert abs(np.median(C_a[:, 2]) - 1.6) < 0.01
    true_h = float(np.median(C_w[:, 2]))
    assert abs(al.scale - s ** -1 * 1.6 / true_h) < 0.01 * al.scale  # metres off only by the assumed/true height ratio
    al2 = compute_alignment(R_s, C_s, P_s, names, scale=1 / s, assumed_camera_height=1.6)
    assert al2.scale_source == "user_scale" and abs(al2.scale - 1 / s) < 1e-12
