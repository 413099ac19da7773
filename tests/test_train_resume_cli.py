"""`realsim train` never drops an interrupted run's checkpoint silently, and --resume checks the options (issue 12)."""
from __future__ import annotations

import errno
import json
import os

import pytest

from conftest import need_data

from realsim.cli.cmd_train import config_from_args
from realsim.cli.main import build_parser, main
from realsim.recon.trainer import train

DOWNSCALE = "16"  # fern 1008x756 -> 63x47: a real scene, seconds per run


pytestmark = pytest.mark.usefixtures("fresh_log_handlers")


@pytest.fixture(scope="module")
def fern():
    return need_data("scenes/llff_fern/images_4").parent


def _argv(root, out, *extra):
    return ["-q", "train", str(root), "-o", str(out), "--preset", "cpu-fast", "--downscale", DOWNSCALE, "--json",
            "--threads", "2", *extra]


def _run(argv, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    return rc, cap.out, cap.err


@pytest.fixture
def interrupted(fern, tmp_path):
    """A run of `realsim train ... --iterations 20` stopped at iteration 6, as Ctrl-C would leave it."""
    out = tmp_path / "scene"
    args = build_parser().parse_args(_argv(fern, out, "--iterations", "20")[1:])
    res = train(fern, out, config_from_args(args), stop_after=6)
    ck = tmp_path / ".scene.train" / "checkpoint.safetensors"
    assert res.metrics.get("stopped") and ck.is_file() and not out.exists()
    return out, ck


def test_fresh_run_over_a_checkpoint_is_refused(fern, interrupted, capsys):
    out, ck = interrupted
    before = ck.stat().st_mtime_ns
    rc, _, err = _run(_argv(fern, out, "--iterations", "20"), capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert f"an interrupted run's checkpoint is at {ck} (iteration 6): pass --resume to continue it or --overwrite" in err
    assert ck.stat().st_mtime_ns == before and not out.exists()
    # reconstruct refuses it the same way, before spending time on poses
    rc, _, err = _run(["-q", "reconstruct", str(fern / "images_4"), "-o", str(out)], capsys)
    assert rc == 2 and "interrupted run's checkpoint" in err and not (out.parent / "scene.poses").exists()
    # --overwrite starts over: the checkpoint goes, a fresh run of 8 iterations writes the bundle
    rc, stdout, err = _run(_argv(fern, out, "--iterations", "8", "--overwrite"), capsys)
    assert rc == 0 and json.loads(stdout.strip().splitlines()[-1])["iterations"] == 8, err
    assert not ck.exists()


def test_resume_with_other_options_refused_then_overridden(fern, interrupted, capsys):
    out, ck = interrupted
    rc, _, err = _run(_argv(fern, out, "--iterations", "12", "--resume"), capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert "--resume: options differ from the checkpoint" in err and "(iteration 6)" in err
    assert "iterations 20 -> 12" in err and "--override-config" in err
    # the model and the split are the checkpoint's for good: refused even with --override-config
    rc, _, err = _run(_argv(fern, out, "--iterations", "20", "--resume", "--model", "3dgs", "--override-config"), capsys)
    assert rc == 2 and "model scaffold -> 3dgs" in err and "--overwrite" in err
    assert ck.is_file()
    rc, stdout, err = _run(_argv(fern, out, "--iterations", "12", "--resume", "--override-config"), capsys)
    assert rc == 0, err
    warn = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warn) == 1 and "--override-config: resuming from iteration 6 with iterations 20 -> 12" in warn[0], err
    assert json.loads(stdout.strip().splitlines()[-1])["iterations"] == 12
    saved = json.loads((out / "scene.json").read_text())["metadata"]["train"]["config"]
    assert saved["iterations"] == 12 and not ck.exists()


def test_resume_with_same_options(fern, interrupted, capsys, monkeypatch):
    out, ck = interrupted
    rc, stdout, err = _run(_argv(fern, out, "--iterations", "20", "--resume", "--threads", "1"), capsys)  # threads: not compared
    assert rc == 0 and "warning" not in err, err
    assert json.loads(stdout.strip().splitlines()[-1])["iterations"] == 20 and not ck.exists()
    # disk full while training (the metrics plot here): one line naming the file, exit 2, no bundle
    from realsim.recon import trainer

    def full(metrics_path, png):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(png))

    monkeypatch.setattr(trainer, "plot_curves", full)
    out2 = out.parent / "scene2"
    rc, _, err = _run(_argv(fern, out2, "--iterations", "4"), capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert f"cannot write {out2}: disk full" in err and not out2.exists()
