"""A simulation as USD: `realsim simulate --usdz` (agents as UsdSkel, props, camera; every usd-core validator + our ARKit
rules) and `realsim export --target physics --sim` (UsdPhysics colliders and rigid bodies read back with their values)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from viewer_helpers import make_scene  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_log_handlers")

SCENARIO = """duration: 1.0
fps: 10
seed: 0
agents:
  - count: 2
props:
  - {shape: sphere, size: [0.11], position: auto, velocity: [1.5, 0, 0], mass: 0.43, friction: 0.6, restitution: 0.7}
  - {shape: box, size: [0.3, 0.2, 0.4], position: auto, mass: 2.0, friction: 0.4, restitution: 0.1}
  - {shape: capsule, size: [0.08, 0.5], position: auto, density: 300, friction: 0.3, restitution: 0.3}
"""
Y_UP = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # /Root's rotateX(-90): world (x, y, z) -> USD (x, z, -y)


@pytest.fixture(scope="module")
def sim_usdz(tmp_path_factory):
    from realsim.cli.main import main

    d = tmp_path_factory.mktemp("usdsim")
    scene = make_scene(d / "scene", sfm_points=True, photos=False)
    (d / "sc.yaml").write_text(SCENARIO)
    out = d / "sim.usdz"
    rc = main(["-q", "simulate", str(scene), "-o", str(d / "sim"), "--scenario", str(d / "sc.yaml"), "--width", "96",
               "--height", "72", "--usdz", str(out), "--usdz-triangles", "2000", "--usdz-texture-size", "128"])
    assert rc == 0
    return scene, d / "sim", out


def _frames(sim_dir) -> int:
    return json.loads((sim_dir / "sim.json").read_text())["frames"]


def test_sim_usdz_valid_with_mesh_skeleton_props_camera(sim_usdz):
    import zipfile

    from pxr import Usd, UsdGeom, UsdSkel

    from realsim.assets.scene import load_tensors
    from realsim.assets.usd_ar import arkit_problems, validate_usd

    _, sim_dir, out = sim_usdz
    val = validate_usd(out)
    assert len(val["validators"]) >= 25 and val["errors"] == [] and val["warnings"] == [], val
    assert arkit_problems(out) == []
    names = zipfile.ZipFile(out).namelist()
    assert names[0].endswith(".usdc") and any(n.endswith(".png") for n in names)
    stage = Usd.Stage.Open(str(out))
    T = _frames(sim_dir)
    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetDefaultPrim().GetPath() == "/Root"
    assert stage.GetTimeCodesPerSecond() == 10.0 and (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0, T - 1)
    assert len(UsdGeom.Mesh(stage.GetPrimAtPath("/Root/World/Scene")).GetFaceVertexIndicesAttr().Get()) > 300
    _, meta = load_tensors(sim_dir / "motion.safetensors")
    n_joints = len(json.loads(meta["skeleton"])["names"])
    roots = [p for p in stage.Traverse() if p.IsA(UsdSkel.Root)]
    assert len(roots) == 2
    for r in roots:
        skel = UsdSkel.Skeleton(r.GetChild("Skeleton"))
        assert len(skel.GetJointsAttr().Get()) == n_joints == 21
        anim = UsdSkel.Animation(r.GetChild("Animation"))
        assert anim.GetRotationsAttr().GetTimeSamples() == list(range(T))
        assert anim.GetTranslationsAttr().GetTimeSamples() == list(range(T))
        body = UsdSkel.BindingAPI(r.GetChild("Body"))
        assert body.GetSkeletonRel().GetTargets() == [skel.GetPath()]
    props = json.loads((sim_dir / "props.json").read_text())["props"]
    for i, p in enumerate(props):  # each prop's origin follows props.json, in the Y-up frame
        x = UsdGeom.Xformable(stage.GetPrimAtPath(f"/Root/Props/Prop{i}"))
        assert len(x.GetXformOpOrderAttr().Get()) == 2 and x.GetOrderedXformOps()[0].GetTimeSamples() == list(range(T))
        for t in (0, T - 1):
            M = np.array(x.ComputeLocalToWorldTransform(t)).T
            np.testing.assert_allclose(M[:3, 3], Y_UP @ p["position"][t], atol=1e-5)
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/Root/Camera"))
    assert cam.GetPrim().GetAttribute("xformOp:transform").GetTimeSamples() == list(range(T))


def test_skinned_bodies_follow_the_sim(sim_usdz):
    """UsdSkel's own skinning of the exported bodies reproduces the sim's BodyModel vertices (what the video shows)."""
    from pxr import Usd, UsdSkel

    from realsim.sim.body import BodyModel
    from realsim.sim.usd_record import load_sim_record
    from realsim.assets.skeleton import Skeleton

    scene, sim_dir, out = sim_usdz
    rec = load_sim_record(sim_dir, scene)
    body = BodyModel(Skeleton(rec.names, np.array(rec.parents), np.zeros((len(rec.names), 3))))
    stage = Usd.Stage.Open(str(out))
    cache = UsdSkel.Cache()
    errs = []
    for a in range(rec.n_agents):
        root = UsdSkel.Root(stage.GetPrimAtPath(f"/Root/Agents/Agent{a}"))
        cache.Populate(root, Usd.PrimDefaultPredicate)
        (binding,) = cache.ComputeSkelBindings(root, Usd.PrimDefaultPredicate)
        q = cache.GetSkelQuery(binding.GetSkeleton())
        (target,) = binding.GetSkinningTargets()
        for t in range(rec.n_frames):
            pts = target.GetPrim().GetAttribute("points").Get(t)
            assert target.ComputeSkinnedPoints(q.ComputeSkinningTransforms(t), pts, t)
            ref = body.vertices(rec.joints[t, a][None], rec.heading[t, a:a + 1], [rec.looks[a]])[0]
            errs.append(np.linalg.norm(np.asarray(pts) - ref, axis=1))
    e = np.stack(errs)  # [A*T, V]
    # the rig is the body's own linear blend skinning (bind pose, weights, joint rotations): equal up to float32
    print(f"\nskinned vs sim body: median {100 * np.median(e):.4f} cm, max {100 * e.max():.4f} cm")
    assert e.max() < 1e-4


def test_camera_projects_like_the_sim(sim_usdz):
    """A world point projects through the USD camera (Gf frustum, Y-up stage) where the sim's K and viewmat put it."""
    from pxr import Gf, Usd, UsdGeom

    from realsim.sim.usd_record import load_sim_record

    scene, sim_dir, out = sim_usdz
    rec = load_sim_record(sim_dir, scene)
    stage = Usd.Stage.Open(str(out))
    cam = UsdGeom.Camera(stage.GetPrimAtPath("/Root/Camera"))
    for t in (0, rec.n_frames - 1):
        fr = cam.GetCamera(t).frustum
        V, K = rec.viewmats[t], rec.Ks[t]
        X = -V[:3, :3].T @ V[:3, 3] + V[:3, :3].T @ np.array([0.3, -0.2, 4.0])  # 4 m in front of the camera
        uvw = K @ (V[:3, :3] @ X + V[:3, 3])
        px = uvw[:2] / uvw[2]
        ndc = fr.ComputeProjectionMatrix().Transform(fr.ComputeViewMatrix().Transform(Gf.Vec3d(*(Y_UP @ X))))
        usd_px = np.array([(ndc[0] + 1) / 2 * rec.width, (1 - ndc[1]) / 2 * rec.height])
        np.testing.assert_allclose(usd_px, px, atol=1e-3)


def test_physics_stage_reads_back(sim_usdz, tmp_path, capsys):
    from pxr import Usd, UsdGeom, UsdPhysics, UsdShade

    from realsim.assets.usd_ar import validate_usd
    from realsim.cli.main import main

    scene, sim_dir, _ = sim_usdz
    out = tmp_path / "phys.usda"
    rc = main(["-q", "export", str(scene), "-o", str(out), "--target", "physics", "--sim", str(sim_dir), "--triangles", "2000",
               "--texture-size", "128", "--gaussians", "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep["validator_errors"] == [] and validate_usd(out)["errors"] == []
    stage = Usd.Stage.Open(str(out))
    assert UsdGeom.GetStageUpAxis(stage) == "Z" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    ps = UsdPhysics.Scene(stage.GetPrimAtPath("/Root/PhysicsScene"))
    assert tuple(ps.GetGravityDirectionAttr().Get()) == (0, 0, -1) and ps.GetGravityMagnitudeAttr().Get() == pytest.approx(9.81)
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    statics = [p for p in colliders if p.GetPath().HasPrefix("/Root/Colliders")]
    boxes = [p for p in statics if p.IsA(UsdGeom.Cube)]
    # exactly the static boxes MuJoCo simulated with (props.json)
    sim_boxes = np.asarray(json.loads((sim_dir / "props.json").read_text())["static_colliders"]["boxes"])
    assert len(boxes) == len(sim_boxes) == rep["boxes"] > 0 and rep["boxes_from"] == "sim"
    got = []
    for b in boxes:
        M = np.asarray(UsdGeom.Xformable(b).ComputeLocalToWorldTransform(0)).T  # unit cube: centre + extents
        got.append(np.r_[M[:3, 3] - np.diag(M)[:3] / 2, M[:3, 3] + np.diag(M)[:3] / 2])
    np.testing.assert_allclose(np.array(got), sim_boxes, atol=1e-5)
    ground = UsdGeom.Mesh(stage.GetPrimAtPath("/Root/Colliders/Ground"))
    assert ground.GetPrim().HasAPI(UsdPhysics.CollisionAPI) and abs(np.asarray(ground.GetPointsAttr().Get())[:, 2]).max() < 0.05
    assert not any(p.HasAPI(UsdPhysics.RigidBodyAPI) for p in statics)
    props = json.loads((sim_dir / "props.json").read_text())["props"]
    for i, p in enumerate(props):
        prim = stage.GetPrimAtPath(f"/Root/Props/Prop{i}")
        rb = UsdPhysics.RigidBodyAPI(prim)
        assert prim.HasAPI(UsdPhysics.RigidBodyAPI) and prim.HasAPI(UsdPhysics.MassAPI)
        assert UsdPhysics.MassAPI(prim).GetMassAttr().Get() == pytest.approx(p["mass_kg"], rel=1e-6)
        np.testing.assert_allclose(rb.GetVelocityAttr().Get(), p["velocity"][0], atol=1e-5)
        np.testing.assert_allclose(np.asarray(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(0))[3, :3],
                                   p["position"][0], atol=1e-5)
        col = prim.GetChild("Collider")
        mat, _ = UsdShade.MaterialBindingAPI(col).ComputeBoundMaterial("physics")
        m = UsdPhysics.MaterialAPI(mat.GetPrim())
        assert m.GetDynamicFrictionAttr().Get() == pytest.approx(p["friction"])
        assert m.GetRestitutionAttr().Get() == pytest.approx(p["restitution"])
        shape = {"sphere": UsdGeom.Sphere, "box": UsdGeom.Cube, "capsule": UsdGeom.Capsule}[p["shape"]]
        assert col.IsA(shape) and col.HasAPI(UsdPhysics.CollisionAPI)
    assert UsdGeom.Sphere(stage.GetPrimAtPath("/Root/Props/Prop0/Collider")).GetRadiusAttr().Get() == pytest.approx(0.11)
    assert UsdPhysics.MassAPI(stage.GetPrimAtPath("/Root/Props/Prop2")).GetMassAttr().Get() == pytest.approx(
        300 * (np.pi * 0.08 ** 2 * (0.5 - 0.16) + 4 / 3 * np.pi * 0.08 ** 3), rel=1e-4)
    cap = UsdGeom.Capsule(stage.GetPrimAtPath("/Root/Props/Prop2/Collider"))
    assert cap.GetHeightAttr().Get() == pytest.approx(0.5 - 0.16) and cap.GetAxisAttr().Get() == "Z"
    assert stage.GetPrimAtPath("/Root/World/Gaussians").GetTypeName() == "ParticleField3DGaussianSplat"
    # without a sim: the scene's colliders as `simulate` gets them, no props
    rc = main(["-q", "export", str(scene), "-o", str(tmp_path / "s.usdc"), "--target", "physics", "--triangles", "500",
               "--texture-size", "64", "--json"])
    rep2 = json.loads(capsys.readouterr().out)
    assert rc == 0 and rep2["validator_errors"] == [] and rep2["props"] == 0 and rep2["boxes"] == len(sim_boxes)


def test_bad_usd_inputs(sim_usdz, tmp_path, capsys):
    from realsim.cli.main import main

    scene, sim_dir, _ = sim_usdz
    other = make_scene(tmp_path / "other", photos=False)
    cases = [
        (["export", str(other), "-o", str(tmp_path / "a.usdz"), "--target", "arkit", "--sim", str(sim_dir)], "was made from scene"),
        (["export", str(scene), "-o", str(tmp_path / "a.usdz"), "--target", "physics"], ".usd, .usda or .usdc"),
        (["export", str(scene), "-o", str(tmp_path / "a.usdz"), "--target", "arkit", "--gaussians"], "--gaussians"),
        (["export", str(scene), "-o", str(tmp_path / "a.usda"), "--target", "physics", "--sim", str(tmp_path)],
         "not a realsim sim output folder"),
        (["simulate", str(scene), "-o", str(tmp_path / "s"), "--agents", "1", "--usdz", str(tmp_path / "x.usda")], ".usdz"),
        (["export", str(scene), "-o", str(tmp_path / "a.ply"), "--sim", str(sim_dir)], "--target arkit or physics"),
    ]
    for argv, want in cases:
        rc = main(["-q", *argv])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and want in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob("a.*"))


def test_simulate_bvh_read_back_by_bvhio_reproduces_the_joints(sim_usdz, tmp_path):
    """`simulate --bvh`: one file per agent, read by an outside BVH library (bvhio); its forward kinematics, mapped back
    from Y up, lands on the sim's joints (the skinned body's rotations on the agent's own bone lengths)."""
    import bvhio

    from realsim.assets.bvh import read_bvh
    from realsim.cli.main import main
    from realsim.sim.bvh_export import WORLD_TO_BVH
    from realsim.sim.usd_record import load_sim_record

    scene, sim_dir, _ = sim_usdz
    out = tmp_path / "bvh"
    rc = main(["-q", "simulate", str(scene), "-o", str(tmp_path / "sim"), "--scenario", str(sim_dir.parent / "sc.yaml"),
               "--width", "64", "--height", "48", "--bvh", str(out)])
    assert rc == 0
    rec = load_sim_record(tmp_path / "sim", scene)
    files = sorted(out.glob("*.bvh"))
    assert [f.name for f in files] == [f"agent_{a:02d}.bvh" for a in range(rec.n_agents)] and rec.n_agents == 2
    for a, f in enumerate(files):
        ours = read_bvh(f)
        assert ours.names == list(rec.names) and ours.n_frames == rec.n_frames and ours.fps == pytest.approx(rec.fps)
        root = bvhio.readAsHierarchy(str(f))
        joints = {j.Name: j for j, *_ in root.layout()}
        err = []
        for t in range(rec.n_frames):
            root.loadPose(t)
            P = np.array([list(joints[n].PositionWorld) for n in rec.names]) @ WORLD_TO_BVH  # BVH -> world
            err.append(np.linalg.norm(P - rec.joints[t, a], axis=1))
        err = np.array(err)  # [T,J] metres
        print(f"agent {a}: BVH joints vs sim median {1000 * np.median(err):.2f} mm, max {1000 * err.max():.2f} mm")
        assert np.median(err) < 0.005 and err.max() < 0.01, (np.median(err), err.max())  # measured 2.3 / 4.2 mm
        moved = np.linalg.norm(rec.joints[-1, a, 0] - rec.joints[0, a, 0])
        assert moved > 0.3  # the agent walks: the root channel carries it
    rc = main(["-q", "simulate", str(scene), "-o", str(tmp_path / "sim2"), "--bvh", str(files[0])])
    assert rc == 2  # an existing file is not a folder for --bvh
