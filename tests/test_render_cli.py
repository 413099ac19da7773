"""`realsim render` and `realsim export` end to end on a small scene bundle built directly from Gaussians."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from realsim.assets import load_cameras
from realsim.cli.main import main
from realsim.render.video import load_depth_png16, read_video

W, H = 64, 48


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    """A 3DGS bundle: a Gaussian ground plane with coloured blobs on it, 8 cameras around it (no training)."""
    from viewer_helpers import make_scene

    return make_scene(tmp_path_factory.mktemp("scene"), size=(W, H), focal=70.0, ext=".jpg", sh_noise=0.05, photos=False)


def _run(argv) -> int:
    """main() as the shell sees it: argparse errors exit via SystemExit."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code)


def _no_traceback(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_render_interp_bundle(scene_dir, tmp_path, capsys):
    out = tmp_path / "vid"
    rc = main(["-q", "render", str(scene_dir), "-o", str(out), "--seconds", "1", "--fps", "8", "--json"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_frames"] == 8 and summary["width"] == W and summary["height"] == H
    for s in ("rgb", "depth", "normal", "alpha"):
        fr, fps = read_video(out / f"{s}.mp4")
        assert fr.shape == (8, H, W, 3) and fps == pytest.approx(8.0)
    assert len(list((out / "depth").glob("*.png"))) == 8
    meta = json.loads((out / "cameras.json").read_text())
    assert meta["depth_units"] == "metres"
    cams = load_cameras(out / "cameras.json")
    # the depth stream equals the rasterizer's expected depth within the PNG quantisation
    from realsim.recon.bundle import load_scene
    from realsim.render import rasterization

    scene = load_scene(scene_dir)
    s = scene.model.splats(torch.eye(4), torch.eye(3), W, H).detach()
    for t in (0, 5):
        V = torch.as_tensor(cams.frames[t].viewmat, dtype=torch.float32)[None]
        K = torch.as_tensor(cams.frames[t].K, dtype=torch.float32)[None]
        d, a, _ = rasterization(s.means, s.quats, s.scales, s.opacities, s.sh, V, K, W, H, sh_degree=s.sh_degree,
                                render_mode="ED", backend="torch")
        ref = torch.where(a[0] > 1e-4, d[0], torch.zeros_like(d[0])).numpy()
        got = load_depth_png16(out / "depth" / f"{t:06d}.png", meta["depth_scale"])
        covered = a[0].numpy() > 0.5
        assert covered.mean() > 0.3
        assert np.abs(got - ref).max() <= meta["depth_scale"] / 2 + 1e-4 * ref.max()
        # the colour video shows the same image (H.264 is lossy: PSNR, not equality)
        rgb_ref = scene.render(cams.frames[t].viewmat, cams.frames[t].K, W, H, backend="torch")["rgb"].numpy()
        rgb_vid = read_video(out / "rgb.mp4")[0][t].astype(np.float32) / 255
        assert -10 * math.log10(float(((rgb_ref - rgb_vid) ** 2).mean())) > 28.0


def test_render_orbit_then_replay_path_file(scene_dir, tmp_path, capsys):
    out = tmp_path / "orbit"
    assert main(["-q", "render", str(scene_dir), "-o", str(out), "--path", "orbit", "--seconds", "0.5", "--fps", "8",
                 "--streams", "rgb,alpha", "--width", "32"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4", "camera_path.json", "cameras.json", "rgb.mp4"]
    out2 = tmp_path / "replay"
    assert main(["-q", "render", str(scene_dir), "-o", str(out2), "--path", str(out / "camera_path.json"),
                 "--streams", "rgb"]) == 0
    a, b = load_cameras(out / "cameras.json"), load_cameras(out2 / "cameras.json")
    assert len(a.frames) == len(b.frames) == 4 and (b.frames[0].width, b.frames[0].height) == (32, 24)
    for fa, fb in zip(a.frames, b.frames):
        np.testing.assert_allclose(fb.viewmat, fa.viewmat, atol=1e-9)
        np.testing.assert_allclose(fb.K, fa.K, atol=1e-9)


def test_export_cli_ply(scene_dir, tmp_path, capsys):
    from plyfile import PlyData

    out = tmp_path / "scene.ply"
    assert main(["-q", "export", str(scene_dir), "-o", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    v = PlyData.read(str(out))["vertex"]
    assert len(v.data) == rep["n_gaussians"] == 376
    assert rep["sh_degree"] == 3 and "f_rest_44" in v.data.dtype.names  # degree-1 model padded to degree 3
    assert rep["psnr_vs_model"] > 60.0
    assert main(["-q", "export", str(scene_dir), "-o", str(tmp_path / "s.splat")]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert (tmp_path / "s.splat").stat().st_size == 32 * 376
    assert main(["-q", "export", str(scene_dir), "-o", str(tmp_path / "s.usdz"), "--sh-degree", "1", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    from pxr import Usd, UsdGeom
    stage = Usd.Stage.Open(str(tmp_path / "s.usdz"))
    assert UsdGeom.GetStageUpAxis(stage) == "Z" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert rep["n_gaussians"] == 376 and rep["psnr_vs_model"] > 60.0  # read back from the USDZ and re-rendered


@pytest.mark.parametrize("argv, needle", [
    (["render", "{missing}", "-o", "{out}"], "not found"),
    (["render", "{scene}", "-o", "{out}", "--width", "63"], "even"),
    (["render", "{scene}", "-o", "{out}", "--streams", "rgb,flow"], "unknown stream"),
    (["render", "{scene}", "-o", "{out}", "--path", "{badjson}"], "not valid JSON"),
    (["render", "{scene}", "-o", "{out}", "--path", "zigzag"], "--path"),
    (["render", "{scene}", "-o", "{out}", "--seconds", "-1"], "positive"),
    (["render", "{junk}", "-o", "{out}"], "scene.json"),
    (["export", "{scene}", "-o", "{out}.obj"], "format"),
    (["export", "{scene}", "-o", "{out}.ply", "--sh-degree", "5"], "sh-degree"),
    (["export", "{missing}", "-o", "{out}.ply"], "not found"),
])
def test_bad_input_is_one_line(scene_dir, tmp_path, capsys, argv, needle):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "junk").mkdir()
    subst = {"{missing}": str(tmp_path / "nope"), "{out}": str(tmp_path / "out"), "{scene}": str(scene_dir),
             "{badjson}": str(tmp_path / "bad.json"), "{junk}": str(tmp_path / "junk")}
    args = []
    for a in argv:
        for k, v in subst.items():
            a = a.replace(k, v)
        args.append(a)
    rc = _run(["-q"] + args)
    err = _no_traceback(capsys)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_existing_output_and_interrupt(scene_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "vid"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["-q", "render", str(scene_dir), "-o", str(out), "--seconds", "0.25", "--fps", "8"]) == 2
    assert "not empty" in _no_traceback(capsys) and (out / "mine.txt").exists()
    from realsim.recon import bundle as B

    calls = []
    real = B.Scene.render

    def flaky(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(B.Scene, "render", flaky)
    out2 = tmp_path / "vid2"
    assert main(["-q", "render", str(scene_dir), "-o", str(out2), "--seconds", "1", "--fps", "8"]) == 130
    _no_traceback(capsys)
    assert not out2.exists() and [p.name for p in tmp_path.iterdir()] == ["vid"]
