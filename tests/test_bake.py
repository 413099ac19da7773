"""Scaffold -> 3DGS baking in bounded memory: chunked equals unchunked, the largest tensor alive during a chunked bake
scales with the chunk (not the model), and only training + in-between views are used (test cameras never)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from realsim.assets import CameraFrame, CameraSet
from realsim.recon.bake import ExportConfig, bake_scaffold, decode_anchor_range, sample_views
from realsim.recon.export import model_to_cloud
from realsim.render.paths import look_at


def _cams(n=8, W=64, H=48, radius=4.0, test_every=4):
    frames = []
    for i in range(n):
        a = 2 * np.pi * i / n
        p = np.array([radius * np.cos(a), radius * np.sin(a), 1.0 + 0.8 * np.sin(3 * a)])
        K = np.array([[50.0, 0, W / 2], [0, 50.0, H / 2], [0, 0, 1]])
        frames.append(CameraFrame(f"{i:02d}.png", K, look_at(p, np.zeros(3)), W, H,
                                  "test" if i % test_every == 0 else "train"))
    return CameraSet(frames)


def _model(n_points=400, voxel=0.25, k=4, cls=None):
    from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(n_points, 3)) * np.array([1.0, 1.0, 0.4])
    m = (cls or ScaffoldModel).from_points(pts, ScaffoldConfig(voxel_size=voxel, n_offsets=k), seed=0)
    torch.manual_seed(0)
    with torch.no_grad():  # untrained but view-dependent: random features and offsets
        m.offsets.normal_(0, 1.0)
        m.anchor_feat.normal_(0, 1.0)
        m.scaling.add_(math.log(0.5))
    return m.eval()


class _LargestTensor(TorchDispatchMode):
    """Bytes of the largest tensor any torch op produces (in-place accumulators included) while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


def _own_prefilter_model():
    """A Scaffold subclass with its own prefilter (as LOD models have): baked through full decodes, filtered."""
    from realsim.recon.scaffold import ScaffoldModel

    class OwnPrefilter(ScaffoldModel):
        def visible_anchors(self, viewmat, K, width, height, backend="auto"):
            return super().visible_anchors(viewmat, K, width, height, backend)

    return _model(cls=OwnPrefilter)


@pytest.mark.parametrize("kind", ["scaffold", "own_prefilter"])
def test_decode_anchor_range_matches_full_decode(kind):
    model = _model() if kind == "scaffold" else _own_prefilter_model()
    f = _cams().frames[1]
    V, K = torch.as_tensor(f.viewmat, dtype=torch.float32), torch.as_tensor(f.K, dtype=torch.float32)
    with torch.no_grad():
        full, info = model.decode(V, K, f.width, f.height)
        lo, hi = 7, 40
        part, pinfo = decode_anchor_range(model, lo, hi, V, K, f.width, f.height)
    k = model.config.n_offsets
    sel = (info["slot"] >= lo * k) & (info["slot"] < hi * k)
    assert 0 < int(sel.sum()) == len(part) < len(full)
    assert torch.equal(pinfo["slot"], info["slot"][sel])
    torch.testing.assert_close(part.means, full.means[sel])
    torch.testing.assert_close(part.colors, full.colors[sel])
    torch.testing.assert_close(part.opacities, full.opacities[sel])


@pytest.mark.parametrize("degree", [1, 3])
def test_chunked_bake_equals_unchunked(degree):
    model = _model()
    views = sample_views(_cams(), views_between=1)
    whole, info_w = bake_scaffold(model, views, ExportConfig(sh_degree=degree, chunk=0))
    chunked, info_c = bake_scaffold(model, views, ExportConfig(sh_degree=degree, chunk=16))
    assert info_w["chunks"] == 1 and info_c["chunks"] == math.ceil(model.n_anchors / 16) > 10
    assert len(whole) == len(chunked) == info_w["exported"] > 200
    assert info_c["decoded_slots"] == info_w["decoded_slots"]
    for name in ("means", "quats", "scales", "opacities", "sh"):
        a, b = getattr(chunked, name), getattr(whole, name)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 if name == "sh" else 1e-6, err_msg=name)
    assert info_c["peak_accumulator_bytes"] * 10 < info_w["peak_accumulator_bytes"]


def test_chunked_bake_peak_tensor_is_bounded_by_the_chunk():
    """Every tensor alive in a bake of 6-anchor chunks is far smaller than the unchunked normal equations."""
    model = _model(n_points=300, voxel=0.3)
    views = sample_views(_cams(n=6), views_between=0)
    k, Kb = model.config.n_offsets, 16
    normal_eq = model.n_anchors * k * Kb * Kb * 8  # A [slots,16,16] float64 of an unchunked degree-3 bake
    with _LargestTensor() as whole:
        bake_scaffold(model, views, ExportConfig(sh_degree=3, chunk=0))
    with _LargestTensor() as chunked:
        cloud, _ = bake_scaffold(model, views, ExportConfig(sh_degree=3, chunk=6))
    assert whole.largest >= normal_eq  # the probe sees the accumulator
    out_bytes = cloud.sh.size * 4  # the output [n,16,3] float32 (inherent)
    assert chunked.largest <= max(6 * k * Kb * Kb * 8, out_bytes) < normal_eq / 8


def test_bake_uses_training_and_in_between_views_only():
    """Moving the test cameras changes nothing (they are not sampled); sampling them would change the bake."""
    model = _model()
    cams = _cams()
    views = sample_views(cams, views_between=2)
    names = {f.name for f in views}
    train = {f.name for f in cams.split("train")}
    assert names & {f.name for f in cams.split("test")} == set() and train <= names
    assert len(views) == len(train) + (len(train) - 1) * 3 + 1  # the spline passes through the training cameras
    moved = _cams()
    for f in moved.split("test"):  # test cameras somewhere else entirely: close up, looking from below
        f.viewmat = look_at(np.array([0.3, -0.2, -1.5]), np.zeros(3))
    cfg = ExportConfig(sh_degree=2, views_between=2, chunk=64)
    a, _ = model_to_cloud(model, cams, cfg)
    b, _ = model_to_cloud(model, moved, cfg)
    np.testing.assert_array_equal(a.sh, b.sh)
    np.testing.assert_array_equal(a.opacities, b.opacities)
    all_train = CameraSet([CameraFrame(f.name, f.K, f.viewmat, f.width, f.height, "train") for f in moved.frames])
    c, _ = model_to_cloud(model, all_train, cfg)
    assert len(c) != len(a) or np.abs(c.sh - a.sh).max() > 1e-2  # the test cameras would have changed the result


def test_export_cli_chunk_flag(tmp_path, capsys):
    """`realsim export --chunk N` bakes N anchors at a time: the PLY read back by plyfile equals the unchunked one, the
    report counts ceil(anchors / N) chunks with a proportionally smaller accumulator; a negative chunk is one line, exit 2."""
    import json

    from plyfile import PlyData

    from realsim.assets import SceneInfo, WorldInfo, save_cameras, save_scene_info
    from realsim.cli.main import main
    from realsim.recon.bundle import save_model

    model = _model(n_points=300, voxel=0.3)
    save_cameras(tmp_path / "cameras.json", _cams(n=6))
    save_model(tmp_path / "model.safetensors", model)
    save_scene_info(tmp_path / "scene.json", SceneInfo(WorldInfo(metric=True), "scaffold", model.config.to_dict(), {}))
    reps, verts = {}, {}
    for chunk in (0, 5):
        out = tmp_path / f"c{chunk}.ply"
        argv = ["-q", "export", str(tmp_path), "-o", str(out), "--sh-degree", "2", "--views-between", "1", "--no-eval",
                "--json", "--chunk", str(chunk)]
        assert main(argv) == 0
        reps[chunk] = json.loads(capsys.readouterr().out)
        verts[chunk] = PlyData.read(str(out))["vertex"].data
    M = model.n_anchors
    assert reps[0]["chunks"] == 1 and reps[5]["chunks"] == math.ceil(M / 5) > 10 and reps[5]["chunk_anchors"] == 5
    assert reps[5]["peak_accumulator_bytes"] * 10 < reps[0]["peak_accumulator_bytes"]
    assert len(verts[5]) == len(verts[0]) == reps[0]["n_gaussians"] > 100
    for name in verts[0].dtype.names:
        np.testing.assert_allclose(verts[5][name], verts[0][name], rtol=1e-4, atol=1e-4, err_msg=name)
    try:
        rc = main(["-q", "export", str(tmp_path), "-o", str(tmp_path / "bad.ply"), "--chunk", "-1"])
    except SystemExit as e:
        rc = int(e.code)
    err = capsys.readouterr().err
    assert rc == 2 and "--chunk must be >= 0" in err and "Traceback" not in err and not (tmp_path / "bad.ply").exists()
