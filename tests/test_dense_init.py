"""Dense start from SfM depths (issue 13 / 12): interpolated samples lie on the surfaces the sparse points came from,
the agreement test drops the sheets interpolation draws across a depth discontinuity, and the trainer's start grows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from realsim.recon.dataset import Dataset, View
from realsim.recon.dense_init import DenseInitConfig, dense_points, interpolate_view
from realsim.recon.scaffold import median_nn_distance, voxelize
from realsim.recon.train_config import TrainConfig
from realsim.recon.trainer import start_points

W, H, F = 64, 48, 40.0
R_FWD = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float)  # camera looking along world +Y, world +Z up


def _view(x: float) -> View:
    C = np.array([x, 0.0, 1.5])
    vm = np.eye(4)
    vm[:3, :3] = R_FWD
    vm[:3, 3] = -R_FWD @ C
    K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]], dtype=torch.float32)
    return View(f"v{x}.png", torch.full((H, W, 3), 0.5), torch.tensor(vm, dtype=torch.float32), K, W, H)


def _wall_and_pole(seed: int = 0) -> Dataset:
    """SfM points on a wall 10 m ahead and on a 0.6 m wide slab 3 m ahead; five cameras 0.5 m apart sideways."""
    rng = np.random.default_rng(seed)
    wall = np.stack([rng.uniform(-8, 8, 600), np.full(600, 10.0), rng.uniform(-1, 4, 600)], 1)
    pole = np.stack([rng.uniform(-0.3, 0.3, 150), np.full(150, 3.0), rng.uniform(-1, 4, 150)], 1)
    pts = np.concatenate([wall, pole]).astype(np.float32)
    views = [_view(x) for x in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    return Dataset(Path("/nonexistent"), None, views, [], pts, np.zeros((len(pts), 3), np.uint8), 1.0)


def test_planar_triangles_interpolate_exactly():
    """Inverse depth is affine in the image across a plane: the interpolated depth of any pixel of a wall triangle is the
    wall's depth there, to float precision."""
    P = np.array([[-2.0, 10.0, 0.0], [2.0, 10.0, 0.5], [0.0, 10.0, 3.0]])  # on the wall, 10 m ahead
    cam = (P - np.array([0.0, 0.0, 1.5])) @ R_FWD.T
    uv = cam[:, :2] / cam[:, 2:] * F + np.array([W / 2, H / 2])
    vd = interpolate_view(uv[:3], cam[:3, 2], W, max_edge=1.0)
    q = np.array([[1 / 3, 1 / 3, 1 / 3], [0.1, 0.2, 0.7]]) @ uv[:3]  # two pixels inside the triangle
    assert np.abs(vd.depth_at(q) - 10.0).max() < 1e-9
    assert np.isnan(vd.depth_at(np.array([[0.0, 0.0]])))[0]  # outside the hull: nothing
    short = interpolate_view(uv[:3], cam[:3, 2], W, max_edge=0.05)  # every edge too long: not interpolated across
    assert np.isnan(short.depth_at(q)).all()


def test_samples_lie_on_the_surfaces_and_sheets_across_the_gap_are_dropped():
    ds = _wall_and_pole()
    xyz, rgb, info = dense_points(ds, DenseInitConfig(stride=2))
    y = xyz[:, 1].astype(np.float64)
    on_wall, on_pole = np.abs(y - 10) < 1e-3, np.abs(y - 3) < 1e-3
    between = (y > 3.05) & (y < 9.95)
    assert on_wall.sum() > 800 and on_pole.sum() > 250, info  # both surfaces densely covered
    assert between.sum() < 0.04 * len(y), between.sum()  # the few sheet samples that agree by chance
    assert (rgb == 128).all()  # the photos' colour (0.5)
    # without the agreement test the sheets between the slab and the wall are ten times as many
    xyz0, _, _ = dense_points(ds, DenseInitConfig(stride=2, depth_tol=1e9))
    y0 = xyz0[:, 1]
    assert ((y0 > 3.05) & (y0 < 9.95)).sum() > 10 * max(between.sum(), 1)


def test_trainer_start_keeps_the_sfm_points_and_adds_anchors_at_the_sfm_voxel():
    ds = _wall_and_pole()
    off = TrainConfig(model="scaffold")
    xyz0, rgb0 = start_points(off, ds)
    assert xyz0 is ds.points and rgb0 is ds.colors  # off by default: the SfM points only
    on = TrainConfig(model="scaffold", dense_init_stride=2)
    xyz, rgb = start_points(on, ds)
    assert np.array_equal(xyz[: len(ds.points)], ds.points) and len(xyz) == len(rgb) > len(ds.points)
    v = median_nn_distance(ds.points.astype(np.float64))
    assert len(voxelize(xyz, v)) > 1.5 * len(voxelize(ds.points, v))


def test_train_flag_sets_the_stride_and_refuses_a_negative_one(tmp_path, capsys):
    from realsim.cli.cmd_train import config_from_args
    from realsim.cli.main import build_parser

    base = ["train", str(tmp_path / "w"), "-o", str(tmp_path / "s"), "--preset", "cpu"]
    assert config_from_args(build_parser().parse_args(base)).dense_init_stride == 0
    assert config_from_args(build_parser().parse_args(base + ["--dense-init", "8"])).dense_init_stride == 8
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(base + ["--dense-init", "-1"])
    assert e.value.code == 2 and "--dense-init" in capsys.readouterr().err


def test_a_start_at_the_anchor_cap_says_growth_is_off(tmp_path, caplog):
    """A dense start above the preset's max_anchors stopped all growth silently (the demo on cpu-fast, issue 12): the
    trainer now says so, unless growth is off by choice (update_depth 0), as the demo now sets it (measured: no
    interpolated gain for +17% training time, sim/pipeline.py)."""
    import logging

    from realsim.recon.trainer import train
    from realsim.sim.pipeline import DemoOptions, demo_train_config

    ds = _wall_and_pole()
    cfg = TrainConfig(model="scaffold", iterations=4, max_width=None, dense_init_stride=2, checkpoint_every=0, eval_every=0)

    def warned(max_anchors: int, depth: int) -> bool:
        cfg.scaffold_strategy.max_anchors, cfg.scaffold_strategy.update_depth = max_anchors, depth
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="realsim.recon.trainer"):
            r = train(tmp_path / "src", tmp_path / "scene", cfg, dataset=ds, stop_after=1, overwrite=True)
        assert r.iterations == 1
        return any("no anchor growth" in m and f"max_anchors {max_anchors}" in m for m in caplog.messages)

    assert warned(50, 3)
    assert not warned(100_000, 3)
    assert not warned(50, 0)  # growth off by choice: nothing to say
    demo = demo_train_config(DemoOptions(), 480, 26).scaffold_strategy
    assert demo.update_depth == 0 and demo.max_anchors == 20_000
