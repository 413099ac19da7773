"""`realsim poses` formats (transforms.json with distortion, COLMAP text/binary, video) and every bad input of issue 2."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from test_poses_synth import make_render_set, rotation_errors_deg, write_transforms_json

from realsim.assets.cameras import load_cameras
from realsim.cli.main import main
from realsim.recon import load_sfm_points
from realsim.recon.colmap_io import read_model, write_model
from realsim.recon.inputs import extract_video_frames, sharpness

DIST = (-0.08, 0.01)


pytestmark = pytest.mark.usefixtures("fresh_log_handlers")


@pytest.fixture(scope="module")
def distorted(tmp_path_factory):
    """A nerfstudio dataset with radial distortion and no point cloud."""
    root = tmp_path_factory.mktemp("ns")
    names, views, K = make_render_set(root / "images", n=8, dist=DIST)
    write_transforms_json(root / "transforms.json", names, views, K, 320, 240, DIST)
    return root, names, views, K


@pytest.fixture(scope="module")
def from_transforms(distorted, tmp_path_factory):
    root, names, views, K = distorted
    out = tmp_path_factory.mktemp("wd") / "wd"
    assert main(["-q", "poses", str(root / "transforms.json"), "-o", str(out), "--no-align", "--holdout-every", "0"]) == 0
    return out


def _run(argv, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap.err


def _no_partial(parent):
    assert not [p for p in parent.iterdir() if p.name.endswith(".partial")]


def test_transforms_distorted_triangulated_with_fixed_poses(from_transforms, distorted):
    root, names, views, K = distorted
    cams = load_cameras(from_transforms / "cameras.json")
    got = {f.name: f for f in cams.frames}
    assert sorted(got) == names and all(f.split == "train" for f in cams.frames)
    for n, V in zip(names, views):
        np.testing.assert_allclose(got[n].viewmat, V, atol=1e-9)  # poses held fixed
        # Undistorted to pinhole: COLMAP's undistorter grows the frame a little to keep every source pixel.
        assert 320 <= got[n].width <= 340 and 240 <= got[n].height <= 252
        with Image.open(from_transforms / "images" / n) as im:
            assert im.size == (got[n].width, got[n].height)
    xyz, rgb = load_sfm_points(from_transforms)
    assert len(xyz) > 200
    # Points triangulated from the distorted images with the true poses lie on the room's walls (|x|,|y| = 4, z in {0,3}).
    d = np.minimum.reduce([np.abs(np.abs(xyz[:, 0]) - 4), np.abs(np.abs(xyz[:, 1]) - 4), np.abs(xyz[:, 2]), np.abs(xyz[:, 2] - 3)])
    assert np.median(d) < 0.02
    meta = json.loads((from_transforms / "scene.json").read_text())["metadata"]
    assert meta["triangulated_with_fixed_poses"] and meta["mean_reprojection_error_px"] < 1.0


def test_colmap_text_in_binary_out(from_transforms, tmp_path, capsys):
    text = tmp_path / "text_model"
    write_model(read_model(from_transforms / "sparse" / "0"), text, text=True)
    assert (text / "images.txt").is_file()
    out = tmp_path / "wd"
    rc, err = _run(["-q", "poses", str(from_transforms / "images"), "--colmap", str(text), "-o", str(out), "--no-align"], capsys)
    assert rc == 0, err
    a = {f.name: f for f in load_cameras(from_transforms / "cameras.json").frames}
    b = {f.name: f for f in load_cameras(out / "cameras.json").frames}
    assert sorted(a) == sorted(b)
    for n in a:
        np.testing.assert_allclose(b[n].viewmat, a[n].viewmat, atol=1e-6)
        np.testing.assert_allclose(b[n].K, a[n].K, atol=1e-6)
    assert (out / "sparse" / "0" / "points3D.bin").is_file()
    assert len(load_sfm_points(out)[0]) == len(load_sfm_points(from_transforms)[0])


def test_transforms_aligned_round_trip(from_transforms, tmp_path, capsys):
    """realsim's own transforms.json is what nerfstudio reads; feeding it back gives the same cameras."""
    out = tmp_path / "wd"
    rc, err = _run(["-q", "poses", str(from_transforms / "transforms.json"), "-o", str(out), "--no-align"], capsys)
    assert rc == 0, err
    a = {f.name: f.viewmat for f in load_cameras(from_transforms / "cameras.json").frames}
    b = {f.name: f.viewmat for f in load_cameras(out / "cameras.json").frames}
    for n in a:
        np.testing.assert_allclose(b[n], a[n], atol=1e-6)
    # The PLY named by transforms.json was used: no new triangulation.
    assert "triangulated_with_fixed_poses" not in json.loads((out / "scene.json").read_text())["metadata"]
    # nerfstudio's split lists match cameras.json (nerfstudio ignores a per-frame "split"; it evaluates on "val" while
    # training) and colmap_im_id is the image id in sparse/0, not the camera id
    ns = json.loads((out / "transforms.json").read_text())
    cams = load_cameras(out / "cameras.json")
    test = [f"images/{f.name}" for f in cams.frames if f.split == "test"]
    assert test and ns["test_filenames"] == ns["val_filenames"] == test
    assert ns["train_filenames"] == [f"images/{f.name}" for f in cams.frames if f.split == "train"]
    assert sorted(ns["train_filenames"] + test) == sorted(fr["file_path"] for fr in ns["frames"])
    ids = {im.name: im.image_id for im in read_model(out / "sparse" / "0").images.values()}
    assert sorted(ids.values()) != [1] * len(ids)
    assert {fr["file_path"]: fr["colmap_im_id"] for fr in ns["frames"]} == {f"images/{n}": i for n, i in ids.items()}


def test_write_transforms_ids_and_split_lists(tmp_path):
    """colmap_im_id is the image id given (not the shared camera id); split lists follow the frames' split."""
    from realsim.assets.cameras import CameraFrame, CameraSet
    from realsim.recon.nerfstudio import read_transforms, write_transforms

    K = np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
    frames = [CameraFrame(f"{i:02d}.png", K, np.eye(4), 64, 48, "test" if i == 1 else "train", camera_id=1) for i in range(3)]
    write_transforms(tmp_path / "transforms.json", CameraSet(frames), image_ids={"00.png": 7, "01.png": 3, "02.png": 12})
    ns = json.loads((tmp_path / "transforms.json").read_text())
    assert [fr["colmap_im_id"] for fr in ns["frames"]] == [7, 3, 12]
    assert ns["train_filenames"] == ["images/00.png", "images/02.png"]
    assert ns["test_filenames"] == ns["val_filenames"] == ["images/01.png"]
    (tmp_path / "images").mkdir()
    for f in frames:
        Image.new("RGB", (64, 48)).save(tmp_path / "images" / f.name)
    assert len(read_transforms(tmp_path / "transforms.json")[0]) == 3  # still reads back as realsim input
    # no held-out views: no lists (nerfstudio would then demand a list for every split it loads)
    write_transforms(tmp_path / "t2.json", CameraSet([CameraFrame("a.png", K, np.eye(4), 64, 48, "train")]))
    assert not {"train_filenames", "val_filenames", "test_filenames"} & set(json.loads((tmp_path / "t2.json").read_text()))


def _write_video(path, frames, fps):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"crf": "12"}
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _blur(img):
    x = img.astype(np.float32)
    for _ in range(4):
        x = (x + np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1)) / 5
    return x.astype(np.uint8)


def test_video_sharpest_frames_and_poses(tmp_path, capsys):
    names, views, K = make_render_set(tmp_path / "frames", n=10)
    frames = []
    for n in names:  # 3 frames per view at 6 fps, two of them blurred: sampling at 2 fps must keep the sharp one
        img = np.asarray(Image.open(tmp_path / "frames" / n))
        frames += [_blur(img), img, _blur(img)]
    video = tmp_path / "walk.mp4"
    _write_video(video, frames, 6)
    staged = extract_video_frames(video, tmp_path / "staged", fps=2.0)
    assert len(staged.names) == len(names) and staged.from_video
    for i, n in enumerate(staged.names):
        got = np.asarray(Image.open(staged.folder / n).convert("L"))
        sharp = np.asarray(Image.open(tmp_path / "frames" / names[i]).convert("L"))
        assert sharpness(got) > 0.6 * sharpness(sharp)
    out = tmp_path / "wd"
    rc, err = _run(["-q", "poses", str(video), "-o", str(out), "--video-fps", "2"], capsys)
    assert rc == 0, err
    cams = load_cameras(out / "cameras.json")
    assert len(cams.frames) >= 9
    meta = json.loads((out / "scene.json").read_text())["metadata"]
    assert meta["from_video"] and meta["matcher"] == "sequential"
    assert json.loads((out / "scene.json").read_text())["world"]["metric"] is False  # no GPS, no --scale: non-metric
    est = {f.name: f.viewmat for f in cams.frames}
    errs, _ = rotation_errors_deg(est, {f"frame_{i:05d}.jpg": v for i, v in enumerate(views)})
    assert errs.max() < 1.0


# ---------------------------------------------------------------- bad input: one line, non-zero exit, nothing half-written


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc, err = _run(["-q", "poses", str(tmp_path / "empty"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "no images found" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "wd").exists()
    _no_partial(tmp_path)


def test_too_few_usable_images(tmp_path, capsys):
    make_render_set(tmp_path / "imgs", n=2)
    (tmp_path / "imgs" / "bad.jpg").write_bytes(b"not a jpeg at all")
    good = (tmp_path / "imgs" / "view_000.png").read_bytes()
    (tmp_path / "imgs" / "cut.png").write_bytes(good[: len(good) // 3])  # truncated PNG
    rc, err = _run(["-q", "poses", str(tmp_path / "imgs"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "only 2 usable image(s)" in err and "2 unreadable" in err
    assert "bad.jpg" in err and "cut.png" in err  # the skipped files are listed in the warning
    assert not (tmp_path / "wd").exists()
    _no_partial(tmp_path)


def test_corrupt_images_skipped_with_warning(tmp_path, capsys):
    make_render_set(tmp_path / "imgs", n=8)
    (tmp_path / "imgs" / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage")
    rc, err = _run(["-q", "poses", str(tmp_path / "imgs"), "-o", str(tmp_path / "wd"), "--holdout-every", "0"], capsys)
    assert rc == 0, err
    assert "warning" in err and "zz_broken.jpg" in err
    assert len(load_cameras(tmp_path / "wd" / "cameras.json").frames) == 8
    assert json.loads((tmp_path / "wd" / "scene.json").read_text())["metadata"]["skipped"] == ["zz_broken.jpg"]


def test_too_few_registered(tmp_path, capsys):
    (tmp_path / "noise").mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):  # unrelated random images: features, but nothing matches
        Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)).save(tmp_path / "noise" / f"{i}.png")
    rc, err = _run(["-q", "poses", str(tmp_path / "noise"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "registered only 0 of 4 images" in err and "try" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "wd").exists()
    _no_partial(tmp_path)


def test_unwritable_output(tmp_path, capsys):
    make_render_set(tmp_path / "imgs", n=3)
    (tmp_path / "file").write_text("x")
    rc, err = _run(["-q", "poses", str(tmp_path / "imgs"), "-o", str(tmp_path / "file" / "wd")], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"cannot create {tmp_path / 'file' / 'wd'}: not writable (part of the path is a file" in err, err


def test_existing_output_not_clobbered(tmp_path, capsys):
    make_render_set(tmp_path / "imgs", n=3)
    (tmp_path / "wd").mkdir()
    (tmp_path / "wd" / "keep.txt").write_text("mine")
    rc, err = _run(["-q", "poses", str(tmp_path / "imgs"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "--overwrite" in err
    assert (tmp_path / "wd" / "keep.txt").read_text() == "mine"


def test_undecodable_video(tmp_path, capsys):
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    rc, err = _run(["-q", "poses", str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "video" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "wd").exists()
    _no_partial(tmp_path)


@pytest.mark.parametrize("args, expect", [
    ([], "required: -o"),
    (["--max-image-size", "0"], "positive"),
    (["--scale", "-2"], "positive"),
    (["--scale", "1", "--camera-height", "1.6"], "either --scale or --camera-height"),
    (["--matcher", "magic"], "invalid choice"),
    (["--matcher", "spatial"], "needs GPS"),
    (["--holdout-every", "-1"], "holdout"),
    (["--partition", "on", "--chunk-size", "3"], "--chunk-size 4 or more"),
])
def test_bad_arguments(tmp_path, capsys, args, expect):
    make_render_set(tmp_path / "imgs", n=3, width=160, height=120)
    argv = ["-q", "poses", str(tmp_path / "imgs")] + ([] if args == [] else ["-o", str(tmp_path / "wd")]) + args
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors exit from inside parse_args
        rc = e.code
    err = capsys.readouterr().err
    assert rc != 0 and expect in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "wd").exists()


def test_missing_input_and_foreign_files(tmp_path, capsys):
    rc, err = _run(["-q", "poses", str(tmp_path / "nope"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "does not exist" in err
    (tmp_path / "notes.txt").write_text("hello")
    rc, err = _run(["-q", "poses", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "unknown type" in err
    (tmp_path / "transforms.json").write_text("{broken")
    rc, err = _run(["-q", "poses", str(tmp_path / "transforms.json"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "not valid JSON" in err
    (tmp_path / "model").mkdir()
    rc, err = _run(["-q", "poses", "--colmap", str(tmp_path / "model"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "not a COLMAP model" in err
    (tmp_path / "model" / "cameras.bin").write_bytes(b"\x01\x02")
    shutil.copytree(tmp_path / "model", tmp_path / "model2")
    rc, err = _run(["-q", "poses", "--colmap", str(tmp_path / "model2"), "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "COLMAP model" in err
    assert not (tmp_path / "wd").exists()
    _no_partial(tmp_path)


def test_colmap_model_with_wrong_images(from_transforms, tmp_path, capsys):
    (tmp_path / "small").mkdir()
    for p in (from_transforms / "images").iterdir():
        with Image.open(p) as im:
            im.resize((im.width // 2, im.height // 2)).save(tmp_path / "small" / p.name)
    rc, err = _run(["-q", "poses", str(tmp_path / "small"), "--colmap", str(from_transforms / "sparse" / "0"),
                    "-o", str(tmp_path / "wd")], capsys)
    assert rc != 0 and "but its camera says" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "wd").exists()
    _no_partial(tmp_path)
