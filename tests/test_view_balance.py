"""Coverage-balanced view sampling (recon/view_balance.py): the coverage count, the weights and the epoch draws."""
import numpy as np
import torch

from realsim.recon.dataset import View
from realsim.recon.view_balance import balanced_order, balanced_weights, epoch_order, training_weights, view_coverage

W, H = 64, 48
K = torch.tensor([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])


def _view(x: float, name: str) -> View:
    """A camera at (x, 0, 0) looking down +Z (identity rotation)."""
    vm = torch.eye(4)
    vm[0, 3] = -x
    return View(name, torch.zeros(H, W, 3), vm, K, W, H)


def _walk() -> tuple[np.ndarray, list[View]]:
    """A wall at z = 4 along x in [-2, 22]: four cameras crowd x in [0, 1.5], one stands alone at x = 20."""
    gx, gy = np.meshgrid(np.linspace(-2, 22, 97), np.linspace(-2, 2, 9))
    pts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, 4.0)], 1).astype(np.float32)
    return pts, [_view(x, f"{i}") for i, x in enumerate((0.0, 0.5, 1.0, 1.5, 20.0))]


def test_coverage_counts_the_views_that_see_a_points_up_close():
    pts, views = _walk()
    cov = view_coverage(pts, views)
    # each crowded camera's wall patch (|x - c| <= 3.2) is seen by all four crowded cameras except near its edges
    assert np.all(cov[:4] > 3.0) and np.all(cov[:4] <= 4.0)
    assert cov[4] == 1.0  # the lone camera's wall is seen by no other camera
    # a far camera behind the crowd sees the same wall, but from more than 1.5x as far: it does not count
    far = views + [_view(0.75, "far")]
    far[-1].viewmat[2, 3] = 8.0  # 12 m from the wall instead of 4
    assert np.allclose(view_coverage(pts, far)[:4], cov[:4])
    assert np.all(view_coverage(pts, far, depth_ratio=4.0)[:4] > cov[:4] + 0.5)


def test_weights_follow_the_power_law_and_the_cap():
    cov = np.array([16.0, 4.0, 1.0])
    w = balanced_weights(cov, 0.5)
    assert np.isclose(w.sum(), 1.0)
    assert np.allclose(w / w[0], [1.0, 2.0, 4.0])
    w = balanced_weights(cov, 1.0, max_ratio=4.0)  # 16x asked, capped at 4x
    assert np.allclose(w / w[0], [1.0, 4.0, 4.0])


def test_epoch_draws_match_the_weights_and_uniform_is_a_permutation():
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4])
    counts = np.zeros(4)
    for _ in range(2000):
        ep = balanced_order(w, g)
        assert len(ep) == 4
        c = np.bincount(ep, minlength=4)
        assert np.all(np.abs(c - 4 * w.numpy()) < 1.0 + 1e-9)  # systematic: floor or ceil of the expected count
        counts += c
    assert np.allclose(counts / counts.sum(), w.numpy(), atol=0.01)
    assert sorted(epoch_order(None, 7, g)) == list(range(7))


def test_trainer_weights_off_by_default_and_favour_the_lone_view():
    pts, views = _walk()
    assert training_weights(pts, views, 0.0) is None
    w = training_weights(pts, views, 0.5)
    assert int(torch.argmax(w)) == 4 and float(w[4] / w[0]) > 1.7


def test_trainer_draws_its_epochs_with_the_coverage_weights(monkeypatch, tmp_path):
    """TrainConfig.view_balance reaches the training loop: every epoch is drawn with the fern views' weights."""
    from conftest import need_data

    from realsim.recon import trainer
    from realsim.recon.dataset import load_dataset
    from realsim.recon.train_config import preset_config

    root = need_data("scenes/llff_fern/images_4").parent
    ds = load_dataset(root, downscale=16)
    cfg = preset_config("real", "scaffold", 30, n_images=len(ds.train))
    cfg.downscale, cfg.eval_every, cfg.checkpoint_every, cfg.threads, cfg.view_balance = 16, 0, 0, 2, 1.0
    cfg.scaffold.voxel_size = 1.2
    seen: list = []
    real_order = trainer.epoch_order

    def spy(weights, n, gen):
        seen.append(weights)
        return real_order(weights, n, gen)

    monkeypatch.setattr(trainer, "epoch_order", spy)
    trainer.train(root, tmp_path / "scene", cfg, dataset=ds, overwrite=True)
    want = training_weights(ds.points, ds.train, 1.0)
    assert len(seen) >= 30 // len(ds.train) and all(w is not None and torch.allclose(w, want) for w in seen)
    # every fern photo sees the same scene from nearly the same distance: balancing leaves such a capture uniform
    assert float(want.max() / want.min()) < 1.05
