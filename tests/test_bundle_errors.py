"""Scene bundles: corrupt, foreign or incomplete bundles give one clear error (library InputError, CLI one line + exit 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from realsim.assets.cameras import CameraFrame, CameraSet, save_cameras
from realsim.assets.errors import InputError
from realsim.assets.scene import SceneInfo, save_scene_info, save_tensors
from realsim.cli.main import main
from realsim.recon.bundle import load_scene, save_model
from realsim.recon.gs3d import GS3DConfig, GS3DModel
from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel


def _bundle(tmp_path, kind="scaffold"):
    """A tiny valid bundle made from random points (no training needed for format tests)."""
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(200, 3)).astype(np.float32) + np.array([0, 0, 5], np.float32)
    rgb = rng.integers(0, 255, size=(200, 3)).astype(np.uint8)
    d = tmp_path / f"b_{kind}"
    d.mkdir()
    model = ScaffoldModel.from_points(xyz, ScaffoldConfig()) if kind == "scaffold" else GS3DModel.from_points(xyz, rgb, GS3DConfig())
    save_model(d / "model.safetensors", model)
    K = np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
    save_cameras(d / "cameras.json", CameraSet([CameraFrame("a.png", K, np.eye(4), 64, 48)]))
    save_scene_info(d / "scene.json", SceneInfo(model_kind=kind, model_config=model.config.to_dict()))
    return d, model


def _cli(args, capsys):
    try:
        rc = main(args)
    except SystemExit as e:  # argparse errors exit from inside parse_args
        rc = e.code
    err = capsys.readouterr().err
    return rc, err


def test_valid_bundle_loads_and_renders(tmp_path):
    d, model = _bundle(tmp_path)
    s = load_scene(d)
    assert s.model.n_anchors == model.n_anchors
    out = s.render(np.eye(4), np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]]), 64, 48, background=(1.0, 1.0, 1.0))
    assert out["rgb"].shape == (48, 64, 3) and float(out["alpha"].max()) > 0.05
    # where nothing is drawn the background shows and depth is 0
    empty = out["alpha"][..., 0] < 1e-4
    if empty.any():
        assert torch.allclose(out["rgb"][empty], torch.ones(3)) and float(out["depth"][empty].abs().max()) == 0.0
    d3, _ = _bundle(tmp_path, "3dgs")
    assert load_scene(d3).kind == "3dgs"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing_model", "wrong_kind", "foreign_tensors",
                                    "workdir_without_model", "bad_json", "future_version", "nan"])
def test_bad_bundles_give_clear_errors(tmp_path, capsys, damage):
    d, model = _bundle(tmp_path)
    mf = d / "model.safetensors"
    expect = {"truncated": "safetensors", "garbage": "safetensors", "missing_model": "not found",
              "wrong_kind": "3dgs", "foreign_tensors": "not a realsim model", "workdir_without_model": "no trained model",
              "bad_json": "not valid JSON", "future_version": "format_version", "nan": "NaN"}[damage]
    if damage == "truncated":
        mf.write_bytes(mf.read_bytes()[:200])
    elif damage == "garbage":
        mf.write_bytes(b"\x00" * 64 + b"not a tensor file")
    elif damage == "missing_model":
        mf.unlink()
    elif damage == "wrong_kind":
        save_scene_info(d / "scene.json", SceneInfo(model_kind="3dgs", model_config={}))
    elif damage == "foreign_tensors":
        save_tensors(mf, {"weight": torch.zeros(3, 3)})  # a safetensors file from somewhere else
    elif damage == "workdir_without_model":
        save_scene_info(d / "scene.json", SceneInfo(model_kind=None))
    elif damage == "bad_json":
        (d / "scene.json").write_text("{ not json")
    elif damage == "future_version":
        data = json.loads((d / "scene.json").read_text())
        data["format_version"] = 99
        (d / "scene.json").write_text(json.dumps(data))
    elif damage == "nan":
        model.anchor_feat.data[0, 0] = float("nan")
        save_model(mf, model)
    with pytest.raises(InputError) as ei:
        load_scene(d)
    assert expect in str(ei.value)
    rc, err = _cli(["eval", str(d)], capsys)
    assert rc == 2
    assert "Traceback" not in err and err.count("\n") == 1 and expect in err, err


def test_shape_mismatch_and_missing_folder(tmp_path, capsys):
    d, model = _bundle(tmp_path)
    t = {k: v for k, v in model.state_dict().items()}
    t["offsets"] = torch.zeros(3, 4, 3)
    save_tensors(d / "model.safetensors", t, {"format": "realsim-model-1", "kind": "scaffold"})
    with pytest.raises(InputError, match="do not match a scaffold model"):
        load_scene(d)
    rc, err = _cli(["eval", str(tmp_path / "nope")], capsys)
    assert rc == 2 and "not found" in err and "Traceback" not in err


def test_train_cli_rejects_bad_input(tmp_path, capsys):
    rc, err = _cli(["train", str(tmp_path / "missing"), "-o", str(tmp_path / "o")], capsys)
    assert rc == 2 and "Traceback" not in err and err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = _cli(["train", str(empty), "-o", str(tmp_path / "o")], capsys)
    assert rc == 2 and "no cameras.json" in err and "Traceback" not in err
    rc, err = _cli(["train", str(empty), "-o", str(tmp_path / "o"), "--resume"], capsys)
    assert rc == 2 and "nothing to resume" in err
    rc, err = _cli(["train", str(empty), "-o", str(tmp_path / "o"), "--iterations", "-3"], capsys)
    assert rc == 2 and "positive" in err
    assert not (tmp_path / "o").exists()
