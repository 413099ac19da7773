"""AR-ready USDZ (assets/usd_ar.py): Y-up textured mesh, every usd-core validator, our ARKit rules, and bad input."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from realsim.assets.usd_ar import (ArMesh, ar_budget_problems, arkit_problems, validate_usd, write_scene_usd,
                                   write_usd_package)

pytestmark = pytest.mark.usefixtures("fresh_log_handlers")


def _grid_mesh(n=6):
    """An n x n grid on the ground (z = 0, metres) with a checker texture; uv = x/y scaled to [0, 1]."""
    xs = np.linspace(0, 1, n)
    X, Y = np.meshgrid(xs, xs, indexing="xy")
    V = np.stack([X.ravel() * 2.0, Y.ravel() * 3.0, np.zeros(n * n)], 1).astype(np.float32)
    faces = []
    for j in range(n - 1):
        for i in range(n - 1):
            a = j * n + i
            faces += [[a, a + 1, a + n + 1], [a, a + n + 1, a + n]]
    uv = np.stack([X.ravel(), Y.ravel()], 1).astype(np.float32)
    c = ((np.arange(64)[:, None] // 8 + np.arange(64)[None] // 8) % 2 * 255).astype(np.uint8)
    tex = np.stack([c, 255 - c, np.full_like(c, 128)], -1)
    return ArMesh(V, np.asarray(faces, np.int32), uv, tex)


def test_arkit_usdz_is_valid(tmp_path):
    from pxr import Gf, Usd, UsdGeom, UsdShade

    m = _grid_mesh()
    out = tmp_path / "scene.usdz"
    write_scene_usd(out, m, y_up=True, meters_per_unit=1.0)
    names = zipfile.ZipFile(out).namelist()
    assert names[0].endswith(".usdc") and sum(n.endswith(".png") for n in names) == 1
    stage = Usd.Stage.Open(str(out))
    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    root = stage.GetDefaultPrim()
    assert root.GetPath() == "/Root"
    # the +Z-up world under a -90 degree rotation about X: world +Z becomes +Y
    M = UsdGeom.Xformable(root).ComputeLocalToWorldTransform(Usd.TimeCode.Default())
    up = M.TransformDir(Gf.Vec3d(0, 0, 1))
    assert np.allclose(up, (0, 1, 0), atol=1e-6)
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/Root/World/Scene"))
    assert len(mesh.GetPointsAttr().Get()) == len(m.vertices)
    assert len(mesh.GetFaceVertexIndicesAttr().Get()) == 3 * len(m.faces)
    st = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st").Get()
    np.testing.assert_allclose(np.asarray(st), m.uv)
    mat, _ = UsdShade.MaterialBindingAPI(mesh.GetPrim()).ComputeBoundMaterial()
    ids = sorted(UsdShade.Shader(p).GetShaderId() for p in Usd.PrimRange(mat.GetPrim()) if p.IsA(UsdShade.Shader))
    assert ids == ["UsdPreviewSurface", "UsdPrimvarReader_float2", "UsdUVTexture"]
    tex = UsdShade.Shader(stage.GetPrimAtPath(mat.GetPath().AppendChild("Albedo")))
    assert tex.GetInput("sourceColorSpace").Get() == "sRGB"
    assert tex.GetInput("file").Get().resolvedPath.startswith(str(out))  # resolved inside the package
    val = validate_usd(out)
    for kw in ("usdUtilsValidators:UsdzPackageValidator", "usdValidation:StageMetadataChecker",
               "usdGeomValidators:StageMetadataChecker", "usdShadeValidators:ShaderSdrCompliance",
               "usdSkelValidators:SkelBindingApiValidator"):
        assert kw in val["validators"]
    assert val["errors"] == [], val["errors"]
    assert arkit_problems(out) == []
    assert ar_budget_problems(out, len(m.faces), [64]) == []
    assert ar_budget_problems(out, 300_000, [8192]) and len(ar_budget_problems(out, 300_000, [8192])) == 2


def test_vertex_colour_mesh_and_physics_layout(tmp_path):
    from pxr import Usd, UsdGeom

    m = _grid_mesh()
    m = ArMesh(m.vertices, m.faces, vertex_colors=np.full((len(m.vertices), 3), 0.3, np.float32))
    out = tmp_path / "s.usda"
    write_scene_usd(out, m, y_up=False, meters_per_unit=None)  # non-metric: metersPerUnit not authored
    stage = Usd.Stage.Open(str(out))
    assert UsdGeom.GetStageUpAxis(stage) == "Z"
    assert not stage.HasAuthoredMetadata("metersPerUnit")
    # usd-core's StageMetadataChecker requires metersPerUnit: a non-metric stage fails it by that one error (and only it)
    errs = validate_usd(out)["errors"]
    assert len(errs) == 1 and errs[0].startswith("MissingMetersPerUnitMetadata"), errs
    # ... which the caller can declare expected (with its reason): then it is no error
    val = validate_usd(out, expected={"MissingMetersPerUnitMetadata": "not metric"})
    assert val["errors"] == [] and val["expected"] == ["MissingMetersPerUnitMetadata: not metric"]


def test_arkit_rules_catch_violations(tmp_path):
    from pxr import Sdf, UsdShade

    m = _grid_mesh()

    def bad_shader(stage, root):
        s = UsdShade.Shader.Define(stage, f"{root}/Looks/Other")
        s.CreateIdAttr("ND_standard_surface_surfaceshader")

    out = tmp_path / "a.usdz"
    write_scene_usd(out, m, extra=(bad_shader,))
    assert any("ND_standard_surface" in p for p in arkit_problems(out))
    # a texture outside the package, and a file type ARKit refuses
    outside = tmp_path / "outside.png"
    from PIL import Image

    Image.fromarray(m.texture).save(outside)

    def fill(stage, _folder):
        from realsim.assets.usd_ar import add_textured_mesh, define_root

        define_root(stage)
        add_textured_mesh(stage, "/Root", m, str(outside), "/Root/Looks")

    layer = tmp_path / "b.usda"
    write_usd_package(layer, fill)
    pkg = tmp_path / "b.usdz"
    w = Sdf.ZipFileWriter.CreateNew(str(pkg))
    w.AddFile(str(layer), "b.usda")
    note = tmp_path / "notes.txt"
    note.write_text("x")
    w.AddFile(str(note), "notes.txt")
    w.Save()
    probs = arkit_problems(pkg)
    assert any("not a .usdc root layer" in p for p in probs)
    assert any("notes.txt" in p for p in probs)
    assert any("not inside the package" in p for p in probs), probs
    assert arkit_problems(tmp_path / "b.usda")  # not a package at all


def _bundle(tmp_path, metric: bool):
    from realsim.assets.cameras import CameraFrame, CameraSet, save_cameras
    from realsim.assets.scene import SceneInfo, WorldInfo, save_scene_info
    from realsim.recon.bundle import save_model
    from realsim.recon.gs3d import GS3DConfig, GS3DModel
    from realsim.render.paths import look_at

    root = tmp_path / "scene"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    model = GS3DModel.from_points(rng.normal(size=(50, 3)), rng.integers(0, 255, size=(50, 3)), GS3DConfig(sh_degree=0))
    K = np.array([[60.0, 0, 40], [0, 60.0, 30], [0, 0, 1]])
    save_cameras(root / "cameras.json", CameraSet([CameraFrame(f"{i}.png", K, look_at(np.array([4.0, i, 1]), np.zeros(3)),
                                                               80, 60) for i in range(3)]))
    save_model(root / "model.safetensors", model)
    info = SceneInfo(WorldInfo(metric=metric), model.kind, model.config.to_dict())
    save_scene_info(root / "scene.json", info)
    return root


def test_export_arkit_bad_input(tmp_path, capsys):
    from realsim.cli.main import main

    scene = _bundle(tmp_path, metric=False)
    rc = main(["-q", "export", str(scene), "-o", str(tmp_path / "x.usdz"), "--target", "arkit"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not metric" in err and "--scale" in err and len(err.splitlines()) == 1
    rc = main(["-q", "export", str(scene), "-o", str(tmp_path / "x.usda"), "--target", "arkit", "--scale", "0.5"])
    assert rc == 2 and ".usdz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["-q", "export", str(scene), "-o", str(tmp_path / "x.usdz"), "--target", "hololens"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "x.usdz").exists()


def test_particle_field_metres_only_when_metric(tmp_path):
    from pxr import Usd

    from realsim.assets.ply import GaussianCloud
    from realsim.assets.usd import read_usd, write_usd

    rng = np.random.default_rng(0)
    g = GaussianCloud(rng.normal(size=(20, 3)).astype(np.float32), np.tile(np.float32([1, 0, 0, 0]), (20, 1)),
                      np.full((20, 3), 0.1, np.float32), np.full(20, 0.5, np.float32), rng.normal(size=(20, 4, 3)).astype(np.float32))
    write_usd(tmp_path / "m.usda", g, metric=True)
    write_usd(tmp_path / "n.usda", g, metric=False)
    assert read_usd(tmp_path / "m.usda")[1]["meters_per_unit"] == 1.0
    back, info = read_usd(tmp_path / "n.usda")
    assert info == {"up_axis": "Z", "meters_per_unit": None} and len(back) == 20
    stage = Usd.Stage.Open(str(tmp_path / "n.usda"))
    prim = stage.GetPrimAtPath("/World/Gaussians")
    assert prim.GetCustomDataByKey("realsim:metric") is False
    assert "sRGB" in prim.GetCustomDataByKey("realsim:shConvention")


def test_export_arkit_and_mesh_cli_end_to_end(tmp_path, capsys):
    """A tiny metric scene through `realsim export --target arkit` and `realsim mesh`: files valid, read back."""
    import json

    import trimesh

    from realsim.cli.main import main

    scene = _bundle(tmp_path, metric=True)
    out = tmp_path / "a.usdz"
    rc = main(["-q", "export", str(scene), "-o", str(out), "--target", "arkit", "--triangles", "2000",
               "--texture-size", "128", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and out.is_file() and 0 < rep["triangles"] <= 2000 and rep["texture_size"] == 128
    assert rep["validator_errors"] == [] and rep["arkit_problems"] == [] and rep["budget_problems"] == []
    assert validate_usd(out)["errors"] == [] and arkit_problems(out) == []
    rc = main(["-q", "mesh", str(scene), "-o", str(tmp_path / "a.glb"), "--triangles", "2000", "--texture-size", "128"])
    line = capsys.readouterr().out
    assert rc == 0 and "training (no held-out cameras) views" in line
    g = trimesh.load(tmp_path / "a.glb", force="mesh", process=False)
    assert len(g.faces) == rep["triangles"]
    assert main(["-q", "mesh", str(scene), "-o", str(tmp_path / "a.stl")]) == 2


def test_gaussian_usd_export_cli_validates(tmp_path, capsys):
    """`realsim export -o x.usda` runs every validator: a metric scene passes; a non-metric one has exactly the missing
    metersPerUnit, reported as expected (with its reason), not as an error."""
    from pxr import Usd

    from realsim.cli.main import main

    for metric in (True, False):
        scene = _bundle(tmp_path / str(metric), metric=metric)
        out = tmp_path / f"g{metric}.usda"
        rc = main(["-q", "export", str(scene), "-o", str(out), "--no-eval", "--json"])
        rep = __import__("json").loads(capsys.readouterr().out)
        assert rc == 0 and rep["validator_errors"] == [] and rep["validator_warnings"] == []
        assert [e.split(":")[0] for e in rep["validator_expected"]] == ([] if metric else ["MissingMetersPerUnitMetadata"])
        stage = Usd.Stage.Open(str(out))
        assert stage.GetRootLayer().customLayerData["realsim:metric"] is metric
