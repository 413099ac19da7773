"""Rendering at another size than the trained one (recon/antialias.py): the settings law, a supersampled reference for
the coarser case, the exact 2-D footprint for the finer case, and Scene.render choosing them from scene.json."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.scene import SceneInfo
from realsim.recon.antialias import EPS2D, raster_settings, training_eps2d, training_focal
from realsim.recon.bundle import Scene
from realsim.recon.metrics import psnr
from realsim.recon.splats import Splats, rasterize_splats

V = torch.eye(4)


def _K(f: float, w: int, h: int) -> torch.Tensor:
    return torch.tensor([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])


def _cloud(n: int = 400, seed: int = 0) -> Splats:
    """Small bright Gaussians on a plane 4 m ahead: most are sub-pixel at the coarse size below."""
    g = torch.Generator().manual_seed(seed)
    xy = (torch.rand(n, 2, generator=g) - 0.5) * torch.tensor([3.0, 2.2])
    means = torch.cat([xy, torch.full((n, 1), 4.0)], 1)
    scales = torch.full((n, 3), 0.004) * (0.5 + torch.rand(n, 1, generator=g))
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    return Splats(means, quats, scales, torch.full((n,), 0.9), colors=torch.rand(n, 3, generator=g))


def _render(sp: Splats, f: float, w: int, h: int, **kw) -> torch.Tensor:
    with torch.no_grad():
        return rasterize_splats(sp, V, _K(f, w, h), w, h, backend="torch", **kw)[0][..., :3]


def test_settings_follow_the_ratio_of_focals():
    assert raster_settings(100.0, 100.0) == {} and raster_settings(100.0, 101.0) == {} and raster_settings(None, 50.0) == {}
    assert raster_settings(100.0, 50.0) == {"rasterize_mode": "antialiased"}
    assert raster_settings(100.0, 300.0)["eps2d"] == EPS2D * 9.0
    meta = {"train": {"downscale": 4.0}}
    assert training_focal(meta, [800.0, 820.0, 840.0]) == 205.0
    assert training_focal({}, [800.0]) is None and training_focal({"train": {}}, [800.0]) is None


def test_a_model_trained_with_another_widening_is_drawn_with_it():
    assert raster_settings(100.0, 100.0, eps2d=0.1) == {"eps2d": 0.1} and raster_settings(None, 50.0, eps2d=0.1) == {"eps2d": 0.1}
    assert raster_settings(100.0, 50.0, eps2d=0.1) == {"rasterize_mode": "antialiased", "eps2d": 0.1}
    assert raster_settings(100.0, 200.0, eps2d=0.1)["eps2d"] == 0.1 * 4.0
    assert training_eps2d({"train": {"config": {"eps2d": 0.1}}}) == 0.1
    assert training_eps2d({"train": {"config": {}}}) == EPS2D and training_eps2d({}) == EPS2D  # bundles before the field


def test_antialiased_mode_matches_a_supersampled_render_when_coarser():
    """At half the trained focal, the antialiased kernel is far closer to a 4x supersampled, box-filtered render than the
    classic one (which draws each sub-pixel Gaussian one pixel wide at full opacity)."""
    sp = _cloud()
    w, h, f, s = 48, 36, 40.0, 4
    ref = torch.nn.functional.avg_pool2d(_render(sp, f * s, w * s, h * s).permute(2, 0, 1)[None], s)[0].permute(1, 2, 0)
    classic = _render(sp, f, w, h)
    aa = _render(sp, f, w, h, **raster_settings(2 * f, f))
    p_aa, p_cl = psnr(aa, ref), psnr(classic, ref)
    assert p_aa > p_cl + 4.0, (p_aa, p_cl)
    assert abs(float(aa.mean() - ref.mean())) < 0.25 * abs(float(classic.mean() - ref.mean()))  # energy kept


def test_finer_output_keeps_the_trained_footprint():
    """One Gaussian: its rendered alpha's second moment at 3x the trained focal is exactly 9x the trained one
    (var = (f sigma / z)^2 + eps2d per axis), which the fixed eps2d of the classic kernel misses."""
    sp = Splats(torch.tensor([[0.0, 0.0, 4.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.04),
                torch.tensor([0.9]), colors=torch.ones(1, 3))

    def var_px(f: float, w: int, **kw) -> float:
        with torch.no_grad():
            _, a, _ = rasterize_splats(sp, V, _K(f, w, w), w, w, backend="torch", **kw)
        a = a[..., 0].double()
        x = torch.arange(w, dtype=torch.float64) + 0.5 - w / 2
        return float((a.sum(0) * x * x).sum() / a.sum())

    f = 60.0
    v1 = var_px(f, 41)
    assert abs(v1 - ((f * 0.04 / 4.0) ** 2 + EPS2D)) < 0.05 * v1  # the kernel's 3-sigma cut trims ~3%
    v3 = var_px(3 * f, 123, **raster_settings(f, 3 * f))
    assert abs(v3 / v1 - 9.0) < 0.02 * 9.0, v3 / v1
    assert var_px(3 * f, 123) / v1 < 8.0  # the classic kernel would draw it narrower than trained


class _Fixed(nn.Module):
    """A model whose decode returns the same splats for any camera (what Scene.render passes on is under test)."""

    kind = "3dgs"

    def __init__(self, sp: Splats) -> None:
        super().__init__()
        self.sp = sp

    def decode(self, viewmat, K, width, height, cam_index=None, backend="auto"):
        return self.sp, {}


def test_scene_render_antialiases_away_from_the_trained_focal():
    sp = _cloud(seed=1)
    frame = CameraFrame("a.jpg", _K(320.0, 384, 288).numpy().astype(np.float64), np.eye(4), 384, 288)
    info = SceneInfo(model_kind="3dgs", metadata={"train": {"downscale": 4.0}})  # trained at focal 80
    scene = Scene(info, CameraSet([frame]), Path("."), _Fixed(sp))
    assert scene.train_focal() == 80.0
    half = scene.render(V, _K(40.0, 48, 36), 48, 36, backend="torch")["rgb"]
    assert torch.allclose(half, _render(sp, 40.0, 48, 36, rasterize_mode="antialiased").clamp(0, 1), atol=1e-5)
    assert not torch.allclose(half, _render(sp, 40.0, 48, 36).clamp(0, 1), atol=1e-3)
    same = scene.render(V, _K(80.0, 96, 72), 96, 72, backend="torch")["rgb"]
    assert torch.allclose(same, _render(sp, 80.0, 96, 72).clamp(0, 1), atol=1e-5)


def test_scene_render_uses_the_trained_widening():
    sp = _cloud(seed=2)
    frame = CameraFrame("a.jpg", _K(320.0, 384, 288).numpy().astype(np.float64), np.eye(4), 384, 288)
    info = SceneInfo(model_kind="3dgs", metadata={"train": {"downscale": 4.0, "config": {"eps2d": 0.1}}})
    scene = Scene(info, CameraSet([frame]), Path("."), _Fixed(sp))
    same = scene.render(V, _K(80.0, 96, 72), 96, 72, backend="torch")["rgb"]
    assert torch.allclose(same, _render(sp, 80.0, 96, 72, eps2d=0.1).clamp(0, 1), atol=1e-5)
    assert not torch.allclose(same, _render(sp, 80.0, 96, 72).clamp(0, 1), atol=1e-3)  # the default 0.3 differs
    double = scene.render(V, _K(160.0, 192, 144), 192, 144, backend="torch")["rgb"]
    assert torch.allclose(double, _render(sp, 160.0, 192, 144, eps2d=0.4).clamp(0, 1), atol=1e-5)
