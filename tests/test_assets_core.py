"""Core file formats: cameras.json round trip and errors, atomic writes, frame conversions."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from realsim.assets import (CameraFrame, CameraSet, InputError, RealsimError, atomic_dir, frames, holdout_split,
                            load_cameras, save_cameras, SceneInfo, WorldInfo, save_scene_info, load_scene_info,
                            save_tensors, load_tensors)
from realsim.assets.config import ConfigDict


def test_cameras_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    R = frames.quat_to_rotmat(rng.normal(size=4))
    V = np.eye(4); V[:3, :3] = R; V[:3, 3] = rng.normal(size=3)
    K = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])
    cams = CameraSet([CameraFrame("a.jpg", K, V, 640, 480, "test", 3)])
    save_cameras(tmp_path / "cameras.json", cams)
    back = load_cameras(tmp_path / "cameras.json")
    assert back.frames[0].name == "a.jpg" and back.frames[0].split == "test" and back.frames[0].camera_id == 3
    np.testing.assert_allclose(back.frames[0].viewmat, V)
    np.testing.assert_allclose(back.frames[0].K, K)


def test_cameras_errors(tmp_path):
    p = tmp_path / "cameras.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_cameras(p)
    p.write_text(json.dumps({"format_version": 99, "frames": []}))
    with pytest.raises(InputError, match="format_version"):
        load_cameras(p)
    with pytest.raises(InputError, match="not found"):
        load_cameras(tmp_path / "missing.json")


def test_holdout_every_8th():
    names = [f"{i:03d}.png" for i in range(20)][::-1]
    split = holdout_split(names)
    test = sorted(n for n, s in zip(names, split) if s == "test")
    assert test == ["000.png", "008.png", "016.png"]


def test_frames_conversions_roundtrip():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(5, 4))
    R = frames.quat_to_rotmat(q)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    q2 = frames.rotmat_to_quat(R)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    qn[qn[:, 0] < 0] *= -1
    np.testing.assert_allclose(q2, qn, atol=1e-10)
    V = np.eye(4); V[:3, :3] = R[0]; V[:3, 3] = [1, 2, 3]
    c2w = frames.viewmat_to_c2w_opengl(V)
    np.testing.assert_allclose(frames.c2w_opengl_to_viewmat(c2w), V, atol=1e-12)
    # OpenGL camera looks down -z: the OpenCV forward axis (+z in camera) equals -z of the GL camera in world.
    np.testing.assert_allclose(c2w[:3, 2], -np.linalg.inv(V)[:3, 2], atol=1e-12)
    np.testing.assert_allclose(c2w[:3, 3], frames.camera_center(V), atol=1e-12)


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ZeroDivisionError):
        with atomic_dir(out) as tmp:
            (tmp / "half.txt").write_text("x")
            1 / 0
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(out) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (out / "done.txt").read_text() == "x"
    with pytest.raises(RealsimError, match="not empty"):
        with atomic_dir(out):
            pass


def test_scene_info_and_tensors(tmp_path):
    import torch
    info = SceneInfo(WorldInfo(metric=True, scale=2.5), "scaffold", {"k": 10}, {"source": "test"})
    save_scene_info(tmp_path / "scene.json", info)
    back = load_scene_info(tmp_path)
    assert back.world.metric and back.world.scale == 2.5 and back.model_kind == "scaffold" and back.model_config == {"k": 10}
    t = {"a": torch.arange(6.0).reshape(2, 3)}
    save_tensors(tmp_path / "m.safetensors", t, {"kind": "x"})
    got, meta = load_tensors(tmp_path / "m.safetensors")
    assert torch.equal(got["a"], t["a"]) and meta == {"kind": "x"}
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(InputError, match="safetensors"):
        load_tensors(tmp_path / "bad.safetensors")
    (tmp_path / "x" ).mkdir()
    (tmp_path / "x" / "scene.json").write_text(json.dumps({"format_version": 7}))
    with pytest.raises(InputError, match="format_version"):
        load_scene_info(tmp_path / "x")


def test_cli_bad_arguments(capsys):
    from realsim.cli.main import main
    with pytest.raises(SystemExit) as e:
        main(["no-such-command"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_atomic_outputs_get_normal_modes(tmp_path):
    import os
    from realsim.assets import write_text_atomic
    mask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_read_json_one_line_errors(tmp_path):
    from realsim.assets.config import read_json
    with pytest.raises(InputError, match="camera file .* not found"):
        read_json(tmp_path / "none.json", "camera file")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(InputError, match="not valid JSON"):
        read_json(tmp_path / "bad.json", "camera file")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"is not a realsim scene \(no 'format_version'\)"):
        read_json(tmp_path / "list.json", "realsim scene", keys=("format_version",))
    (tmp_path / "ok.json").write_text('{"format_version": 1}')
    assert read_json(tmp_path / "ok.json", "realsim scene", keys=("format_version",)) == {"format_version": 1}


@dataclass
class _Inner(ConfigDict):
    k: int = 3


@dataclass
class _Outer(ConfigDict):
    bg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    maybe: tuple[int, int] | None = None
    sched: list = field(default_factory=list)
    inner: _Inner = field(default_factory=_Inner)


def test_config_dict_round_trip_nested_and_tuples():
    c = _Outer(bg=(1.0, 0.5, 0.0), maybe=(2, 3), sched=[[0.2, 4]], inner=_Inner(7))
    d = json.loads(json.dumps(c.to_dict()))
    assert d == {"bg": [1.0, 0.5, 0.0], "maybe": [2, 3], "sched": [[0.2, 4]], "inner": {"k": 7}}
    assert _Outer.from_dict({**d, "unknown_key": 1}) == c
    assert _Outer.from_dict({}) == _Outer()
