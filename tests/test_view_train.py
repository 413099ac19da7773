"""`realsim train ... --view`: the viewer's splats and its loss / held-out PSNR panel follow a real (tiny) training run."""
from __future__ import annotations

import json
import math
import re
import socket

import numpy as np
import pytest

from conftest import need_data
from viewer_helpers import free_port

DOWNSCALE = 16  # fern 1008x756 -> 63x47


@pytest.fixture(scope="module")
def fern():
    return need_data("scenes/llff_fern/images_4").parent


def test_viewer_follows_training(fern, tmp_path):
    from realsim.cli.viewer.training import TrainingViewer
    from realsim.recon.dataset import load_camera_source, load_dataset
    from realsim.recon.trainer import preset_config, train

    cfg = preset_config("cpu-fast", "scaffold", iterations=30)
    cfg.downscale, cfg.eval_every, cfg.checkpoint_every, cfg.threads = DOWNSCALE, 10, 0, 2
    cfg.scaffold.voxel_size = 1.2
    cams, root = load_camera_source(fern)
    viewer = TrainingViewer(cams, root, port=free_port(), every_s=0.0, bake_views=2)  # every step: the test sees every change
    viewer.start()
    seen = []  # the GUI panel as the trainer left it, per step

    def on_step(step, model, metrics):
        viewer.on_step(step, model, metrics)
        seen.append((step, viewer.h["stats"].content, len(viewer.h["splats"].centers) if "splats" in viewer.h else 0,
                     metrics["eval_psnr"]))

    try:
        res = train(fern, tmp_path / "scene", cfg, dataset=load_dataset(fern, downscale=DOWNSCALE), on_step=on_step)
        assert len(viewer.server.get_clients()) == 0  # serving, nobody connected: updates must not need a browser
    finally:
        viewer.stop()
    assert [s[0] for s in seen] == list(range(1, 31))
    snaps = viewer.snapshots
    assert len(snaps) == 30 and all(s.splats > 0 for s in snaps)
    # the splats the viewer holds change while training: their number (anchors grow / prune) or their place
    counts = {s.splats for s in snaps}
    moved = np.linalg.norm(snaps[-1].centers_mean - snaps[0].centers_mean)
    assert len(counts) > 1 or moved > 1e-4, (counts, moved)
    # the panel shows the step, the loss and the held-out PSNR once the trainer measured it (every 20 steps)
    for step, text, n, ev in seen:
        assert f"step {step} / 30" in text and re.search(r"loss \d+\.\d{4}", text), text
        if math.isfinite(ev):
            assert f"held-out PSNR {ev:.2f} dB" in text, text
        else:
            assert "held-out PSNR not yet" in text and step < 10
    assert math.isfinite(seen[-1][3]) and seen[-1][3] > 8
    first, last = float(re.search(r"loss (\S+)", seen[0][1]).group(1)), float(re.search(r"loss (\S+)", seen[-1][1]).group(1))
    assert first == pytest.approx(snaps[0].loss, abs=1e-4) and last == pytest.approx(snaps[-1].loss, abs=1e-4)
    assert res.iterations == 30


def test_cli_train_view(fern, tmp_path, capsys):
    from realsim.cli.main import main

    port = free_port()
    rc = main(["-q", "train", str(fern), "-o", str(tmp_path / "scene"), "--preset", "cpu-fast", "--iterations", "12",
               "--downscale", str(DOWNSCALE), "--threads", "2", "--json", "--view", "--port", str(port),
               "--view-every", "0.5", "--view-seconds", "0"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert json.loads(cap.out)["iterations"] == 12  # stdout is the JSON alone (viser's banner goes to stderr)
    assert f"viewer at http://127.0.0.1:{port}" in cap.err
    n = int(re.search(r"viewer showed (\d+) updates", cap.err).group(1))
    assert n >= 2, cap.err  # at least one while training and the final one
    s = socket.socket()
    s.bind(("127.0.0.1", port))  # released
    s.close()
    # the port in use: one line, exit 2, before any training
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        rc = main(["-q", "train", str(fern), "-o", str(tmp_path / "scene2"), "--iterations", "5", "--downscale",
                   str(DOWNSCALE), "--view", "--port", str(s.getsockname()[1])])
    finally:
        s.close()
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and "in use" in err[0], err
    assert not (tmp_path / "scene2").exists()
