"""A merged --blocks scene is an ordinary bundle (issue 20): load_scene evaluates its stacked decoders per block
(same tensors, same Gaussians, the file written back unchanged), and `render --lod`, `simulate --lod`, `view --lod`
and `export` read it unchanged. Two seeded random block models on the SYNTHETIC street: no training, seconds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from realsim.assets.cameras import CameraSet, load_cameras, save_cameras
from realsim.cli.main import main
from realsim.recon.partition import PartitionConfig, partition_scene, write_points_bin

pytestmark = pytest.mark.usefixtures("fresh_log_handlers")

W, H = 64, 48


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """(merged bundle, the stacked model as merged, the per-block models): 2 blocks along 20 m of street."""
    from realsim.assets.scene import SceneInfo, WorldInfo
    from realsim.recon.bundle import build_model, write_bundle
    from realsim.recon.merge import crop_to_core, merge_models
    from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel
    from realsim.sim.capture import CaptureConfig, build_street, make_capture, sample_surface_points

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("merged")
    cap = make_capture(root / "capture", CaptureConfig(n_images=8, width=W, height=H, focal=400 * W / 480,
                                                       walk_length=20.0, ssaa=1))
    work = root / "work"
    work.mkdir()
    cams = CameraSet(load_cameras(cap / "cameras_gt.json").frames, "../capture/images")
    save_cameras(work / "cameras.json", cams)
    pts = sample_surface_points(build_street(0), 4000, seed=1)
    write_points_bin(work / "sparse" / "0" / "points3D.bin", pts, np.full((len(pts), 3), 128, np.uint8))
    part = partition_scene(load_cameras(work / "cameras.json"), pts, PartitionConfig(blocks=2))
    models, parts = [], []
    for b in part.blocks:
        m = ScaffoldModel.from_points(pts, ScaffoldConfig(voxel_size=0.5), seed=b.id)
        g = torch.Generator().manual_seed(b.id)
        with torch.no_grad():
            for p in m.parameters():
                if p.requires_grad:
                    p.add_(torch.randn(p.shape, generator=g) * 0.3)
        t, _, _ = crop_to_core(m, part, b)
        models.append(build_model("scaffold", m.config.to_dict(), t))
        parts.append(t)
    model = merge_models("scaffold", [m.config.to_dict() for m in models], parts)
    out = root / "scene"
    write_bundle(out, model, SceneInfo(WorldInfo(metric=True), metadata={"synthetic": True}),
                 load_cameras(work / "cameras.json"), work)
    return out, model, models


def test_load_scene_runs_each_block_decoder_and_writes_back_unchanged(merged, tmp_path):
    from realsim.assets.scene import load_tensors
    from realsim.recon.bundle import load_scene, save_model
    from realsim.recon.merge import BlockMLP

    out, model, models = merged
    scene = load_scene(out)
    assert all(isinstance(getattr(scene.model, n), BlockMLP) for n in ("mlp_opacity", "mlp_cov", "mlp_color"))
    assert scene.model.mlp_cov.n_blocks == 2 and not any(m.training for m in scene.model.modules())  # per-block path
    f = scene.cameras.frames[3]
    got = scene.splats(f.viewmat, f.K, W, H)
    ref = model.splats(torch.tensor(f.viewmat, dtype=torch.float32), torch.tensor(f.K, dtype=torch.float32), W, H)
    assert len(got) == len(ref) > 500
    for a in ("means", "scales", "quats", "opacities", "colors"):
        assert torch.allclose(getattr(got, a), getattr(ref, a), atol=1e-5), a
    # written back, the bundle's tensors are bit-identical (the standard stacked shape, not the per-block views)
    save_model(tmp_path / "again.safetensors", scene.model)
    a, _ = load_tensors(tmp_path / "again.safetensors")
    b, _ = load_tensors(out / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # in training mode (fine-tuning) the stacked layers run as they are: the same values, gradients reach them
    x = torch.cat([scene.model.anchor_feat[:50].detach(), torch.randn(50, 3)], 1)
    m = scene.model.mlp_cov
    with torch.no_grad():
        fast = m(x)
    slow = m.train()(x)
    slow.sum().backward()
    m.eval()
    assert torch.allclose(fast, slow, atol=1e-5) and m[0].weight.grad is not None and m[0].weight.grad.abs().sum() > 0


def test_render_simulate_view_export_read_the_merged_scene(merged, tmp_path, capsys, monkeypatch):
    from plyfile import PlyData

    import realsim.recon as recon

    out, _, _ = merged
    lods: list[tuple] = []
    real = recon.with_lod

    def spy(model, cfg=None):
        lod = real(model, cfg)
        lods.append((lod.n_anchors - model.n_anchors, cfg.pixel_error, any(m.training for m in lod.modules()),
                     type(lod.mlp_cov).__name__))
        return lod

    monkeypatch.setattr(recon, "with_lod", spy)
    for lod in ([], ["--lod", "2"]):
        vid = tmp_path / f"vid{len(lod)}"
        assert main(["-q", "render", str(out), "-o", str(vid), "--seconds", "1", "--fps", "3", "--json"] + lod) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["n_frames"] == 3 and len(load_cameras(vid / "cameras.json").frames) == 3
    sim = tmp_path / "sim"
    rc = main(["-q", "simulate", str(out), "-o", str(sim), "--agents", "1", "--seconds", "0.5", "--fps", "4",
               "--motion", "procedural", "--width", "64", "--height", "48", "--ssaa", "1", "--lod", "2", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert json.loads(cap.out)["frames"] == 2 and (sim / "rgb.mp4").stat().st_size > 0
    assert len(lods) == 1 and lods[0][1:] == (2.0, False, "BlockMLP") and lods[0][0] > 0  # coarse levels, per block
    ply = tmp_path / "scene.ply"
    assert main(["-q", "export", str(out), "-o", str(ply), "--views-between", "0", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert len(PlyData.read(str(ply))["vertex"].data) == rep["n_gaussians"] > 500
    assert rep["psnr_vs_model"] > 30.0
    pytest.importorskip("viser")
    from viewer_helpers import free_port

    rc = main(["-q", "view", str(out), "--port", str(free_port()), "--seconds", "0.5", "--no-world", "--lod", "2"])
    assert rc == 0, capsys.readouterr().err
