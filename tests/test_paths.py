"""Camera paths: spline interpolation through cameras, constant speed, focus point, orbit/spiral, nerfstudio JSON."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from realsim.assets import CameraFrame, InputError, frames as F
from realsim.render.paths import (CameraPath, focus_point, interp_path, load_camera_path, look_at, orbit_path,
                                  resample_path, save_camera_path, slerp, spiral_path)

K0 = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])


def _ring(n=8, radius=3.0, z=1.0, target=(0.0, 0.0, 0.0), jitter=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = 2 * np.pi * i / n
        p = np.array([radius * np.cos(a), radius * np.sin(a), z]) + np.asarray(target)
        V = look_at(p, np.asarray(target) + rng.normal(scale=jitter, size=3))
        out.append(CameraFrame(f"{i:03d}.png", K0.copy(), V, 320, 240))
    return out


def _walk():
    """Forward walk along +X with uneven spacing and some yaw: a street capture."""
    xs = [0.0, 0.2, 0.5, 1.5, 1.7, 3.0, 3.1, 4.0]
    out = []
    for i, x in enumerate(xs):
        p = np.array([x, 0.3 * math.sin(x), 1.6])
        V = look_at(p, p + np.array([1.0, 0.2 * math.cos(i), -0.05]))
        out.append(CameraFrame(f"img_{i:02d}.jpg", K0.copy(), V, 320, 240))
    return out


def test_look_at_is_opencv():
    V = look_at(np.array([0.0, 0, 0]), np.array([1.0, 0, 0]))
    # forward +X, world up +Z: camera x (right) is world -Y, camera y (down) is world -Z
    np.testing.assert_allclose(V[:3, :3], [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-12)
    x = V @ np.array([5.0, 0, 0, 1])
    assert x[2] == pytest.approx(5.0) and abs(x[0]) < 1e-12 and abs(x[1]) < 1e-12


def test_slerp_halfway_and_shortest_arc():
    q0 = np.array([1.0, 0, 0, 0])
    q1 = F.rotmat_to_quat(F.quat_to_rotmat(np.array([math.cos(0.5), 0, 0, math.sin(0.5)])))  # 1 rad about z
    qm = slerp(q0, q1, 0.5)
    R = F.quat_to_rotmat(qm)
    assert math.atan2(R[1, 0], R[0, 0]) == pytest.approx(0.5, abs=1e-12)
    qm2 = slerp(q0, -q1, 0.5)  # the same rotation with the other sign: still the short way
    np.testing.assert_allclose(F.quat_to_rotmat(qm2), R, atol=1e-12)


def test_interp_passes_through_cameras_at_constant_speed():
    frames = _walk()
    path = interp_path(frames, seconds=20, fps=30, rot_weight=0.0)
    assert len(path) == 600 and (path.width, path.height) == (320, 240)
    C = path.centers()
    keys = np.stack([F.camera_center(f.viewmat) for f in frames])
    np.testing.assert_allclose(C[0], keys[0], atol=1e-9)
    np.testing.assert_allclose(C[-1], keys[-1], atol=1e-9)
    step = np.linalg.norm(np.diff(C, axis=0), axis=1)
    for k in keys:  # the spline goes through every camera (within half a frame step)
        assert np.min(np.linalg.norm(C - k, axis=1)) < 0.6 * step.max()
    # constant speed although the cameras are spaced 0.1 to 1.3 apart
    assert step.max() / step.min() < 1.03, (step.min(), step.max())
    # each rendered camera has an orthonormal rotation and the key rotation at the ends
    R = path.viewmats[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
    np.testing.assert_allclose(path.viewmats[-1], frames[-1].viewmat, atol=1e-9)
    # with a rotation weight the speed is constant in |d position| + w |d angle|: turning on the spot cannot jump
    p2 = interp_path(frames, seconds=20, fps=30, rot_weight=2.0)
    R2 = p2.viewmats[:, :3, :3]
    rel = np.einsum("tji,tjk->tik", R2[:-1], R2[1:])
    ang = np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1))
    combined = np.linalg.norm(np.diff(p2.centers(), axis=0), axis=1) + 2.0 * ang
    assert combined.max() / combined.min() < 1.03


def test_interp_name_order_and_output_size():
    frames = _walk()[::-1]  # given reversed; default orders by name
    path = interp_path(frames, seconds=1, fps=10, width=640)
    assert (path.width, path.height) == (640, 480)
    np.testing.assert_allclose(path.centers()[0], F.camera_center(frames[-1].viewmat), atol=1e-9)
    # same vertical field of view at twice the size
    assert path.Ks[0, 1, 1] == pytest.approx(600.0) and path.Ks[0, 0, 2] == pytest.approx(320.0)
    nearest = interp_path(frames, seconds=1, fps=10, order="nearest")
    np.testing.assert_allclose(nearest.centers()[0], F.camera_center(frames[0].viewmat), atol=1e-9)


def test_focus_point_least_squares():
    target = np.array([0.5, -1.0, 0.3])
    frames = _ring(n=12, target=target, jitter=0.02)
    f = focus_point(np.stack([fr.viewmat for fr in frames]))
    assert np.linalg.norm(f - target) < 0.03
    # forward-facing (parallel axes): ill-posed, falls back to the median depth of points ahead
    walk = _walk()
    V = np.stack([look_at(np.array([x, 0.0, 1.0]), np.array([x, 10.0, 1.0])) for x in (0.0, 0.1, 0.2)])
    pts = np.array([[0.0, 4.0, 1.0], [0.1, 5.0, 1.0], [0.2, 6.0, 1.0], [0.0, -3.0, 1.0]])
    f2 = focus_point(V, pts)
    assert f2[1] == pytest.approx(5.0, abs=1e-6)
    assert np.isfinite(focus_point(np.stack([w.viewmat for w in walk]))).all()


def test_orbit_circles_the_focus_and_looks_at_it():
    target = np.array([1.0, 2.0, 0.5])
    frames = _ring(n=6, radius=4.0, z=1.5, target=target)
    path = orbit_path(frames, seconds=2, fps=12, width=320, height=240)
    assert len(path) == 24
    C = path.centers()
    horiz = np.linalg.norm((C - target)[:, :2], axis=1)
    np.testing.assert_allclose(horiz, 4.0, atol=1e-6)
    np.testing.assert_allclose(C[:, 2], target[2] + 1.5, atol=1e-6)
    np.testing.assert_allclose(C[0], F.camera_center(frames[0].viewmat), atol=1e-6)
    for V, K in zip(path.viewmats, path.Ks):  # the focus projects to the principal point
        p = V[:3, :3] @ target + V[:3, 3]
        uv = (K @ p)[:2] / p[2]
        np.testing.assert_allclose(uv, [160, 120], atol=1e-6)
        assert abs(V[0, 2]) < 1e-9  # no roll: camera x axis horizontal in the +Z-up world
    step = np.linalg.norm(np.diff(C, axis=0), axis=1)
    np.testing.assert_allclose(step, step[0], rtol=1e-9)


def test_spiral_looks_at_focus():
    V = np.stack([look_at(np.array([x, 0.0, 1.0 + 0.1 * x]), np.array([0.0, 6.0, 1.0])) for x in (-0.5, 0.0, 0.4, 0.6)])
    frames = [CameraFrame(f"{i}.png", K0.copy(), v, 320, 240) for i, v in enumerate(V)]
    pts = np.array([[0.0, 6.0, 1.0]] * 20)
    path = spiral_path(frames, seconds=1, fps=30, points=pts)
    f = focus_point(V, pts)
    spread = np.ptp(path.centers(), axis=0)
    assert spread[0] > 0.3  # it moves sideways
    for V1, K in zip(path.viewmats, path.Ks):
        p = V1[:3, :3] @ f + V1[:3, 3]
        np.testing.assert_allclose((K @ p)[:2] / p[2], [160, 120], atol=1e-6)


def test_camera_path_json_roundtrip(tmp_path):
    path = interp_path(_walk(), seconds=1, fps=24)
    path.Ks[:, 0, 2] += 3.0  # off-centre principal point survives through realsim_K
    save_camera_path(tmp_path / "p.json", path)
    back = load_camera_path(tmp_path / "p.json")
    assert (back.width, back.height, back.fps, len(back)) == (path.width, path.height, 24.0, 24)
    np.testing.assert_allclose(back.viewmats, path.viewmats, atol=1e-9)
    np.testing.assert_allclose(back.Ks, path.Ks, atol=1e-9)
    data = json.loads((tmp_path / "p.json").read_text())
    c2w = np.asarray(data["camera_path"][5]["camera_to_world"]).reshape(4, 4)
    np.testing.assert_allclose(c2w, F.viewmat_to_c2w_opengl(path.viewmats[5]), atol=1e-9)
    assert data["camera_path"][0]["fov"] == pytest.approx(2 * math.degrees(math.atan(120 / 300)))


def test_load_nerfstudio_viewer_export(tmp_path):
    """A file as nerfstudio's viewer writes it: OpenGL c2w, vertical fov, no realsim keys."""
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 2.0, 3.0]  # OpenGL camera at (1,2,3) looking down world -Z
    doc = {"camera_type": "perspective", "render_height": 480, "render_width": 640, "fps": 30, "seconds": 2,
           "keyframes": [], "camera_path": [{"camera_to_world": c2w.reshape(-1).tolist(), "fov": 60, "aspect": 4 / 3}] * 3}
    (tmp_path / "ns.json").write_text(json.dumps(doc))
    p = load_camera_path(tmp_path / "ns.json")
    assert len(p) == 3 and (p.width, p.height) == (640, 480)
    np.testing.assert_allclose(p.centers()[0], [1, 2, 3], atol=1e-12)
    fwd = np.linalg.inv(p.viewmats[0])[:3, 2]
    np.testing.assert_allclose(fwd, [0, 0, -1], atol=1e-12)
    assert p.Ks[0, 1, 1] == pytest.approx(240 / math.tan(math.radians(30)))
    half = load_camera_path(tmp_path / "ns.json", width=320)
    assert (half.width, half.height) == (320, 240) and half.Ks[0, 1, 1] == pytest.approx(p.Ks[0, 1, 1] / 2)
    longer = resample_path(p, seconds=2, fps=10)
    assert len(longer) == 20 and longer.fps == 10


@pytest.mark.parametrize("content, match", [
    ("{oops", "not valid JSON"),
    (json.dumps({"camera_path": []}), "camera_path"),
    (json.dumps({"camera_type": "fisheye", "camera_path": [{}]}), "fisheye"),
    (json.dumps({"render_height": 10, "render_width": 10, "camera_path": [{"camera_to_world": [1, 2], "fov": 50}]}), "malformed"),
])
def test_bad_camera_path_files(tmp_path, content, match):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(InputError, match=match):
        load_camera_path(tmp_path / "bad.json")
    with pytest.raises(InputError, match="not found"):
        load_camera_path(tmp_path / "missing.json")


def test_bad_durations():
    with pytest.raises(InputError):
        interp_path(_walk(), seconds=0, fps=30)
    with pytest.raises(InputError):
        orbit_path([], seconds=1, fps=30)
    with pytest.raises(ValueError):
        CameraPath(np.zeros((0, 4, 4)), np.zeros((0, 3, 3)), 10, 10, 30)


def test_smoothing_steadies_a_shaky_walk():
    rng = np.random.default_rng(3)
    frames = []
    for i in range(20):
        p = np.array([0.3 * i, 0.0, 1.6]) + rng.normal(scale=0.05, size=3)
        V = look_at(p, p + np.array([1.0, 0.0, 0.0]) + rng.normal(scale=0.05, size=3))
        frames.append(CameraFrame(f"{i:02d}.jpg", K0.copy(), V, 320, 240))
    raw = interp_path(frames, seconds=4, fps=30)
    smooth = interp_path(frames, seconds=4, fps=30, smooth=2.0)

    def wobble(p):  # lateral / vertical deviation from the straight walking line
        c = p.centers()
        return float(np.sqrt(((c[5:-5, 1:] - [0.0, 1.6]) ** 2).mean()))

    assert wobble(smooth) < 0.5 * wobble(raw)
    R = smooth.viewmats[:, :3, :3]
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
