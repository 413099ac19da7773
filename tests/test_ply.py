"""Standard 3DGS PLY and antimatter15 .splat: exact layout read back by plyfile, and re-rendering through the rasterizer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from realsim.assets import InputError
from realsim.assets.ply import SH_C0, GaussianCloud, ply_property_names, read_ply, write_ply
from realsim.assets.splat import SPLAT_DTYPE, read_splat, write_splat


def _cloud(n=300, degree=3, seed=0) -> GaussianCloud:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n, 3)) * [0.6, 0.4, 0.3] + [0, 0, 3.0]
    quats = rng.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    scales = np.exp(rng.uniform(np.log(0.02), np.log(0.12), size=(n, 3)))
    opac = rng.uniform(0.05, 0.95, size=n)
    sh = rng.normal(scale=0.3, size=(n, (degree + 1) ** 2, 3))
    sh[:, 0] = (rng.uniform(0.1, 0.9, size=(n, 3)) - 0.5) / SH_C0
    f = lambda a: a.astype(np.float32)  # noqa: E731
    return GaussianCloud(f(means), f(quats), f(scales), f(opac), f(sh))


def _render(g: GaussianCloud, sh_degree=None):
    from realsim.render import rasterization

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    V = torch.tensor([[1.0, 0, 0, 0.1], [0, 1, 0, -0.05], [0, 0, 1, 0.2], [0, 0, 0, 1]])[None]
    K = torch.tensor([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])[None]
    deg = g.sh_degree if sh_degree is None else sh_degree
    img, alpha, _ = rasterization(t(g.means), t(g.quats), t(g.scales), t(g.opacities), t(g.sh), V, K, 64, 48,
                                  sh_degree=deg)
    return img[0], alpha[0]


def _psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


def test_ply_layout_read_by_plyfile(tmp_path):
    from plyfile import PlyData

    g = _cloud(n=50, degree=3)
    write_ply(tmp_path / "g.ply", g)
    ply = PlyData.read(str(tmp_path / "g.ply"))
    v = ply["vertex"]
    names = [p.name for p in v.properties]
    assert names == ply_property_names(3)
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert len(names) == 62 and names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert all(p.val_dtype in ("f4", "float32") for p in v.properties)
    assert ply.text is False and ply.byte_order == "<" and len(v.data) == 50
    d = v.data
    np.testing.assert_allclose(d["x"], g.means[:, 0])
    np.testing.assert_allclose(d["f_dc_1"], g.sh[:, 0, 1])
    # f_rest is channel-major: 15 red coefficients, then 15 green, then 15 blue
    np.testing.assert_allclose(d["f_rest_0"], g.sh[:, 1, 0])
    np.testing.assert_allclose(d["f_rest_1"], g.sh[:, 2, 0])
    np.testing.assert_allclose(d["f_rest_15"], g.sh[:, 1, 1])
    np.testing.assert_allclose(d["f_rest_44"], g.sh[:, 15, 2])
    np.testing.assert_allclose(1 / (1 + np.exp(-d["opacity"])), g.opacities, rtol=1e-5)
    np.testing.assert_allclose(np.exp(d["scale_2"]), g.scales[:, 2], rtol=1e-5)
    np.testing.assert_allclose(d["rot_0"], g.quats[:, 0], atol=1e-6)  # w first
    np.testing.assert_array_equal(d["nx"], 0)
    assert [p.name for p in PlyData.read(str(_write(tmp_path, _cloud(5, 0))))["vertex"].properties][-9:-8] == ["f_dc_2"]


def _write(tmp_path, g, name="h.ply"):
    write_ply(tmp_path / name, g)
    return tmp_path / name


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_ply_roundtrip_rerenders(tmp_path, degree):
    g = _cloud(degree=degree, seed=degree)
    back = read_ply(_write(tmp_path, g))
    assert back.sh_degree == degree and len(back) == len(g)
    np.testing.assert_allclose(back.means, g.means)
    np.testing.assert_allclose(back.sh, g.sh)
    np.testing.assert_allclose(back.opacities, g.opacities, rtol=1e-5)
    np.testing.assert_allclose(back.scales, g.scales, rtol=1e-5)
    np.testing.assert_allclose(back.quats, g.quats, atol=1e-6)
    a, alpha = _render(g)
    b, _ = _render(back)
    assert float(alpha.mean()) > 0.2  # the scene actually covers the image
    assert _psnr(a, b) > 100.0  # float32 round trip through logit/log: measured 155-158 dB


def test_read_foreign_and_corrupt_ply(tmp_path):
    (tmp_path / "mesh.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                                       "property float z\nend_header\n0 0 0\n")
    with pytest.raises(InputError, match="not a 3DGS PLY"):
        read_ply(tmp_path / "mesh.ply")
    p = _write(tmp_path, _cloud(20, 1))
    p.write_bytes(p.read_bytes()[:-100])  # truncated
    with pytest.raises(InputError, match="not a readable PLY"):
        read_ply(p)
    (tmp_path / "junk.ply").write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError):
        read_ply(tmp_path / "junk.ply")
    with pytest.raises(InputError, match="not found"):
        read_ply(tmp_path / "none.ply")
    bad = _cloud(3, 0)
    bad.means[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_ply(tmp_path / "nan.ply", bad)
    assert not (tmp_path / "nan.ply").exists()


def test_splat_format(tmp_path):
    g = _cloud(n=200, degree=0, seed=5)
    write_splat(tmp_path / "g.splat", g)
    raw = (tmp_path / "g.splat").read_bytes()
    assert len(raw) == 32 * 200
    rec = np.frombuffer(raw, SPLAT_DTYPE)
    key = rec["scale"].astype(np.float64).prod(1) * rec["rgba"][:, 3] / 255.0
    # biggest x most opaque first (up to the 8-bit opacity quantisation of the stored alpha)
    assert (np.diff(key) <= rec["scale"].astype(np.float64).prod(1)[1:] / 255.0).all()
    assert key[0] > 20 * key[-1]
    back = read_splat(tmp_path / "g.splat")
    order = np.argsort(-(g.scales.astype(np.float64).prod(1) * g.opacities), kind="stable")
    np.testing.assert_allclose(back.means, g.means[order])
    np.testing.assert_allclose(back.scales, g.scales[order])
    rgb = 0.5 + SH_C0 * g.sh[order, 0]
    np.testing.assert_allclose(0.5 + SH_C0 * back.sh[:, 0], np.clip(rgb, 0, 1), atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(back.opacities, g.opacities[order], atol=0.5 / 255 + 1e-6)
    dots = np.abs(np.sum(back.quats * g.quats[order], 1))
    assert dots.min() > 0.995  # 8-bit quaternion quantisation
    a, _ = _render(g)
    b, _ = _render(back)
    assert _psnr(a, b) > 50.0  # 8-bit colour/opacity/rotation: measured 63.7 dB
    (tmp_path / "bad.splat").write_bytes(b"x" * 33)
    with pytest.raises(InputError, match="multiple of 32"):
        read_splat(tmp_path / "bad.splat")


@pytest.mark.parametrize("suffix", [".usda", ".usdz"])
def test_usd_gaussian_splat_prim_reads_back_with_pxr(tmp_path, suffix):
    from pxr import Usd, UsdGeom, UsdVol

    from realsim.assets.usd import read_usd, write_usd

    g = _cloud(n=40, degree=2, seed=3)
    out = tmp_path / f"g{suffix}"
    write_usd(out, g, meters_per_unit=1.0, metric=True)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp files left
    stage = Usd.Stage.Open(str(out))
    assert UsdGeom.GetStageUpAxis(stage) == "Z" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    prim = stage.GetPrimAtPath("/World/Gaussians")
    assert prim.IsA(UsdVol.ParticleField3DGaussianSplat)
    s = UsdVol.ParticleField3DGaussianSplat(prim)
    assert len(s.GetPositionsAttr().Get()) == 40 and s.GetRadianceSphericalHarmonicsDegreeAttr().Get() == 2
    assert len(s.GetRadianceSphericalHarmonicsCoefficientsAttr().Get()) == 40 * 9
    q0 = s.GetOrientationsAttr().Get()[0]
    np.testing.assert_allclose([q0.GetReal(), *q0.GetImaginary()], g.quats[0], atol=1e-7)  # real part first
    back, info = read_usd(out)
    assert info == {"up_axis": "Z", "meters_per_unit": 1.0}
    for a, b in ((back.means, g.means), (back.scales, g.scales), (back.opacities, g.opacities), (back.sh, g.sh)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="end in"):
        write_usd(tmp_path / "g.txt", g)
