"""`realsim poses --mapper global` (pycolmap's GLOMAP) on the SYNTHETIC street: every photo registered and the cameras
match the exact ones after a similarity alignment; an unknown mapper is one clear error."""
from __future__ import annotations

import json

import pytest

from realsim.assets.cameras import load_cameras
from realsim.assets.errors import InputError
from realsim.cli.main import main
from realsim.sim.capture import CaptureConfig, make_capture, pose_error_vs_ground_truth


def test_global_mapper_recovers_the_exact_cameras(tmp_path, capsys):
    pytest.importorskip("pycolmap")
    cap = make_capture(tmp_path / "cap", CaptureConfig(n_images=12, width=240, height=180, focal=200.0, walk_length=10.0,
                                                       ssaa=1))
    wd = tmp_path / "wd"
    rc = main(["-q", "poses", str(cap / "images"), "-o", str(wd), "--mapper", "global", "--threads", "1",
               "--max-image-size", "240", "--holdout-every", "0", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["registered"] == summary["images"] == 12
    meta = json.loads((wd / "scene.json").read_text())["metadata"]
    assert meta["mapper"] == "global"
    err = pose_error_vs_ground_truth(load_cameras(wd / "cameras.json"), load_cameras(cap / "cameras_gt.json"))
    assert err["matched"] == 12 and err["centre_rmse_m"] < 0.05 and err["rotation_max_deg"] < 1.0, err


def test_unknown_mapper_is_an_input_error(tmp_path):
    from realsim.recon.inputs import StagedImages
    from realsim.recon.sfm import SfmOptions, run_sfm

    with pytest.raises(InputError, match="unknown mapper 'hierarchical' \\(choose from incremental, global\\)"):
        run_sfm(StagedImages(tmp_path, []), tmp_path / "w", SfmOptions(mapper="hierarchical"))
