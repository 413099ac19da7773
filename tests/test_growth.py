"""Scaffold-GS anchor growing and pruning against the published rules (Lu et al. 2024, Sec. 3.3) on toy grids:
levels m = 0, 1, 2 grow on voxels of 16, 4, 1 x eps with thresholds tau x 2^m, random elimination keeps 50 / 75 / 87.5 %
of the candidates, a new anchor takes the element-wise max of its candidates' features, and the anchor cap holds."""
from __future__ import annotations

import math

import pytest
import torch

from realsim.recon.growth import grow_anchors, level_rules
from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel
from realsim.recon.strategy import ScaffoldStrategy
from realsim.recon.train_config import PRESETS, preset_config

EPS = 1.0  # anchor voxel size of the toy models
TAU = 2e-4


def _model(anchors: torch.Tensor, gauss: torch.Tensor, feat: torch.Tensor | None = None) -> ScaffoldModel:
    """One neural Gaussian per anchor (k = 1) at the world positions `gauss` [M,3] (offsets x exp(0) scaling)."""
    M = anchors.shape[0]
    m = ScaffoldModel(ScaffoldConfig(voxel_size=EPS, n_offsets=1, feat_dim=4), M)
    with torch.no_grad():
        m.anchors.copy_(anchors)
        m.offsets.copy_((gauss - anchors)[:, None, :])
        m.scaling.zero_()
        m.anchor_feat.copy_(feat if feat is not None else torch.randn(M, 4))
    return m


def _line(n: int, pitch: float) -> torch.Tensor:
    return torch.stack([torch.arange(n, dtype=torch.float32) * pitch, torch.zeros(n), torch.zeros(n)], 1)


def test_level_rules_are_the_published_ones():
    got = level_rules(0.01, TAU, 3)
    want = [(0.16, TAU, 0.5), (0.04, 2 * TAU, 0.75), (0.01, 4 * TAU, 0.875)]
    for g, w in zip(got, want):
        assert g == pytest.approx(w)
    s = ScaffoldStrategy()
    assert (s.growth_factor, s.level_factor, s.update_depth) == (16, 4, 3)


@pytest.mark.parametrize("level,offset,grad,keep", [
    (0, 16.2, 1.5 * TAU, 0.5),    # a fresh 16-eps voxel; too weak for the finer levels' 2x / 4x thresholds
    (1, 4.2, 3.0 * TAU, 0.75),    # its 16-eps voxel holds the parent anchor; a fresh 4-eps one; below 4 tau
    (2, 1.1, 5.0 * TAU, 0.875),   # 16- and 4-eps voxels occupied, a fresh eps voxel
])
def test_each_level_grows_on_its_voxel_size_and_keeps_its_share(level, offset, grad, keep):
    n = 4000
    anchors = _line(n, 64.0)  # far apart: every candidate has its own voxel at every level
    gauss = anchors + torch.tensor([offset, 0.0, 0.0])
    m = _model(anchors, gauss)
    rules = level_rules(EPS, TAU, 3)
    new = grow_anchors(m, torch.full((n,), grad), torch.ones(n, dtype=torch.bool), rules,
                       generator=torch.Generator().manual_seed(level))
    size = 16.0 / 4 ** level
    g = new["anchors"]
    frac = g.shape[0] / n
    assert abs(frac - keep) < 4 * math.sqrt(keep * (1 - keep) / n) + 1e-9, frac  # binomial, 4 sigma
    # every new anchor sits at the centre of the candidate's voxel of this level (and of no other level)
    want = torch.round(gauss[:, 0] / size) * size
    assert torch.isin(g[:, 0], want).all() and (g[:, 1:] == 0).all()
    assert torch.allclose(new["scaling"], torch.full_like(new["scaling"], math.log(size)))
    assert (new["offsets"] == 0).all()


def test_new_anchor_feature_is_the_max_of_its_candidates():
    anchors = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0.2, 0, 0]])
    gauss = torch.tensor([[32.3, 0, 0], [31.8, 0, 0], [31.9, 0, 0]])  # one 16-eps voxel, centre x = 32
    feat = torch.tensor([[1.0, -2, 3, 0], [-1, 5, 2, 0], [9, 9, 9, 9]])
    m = _model(anchors, gauss, feat)
    enough = torch.tensor([True, True, False])  # the third was not observed often enough: no say
    new = grow_anchors(m, torch.full((3,), TAU), enough, [(16.0, TAU, 1.0)])
    assert new["anchors"].tolist() == [[32.0, 0.0, 0.0]]
    assert new["anchor_feat"].tolist() == [[1.0, 5.0, 3.0, 0.0]]  # not the mean [0, 1.5, 2.5, 0]


def test_occupied_voxels_and_weak_gradients_grow_nothing():
    anchors = _line(50, 64.0)
    m = _model(anchors, anchors + torch.tensor([0.3, 0.0, 0.0]))  # inside the parent's voxel at every level
    ones = torch.ones(50, dtype=torch.bool)
    assert grow_anchors(m, torch.full((50,), 10 * TAU), ones, level_rules(EPS, TAU, 3)) == {}
    far = _model(anchors, anchors + torch.tensor([16.2, 0.0, 0.0]))
    assert grow_anchors(far, torch.full((50,), 0.9 * TAU), ones, level_rules(EPS, TAU, 3)) == {}


def test_anchor_cap_holds():
    n = 3000
    anchors = _line(n, 64.0)
    m = _model(anchors, anchors + torch.tensor([1.1, 0.0, 0.0]))
    new = grow_anchors(m, torch.full((n,), 5 * TAU), torch.ones(n, dtype=torch.bool), level_rules(EPS, TAU, 3),
                       max_anchors=n + 25, generator=torch.Generator().manual_seed(0))
    assert new["anchors"].shape[0] == 25
    assert torch.unique(new["anchors"], dim=0).shape[0] == 25
    for cap in (n, n - 5):  # at or already above the cap (a resumed run with a lower one): nothing grows
        assert grow_anchors(m, torch.full((n,), 5 * TAU), torch.ones(n, dtype=torch.bool), level_rules(EPS, TAU, 3),
                            max_anchors=cap) == {}


def test_every_preset_caps_anchors():
    for name in PRESETS:
        assert preset_config(name).scaffold_strategy.max_anchors > 0, name


def test_strategy_prunes_transparent_anchors_observed_long_enough():
    """Published pruning: an anchor observed > interval x success_threshold times whose accumulated opacity is below
    min_opacity x observations goes; one observed less keeps its statistics for the next check."""
    anchors = _line(4, 64.0)
    m = _model(anchors, anchors.clone())
    st = ScaffoldStrategy(update_interval=100, success_threshold=0.8, min_opacity=0.005, max_anchors=0)
    state = st.initialize_state(m)
    state["anchor_denom"][:] = torch.tensor([90.0, 90.0, 50.0, 90.0])
    state["opacity_accum"][:] = torch.tensor([0.1, 5.0, 0.1, 0.44])  # 0.005 x 90 = 0.45
    opts = {name: torch.optim.Adam([p], lr=1e-3) for name, p in m.dynamic_params().items()}
    out = st._adjust(m, opts, state, torch.Generator().manual_seed(0))
    assert out == {"grown": 0, "pruned": 2}
    assert m.anchors[:, 0].tolist() == [64.0, 128.0]
    assert state["anchor_denom"].tolist() == [0.0, 50.0] and state["opacity_accum"].tolist() == pytest.approx([0.0, 0.1])
    assert all(p.shape[0] == 2 for p in m.dynamic_params().values())


def test_gpu_preset_is_the_published_schedule():
    """`gpu`: Scaffold-GS (Lu et al. 2024) / 3DGS (Kerbl et al. 2023) as published: 30k iterations at full resolution
    (longest side <= 1600 px), statistics from 500, growth 1500..15000 every 100, opacity reset every 3000, SH degree up
    every 1000, DSSIM 0.2, volume 0.01, the published learning rates decayed over the 30k iterations."""
    from realsim.recon.trainer import lr_table

    for model in ("scaffold", "3dgs"):
        c = preset_config("gpu", model)
        assert (c.iterations, c.max_width, c.downscale, c.res_schedule, c.lr_scale) == (30000, 1600, None, [], 1.0)
        assert (c.lambda_dssim, c.lambda_volume, c.sh_degree_interval) == (0.2, 0.01, 1000)
        s, a = c.scaffold_strategy, c.adc
        assert (s.start_stat, s.update_from, s.update_interval, s.update_until) == (500, 1500, 100, 15000)
        assert (s.grad_threshold, s.min_opacity, s.success_threshold, s.update_depth) == (2e-4, 5e-3, 0.8, 3)
        assert (s.growth_factor, s.level_factor) == (16, 4) and s.max_anchors >= 1_000_000
        assert (a.refine_start, a.refine_stop, a.refine_every, a.reset_every) == (500, 15000, 100, 3000)
        assert (a.grow_grad2d, a.grow_scale3d, a.prune_opa, a.prune_scale3d) == (2e-4, 0.01, 5e-3, 0.1)
        assert (c.scaffold.n_offsets, c.scaffold.feat_dim, c.scaffold.hidden_dim) == (10, 32, 32)
    lrs = lr_table(preset_config("gpu"), extent=2.0)  # offsets scale with the scene extent
    assert lrs["offsets"] == pytest.approx((0.02, 0.0002)) and lrs["anchor_feat"] == pytest.approx((0.0075, 0.0075))
    assert lrs["mlp_opacity"] == pytest.approx((0.002, 0.00002)) and lrs["mlp_color"] == pytest.approx((0.008, 0.00005))
    lrs = lr_table(preset_config("gpu", "3dgs"), extent=2.0)
    assert lrs["means"] == pytest.approx((3.2e-4, 3.2e-6)) and lrs["opacities"] == pytest.approx((0.05, 0.05))
    # a shorter run of the preset maps the schedule onto its length (growth until 60 %: 15000 of 30000 is 50 %)
    short = preset_config("gpu", iterations=3000).scaffold_strategy
    assert (short.start_stat, short.update_until) == (240, 1800)
