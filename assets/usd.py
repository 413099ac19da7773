"""OpenUSD export of plain Gaussians as a `UsdVol.ParticleField3DGaussianSplat` prim (OpenUSD 26.03+, usd-core >= 26.3).

Stage metadata is set explicitly: upAxis "Z" (realsim's world is +Z up); metersPerUnit is authored (1.0) only for
metric scenes: a non-metric scene (SfM units) leaves it unset, and usd-core's StageMetadataChecker then reports
MissingMetersPerUnitMetadata, which is the truth. Colour space: the SH coefficients give display-referred sRGB values
in [0, 1] (as the 3DGS PLY), not linear; SH order: the standard real SH basis order of 3DGS (l = 0..degree, m = -l..l,
f_rest channel-major in the PLY, here contiguous per particle as (degree+1)^2 float3 values).
Attributes: positions (point3f), orientations (quatf, real part first), scales (linear), opacities (linear, [0,1]),
radiance:sphericalHarmonicsCoefficients (float3, (degree+1)^2 per particle, contiguous per particle) with
radiance:sphericalHarmonicsDegree. The SH coefficients are the 3DGS ones unchanged (rgb = 0.5 + sum_k Y_k c_k, as in
the PLY's f_dc / f_rest); customData "realsim:shConvention" records that.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError
from .ply import GaussianCloud

USD_SUFFIXES = (".usd", ".usda", ".usdc", ".usdz")
PRIM_PATH = "/World/Gaussians"
SH_CONVENTION = "3dgs: rgb = 0.5 + sum_k Y_k(dir) c_k, dir = position - camera; rgb is sRGB-encoded in [0,1]"


def _schema():
    try:
        from pxr import UsdVol
    except ImportError:  # pragma: no cover - usd-core is a dependency
        raise InputError("USD export needs usd-core (pip install usd-core)") from None
    if not hasattr(UsdVol, "ParticleField3DGaussianSplat"):
        raise InputError("this usd-core has no UsdVol.ParticleField3DGaussianSplat schema (needs OpenUSD 26.03+: pip install 'usd-core>=26.3')")
    return UsdVol.ParticleField3DGaussianSplat


def _fill_stage(stage, g: GaussianCloud, meters_per_unit: float, metric: bool) -> None:
    from pxr import UsdGeom

    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    if metric:  # non-metric scenes: no metersPerUnit (SfM units are not metres)
        UsdGeom.SetStageMetersPerUnit(stage, float(meters_per_unit))
    world = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(world.GetPrim())
    stage.GetRootLayer().customLayerData = {"realsim:metric": bool(metric)}
    add_particle_field(stage, PRIM_PATH, g, 1.0, metric)


def add_particle_field(stage, path: str, g: GaussianCloud, scale: float = 1.0, metric: bool = True):
    """Define `path` as a ParticleField3DGaussianSplat holding g (positions and scales multiplied by `scale`)."""
    from pxr import Gf, Vt

    Splat = _schema()
    p = Splat.Define(stage, path)
    n = len(g)
    means = np.asarray(g.means, np.float64) * scale
    scales = np.asarray(g.scales, np.float64) * scale
    p.CreatePositionsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(means, np.float32)))
    q = np.ascontiguousarray(g.quats, np.float32)
    p.CreateOrientationsAttr(Vt.QuatfArray.FromNumpy(np.ascontiguousarray(q[:, [1, 2, 3, 0]])))  # Gf stores x, y, z, w
    p.CreateScalesAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(scales, np.float32)))
    p.CreateOpacitiesAttr(Vt.FloatArray.FromNumpy(np.ascontiguousarray(g.opacities, np.float32)))
    p.CreateRadianceSphericalHarmonicsDegreeAttr(int(g.sh_degree))
    p.CreateRadianceSphericalHarmonicsCoefficientsAttr(
        Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(g.sh.reshape(-1, 3), np.float32)))
    if n:
        lo = (means - 3 * scales.max(1, keepdims=True)).min(0)
        hi = (means + 3 * scales.max(1, keepdims=True)).max(0)
        p.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))
    p.GetPrim().SetCustomDataByKey("realsim:shConvention", SH_CONVENTION)
    p.GetPrim().SetCustomDataByKey("realsim:count", n)
    p.GetPrim().SetCustomDataByKey("realsim:metric", bool(metric))  # false: SfM units, metersPerUnit is not authored
    return p


def write_usd(path: str | os.PathLike, g: GaussianCloud, meters_per_unit: float = 1.0, metric: bool = True) -> None:
    """Write .usda / .usdc / .usd (binary) or a .usdz package, atomically (metric=False is recorded in customData)."""
    from pxr import Usd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in USD_SUFFIXES:
        raise InputError(f"USD file name must end in {', '.join(USD_SUFFIXES)} (got {path.name})")
    if not meters_per_unit > 0:
        raise ValueError("meters_per_unit must be positive")
    if suffix == ".usdz":
        from pxr import UsdUtils

        with tempfile.TemporaryDirectory() as tmpd:
            inner = Path(tmpd) / (path.stem + ".usdc")
            stage = Usd.Stage.CreateNew(str(inner))
            _fill_stage(stage, g, meters_per_unit, metric)
            stage.GetRootLayer().Save()
            del stage
            with atomic_path(path) as tmp:
                pkg = tmp.with_name(tmp.stem + ".pkg.usdz")  # the packager wants the .usdz suffix
                try:
                    if not UsdUtils.CreateNewUsdzPackage(str(inner), str(pkg)):
                        raise InputError(f"could not package {path.name} as USDZ")
                    shutil.move(str(pkg), str(tmp))
                finally:
                    if pkg.exists():
                        pkg.unlink()
        return
    with atomic_path(path) as tmp:
        fmt = "usda" if suffix == ".usda" else "usdc"
        target = tmp.with_name(tmp.stem + ".stage." + fmt)  # Sdf picks the file format from the suffix
        try:
            stage = Usd.Stage.CreateNew(str(target))
            _fill_stage(stage, g, meters_per_unit, metric)
            stage.GetRootLayer().Save()
            del stage
            shutil.move(str(target), str(tmp))
        finally:
            if target.exists():
                target.unlink()


def read_usd(path: str | os.PathLike) -> tuple[GaussianCloud, dict]:
    """Read the first ParticleField3DGaussianSplat prim of a USD file -> (cloud, {"up_axis", "meters_per_unit" or None})."""
    from pxr import Usd, UsdGeom

    Splat = _schema()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"USD file {path} not found")
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise InputError(f"{path} is not a readable USD file")
    prim = next((p for p in stage.Traverse() if p.IsA(Splat)), None)
    if prim is None:
        raise InputError(f"{path} has no ParticleField3DGaussianSplat prim")
    s = Splat(prim)
    pos = np.asarray(s.GetPositionsAttr().Get(), np.float32).reshape(-1, 3)
    n = len(pos)
    quats = np.array([[q.GetReal(), *q.GetImaginary()] for q in s.GetOrientationsAttr().Get()], np.float32).reshape(-1, 4)
    scales = np.asarray(s.GetScalesAttr().Get(), np.float32).reshape(-1, 3)
    opac = np.asarray(s.GetOpacitiesAttr().Get(), np.float32).reshape(-1)
    deg = int(s.GetRadianceSphericalHarmonicsDegreeAttr().Get())
    sh = np.asarray(s.GetRadianceSphericalHarmonicsCoefficientsAttr().Get(), np.float32).reshape(n, (deg + 1) ** 2, 3)
    mpu = float(UsdGeom.GetStageMetersPerUnit(stage)) if stage.HasAuthoredMetadata("metersPerUnit") else None
    info = {"up_axis": str(UsdGeom.GetStageUpAxis(stage)), "meters_per_unit": mpu}  # None: not metric
    return GaussianCloud(pos, quats, scales, opac, sh), info
