"""GPS bridging of a partitioned map's components (recon/gps_bridge.py): components in unrelated similarity frames are
placed in one east/north/up frame by noisy fixes, level (ground plane, not the pitched cameras' up), at the right scale."""
from __future__ import annotations

import math

import numpy as np
import pytest

from realsim.recon.gps_bridge import BridgeConfig, bridge_components, place_component
from realsim.render.paths import look_at


def _walk(n: int = 60, length: float = 100.0, pitch_deg: float = -7.0):
    """A hand-held walk up +Y (weaving, looking left and right, pitched down) and ground + facade points around it."""
    rng = np.random.default_rng(0)
    Rs, Cs = [], []
    for i in range(n):
        y = length * i / (n - 1)
        eye = np.array([1.2 * math.sin(i * 0.3), y, 1.6])
        yaw, pitch = math.radians(20 * math.sin(i * 0.4)), math.radians(pitch_deg + rng.uniform(-2, 2))
        V = look_at(eye, eye + np.array([-math.sin(yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), math.sin(pitch)]))
        Rs.append(V[:3, :3])
        Cs.append(eye)
    ground = np.column_stack([rng.uniform(-5, 5, 3000), rng.uniform(-5, length + 5, 3000), np.zeros(3000)])
    walls = np.column_stack([np.sign(rng.uniform(-1, 1, 1500)) * 6.0, rng.uniform(-5, length + 5, 1500), rng.uniform(0, 8, 1500)])
    return np.stack(Rs), np.stack(Cs), np.concatenate([ground, walls])


def _random_similarity(seed: int, scale: float):
    """x' = scale * Q @ x + t with a random rotation Q."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    Q *= np.sign(np.linalg.det(Q))
    return scale, Q, rng.normal(0, 20, 3)


def _component(Rs, Cs, pts, idx, sim, names):
    """Cameras idx and the points near them as one component in the frame sim (SfM's arbitrary frame)."""
    s, Q, t = sim
    lo, hi = Cs[idx, 1].min() - 5, Cs[idx, 1].max() + 5
    near = pts[(pts[:, 1] >= lo) & (pts[:, 1] <= hi)]
    comp = {names[i]: (Rs[i] @ Q.T, s * Q @ Cs[i] + t, 1, (len(idx), 0)) for i in idx}
    return comp, s * near @ Q.T + t


def test_bridge_places_two_components_of_unrelated_frames_in_one_level_metric_frame():
    Rs, Cs, pts = _walk()
    names = [f"p{i:03d}.jpg" for i in range(len(Cs))]
    rng = np.random.default_rng(1)
    sigma = 1.0
    gps = {n: Cs[i] + rng.normal(0, 1, 3) * sigma * np.array([1, 1, 2]) for i, n in enumerate(names)}
    a, pa = _component(Rs, Cs, pts, list(range(0, 30)), _random_similarity(2, 0.3), names)
    b, pb = _component(Rs, Cs, pts, list(range(30, 60)), _random_similarity(3, 2.5), names)
    merged, rows = bridge_components([a, b], [pa, pb], gps)
    assert [r["placed"] for r in rows] == [True, True] and len(merged) == 60
    assert rows[0]["up"] == rows[1]["up"] == "ground_plane"
    C = np.stack([merged[n][1] for n in names])  # [60,3] ENU metres
    h = np.linalg.norm(C[:, :2] - Cs[:, :2], axis=1)  # [60] horizontal error, metres
    v = np.abs(C[:, 2] - Cs[:, 2])
    # the fixes' noise averaged over 30 fixes: horizontal RMS 0.11-0.46 m over five noise draws (sigma 1 m east/north);
    # height from each ground plane put at z = 0: 0.00-0.04 m (by the fixes' altitude, sigma 2 m: 0.0-0.71 m); a
    # component left in its SfM frame would be tens of metres off
    assert rows[0]["height_from"] == rows[1]["height_from"] == "ground"
    for half in (slice(0, 30), slice(30, 60)):
        assert np.sqrt((h[half] ** 2).mean()) < 0.6 and v[half].mean() < 0.1
    # without a ground plane in one component, every component's height comes from the fixes' altitude (one rule for all)
    merged2, rows2 = bridge_components([a, b], [pa, np.zeros((0, 3))], gps)
    assert [r["height_from"] for r in rows2] == ["gps_altitude"] * 2 and rows2[1]["up"] == "camera_up"
    z_err = np.abs(np.stack([merged2[n][1][2] for n in names]) - Cs[:, 2])
    assert z_err[:30].mean() < 1.5 and 0.05 < z_err[:30].mean()  # the altitude's noise (sigma 2 m over 30 fixes)
    # level: the cameras' heights stay flat along each 50 m component (a 7 degree pitch bias would tilt it by 6 m)
    for half in (slice(0, 30), slice(30, 60)):
        slope = np.polyfit(C[half, 1], C[half, 2], 1)[0]
        assert abs(slope) < 0.01
    # orientations carried with the centres: each camera's rotation is the true one within 2 degrees (yaw from 1 m fixes
    # over 50 m: 1.2 degrees here)
    for n, R in zip(names, Rs):
        d = merged[n][0] @ R.T
        assert math.degrees(math.acos(np.clip((np.trace(d) - 1) / 2, -1, 1))) < 2.0


def test_camera_up_alone_tilts_a_pitched_walk():
    """Why the ground plane: hand-held cameras pitch down, so their mean up is tilted along the walk."""
    Rs, Cs, pts = _walk()
    gps = Cs.copy()
    pl_ground = place_component(Rs, Cs, gps, pts)
    pl_cams = place_component(Rs, Cs, gps, np.zeros((0, 3)))
    assert pl_ground.info["up"] == "ground_plane" and pl_cams.info["up"] == "camera_up"
    far_ground = np.abs((pl_ground.s * Cs @ pl_ground.R.T + pl_ground.t)[:, 2] - Cs[:, 2]).max()
    far_cams = np.abs((pl_cams.s * Cs @ pl_cams.R.T + pl_cams.t)[:, 2] - Cs[:, 2]).max()
    assert far_ground < 0.05 and far_cams > 3.0


def test_too_few_fixes_or_too_short_a_span_leaves_a_component_out_and_a_gps_jump_is_dropped():
    Rs, Cs, pts = _walk()
    names = [f"p{i:03d}.jpg" for i in range(len(Cs))]
    gps = {n: Cs[i].copy() for i, n in enumerate(names)}
    gps[names[10]] = Cs[10] + np.array([60.0, 0, 0])  # multipath: one fix 60 m off
    a, pa = _component(Rs, Cs, pts, list(range(0, 40)), _random_similarity(4, 1.7), names)
    b, pb = _component(Rs, Cs, pts, list(range(40, 44)), _random_similarity(5, 0.5), names)  # 4 fixes, 5 m
    merged, rows = bridge_components([a, b], [pa, pb], gps, BridgeConfig())
    assert rows[0]["placed"] and not rows[1]["placed"] and rows[1]["fixes"] == 4
    assert rows[0]["fixes_used"] == 39 and rows[0]["horizontal_rmse_m"] < 0.01
    assert len(merged) == 40
    assert np.abs(np.stack([merged[n][1] for n in names[:40]]) - Cs[:40]).max() < 0.02
    short = {n: Cs[0] + (Cs[i] - Cs[0]) * 0.05 for i, n in enumerate(names)}  # 5 m of fixes: the scale is a guess
    assert place_component(Rs[:40], Cs[:40], np.stack([short[n] for n in names[:40]]), pts) is None


def test_synthetic_capture_gps_exif_read_back_by_colmap(tmp_path):
    """The SYNTHETIC capture's EXIF GPS as COLMAP reads it (pycolmap's extractor -> pose priors -> recon.sfm.read_gps)."""
    from realsim.assets.cameras import load_cameras
    from realsim.assets.frames import camera_center
    from realsim.recon import sfm
    from realsim.recon.inputs import StagedImages
    from realsim.sim.capture import CaptureConfig, make_capture

    cap = make_capture(tmp_path / "cap", CaptureConfig(n_images=4, width=64, height=48, focal=53, ssaa=1, gps_sigma_m=0.0))
    names = sorted(p.name for p in (cap / "images").iterdir())
    db = tmp_path / "db.db"
    sfm.extract(StagedImages(cap / "images", names, [], {n: (1,) for n in names}), db, sfm.SfmOptions(num_threads=1))
    gps, origin = sfm.read_gps(db)
    assert sorted(gps) == names and origin[:2] == pytest.approx((48.0, 11.0))
    gt = {f.name: camera_center(f.viewmat) for f in load_cameras(cap / "cameras_gt.json").frames}
    for n in names:  # ENU relative to the first photo's fix; altitude is stored in cm and read as float32
        np.testing.assert_allclose(gps[n], gt[n] - gt[names[0]], atol=0.01)
