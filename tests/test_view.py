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
