"""Animated USD content over plain arrays: skinned agents (UsdSkel), rigid animated transforms, an animated camera.

Pure writers (no recon/sim imports). Frame t of a simulation is time code t; `set_time_range` sets timeCodesPerSecond to
the sim's fps. Matrices are given as numpy [..,4,4] acting on column vectors (realsim's convention) and transposed into
Gf's row-vector matrices here. Colours are sRGB-encoded values in [0, 1] (as everywhere in realsim), used as
UsdPreviewSurface diffuseColor constants (one material per colour, bound to GeomSubsets of the mesh).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .frames import CV_TO_GL, rotmat_to_quat
from .usd_ar import define_triangle_mesh

__all__ = ["set_time_range", "color_materials", "add_colored_mesh", "add_skinned_agent", "add_animated_xform",
           "add_animated_camera", "local_from_world", "joint_paths", "FILM_WIDTH"]

FILM_WIDTH = 36.0  # horizontalAperture of exported cameras (USD lens units; only focalLength / aperture matters)


def _gf(m: np.ndarray):
    """Column-vector 4x4 -> Gf.Matrix4d (row vectors)."""
    from pxr import Gf

    return Gf.Matrix4d(np.asarray(m, np.float64).T.tolist())


def _quats(q: np.ndarray):
    """wxyz [N,4] -> Vt.QuatfArray (stored x, y, z, w)."""
    from pxr import Vt

    return Vt.QuatfArray.FromNumpy(np.ascontiguousarray(np.asarray(q, np.float32)[:, [1, 2, 3, 0]]))


def set_time_range(stage, n_frames: int, fps: float) -> None:
    """Time code t = frame t; timeCodesPerSecond = framesPerSecond = the sim's fps."""
    stage.SetStartTimeCode(0)
    stage.SetEndTimeCode(max(int(n_frames) - 1, 0))
    stage.SetTimeCodesPerSecond(float(fps))
    stage.SetFramesPerSecond(float(fps))


def color_materials(stage, looks: str, prefix: str, colors: Sequence[Sequence[float]]) -> list[Any]:
    """One UsdPreviewSurface material per colour (sRGB [0,1] diffuse, roughness 0.8) under `looks`."""
    from pxr import Gf, Sdf, UsdShade

    out = []
    for k, c in enumerate(colors):
        mat = UsdShade.Material.Define(stage, f"{looks}/{prefix}{k}")
        pbr = UsdShade.Shader.Define(stage, f"{looks}/{prefix}{k}/PreviewSurface")
        pbr.CreateIdAttr("UsdPreviewSurface")
        pbr.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*[float(np.clip(v, 0, 1)) for v in c[:3]]))
        pbr.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.8)
        pbr.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
        mat.CreateSurfaceOutput().ConnectToSource(pbr.ConnectableAPI(), "surface")
        out.append(mat)
    return out


def add_colored_mesh(stage, path: str, points: np.ndarray, faces: np.ndarray, face_group: np.ndarray, materials: list[Any]):
    """A triangle mesh whose faces are split into GeomSubsets (familyName materialBind, partition) by face_group [F]
    (index into materials); points [V,3] in the parent's frame."""
    from pxr import UsdGeom, UsdShade, Vt

    mesh = define_triangle_mesh(stage, path, points, faces)
    bind = UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim())
    groups = np.unique(face_group)
    if len(groups) == 1:
        bind.Bind(materials[int(groups[0])])
        return mesh
    for g in groups:
        sub = bind.CreateMaterialBindSubset(f"part{int(g)}", Vt.IntArray.FromNumpy(np.nonzero(face_group == g)[0].astype(np.int32)))
        UsdShade.MaterialBindingAPI.Apply(sub.GetPrim()).Bind(materials[int(g)])
    bind.SetMaterialBindSubsetsFamilyType(UsdGeom.Tokens.partition)
    return mesh


def local_from_world(world: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """Rigid world matrices [...,J,4,4] -> local ones (relative to the parent joint; the root's stays as is)."""
    W = np.asarray(world, np.float64)
    L = W.copy()
    for j, p in enumerate(parents):
        if p >= 0:
            Rp = W[..., p, :3, :3]
            L[..., j, :3, :3] = Rp.swapaxes(-1, -2) @ W[..., j, :3, :3]
            L[..., j, :3, 3] = (Rp.swapaxes(-1, -2) @ (W[..., j, :3, 3] - W[..., p, :3, 3])[..., None])[..., 0]
    return L


def joint_paths(names: Sequence[str], parents: Sequence[int]) -> list[str]:
    """UsdSkel joint tokens ("Hips/Spine/Chest") from names (made valid identifiers) and parents."""
    from pxr import Tf

    clean = [Tf.MakeValidIdentifier(str(n)) for n in names]
    out: list[str] = []
    for j, p in enumerate(parents):
        out.append(clean[j] if p < 0 else f"{out[p]}/{clean[j]}")
    return out


def add_skinned_agent(stage, path: str, names: Sequence[str], parents: Sequence[int], world: np.ndarray, points: np.ndarray,
                      faces: np.ndarray, joint_indices: np.ndarray, joint_weights: np.ndarray, face_group: np.ndarray,
                      materials: list[Any], extents: np.ndarray | None = None, bind_frame: int = 0,
                      bind: np.ndarray | None = None):
    """path (SkelRoot)/{Skeleton, Animation, Body}: joints `names` with `parents`, rigid world transforms world [T,J,4,4]
    per frame (time code t), bind pose = frame bind_frame (or the world transforms bind [J,4,4] of a pose of its own),
    body points [V,3] posed at the bind pose, skinned by joint_indices / joint_weights [V,k]; extents [T,2,3] (the
    posed body's box per frame) go on the SkelRoot."""
    from pxr import Gf, UsdSkel, Vt

    W = np.asarray(world, np.float64)
    T, J = W.shape[:2]
    tokens = joint_paths(names, parents)
    root = UsdSkel.Root.Define(stage, path)
    skel = UsdSkel.Skeleton.Define(stage, f"{path}/Skeleton")
    skel.CreateJointsAttr(Vt.TokenArray(tokens))
    skel.CreateJointNamesAttr(Vt.TokenArray([str(n) for n in names]))
    Wb = W[bind_frame] if bind is None else np.asarray(bind, np.float64)
    skel.CreateBindTransformsAttr(Vt.Matrix4dArray([_gf(m) for m in Wb]))
    L = local_from_world(W, parents)
    skel.CreateRestTransformsAttr(Vt.Matrix4dArray([_gf(m) for m in local_from_world(Wb, parents)]))
    anim = UsdSkel.Animation.Define(stage, f"{path}/Animation")
    anim.CreateJointsAttr(Vt.TokenArray(tokens))
    q = rotmat_to_quat(L[..., :3, :3])  # [T,J,4] wxyz
    tr, rot = anim.CreateTranslationsAttr(), anim.CreateRotationsAttr()
    for t in range(T):
        tr.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(L[t, :, :3, 3], np.float32)), t)
        rot.Set(_quats(q[t]), t)
    anim.CreateScalesAttr().Set(Vt.Vec3hArray([Gf.Vec3h(1, 1, 1)] * J))
    UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])
    mesh = add_colored_mesh(stage, f"{path}/Body", points, faces, face_group, materials)
    b = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    b.CreateSkeletonRel().SetTargets([skel.GetPath()])
    k = joint_indices.shape[1]
    b.CreateJointIndicesPrimvar(False, k).Set(Vt.IntArray.FromNumpy(np.ascontiguousarray(joint_indices, np.int32).reshape(-1)))
    b.CreateJointWeightsPrimvar(False, k).Set(Vt.FloatArray.FromNumpy(np.ascontiguousarray(joint_weights, np.float32).reshape(-1)))
    b.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
    if extents is not None:
        ext = root.CreateExtentAttr()
        for t, e in enumerate(np.asarray(extents, np.float32)):
            ext.Set(Vt.Vec3fArray([Gf.Vec3f(*map(float, e[0])), Gf.Vec3f(*map(float, e[1]))]), t)
    return root


def add_animated_xform(stage, path: str, position: np.ndarray, quat: np.ndarray, animate: bool = True):
    """An Xform with translate + orient ops: time-sampled from position [T,3] and quat [T,4] (wxyz), or, with
    animate=False, the first frame as the default value (a rigid body's initial state)."""
    from pxr import Gf, UsdGeom

    x = UsdGeom.Xform.Define(stage, path)
    top = x.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble)
    rop = x.AddOrientOp(UsdGeom.XformOp.PrecisionFloat)
    P = np.asarray(position, np.float64)
    Q = np.asarray(quat, np.float64)
    Q = Q / np.linalg.norm(Q, axis=-1, keepdims=True)
    for t in range(len(P) if animate else 1):
        w, a, b, c = map(float, Q[t])
        when = t if animate else None
        top.Set(Gf.Vec3d(*map(float, P[t])), *([when] if when is not None else []))
        rop.Set(Gf.Quatf(w, a, b, c), *([when] if when is not None else []))
    return x


def add_animated_camera(stage, path: str, viewmats: np.ndarray, Ks: np.ndarray, width: int, height: int,
                        clip: tuple[float, float] = (0.05, 500.0)):
    """A perspective UsdGeom.Camera following OpenCV world-to-camera viewmats [T,4,4] with intrinsics Ks [T,3,3] for a
    width x height image: xformOp:transform per time code (camera-to-world with the camera's y and z flipped: USD cameras
    look down -Z with +Y up), focalLength / apertures from fx, fy (horizontalAperture = FILM_WIDTH), the principal point
    as aperture offsets."""
    from pxr import Gf, UsdGeom

    cam = UsdGeom.Camera.Define(stage, path)
    op = cam.AddTransformOp()
    V = np.asarray(viewmats, np.float64)
    K = np.asarray(Ks, np.float64)
    f_at, ha_at, va_at, ho_at, vo_at = (cam.CreateFocalLengthAttr(), cam.CreateHorizontalApertureAttr(),
                                        cam.CreateVerticalApertureAttr(), cam.CreateHorizontalApertureOffsetAttr(),
                                        cam.CreateVerticalApertureOffsetAttr())
    cam.CreateProjectionAttr(UsdGeom.Tokens.perspective)
    cam.CreateClippingRangeAttr(Gf.Vec2f(*map(float, clip)))
    same_k = bool(np.allclose(K, K[:1]))
    for t in range(len(V)):
        op.Set(_gf(np.linalg.inv(V[t]) @ CV_TO_GL), t)
        if same_k and t > 0:
            continue
        fx, fy, cx, cy = K[t, 0, 0], K[t, 1, 1], K[t, 0, 2], K[t, 1, 2]
        focal = FILM_WIDTH * fx / width
        vals = (focal, FILM_WIDTH, focal * height / fy, -(cx - width / 2) / fx * focal, (cy - height / 2) / fy * focal)
        for a, v in zip((f_at, ha_at, va_at, ho_at, vo_at), vals):
            a.Set(float(v)) if same_k else a.Set(float(v), t)
    return cam
