"""MP4 writing through PyAV, depth PNG16 and colour maps, normals from depth, and the atomic video bundle."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from realsim.assets import InputError, load_cameras
from realsim.render.bundle import parse_streams, write_video_bundle
from realsim.render.paths import CameraPath, load_camera_path, look_at
from realsim.render.video import (VideoWriter, colorize_depth, load_depth_png16, nice_depth_scale, normals_from_depth,
                                  normals_to_rgb, read_video, save_depth_png16)


@pytest.mark.parametrize("fps", [24.0, 30000 / 1001])
def test_mp4_decodes_with_frame_count_size_fps(tmp_path, fps):
    out = tmp_path / "v.mp4"
    with VideoWriter(out, fps, 64, 48) as w:
        for i in range(12):
            img = np.zeros((48, 64, 3), np.float32)
            img[..., 0] = i / 11
            img[:, 32:, 2] = 1.0
            w.write(img)
    frames, got_fps = read_video(out)
    assert frames.shape == (12, 48, 64, 3)
    assert got_fps == pytest.approx(fps, rel=1e-6)
    red = frames[:, 24, 10, 0].astype(float)
    np.testing.assert_allclose(red, np.arange(12) / 11 * 255, atol=6)  # lossy but close
    assert (frames[:, 24, 50, 2] > 240).all() and (frames[:, 24, 10, 2] < 15).all()
    import av
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_interrupted_video_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(tmp_path / "v.mp4", 30, 32, 32) as w:
            w.write(np.zeros((32, 32, 3), np.uint8))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", 30, 33, 32)
    with pytest.raises(ValueError, match="size"):
        with VideoWriter(tmp_path / "v.mp4", 30, 32, 32) as w:
            w.write(np.zeros((30, 32, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_depth_png16_roundtrip_within_quantisation(tmp_path):
    rng = np.random.default_rng(0)
    d = rng.uniform(0.5, 60.0, size=(20, 30, 1)).astype(np.float32)
    d[0, 0] = 0.0  # no surface
    scale = nice_depth_scale(60.0 * 1.5)
    assert scale == 0.002
    over = save_depth_png16(tmp_path / "d.png", d, scale)
    assert over == 0
    back = load_depth_png16(tmp_path / "d.png", scale)
    assert back.shape == d.shape and back[0, 0, 0] == 0
    assert np.abs(back - d).max() <= scale / 2 + 1e-6
    from PIL import Image
    with Image.open(tmp_path / "d.png") as im:  # a real 16-bit greyscale PNG
        assert np.asarray(im).dtype == np.uint16
    assert save_depth_png16(tmp_path / "e.png", np.full((2, 2, 1), 1000.0), 1e-3) == 4  # clipped, counted


def test_colorize_depth_fixed_range():
    d = np.array([[0.0, 1.0, 2.0, 3.0, 9.0]], np.float32)[..., None]
    rgb = colorize_depth(d, 1.0, 3.0, cmap="gray")
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 0).all()  # no depth -> black
    assert rgb[0, 1, 0] == 0 and rgb[0, 2, 0] in (127, 128) and rgb[0, 3, 0] == 255 and rgb[0, 4, 0] == 255


def _plane_depth(K, H, W, n, d0):
    """Depth of the plane n.X = d0 (camera frame) seen through K."""
    u = np.arange(W) + 0.5
    v = np.arange(H) + 0.5
    rx = (u[None, :] - K[0, 2]) / K[0, 0]
    ry = (v[:, None] - K[1, 2]) / K[1, 1]
    z = d0 / (n[0] * rx + n[1] * ry + n[2])
    return z[..., None]


def test_normals_from_depth_of_a_tilted_plane():
    K = np.array([[80.0, 0, 40], [0, 80.0, 30], [0, 0, 1]])
    n = np.array([0.3, -0.4, -1.0])
    n /= np.linalg.norm(n)
    depth = _plane_depth(K, 60, 80, -n, 2.0)  # plane facing the camera (normal towards it is n)
    got = normals_from_depth(depth, K)
    np.testing.assert_allclose(got.reshape(-1, 3), np.broadcast_to(n, (60 * 80, 3)), atol=1e-5)
    alpha = np.ones((60, 80, 1))
    alpha[:, :10] = 0
    got2 = normals_from_depth(depth, K, alpha)
    assert (got2[:, :10] == 0).all() and np.allclose(got2[:, 11:], n, atol=1e-5)
    rgb = normals_to_rgb(got2)
    assert (rgb[:, :10] == 0).all()
    front = normals_to_rgb(np.array([[[0.0, 0.0, -1.0]]], np.float32))  # facing the camera -> the usual blue
    np.testing.assert_array_equal(front[0, 0], [128, 128, 255])


def test_parse_streams():
    assert parse_streams("rgb, depth,rgb") == ("rgb", "depth")
    with pytest.raises(InputError, match="unknown stream"):
        parse_streams("rgb,flow")
    with pytest.raises(InputError):
        parse_streams("")


def _plane_scene(plane_z=0.0):
    """Analytic 'renderer' of a textured ground plane z = plane_z seen by any camera (for bundle plumbing)."""
    def render(V, K, W, H):
        u = np.arange(W) + 0.5
        v = np.arange(H) + 0.5
        rays_c = np.stack(np.broadcast_arrays((u[None] - K[0, 2]) / K[0, 0], (v[:, None] - K[1, 2]) / K[1, 1],
                                              np.ones((H, W))), -1)
        R, t = V[:3, :3], V[:3, 3]
        C = -R.T @ t
        rays_w = rays_c @ R  # R^T r for each ray
        s = (plane_z - C[2]) / np.where(np.abs(rays_w[..., 2]) > 1e-9, rays_w[..., 2], np.nan)
        hit = np.isfinite(s) & (s > 0)
        depth = np.where(hit, s, 0.0)[..., None]  # rays_c has z = 1, so s is camera z
        X = C + rays_w * np.nan_to_num(s)[..., None]
        checker = ((np.floor(X[..., 0]) + np.floor(X[..., 1])) % 2)[..., None]
        rgb = np.where(hit[..., None], 0.2 + 0.6 * checker * np.array([1.0, 0.8, 0.5]), 0.0)
        return {"rgb": rgb.astype(np.float32), "depth": depth.astype(np.float32),
                "alpha": hit[..., None].astype(np.float32)}
    return render


def _down_path(T=6, W=64, H=48):
    K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
    V = np.stack([look_at(np.array([0.1 * t, 0.0, 2.0]), np.array([0.1 * t + 3.0, 0.5, 0.0])) for t in range(T)])
    return CameraPath(V, np.repeat(K[None], T, 0), W, H, 10.0)


def test_video_bundle_layout_and_depth(tmp_path):
    render = _plane_scene()
    path = _down_path()
    out = tmp_path / "bundle"
    seen = []
    summary = write_video_bundle(render, path, out, progress=lambda s, d, t, i: seen.append((s, d, t)))
    assert seen[-1] == ("render", 6, 6)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["alpha.mp4", "camera_path.json", "cameras.json", "depth", "depth.mp4", "normal.mp4", "rgb.mp4"]
    for s in ("rgb", "depth", "normal", "alpha"):
        fr, fps = read_video(out / f"{s}.mp4")
        assert fr.shape == (6, 48, 64, 3) and fps == pytest.approx(10.0)
    meta = json.loads((out / "cameras.json").read_text())
    scale = meta["depth_scale"]
    assert scale == summary["depth_scale"] and len(meta["frames"]) == 6
    assert meta["frames"][3]["time"] == pytest.approx(0.3)
    cams = load_cameras(out / "cameras.json")  # the same cameras.json format as scene bundles
    np.testing.assert_allclose(cams.frames[2].viewmat, path.viewmats[2])
    for t in (0, 5):
        ref = render(path.viewmats[t], path.Ks[t], 64, 48)["depth"]
        got = load_depth_png16(out / "depth" / f"{t:06d}.png", scale)
        assert np.abs(got - ref).max() <= scale / 2 + 1e-6
    p = load_camera_path(out / "camera_path.json")
    np.testing.assert_allclose(p.viewmats, path.viewmats, atol=1e-9)
    # the normal video shows the ground's up vector: world +Z seen in camera 0 in OpenGL axes
    nv, _ = read_video(out / "normal.mp4")
    up_cam = path.viewmats[0][:3, :3] @ np.array([0.0, 0.0, 1.0]) * np.array([1, -1, -1])
    np.testing.assert_allclose(nv[0, 40, 32] / 255.0 * 2 - 1, up_cam, atol=0.06)


def test_interrupted_bundle_leaves_no_output(tmp_path):
    base = _plane_scene()
    calls = []

    def flaky(V, K, W, H):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return base(V, K, W, H)

    with pytest.raises(KeyboardInterrupt):
        write_video_bundle(flaky, _down_path(), tmp_path / "b", streams=("rgb", "depth"), depth_range=(1, 5),
                           depth_scale=1e-3)
    assert list(tmp_path.iterdir()) == []
    # an existing non-empty output is not clobbered without overwrite
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    from realsim.assets import RealsimError
    with pytest.raises(RealsimError, match="not empty"):
        write_video_bundle(base, _down_path(), tmp_path / "b", streams=("rgb",))
    s = write_video_bundle(base, _down_path(), tmp_path / "b", streams=("rgb",), overwrite=True)
    assert s["n_frames"] == 6 and sorted(p.name for p in (tmp_path / "b").iterdir()) == ["camera_path.json", "cameras.json", "rgb.mp4"]
    assert math.isclose(s["fps"], 10.0)


def test_stream_writer_thread_keeps_order_copies_frames_and_reports_errors(tmp_path):
    """StreamWriter encodes on its own thread: frames land in order even when the caller refills one buffer for every
    frame, and an encoding error (a wrong-sized extra frame) comes out of the `with` block, not lost in the thread."""
    from realsim.render.streams import StreamWriter

    path = _down_path(T=8)
    colours = np.random.default_rng(0).random((8, 3)).astype(np.float32)
    buf = np.zeros((48, 64, 3), np.float32)
    depth = np.full((48, 64, 1), 2.0, np.float32)
    alpha = np.ones((48, 64, 1), np.float32)
    (tmp_path / "a").mkdir()
    with StreamWriter(tmp_path / "a", path, ("rgb", "depth")) as sw:
        for t in range(8):
            buf[:] = colours[t]  # the same buffer, refilled
            sw.write(t, buf, depth, alpha)
            sw.submit(lambda p, c: p.write_text(json.dumps(c)), tmp_path / "a" / f"c{t}.json", colours[t].tolist())
    sw.finish()
    fr, _ = read_video(tmp_path / "a" / "rgb.mp4")
    np.testing.assert_allclose(fr.reshape(8, -1, 3).mean(1) / 255.0, colours, atol=0.02)
    assert all(json.loads((tmp_path / "a" / f"c{t}.json").read_text()) == colours[t].tolist() for t in range(8))
    for bad in (3, 7):  # mid-run: raised by a later write; the last frame: raised at the exit
        (tmp_path / f"b{bad}").mkdir()
        with pytest.raises(ValueError, match="frame size 32x48 != video size 64x48"):
            with StreamWriter(tmp_path / f"b{bad}", path, ("rgb",), extra_videos=("masks",)) as sw:
                for t in range(8):
                    sw.write(t, buf, depth, alpha, masks=np.zeros((48, 32 if t == bad else 64, 3), np.uint8))
        assert list((tmp_path / f"b{bad}").glob("*.mp4")) == []  # videos are renamed into place only on a clean exit


def test_same_frames_same_video_bytes(tmp_path):
    """Identical frames give an identical MP4, run after run (x264's mbtree rate control made them differ: 3 distinct
    outputs in 6 runs of the demo's frames); five encoders interleaved in one process, as `simulate` writes them."""
    rng = np.random.default_rng(0)
    T, W, H = 40, 160, 120
    yy, xx = np.mgrid[0:H, 0:W]
    tex = rng.random((H + T * 2, W + T * 3, 3)).astype(np.float32)
    frames = [np.clip(0.6 * tex[2 * t:2 * t + H, 3 * t:3 * t + W] + 0.4 * (((xx + 4 * t) // 16 + yy // 16) % 2)[..., None], 0, 1)
              for t in range(T)]  # a moving noisy checker: motion and detail for the rate control to weigh
    digests = set()
    for run in range(4):
        paths = [tmp_path / f"r{run}_{k}.mp4" for k in range(5)]
        writers = [VideoWriter(p, 30, W, H) for p in paths]
        for w in writers:
            w.__enter__()
        for f in frames:
            for k, w in enumerate(writers):
                w.write(f if k % 2 == 0 else f[::-1].copy())
        for w in writers:
            w.__exit__(None, None, None)
        digests.add(tuple(p.read_bytes() for p in paths))
    assert len(digests) == 1
