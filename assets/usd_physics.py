"""UsdPhysics content over plain arrays: a physics scene, static colliders, rigid props, physics materials.

Pure writers (no recon/sim imports). Units are the stage's (metres: metersPerUnit 1, kilograms: kilogramsPerUnit 1);
gravity is -Z (the stage is Z-up, as realsim's world). Static colliders carry CollisionAPI only (no RigidBodyAPI: static);
a prop is an Xform with RigidBodyAPI + MassAPI (mass in kg, initial velocity in m/s and angular velocity in degrees/s, as
UsdPhysics defines them) whose child Collider is the exact implicit shape (Sphere / Cube / Capsule / Cylinder along Z, as
MuJoCo's) with CollisionAPI and a physics material (friction, restitution). Colliders use purpose "guide" so viewers draw
the visual meshes, not them.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .usd_ar import define_triangle_mesh

__all__ = ["add_physics_scene", "physics_material", "add_static_mesh_collider", "add_box_colliders", "add_rigid_prop",
           "GRAVITY"]

GRAVITY = 9.81  # m/s^2 along -Z


def add_physics_scene(stage, path: str):
    from pxr import Gf, UsdPhysics

    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    s = UsdPhysics.Scene.Define(stage, path)
    s.CreateGravityDirectionAttr(Gf.Vec3f(0.0, 0.0, -1.0))
    s.CreateGravityMagnitudeAttr(GRAVITY)
    return s


def physics_material(stage, path: str, friction: float, restitution: float, combine_max: bool = False):
    """A UsdShade.Material with UsdPhysics.MaterialAPI (static = dynamic friction). combine_max: also apply PhysX's
    PhysxMaterialAPI with combine modes "max" (as MuJoCo takes the larger friction; PhysX's default is the average)."""
    from pxr import Sdf, UsdPhysics, UsdShade

    mat = UsdShade.Material.Define(stage, path)
    api = UsdPhysics.MaterialAPI.Apply(mat.GetPrim())
    api.CreateStaticFrictionAttr(float(friction))
    api.CreateDynamicFrictionAttr(float(friction))
    api.CreateRestitutionAttr(float(restitution))
    if combine_max:  # PhysxSchema's API by name (usd-core has no PhysxSchema): PhysX / Isaac Sim read it
        mat.GetPrim().AddAppliedSchema("PhysxMaterialAPI")
        for k in ("frictionCombineMode", "restitutionCombineMode"):
            mat.GetPrim().CreateAttribute(f"physxMaterial:{k}", Sdf.ValueTypeNames.Token, custom=True).Set("max")
    return mat


def _bind_physics(prim, mat) -> None:
    from pxr import UsdShade

    UsdShade.MaterialBindingAPI.Apply(prim).Bind(mat, UsdShade.Tokens.weakerThanDescendants, "physics")


def add_static_mesh_collider(stage, path: str, vertices: np.ndarray, faces: np.ndarray, material=None):
    """A static triangle-mesh collider (MeshCollisionAPI approximation "none": the triangles themselves)."""
    from pxr import UsdGeom, UsdPhysics

    m = define_triangle_mesh(stage, path, vertices, faces)
    m.CreatePurposeAttr(UsdGeom.Tokens.guide)
    UsdPhysics.CollisionAPI.Apply(m.GetPrim())
    UsdPhysics.MeshCollisionAPI.Apply(m.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.none)
    if material is not None:
        _bind_physics(m.GetPrim(), material)
    return m


def add_box_colliders(stage, parent: str, boxes: np.ndarray, material=None, prefix: str = "Box") -> list[Any]:
    """Axis-aligned static boxes [N,6] (x0, y0, z0, x1, y1, z1) as unit Cubes with translate + scale ops."""
    from pxr import Gf, UsdGeom, UsdPhysics

    out = []
    for k, b in enumerate(np.asarray(boxes, np.float64).reshape(-1, 6)):
        c = UsdGeom.Cube.Define(stage, f"{parent}/{prefix}{k}")
        c.CreateSizeAttr(1.0)
        c.AddTranslateOp().Set(Gf.Vec3d(*map(float, (b[:3] + b[3:]) / 2)))
        c.AddScaleOp().Set(Gf.Vec3f(*map(float, b[3:] - b[:3])))
        c.CreatePurposeAttr(UsdGeom.Tokens.guide)
        UsdPhysics.CollisionAPI.Apply(c.GetPrim())
        if material is not None:
            _bind_physics(c.GetPrim(), material)
        out.append(c)
    return out


def add_rigid_prop(stage, path: str, shape: str, size: Sequence[float], mass: float, velocity: Sequence[float],
                   angular_velocity: Sequence[float], material=None):
    """RigidBodyAPI + MassAPI on the (already defined) Xform at path, and its exact implicit collider path/Collider.
    size as realsim's props: sphere (r,), box (x, y, z) full extents, capsule / cylinder (r, length end to end), along Z.
    angular_velocity in rad/s (world) -> degrees/s as UsdPhysics stores it."""
    from pxr import Gf, UsdGeom, UsdPhysics

    prim = stage.GetPrimAtPath(path)
    rb = UsdPhysics.RigidBodyAPI.Apply(prim)
    rb.CreateVelocityAttr(Gf.Vec3f(*map(float, velocity)))
    rb.CreateAngularVelocityAttr(Gf.Vec3f(*map(float, np.degrees(np.asarray(angular_velocity, np.float64)))))
    UsdPhysics.MassAPI.Apply(prim).CreateMassAttr(float(mass))
    s = [float(v) for v in size]
    cp = f"{path}/Collider"
    if shape == "sphere":
        g = UsdGeom.Sphere.Define(stage, cp)
        g.CreateRadiusAttr(s[0])
        g.CreateExtentAttr([Gf.Vec3f(-s[0]), Gf.Vec3f(s[0])])
    elif shape == "box":
        g = UsdGeom.Cube.Define(stage, cp)
        g.CreateSizeAttr(1.0)
        g.AddScaleOp().Set(Gf.Vec3f(*s[:3]))
    elif shape in ("capsule", "cylinder"):
        r, length = s[0], s[1]
        g = (UsdGeom.Capsule if shape == "capsule" else UsdGeom.Cylinder).Define(stage, cp)
        g.CreateRadiusAttr(r)
        g.CreateAxisAttr(UsdGeom.Tokens.z)
        h = max(length - 2 * r, 1e-4) if shape == "capsule" else length  # capsule height: the cylinder part
        g.CreateHeightAttr(h)
        g.CreateExtentAttr([Gf.Vec3f(-r, -r, -length / 2), Gf.Vec3f(r, r, length / 2)])
    else:
        raise ValueError(f"unknown prop shape {shape!r}")
    g.CreatePurposeAttr(UsdGeom.Tokens.guide)
    UsdPhysics.CollisionAPI.Apply(g.GetPrim())
    if material is not None:
        _bind_physics(g.GetPrim(), material)
    return rb
