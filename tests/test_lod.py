"""Level of detail (recon/lod.py): LOD off is bit-identical, every fine anchor is drawn exactly once (by itself or one
coarse ancestor), and a far view stays close to the exact render while far fewer Gaussians are drawn."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from realsim.recon.bundle import render_splats
from realsim.recon.lod import LODConfig, LODScaffoldModel, lod_levels, with_lod
from realsim.recon.metrics import psnr
from realsim.recon.scaffold import ScaffoldConfig, ScaffoldModel
from realsim.render.paths import look_at

W, H, F = 128, 96, 100.0
K = torch.tensor([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def street_model() -> ScaffoldModel:
    """A Scaffold model on the SYNTHETIC 112 m street's surfaces, with seeded random features (high-contrast colours)."""
    from realsim.sim.capture import build_street, sample_surface_points

    torch.set_num_threads(1)
    pts = sample_surface_points(build_street(0, 112.0), 30000, seed=1)
    m = ScaffoldModel.from_points(pts, ScaffoldConfig(voxel_size=0.3), seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m.anchor_feat.copy_(torch.randn(m.anchor_feat.shape, generator=g) * 2.0)
        m.offsets.copy_(torch.randn(m.offsets.shape, generator=g) * 0.5)
    return m.eval()


def _render(model, V: torch.Tensor) -> tuple[torch.Tensor, int]:
    with torch.no_grad():
        s, _ = model.decode(V, K, W, H, backend="cpu")
        return render_splats(s, V, K, W, H, "cpu")["rgb"], len(s)


def _view(eye, target) -> torch.Tensor:
    return torch.tensor(look_at(np.asarray(eye, float), np.asarray(target, float)), dtype=torch.float32)


def test_lod_off_is_bit_identical(street_model):
    assert with_lod(street_model, LODConfig(levels=1)) is street_model
    off = with_lod(street_model, LODConfig(levels=4, pixel_error=0.0))
    assert isinstance(off, LODScaffoldModel) and off.n_anchors > street_model.n_anchors  # coarse rows exist, unused
    V = _view([0.0, 0.0, 1.6], [0.0, 10.0, 1.0])
    exact, n = _render(street_model, V)
    rgb, n_off = _render(off, V)
    assert n_off == n and torch.equal(rgb, exact)


def test_each_fine_anchor_drawn_exactly_once(street_model):
    lod = with_lod(street_model, LODConfig(levels=4, pixel_error=2.0))
    M = lod.n_fine
    rng = np.random.default_rng(0)
    used_levels = set()
    for _ in range(4):
        eye = rng.uniform([-6, -5, 1], [6, 100, 120])
        sel = lod.lod_select(_view(eye, [0.0, 50.0, 0.0]), K)
        cover = sel[:M].long().clone()
        for lv in range(1, 4):
            rows = sel[lod.row_start[lv - 1]:lod.row_start[lv]]
            cover += rows[lod.parents[lv - 1]].long()
            used_levels |= {lv} if bool(rows.any()) else set()
        assert int(cover.min()) == 1 and int(cover.max()) == 1
    assert used_levels == {1, 2, 3}


def test_levels_nest_and_pick_the_member_nearest_the_mean():
    pts = np.array([[0.1, 0.1, 0.1], [0.4, 0.1, 0.1], [0.3, 0.1, 0.1], [1.3, 0.1, 0.1]])
    (p1, r1, s1), (p2, r2, s2) = lod_levels(pts, 0.5, 3)
    assert p1[0] == p1[1] == p1[2] != p1[3] and sorted(s1.tolist()) == [1, 3]
    assert r1[p1[0]] == 2  # mean x 0.267: member 2 (x 0.3) is nearest
    assert s2.tolist() == [4] and r2[0] == 1  # one 2 m cell; mean x 0.525: member 1 (x 0.4) is nearest


@pytest.mark.parametrize("dist", [60.0, 120.0])
def test_far_view_close_to_exact_with_fewer_gaussians(street_model, dist):
    """2 px of error: PSNR against the exact render above 28 dB while the Gaussians drawn fall below 40% (measured
    30.9 dB / 30% at 60 m, 30.5 dB / 10% at 120 m; random per-anchor colours are the hard case for a coarse level)."""
    lod = with_lod(street_model, LODConfig(levels=4, pixel_error=2.0))
    centre = np.array([0.0, 50.0, 0.0])
    V = _view(centre + dist * np.array([0.0, -0.7071, 0.7071]), centre)
    exact, n = _render(street_model, V)
    rgb, n_lod = _render(lod, V)
    p = psnr(rgb, exact)
    print(f"{dist:.0f} m: {n} -> {n_lod} Gaussians ({n_lod / n:.0%}), PSNR vs exact {p:.1f} dB")
    assert p > 28.0 and n_lod < 0.4 * n
