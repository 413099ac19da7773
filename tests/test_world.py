"""World from scene points: ground plane, obstacles, walkable grid, height field, non-metric refusal."""
from __future__ import annotations

import numpy as np
import pytest

from realsim.assets.errors import RealsimError
from realsim.sim.ground import fit_ground_plane
from realsim.sim.world import WorldConfig, world_from_points


@pytest.fixture(scope="module")
def street_points():
    from realsim.assets.frames import camera_center
    from realsim.sim.capture import CaptureConfig, build_street, sample_surface_points, walk_cameras

    scene = build_street(0)
    P = sample_surface_points(scene, 30000, seed=1)
    cams = np.array([camera_center(v) for v in walk_cameras(CaptureConfig())])
    return scene, P, cams


def test_ground_plane_ransac_prefers_lowest_supported_plane():
    rng = np.random.default_rng(0)
    ground = np.c_[rng.uniform(-5, 5, (2000, 2)), rng.normal(0, 0.01, 2000)]
    roof = np.c_[rng.uniform(-5, 5, (1500, 2)), 6 + rng.normal(0, 0.01, 1500)]  # a big flat roof, fewer points
    wall = np.c_[np.full(800, 3.0), rng.uniform(-5, 5, 800), rng.uniform(0, 6, 800)]
    tilt = np.deg2rad(4)
    P = np.vstack([ground, roof, wall])
    R = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    P = P @ R.T + [0, 0, 1.0]
    plane, inl = fit_ground_plane(P, WorldConfig())
    n_true = R @ [0, 0, 1]
    assert np.degrees(np.arccos(min(1.0, abs(plane[:3] @ n_true)))) < 0.5
    assert abs(plane[:3] @ np.array([0, 0, 1.0]) + plane[3]) < 0.02  # the plane passes through (0, 0, 1)
    assert inl[:2000].mean() > 0.95 and inl[2000:3500].mean() < 0.01


def test_street_world(street_points):
    scene, P, cams = street_points
    w = world_from_points(P, cams)
    assert np.allclose(w.plane[:3], [0, 0, 1], atol=0.01) and abs(w.plane[3]) < 0.02
    assert np.abs(w.height(np.array([[0.0, 10.0], [3.0, 30.0]]))).max() < 0.02
    # street centre and pavements are walkable; kiosk, car, behind the facades are not
    assert w.is_walkable(np.array([[1.5, 10.0], [0.5, 25.0], [-5.0, 19.0], [5.0, 12.0]])).all()
    for o in scene.obstacles:
        c = np.array(o["center"])
        sx, sy = o["size"]
        foot = c + np.stack(np.meshgrid(np.linspace(-0.4 * sx, 0.4 * sx, 9), np.linspace(-0.4 * sy, 0.4 * sy, 9)), -1).reshape(-1, 2)
        # the outline is blocked (within one cell of the prop's sides; hollow inside is fine: nobody gets in)
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        rim = c + np.c_[np.cos(ang) * sx / 2, np.sin(ang) * sy / 2]
        near = [w.is_obstacle(rim + off) for off in ([0, 0], [0.25, 0], [-0.25, 0], [0, 0.25], [0, -0.25])]
        assert np.mean(np.any(near, axis=0)) > 0.6, o["kind"]
        assert not w.is_walkable(foot).any(), o["kind"]
        assert not w.is_walkable(c[None])[0], o["kind"]
    assert not w.is_walkable(np.array([[-7.0, 15.0], [7.0, 15.0], [0.0, 50.0]])).any()
    # clearance: ~distance to the nearest blocked cell, bounded by the half street width
    assert 0.5 < w.clearance_at(np.array([[1.5, 10.0]]))[0] < 6.0
    # random free places are walkable and apart
    pts = w.sample_free(8, np.random.default_rng(0), min_sep=1.0)
    assert w.is_walkable(pts).all()
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(8) * 9
    assert d.min() >= 1.0


def test_non_metric_needs_scale(street_points):
    _, P, cams = street_points
    with pytest.raises(RealsimError, match="not metric"):
        world_from_points(P, cams, metric=False)
    # SfM units = metres / 2.5: with the scale the world is the same street in metres
    w = world_from_points(P / 2.5, cams / 2.5, metric=False, scale=2.5)
    assert w.scale == 2.5
    assert w.is_walkable(np.array([[1.5, 10.0]]))[0] and not w.is_walkable(np.array([[-1.2, 19.0]]))[0]
    with pytest.raises(RealsimError, match="positive"):
        world_from_points(P, cams, metric=False, scale=-1.0)


def test_height_field_follows_a_slope():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 20, (6000, 2))
    z = 0.05 * xy[:, 0] + 0.15 * np.sin(xy[:, 1] / 3.0)  # a 5% ramp with gentle waves
    P = np.c_[xy, z]
    w = world_from_points(P, None, config=WorldConfig(height_field=True, max_tilt_deg=10))
    q = rng.uniform(3, 17, (200, 2))
    truth = 0.05 * q[:, 0] + 0.15 * np.sin(q[:, 1] / 3.0)
    assert np.abs(w.height(q) - truth).max() < 0.03
    w_plane = world_from_points(P, None)
    assert np.abs(w_plane.height(q) - truth).max() > 0.05  # a single plane cannot follow the waves


def test_too_few_points():
    with pytest.raises(RealsimError, match="too few points"):
        world_from_points(np.zeros((5, 3)), None)
