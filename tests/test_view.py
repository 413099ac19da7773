"""`realsim view` without a browser: bad input gives one line and exit 2, --seconds serves and stops, data loading."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from realsim.cli.main import main
from viewer_helpers import free_port, make_scene, make_sim


@pytest.fixture(scope="module")
def scene_sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("viewcli")
    scene = make_scene(root / "scene")
    return scene, make_sim(root / "sim", scene), root


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    err = [ln for ln in err if ln.startswith("realsim")]
    assert len(err) == 1 and "Traceback" not in err[0], err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_missing_scene(tmp_path, capsys):
    assert _run(["view", str(tmp_path / "nope"), "--port", str(free_port())]) == 2
    _one_line(capsys, "not found")


def test_foreign_scene(tmp_path, capsys):
    (tmp_path / "scene.json").write_text(json.dumps({"hello": 1}))
    assert _run(["view", str(tmp_path), "--port", str(free_port())]) == 2
    _one_line(capsys, "error")


def test_port_in_use(scene_sim, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        assert _run(["view", str(scene_sim[0]), "--port", str(s.getsockname()[1]), "--seconds", "1"]) == 2
    finally:
        s.close()
    _one_line(capsys, "in use", "--port")


def test_sim_from_another_scene(scene_sim, tmp_path, capsys):
    scene, _, root = scene_sim
    other = make_sim(tmp_path / "other_sim", tmp_path / "some_other_scene")
    assert _run(["view", str(scene), "--sim", str(other), "--port", str(free_port())]) == 2
    _one_line(capsys, "was made from scene", "some_other_scene")
    assert _run(["view", str(scene), "--sim", str(tmp_path), "--port", str(free_port())]) == 2
    _one_line(capsys, "not a realsim sim output folder")


def test_serves_for_seconds_then_stops(scene_sim, capsys):
    scene, sim, _ = scene_sim
    port = free_port()
    assert _run(["-q", "view", str(scene), "--sim", str(sim), "--port", str(port), "--seconds", "1.5"]) == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}" in out and "2 agents" in out
    s = socket.socket()
    s.bind(("127.0.0.1", port))  # released after the command returned
    s.close()


def test_other_host_warns(scene_sim, capsys):
    assert _run(["-q", "view", str(scene_sim[0]), "--host", "0.0.0.0", "--port", str(free_port()), "--seconds", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0" in err


def test_sim_playback_and_splats(scene_sim):
    from realsim.cli.viewer.data import load_sim, scene_splats
    from realsim.recon.bundle import load_scene

    scene, sim, _ = scene_sim
    sc = load_scene(scene)
    sp = scene_splats(sc)
    assert len(sp) == 376 and sp.covariances.shape == (376, 3, 3)
    assert np.all(np.linalg.eigvalsh(sp.covariances.astype(np.float64)) > 0)
    assert 0 <= sp.rgbs.min() and sp.rgbs.max() <= 1
    pb = load_sim(sim, scene)
    pts, col = pb.segments(0)
    assert pts.shape == (2 * 6, 2, 3) and col.shape == (12, 2, 3)
    assert np.allclose(pb.segments(pb.n_frames - 1)[0][0, :, 0] - pts[0, :, 0], 3.0, atol=1e-5)  # agent 0 walked 3 m +x


class _Camera:
    """The server-side state viser keeps of a browser's view (ClientHandle.camera): pose, fov, canvas size."""

    def __init__(self, viewmat, fov, width, height):
        from realsim.cli.viewer.data import c2w_from_viewmat

        self.wxyz, self.position = c2w_from_viewmat(viewmat)
        self.fov, self.image_width, self.image_height = fov, width, height


class _Client:
    """A connected browser as the exact-mode thread uses it: its camera, and the background images it is sent."""

    client_id = 1

    def __init__(self, camera):
        self.camera = camera
        self.backgrounds = []
        self.scene = self

    def set_background_image(self, img, format="jpeg"):
        self.backgrounds.append(None if img is None else np.array(img))

    def atomic(self):
        import contextlib

        return contextlib.nullcontext()


@pytest.fixture
def app_of(tmp_path):
    from realsim.cli.viewer import ViewerApp, ViewerOptions

    apps = []

    def make(scene, sim=None, **kw):
        app = ViewerApp(ViewerOptions(scene=scene, sim=sim, port=free_port(), path_out=tmp_path / "camera_path.json",
                                      **kw))
        app.start()
        apps.append(app)
        return app

    yield make
    for a in apps:
        a.stop()


def test_exact_mode_is_realsims_render_of_the_view(scene_sim, app_of):
    """Exact mode: a low-resolution frame first (adapting to the render time), then the full-size frame, equal to
    realsim's own render of that training camera; the splats are hidden meanwhile."""
    import math
    import time

    from realsim.recon.bundle import load_scene

    app = app_of(scene_sim[0], world=False, exact_target_s=1e-4)  # any render is "too slow": the first is downsized
    f = sorted(app.scene.cameras.frames, key=lambda f: f.name)[2]
    client = _Client(_Camera(f.viewmat, 2 * math.atan(0.5 * f.height / f.K[1][1]), f.width, f.height))
    app.h["exact"].value = True
    assert app.h["splats"].visible is False
    app._request_exact(client)
    t0 = time.monotonic()
    while len(client.backgrounds) < 2:
        assert time.monotonic() - t0 < 30, f"exact mode sent {len(client.backgrounds)} frames in 30 s"
        time.sleep(0.05)
    low, full = client.backgrounds[:2]
    assert low.shape[1] < f.width and low.shape[0] < f.height, low.shape  # adapted down
    assert full.shape == (f.height, f.width, 3)
    ref = load_scene(scene_sim[0]).render(f.viewmat, f.K, f.width, f.height, background=(1.0, 1.0, 1.0))["rgb"]
    ref = (ref.numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)
    assert ref.std() > 20, "bad setup: the training camera sees nothing"
    diff = np.abs(full.astype(int) - ref.astype(int))
    assert diff.max() <= 1, f"exact frame differs from realsim's render by up to {diff.max()}"
    g = sorted(app.scene.cameras.frames, key=lambda f: f.name)[5]  # a view the server sets (go to keyframe, preview)
    n = len(client.backgrounds)
    app.set_client_view(client, g.viewmat, client.camera.fov)  # this browser never reports its view back
    t0 = time.monotonic()
    while len(client.backgrounds) < n + 2:
        assert time.monotonic() - t0 < 30, "exact mode did not render a view the server set"
        time.sleep(0.05)
    ref = load_scene(scene_sim[0]).render(g.viewmat, f.K, f.width, f.height, background=(1.0, 1.0, 1.0))["rgb"]
    diff = np.abs(client.backgrounds[n + 1].astype(int) - (ref.numpy() * 255 + 0.5).clip(0, 255).astype(int))
    assert diff.max() <= 1, f"exact frame of a view the server set differs from realsim's render by up to {diff.max()}"
    app.h["exact"].value = False
    assert app.h["splats"].visible is True


def test_world_toggles_on_a_scene_with_sfm_points(tmp_path, app_of):
    from realsim.cli.viewer import ViewerApp, ViewerOptions

    scene = make_scene(tmp_path / "scene_pts", sfm_points=True)
    app = app_of(scene)
    assert app.world is not None, app.world_note
    w = app.world
    assert len(w.walkable) > 100 and len(w.obstacle) > 0
    box = (w.obstacle[:, 0] > 0.7) & (w.obstacle[:, 0] < 1.7) & (w.obstacle[:, 1] > 0.7) & (w.obstacle[:, 1] < 1.7)
    assert box.any(), "the 0.8 m box on the ground is not an obstacle"
    walk_in_box = (w.walkable[:, 0] > 0.9) & (w.walkable[:, 0] < 1.5) & (w.walkable[:, 1] > 0.9) & (w.walkable[:, 1] < 1.5)
    assert not walk_in_box.any(), "the box's footprint is walkable"
    for k in ("walkable", "obstacle"):
        assert app.h[k].visible is False  # off until asked
        app.h[f"{k}_toggle"].value = True
        assert app.h[k].visible is True
        app.h[f"{k}_toggle"].value = False
        assert app.h[k].visible is False
    # --no-world: no map, no toggles; a scene without SfM points: the reason, not an error
    app2 = ViewerApp(ViewerOptions(scene=scene, port=free_port(), world=False))
    assert app2.world is None and app2.world_note == ""


def test_props_drawn_at_their_poses(tmp_path, scene_sim, app_of):
    from scipy.spatial.transform import Rotation

    scene = scene_sim[0]
    sim = make_sim(tmp_path / "sim_props", scene, props=True)
    app = app_of(scene, sim, world=False)
    s = app.sim
    assert [p.shape for p in s.props] == ["sphere", "box"]
    pj = json.loads((sim / "props.json").read_text())
    ball, box = app.h["prop0"], app.h["prop1"]
    r = np.linalg.norm(np.asarray(ball.vertices), axis=1)
    assert np.allclose(r.max(), 0.2, atol=0.01)  # the sim renderer's mesh of a 0.2 m ball
    assert np.allclose(np.abs(np.asarray(box.vertices)).max(0), 0.2, atol=1e-4)  # 0.4 m cube
    for t in (0, 12, s.n_frames - 1):
        app.set_frame(t)
        assert np.allclose(ball.position, pj["props"][0]["position"][t], atol=1e-4)
        assert np.allclose(box.position, pj["props"][1]["position"][t], atol=1e-4)
        assert np.allclose(np.abs(np.dot(box.wxyz, pj["props"][1]["quat"][t])), 1.0, atol=1e-4)
    yaw = Rotation.from_quat(np.r_[box.wxyz[1:], box.wxyz[0]]).as_euler("xyz", degrees=True)[2]
    assert abs(yaw - 90) < 0.1  # the box turned a quarter about z by the last frame
    assert app.h["props_toggle"].value is True
    app.h["props_toggle"].value = False
    assert ball.visible is False and box.visible is False


def test_bad_props_json_is_one_line(tmp_path, scene_sim, capsys):
    scene = scene_sim[0]
    sim = make_sim(tmp_path / "sim_badprops", scene, props=True)
    pj = json.loads((sim / "props.json").read_text())
    pj["props"][1]["shape"] = "teapot"
    (sim / "props.json").write_text(json.dumps(pj))
    assert _run(["view", str(scene), "--sim", str(sim), "--port", str(free_port())]) == 2
    _one_line(capsys, "props[1]", "teapot")


def test_camera_path_edit_save_and_render(scene_sim, app_of, tmp_path):
    """Keyframes added, moved and removed; the saved path starts `realsim render --path FILE` whose video is the
    path rendered (first frame = keyframe 0's camera)."""
    import time

    from realsim.render.video import read_video
    from realsim.render.paths import load_camera_path

    app = app_of(scene_sim[0], world=False)
    frames = sorted(app.scene.cameras.frames, key=lambda f: f.name)
    fov = lambda f: 2 * np.arctan(0.5 * f.height / f.K[1][1])  # noqa: E731
    for i in (1, 2, 3):
        app.add_keyframe(frames[i].viewmat, fov(frames[i]))
    app.move_keyframe(1, frames[5].viewmat, fov(frames[5]))
    app.remove_keyframe(2)
    assert [np.allclose(k[0], frames[i].viewmat) for k, i in zip(app.keyframes, (1, 5))] == [True, True]
    assert "2 keyframes" in app.h["kf_info"].content and len([k for k in app.h if k.startswith("kf_frustum")]) == 2
    with pytest.raises(Exception, match="no keyframe #7"):
        app.move_keyframe(7, frames[0].viewmat, 1.0)
    app.h["kf_duration"].value = 1.0
    app.h["kf_fps"].value = 8.0
    app.h["kf_size"].value = (96, 72)
    path_file, out = tmp_path / "edited_path.json", tmp_path / "render_out"
    cmd = app.render_command(path_file, out)
    assert cmd[cmd.index("render") + 1] == str(app.scene.root) and cmd[cmd.index("--path") + 1] == str(path_file)
    proc = app.start_render(path_file, out)
    assert proc.wait(timeout=120) == 0, app.render_log.read_text()[-2000:]
    t0 = time.monotonic()
    while "done" not in app.h["kf_render_info"].content:
        assert time.monotonic() - t0 < 5, app.h["kf_render_info"].content
        time.sleep(0.05)
    path = load_camera_path(path_file)
    assert len(path) == 8 and (path.width, path.height) == (96, 72)
    video, _ = read_video(out / "rgb.mp4")
    assert len(video) == 8
    ref = app.render_view(frames[1].viewmat, fov(frames[1]), 96, 72, background=(0.0, 0.0, 0.0)).astype(float)
    err = np.abs(video[0].astype(float) - ref).mean()
    assert err < 6, f"the rendered video's first frame differs from keyframe 0's view by {err:.1f} / 255"
    with pytest.raises(Exception, match="not an empty folder"):
        app.start_render(path_file, out)  # never over an existing render


def test_timeline_play_pause_speed_and_frustums(scene_sim, app_of):
    """Play advances the frame at the sim's fps times the speed (10 fps at speed 2: 20 frames/s), pause holds it; each
    training camera is a frustum at its pose with its photo, orange for the test split, hidden by its toggle."""
    import time

    from PIL import Image

    scene, sim, _ = scene_sim
    app = app_of(scene, sim, world=False)
    frames = sorted(app.scene.cameras.frames, key=lambda f: f.name)
    for i, f in enumerate(frames):
        fr = app.h[f"cam{i}"]
        assert np.allclose(fr.position, -f.viewmat[:3, :3].T @ f.viewmat[:3, 3], atol=1e-5)
        thumb = np.asarray(fr.image, np.float32)
        photo = Image.open(scene / "images" / f.name).convert("RGB").resize(thumb.shape[1::-1], Image.BILINEAR)
        assert np.corrcoef(thumb.ravel(), np.asarray(photo, np.float32).ravel())[0, 1] > 0.95, f"frustum {i}'s photo"
        assert tuple(fr.color) == ((230, 120, 20) if f.split == "test" else (30, 90, 220))
    app.h["cameras_toggle"].value = False
    assert not any(app.h[f"cam{i}"].visible for i in range(len(frames)))
    app.set_frame(0)
    app.h["speed_slider"].value = 2.0  # the slider's callback sets the speed
    t0 = time.monotonic()
    app.playing = True  # what the Play / pause button toggles
    time.sleep(0.8)
    app.playing = False
    dt = time.monotonic() - t0
    f1 = app.frame
    lag = (20 * dt - f1 + 15) % 30 - 15  # frames behind 20 frames/s (the 30-frame timeline loops); speed 1 lags 8
    assert -1 <= lag <= 4, f"played to frame {f1} in {dt:.2f} s at speed 2 (20 frames/s)"
    time.sleep(0.4)
    assert app.frame == f1 and app.h["frame_slider"].value == f1  # paused
