"""AR-ready USD: a textured mesh with UsdPreviewSurface, packaged as USDZ for AR Quick Look / RealityKit (Vision Pro).

Pure writers over plain arrays (no recon/sim imports). Conventions (CONVENTIONS.md):
- The stage is **Y-up** (`upAxis "Y"`) with the realsim world (+Z up) placed under the default prim `/Root`, which carries
  one `xformOp:rotateX = -90` (world +Z -> USD +Y, world +Y -> USD -Z). Points are stored in world coordinates.
- `metersPerUnit` is 1 and authored only for metric scenes; a non-metric scene is refused unless a scale is given
  (the caller multiplies the points by it first).
- Textures are 8-bit sRGB PNG (or JPEG) inside the package, read by `UsdUVTexture` with `sourceColorSpace = "sRGB"`;
  texture coordinates `primvars:st` follow the USD convention (v up, image row 0 is v = 1).
- Size budgets for AR Quick Look (checked by `ar_budget_problems`): <= 200k triangles, textures <= 4096 px, < 50 MB.

`validate_usd(path)` runs every validator usd-core registers (`pxr.UsdValidation`: usdz package, core, geom, shade, skel,
physics, ...) and `arkit_problems(path)` the ARKit rules the old `UsdUtils.ComplianceChecker` enforced.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .atomic import atomic_path
from .errors import InputError

__all__ = ["ArMesh", "MAX_TRIANGLES", "MAX_TEXTURE", "MAX_BYTES", "ALLOWED_SHADERS", "define_root", "add_textured_mesh",
           "write_usd_package", "validate_usd", "arkit_problems", "ar_budget_problems"]

MAX_TRIANGLES = 200_000
MAX_TEXTURE = 4096
MAX_BYTES = 50 * 1024 * 1024
ALLOWED_SHADERS = ("UsdPreviewSurface", "UsdUVTexture", "UsdTransform2d", "UsdPrimvarReader_float", "UsdPrimvarReader_float2",
                   "UsdPrimvarReader_float3", "UsdPrimvarReader_float4", "UsdPrimvarReader_int", "UsdPrimvarReader_string",
                   "UsdPrimvarReader_normal", "UsdPrimvarReader_point", "UsdPrimvarReader_vector", "UsdPrimvarReader_matrix")
ALLOWED_FILES = (".usda", ".usdc", ".usd", ".png", ".jpg", ".jpeg")
# the prim types ARKit's checker accepted
ALLOWED_PRIM_TYPES = ("", "Scope", "Xform", "Camera", "Shader", "Material", "Mesh", "Sphere", "Cube", "Cylinder", "Cone",
                      "Capsule", "GeomSubset", "Points", "SkelRoot", "Skeleton", "SkelAnimation", "BlendShape",
                      "SpatialAudio")


@dataclass
class ArMesh:
    """A triangle mesh in the realsim world frame: vertices [V,3], faces [F,3], uv [V,2] + texture [H,W,3|4] uint8,
    or vertex_colors [V,3] in [0,1] (linear-free sRGB values, shown as displayColor) when untextured."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    name: str = "Scene"


def define_root(stage, y_up: bool = True, meters_per_unit: float | None = 1.0, root: str = "/Root"):
    """Stage metadata and the default prim. y_up: upAxis Y and the root rotated -90 degrees about X (world +Z -> +Y);
    else upAxis Z and no rotation. meters_per_unit None: not authored (non-metric scene)."""
    from pxr import UsdGeom

    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y if y_up else UsdGeom.Tokens.z)
    if meters_per_unit is not None:
        UsdGeom.SetStageMetersPerUnit(stage, float(meters_per_unit))
    x = UsdGeom.Xform.Define(stage, root)
    if y_up:
        x.AddRotateXOp().Set(-90.0)
    stage.SetDefaultPrim(x.GetPrim())
    return x


def define_triangle_mesh(stage, path: str, points: np.ndarray, faces: np.ndarray):
    """A UsdGeom.Mesh of triangles (points [V,3], faces [F,3]) with no subdivision and its extent; returned for more."""
    from pxr import Gf, UsdGeom, Vt

    V = np.ascontiguousarray(points, np.float32)
    Fc = np.ascontiguousarray(faces, np.int32)
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(V))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(Fc), 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(Fc.reshape(-1)))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    if len(V):
        mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, V.min(0))), Gf.Vec3f(*map(float, V.max(0)))]))
    return mesh


def add_textured_mesh(stage, parent: str, m: ArMesh, texture_asset: str | None, looks: str) -> Any:
    """Define parent/<name> as a UsdGeom.Mesh bound to a UsdPreviewSurface material (textured when texture_asset)."""
    from pxr import Gf, Sdf, UsdGeom, UsdShade, Vt

    mesh = define_triangle_mesh(stage, f"{parent}/{m.name}", m.vertices, m.faces)
    mesh.CreateDoubleSidedAttr(True)  # TSDF surfaces are open sheets
    api = UsdGeom.PrimvarsAPI(mesh)
    mat = UsdShade.Material.Define(stage, f"{looks}/{m.name}Material")
    pbr = UsdShade.Shader.Define(stage, f"{looks}/{m.name}Material/PreviewSurface")
    pbr.CreateIdAttr("UsdPreviewSurface")
    pbr.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(1.0)
    pbr.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    mat.CreateSurfaceOutput().ConnectToSource(pbr.ConnectableAPI(), "surface")
    if texture_asset is not None and m.uv is not None:
        st = api.CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
        st.Set(Vt.Vec2fArray.FromNumpy(np.ascontiguousarray(m.uv, np.float32)))
        reader = UsdShade.Shader.Define(stage, f"{looks}/{m.name}Material/StReader")
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
        tex = UsdShade.Shader.Define(stage, f"{looks}/{m.name}Material/Albedo")
        tex.CreateIdAttr("UsdUVTexture")
        tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(texture_asset)
        tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
        tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("clamp")
        tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
        tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
        tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
        pbr.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.ConnectableAPI(), "rgb")
    else:
        if m.vertex_colors is not None:
            dc = api.CreatePrimvar("displayColor", Sdf.ValueTypeNames.Color3fArray, UsdGeom.Tokens.vertex)
            dc.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(np.clip(m.vertex_colors, 0, 1), np.float32)))
            reader = UsdShade.Shader.Define(stage, f"{looks}/{m.name}Material/ColorReader")
            reader.CreateIdAttr("UsdPrimvarReader_float3")
            reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("displayColor")
            reader.CreateOutput("result", Sdf.ValueTypeNames.Float3)
            pbr.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(reader.ConnectableAPI(), "result")
        else:
            pbr.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.7, 0.7, 0.7))
    UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(mat)
    return mesh


def write_usd_package(path: str | os.PathLike, fill: Callable[[Any, Path], None], images: dict[str, np.ndarray] | None = None) -> None:
    """Create a stage, let `fill(stage, folder)` author it, write `images` (relative name -> uint8 array) beside the
    layer, and save as .usda/.usdc/.usd, or package everything into a .usdz (root layer .usdc first), atomically."""
    from PIL import Image
    from pxr import Usd, UsdUtils

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".usd", ".usda", ".usdc", ".usdz"):
        raise InputError(f"USD file name must end in .usd, .usda, .usdc or .usdz (got {path.name})")
    with tempfile.TemporaryDirectory() as tmpd:
        tmpd = Path(tmpd)
        layer = tmpd / (path.stem + (".usdc" if suffix in (".usdz", ".usd") else suffix))
        for rel, img in (images or {}).items():
            f = tmpd / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(img)).save(f, quality=92) if f.suffix.lower() in (".jpg", ".jpeg") \
                else Image.fromarray(np.ascontiguousarray(img)).save(f)
        stage = Usd.Stage.CreateNew(str(layer))
        fill(stage, tmpd)
        stage.GetRootLayer().Save()
        del stage
        if suffix == ".usdz":
            pkg = tmpd / "out.usdz"
            if not UsdUtils.CreateNewUsdzPackage(str(layer), str(pkg)):
                raise InputError(f"could not package {path.name} as USDZ")
            with atomic_path(path) as tmp:
                shutil.move(str(pkg), str(tmp))
            return
        # loose layer: images go beside the output (relative asset paths keep working)
        for rel in (images or {}):
            dst = path.parent / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dst) as tmp:
                shutil.copyfile(tmpd / rel, tmp)
        with atomic_path(path) as tmp:
            shutil.copyfile(layer, tmp)


# ---------------------------------------------------------------------------------------------------------- checks
def validate_usd(path: str | os.PathLike, keywords: tuple[str, ...] | None = None,
                 expected: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Run every validator usd-core registers (or those with `keywords`) on the file -> {"errors", "warnings",
    "expected", "validators"}. `expected` maps a finding's name (e.g. "MissingMetersPerUnitMetadata") to the reason it is
    the truth for this file: such findings go to "expected" ("name: reason"), not to errors or warnings."""
    from pxr import Usd, UsdValidation

    reg = UsdValidation.ValidationRegistry()
    metas = [m for m in reg.GetAllValidatorMetadata() if not m.isSuite]
    if keywords:
        metas = [m for m in metas if set(m.GetKeywords()) & set(keywords)]
    validators = reg.GetOrLoadValidatorsByName([m.name for m in metas])
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise InputError(f"{path} is not a readable USD file")
    errs = UsdValidation.ValidationContext(validators).Validate(stage)
    out: dict[str, list[str]] = {"errors": [], "warnings": [], "expected": [], "validators": sorted(m.name for m in metas)}
    for e in errs:
        t = e.GetType()
        msg = f"{e.GetName()}: {e.GetMessage()}"
        if e.GetName() in (expected or {}):
            out["expected"].append(f"{e.GetName()}: {(expected or {})[e.GetName()]}")
        elif t == UsdValidation.ValidationErrorType.Error:
            out["errors"].append(msg)
        elif t == UsdValidation.ValidationErrorType.Warn:
            out["warnings"].append(msg)
    return out


def arkit_problems(path: str | os.PathLike) -> list[str]:
    """The ARKit rules of the old ComplianceChecker, as a list of problems (empty = passes): a .usdz whose first file is
    the .usdc root layer, one layer in the stage (no sublayers/references to other layers), only usd* and PNG/JPEG files,
    every asset inside the package, shaders only UsdPreviewSurface / UsdUVTexture / UsdPrimvarReader_* / UsdTransform2d,
    prim types from ARKit's list."""
    from pxr import Sdf, Usd, UsdShade

    path = Path(path)
    probs: list[str] = []
    if path.suffix.lower() != ".usdz":
        return [f"{path.name}: an ARKit package must be a .usdz"]
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    if not infos:
        return [f"{path.name}: empty package"]
    if Path(infos[0].filename).suffix.lower() != ".usdc":
        probs.append(f"first file {infos[0].filename} is not a .usdc root layer")
    for i in infos:
        if Path(i.filename).suffix.lower() not in ALLOWED_FILES:
            probs.append(f"file type not allowed in an ARKit package: {i.filename}")
        if i.compress_type != zipfile.ZIP_STORED:
            probs.append(f"{i.filename} is compressed (USDZ stores files uncompressed)")
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        return probs + [f"{path.name} does not open"]
    used = [lay for lay in stage.GetUsedLayers() if lay != stage.GetSessionLayer()]
    if len(used) != 1:
        probs.append(f"the stage uses {len(used)} layers (ARKit wants one root layer): {[lay.identifier for lay in used]}")
    pkg = str(path.resolve())
    for prim in stage.Traverse():
        if prim.GetTypeName() not in ALLOWED_PRIM_TYPES:
            probs.append(f"prim type {prim.GetTypeName()} not in ARKit's list: {prim.GetPath()}")
        if prim.IsA(UsdShade.Shader):
            sid = UsdShade.Shader(prim).GetShaderId()
            if sid not in ALLOWED_SHADERS:
                probs.append(f"shader {sid} not allowed: {prim.GetPath()}")
        for a in prim.GetAttributes():
            if a.GetTypeName() not in (Sdf.ValueTypeNames.Asset, Sdf.ValueTypeNames.AssetArray):
                continue
            vals = a.Get()
            for v in (vals if isinstance(vals, (list, tuple)) or hasattr(vals, "__len__") and not hasattr(vals, "path")
                      else [vals]):
                if v is None or not v.path:
                    continue
                rp = v.resolvedPath
                if not rp or not rp.startswith(pkg + "[") and not rp.startswith(str(path) + "["):
                    probs.append(f"asset {v.path} of {a.GetPath()} is not inside the package (resolved {rp!r})")
    return probs


def ar_budget_problems(path: str | os.PathLike, n_triangles: int, texture_sides: list[int]) -> list[str]:
    probs = []
    if n_triangles > MAX_TRIANGLES:
        probs.append(f"{n_triangles} triangles > {MAX_TRIANGLES}")
    if texture_sides and max(texture_sides) > MAX_TEXTURE:
        probs.append(f"texture side {max(texture_sides)} > {MAX_TEXTURE}")
    size = Path(path).stat().st_size
    if size >= MAX_BYTES:
        probs.append(f"{size / 1e6:.1f} MB >= {MAX_BYTES / 1e6:.0f} MB")
    return probs


def write_scene_usd(path: str | os.PathLike, mesh: ArMesh | None, y_up: bool = True, meters_per_unit: float | None = 1.0,
                    extra: tuple[Callable[[Any, str], None], ...] = (), texture_format: str = "png") -> None:
    """A stage with the default prim /Root (Y-up: rotated -90 degrees about X), the textured scene mesh under
    /Root/World and whatever the `extra(stage, "/Root")` callables add (agents, props, camera, physics)."""
    from pxr import UsdGeom

    images = {}
    tex_asset = None
    if mesh is not None and mesh.texture is not None and mesh.uv is not None:
        tex_asset = f"textures/{mesh.name.lower()}_albedo.{'jpg' if texture_format == 'jpeg' else 'png'}"
        images[tex_asset] = mesh.texture[..., :3]

    def fill(stage, _folder):
        define_root(stage, y_up, meters_per_unit)
        UsdGeom.Scope.Define(stage, "/Root/Looks")
        UsdGeom.Xform.Define(stage, "/Root/World")
        if mesh is not None:
            add_textured_mesh(stage, "/Root/World", mesh, tex_asset, "/Root/Looks")
        for f in extra:
            f(stage, "/Root")

    write_usd_package(path, fill, images)
