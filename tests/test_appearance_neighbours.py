"""A novel camera's colour affine: Shepard interpolation of the training photos' affines (recon/appearance.py), as
Scene.render draws and evaluate_views scores it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from realsim.assets.cameras import CameraFrame, CameraSet
from realsim.assets.scene import SceneInfo
from realsim.recon.appearance import NeighbourAppearance, apply_affine
from realsim.recon.bundle import Scene, render_model
from realsim.recon.dataset import View
from realsim.recon.evaluation import evaluate_views
from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel

K = np.array([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])


def _at(x: float) -> np.ndarray:
    """World-to-camera viewmat of a camera at (x, -6, 0.5) looking along +y (OpenCV axes, +Z up world)."""
    V = np.eye(4)
    V[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    V[:3, 3] = -V[:3, :3] @ np.array([x, -6.0, 0.5])
    return V


def _cameras() -> CameraSet:
    """Training photos a, c, d at x = 0, 2, 10; b (held out, x = 1) sorts between them and must not shift indices."""
    xs = {"a.jpg": 0.0, "b.jpg": 1.0, "c.jpg": 2.0, "d.jpg": 10.0}
    return CameraSet([CameraFrame(n, K, _at(x), 64, 48, "test" if n == "b.jpg" else "train") for n, x in xs.items()])


def _model() -> ScaffoldModel:
    pts = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32) * np.array([2.0, 2.0, 0.5], np.float32)
    m = ScaffoldModel.from_points(pts, ScaffoldConfig(voxel_size=0.4, affine_appearance=True, n_appearance=3))
    with torch.no_grad():
        m.appearance.delta.copy_(torch.tensor([[[0.2, 0, 0, 0.05], [0, 0.2, 0, 0.05], [0, 0, 0.2, 0.05]],
                                               [[-0.3, 0, 0, 0], [0, -0.3, 0, 0], [0, 0, -0.3, 0]],
                                               [[0, 0, 0, 0.3], [0, 0, 0, 0.0], [0, 0, 0, -0.2]]]))
    return m.eval()


def test_blend_is_each_photos_own_affine_at_its_camera_and_shepard_between():
    m = _model()
    app = NeighbourAppearance.for_model(m, _cameras())
    for i, x in enumerate((0.0, 2.0, 10.0)):  # a, c, d in name order (b is held out)
        assert torch.allclose(app.matrix(_at(x)), m.appearance.matrix(i), atol=1e-6)
    # halfway between a and c: weights 1 : 1 : (1/9)^4 by the inverse fourth power of the distances 1, 1, 9
    w = np.array([1.0, 1.0, 9.0 ** -4])
    w /= w.sum()
    want = torch.eye(3, 4) + sum(float(w[i]) * m.appearance.delta[i] for i in range(3))
    assert torch.allclose(app.matrix(_at(1.0)), want.detach(), atol=1e-6)
    # continuous along a camera path (no jump where the nearest photo changes), also next to a photo
    for x in (1.0, 6.0, 2.0 + 1e-4):
        assert (app.matrix(_at(x - 1e-4)) - app.matrix(_at(x + 1e-4))).abs().max() < 1e-3


def test_only_models_with_affines_for_their_own_training_photos_get_one():
    m = _model()
    assert NeighbourAppearance.for_model(m, CameraSet(_cameras().frames[:2])) is None  # 1 training photo, 3 affines
    plain = ScaffoldModel.from_points(np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32),
                                      ScaffoldConfig(voxel_size=0.4))
    assert NeighbourAppearance.for_model(plain, _cameras()) is None


def test_scene_render_and_evaluation_use_the_blend():
    m, cams = _model(), _cameras()
    scene = Scene(SceneInfo(model_kind="scaffold"), cams, Path("."), m)
    V, Kt = torch.tensor(_at(2.0), dtype=torch.float32), torch.tensor(K, dtype=torch.float32)
    shared = render_model(m, V, Kt, 64, 48, "torch")["rgb"].clamp(0, 1)
    assert torch.equal(scene.render(V, Kt, 64, 48, backend="torch", appearance="shared")["rgb"], shared)
    auto = scene.render(V, Kt, 64, 48, backend="torch")["rgb"]
    assert torch.allclose(auto, apply_affine(shared, m.appearance.matrix(1)).clamp(0, 1), atol=1e-5)
    assert (auto - shared).abs().mean() > 0.05
    with pytest.raises(ValueError, match="appearance"):
        scene.render(V, Kt, 64, 48, appearance="mean")
    # a photo taken near d with d's colour scores high as rendered, lower in the shared appearance
    Vb = torch.tensor(_at(9.0), dtype=torch.float32)
    photo = scene.render(Vb, Kt, 64, 48, backend="torch")["rgb"]
    view = View("b.jpg", photo, Vb, Kt, 64, 48)
    res = evaluate_views(m, [view], "torch", appearance=scene.appearance)
    plain = evaluate_views(m, [view], "torch")
    assert res["psnr"] > 45.0 and res["psnr_shared"] == pytest.approx(plain["psnr"], abs=1e-9)
    assert plain["psnr"] < 30.0 and "psnr_shared" not in plain


def test_affine_free_models_render_as_before():
    plain = ScaffoldModel.from_points(np.random.default_rng(1).normal(size=(200, 3)).astype(np.float32),
                                      ScaffoldConfig(voxel_size=0.4)).eval()
    scene = Scene(SceneInfo(model_kind="scaffold"), _cameras(), Path("."), plain)
    V, Kt = torch.tensor(_at(1.0), dtype=torch.float32), torch.tensor(K, dtype=torch.float32)
    assert scene.appearance is None
    assert torch.equal(scene.render(V, Kt, 64, 48, backend="torch")["rgb"],
                       scene.render(V, Kt, 64, 48, backend="torch", appearance="shared")["rgb"])
