"""A reconstructed scene with its simulation as USD: the AR-ready USDZ (Y-up, for AR Quick Look / Vision Pro) and the
physics-ready stage (Z-up, UsdPhysics colliders and rigid bodies).

Layout (both): default prim /Root; /Root/World/Scene the textured mesh (recon.mesh) in metres; /Root/Agents/Agent<i> a
SkelRoot per agent (Skeleton with the sim's joints, Animation sampled at every frame, Body skinned to it: sim.usd_rig);
/Root/Props/Prop<i> an Xform per prop with its mesh; /Root/Camera the sim's camera path; /Root/Looks the materials.
Frame t is time code t, timeCodesPerSecond = the sim's fps, metersPerUnit 1.
- AR (`write_sim_usdz`): upAxis Y, /Root rotated -90 degrees about X (as `export --target arkit`); props animated from
  props.json (translate + orient per frame).
- Physics (`write_physics_usd`): upAxis Z (realsim's world, gravity -Z 9.81 in /Root/PhysicsScene); static colliders
  under /Root/Colliders: the World's ground (its plane as one quad, or its height field at cell centres as triangles) and
  the static boxes MuJoCo simulated with (the sim's props.json, else sim.physics.colliders for the scene); props as rigid bodies at
  their first-frame state (pose, velocity, angular velocity) with mass and their own friction / restitution, the static
  colliders frictionless and dead (0 / 0) with PhysX combine modes "max" (MuJoCo takes the larger friction and the prop's
  restitution). Agents are animation only (no colliders). Optionally the Gaussians as a ParticleField prim.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .usd_record import SimRecord

__all__ = ["sim_content", "physics_content", "static_boxes", "scene_ar_mesh", "write_sim_usdz", "write_physics_usd", "ground_mesh"]


def _prop_spec(p: dict):
    from .scenario import PropSpec

    return PropSpec(p["shape"], tuple(float(v) for v in p["size"]), color=tuple(float(c) for c in p.get("color", (0.8, 0.4, 0.1))))


def _prop_mesh_groups(p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """(vertices, faces, face_group, colours) of a prop: its colour and the darker spin band."""
    from .physics.mesh import prop_mesh

    v, f, col = prop_mesh(_prop_spec(p))
    base = np.asarray(p.get("color", col[0]), np.float64)
    band = ~np.isclose(col[f[:, 0]], base).all(1)
    return v, f, band.astype(np.int64), [base, base * 0.45]


def sim_content(rec: SimRecord, animate_props: bool = True, progress: ProgressFn | None = None) -> Callable[[Any, str], None]:
    """A `write_scene_usd` extra: agents (UsdSkel), props, camera and the time range of the simulation `rec`."""
    from realsim.assets.usd_skel import (add_animated_camera, add_animated_xform, add_colored_mesh, add_skinned_agent,
                                         color_materials, set_time_range)
    from realsim.assets.skeleton import Skeleton

    from .body import BodyModel
    from .usd_rig import agent_rig

    def fill(stage, root: str) -> None:
        from pxr import UsdGeom

        T = rec.n_frames
        set_time_range(stage, T, rec.fps)
        if rec.n_agents:
            UsdGeom.Xform.Define(stage, f"{root}/Agents")
            skel = Skeleton(rec.names, np.array(rec.parents), np.zeros((len(rec.names), 3)))
            body = BodyModel(skel)
            for a in range(rec.n_agents):
                rig = agent_rig(body, rec.joints[:, a], rec.heading[:, a], rec.looks[a])
                mats = color_materials(stage, f"{root}/Looks", f"Agent{a}_", rig.colors)
                add_skinned_agent(stage, f"{root}/Agents/Agent{a}", rec.names, rec.parents, rig.world, rig.points, rig.faces,
                                  rig.joint_indices, rig.joint_weights, rig.face_group, mats, rig.extents, bind=rig.bind)
                report(progress, "usd agents", a + 1, rec.n_agents)
        if rec.props:
            UsdGeom.Xform.Define(stage, f"{root}/Props")
            for i, p in enumerate(rec.props):
                v, f, grp, cols = _prop_mesh_groups(p)
                path = f"{root}/Props/Prop{i}"
                x = add_animated_xform(stage, path, np.asarray(p["position"])[:T], np.asarray(p["quat"])[:T], animate_props)
                if p.get("name"):
                    x.GetPrim().SetCustomDataByKey("realsim:name", str(p["name"]))
                add_colored_mesh(stage, f"{path}/Mesh", v, f, grp, color_materials(stage, f"{root}/Looks", f"Prop{i}_", cols))
        add_animated_camera(stage, f"{root}/Camera", rec.viewmats, rec.Ks, rec.width, rec.height)

    return fill


def ground_mesh(world, margin: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The World's ground as triangles (metres): its fitted plane as one quad over the grid (+ margin), or its height
    field sampled at the cell centres (as MuJoCo's hfield)."""
    nx, ny = world.shape
    if world.heights is None:
        lo = world.origin - margin
        hi = world.origin + np.array([nx, ny]) * world.cell + margin
        xy = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
        return np.c_[xy, world.height(xy)], np.array([[0, 1, 2], [0, 2, 3]])
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    xy = world.to_world(np.stack([ii, jj], -1)).reshape(-1, 2)
    V = np.c_[xy, world.height(xy)]
    a = (ii[:-1, :-1] * ny + jj[:-1, :-1]).ravel()
    F = np.concatenate([np.stack([a, a + ny, a + ny + 1], 1), np.stack([a, a + ny + 1, a + 1], 1)])
    return V, F


def static_boxes(world, scene, rec: SimRecord | None) -> tuple[np.ndarray, str]:
    """The static collider boxes [N,6] (metres) and where they came from: the sim's own (props.json, what MuJoCo
    simulated with), else the scene's (sim.physics.colliders: cached in the bundle, as `simulate` gets them)."""
    if rec is not None and rec.boxes is not None:
        return rec.boxes, "sim"
    from .physics.colliders import scene_colliders

    boxes, info = scene_colliders(world, scene, getattr(scene, "root", None), measure=False)
    return boxes, str(info.get("method", "scene"))


def physics_content(world, rec: SimRecord | None, boxes: np.ndarray) -> Callable[[Any, str], None]:
    """A `write_scene_usd` extra: PhysicsScene, static colliders (world's ground, boxes [N,6]), rec's props as rigid bodies."""
    from realsim.assets.usd_physics import (add_box_colliders, add_physics_scene, add_rigid_prop, add_static_mesh_collider,
                                            physics_material)

    from .physics.model import prop_mass

    def fill(stage, root: str) -> None:
        from pxr import UsdGeom

        add_physics_scene(stage, f"{root}/PhysicsScene")
        UsdGeom.Scope.Define(stage, f"{root}/Looks/Physics")
        static = physics_material(stage, f"{root}/Looks/Physics/Static", 0.0, 0.0, combine_max=True)
        UsdGeom.Xform.Define(stage, f"{root}/Colliders")
        V, F = ground_mesh(world)
        add_static_mesh_collider(stage, f"{root}/Colliders/Ground", V, F, static)
        add_box_colliders(stage, f"{root}/Colliders", boxes, static)
        for i, p in enumerate(rec.props if rec is not None else []):
            mat = physics_material(stage, f"{root}/Looks/Physics/Prop{i}", float(p.get("friction", 0.5)),
                                   float(p.get("restitution", 0.5)), combine_max=True)
            mass = float(p["mass_kg"]) if "mass_kg" in p else prop_mass(_prop_spec(p))
            w = p.get("angular_velocity") or [[0.0, 0.0, 0.0]]
            add_rigid_prop(stage, f"{root}/Props/Prop{i}", p["shape"], p["size"], mass, p["velocity"][0], w[0], mat)

    return fill


def scene_ar_mesh(scene, scale: float, triangles: int, texture_size: int, progress: ProgressFn | None = None):
    """The scene's textured mesh (recon.mesh) in metres as an ArMesh, and its TexturedMesh (for the report)."""
    from realsim.assets.usd_ar import ArMesh
    from realsim.recon.mesh import MeshConfig, mesh_scene

    m = mesh_scene(scene, MeshConfig(target_triangles=triangles, texture_size=texture_size), progress)
    return ArMesh(m.vertices * scale, m.faces, m.uv, m.texture, m.vertex_colors), m


def _checks(path: Path, ar: bool, expected: dict[str, str] | None = None) -> dict[str, Any]:
    from realsim.assets.usd_ar import arkit_problems, validate_usd

    val = validate_usd(path, expected=expected)
    out = {"validator_errors": val["errors"], "validator_warnings": val["warnings"], "validator_expected": val["expected"],
           "validators": len(val["validators"])}
    if ar:
        out["arkit_problems"] = arkit_problems(path)
    return out


def write_sim_usdz(out: str | os.PathLike, scene, rec: SimRecord, triangles: int = 100_000, texture_size: int = 2048,
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """The AR-ready USDZ of a scene and its simulation (Y-up, metres); returns a report with the validator findings."""
    from realsim.assets.usd_ar import ar_budget_problems, write_scene_usd

    out = Path(out)
    if out.suffix.lower() != ".usdz":
        raise InputError(f"the AR export is a .usdz package (got {out.name})")
    mesh, m = scene_ar_mesh(scene, rec.scale, triangles, texture_size, progress)
    report(progress, "usd", 0, 1)
    write_scene_usd(out, mesh, y_up=True, meters_per_unit=1.0, extra=(sim_content(rec, True, progress),))
    report(progress, "usd", 1, 1)
    rep = {"out": str(out), "bytes": out.stat().st_size, "triangles": m.n_triangles,
           "texture_size": None if m.texture is None else int(m.texture.shape[0]), "frames": rec.n_frames, "fps": rec.fps,
           "agents": rec.n_agents, "joints": len(rec.names), "props": len(rec.props), **_checks(out, True)}
    rep["budget_problems"] = ar_budget_problems(out, m.n_triangles + _agent_triangles(rec),
                                                [m.texture.shape[0]] if m.texture is not None else [])
    return rep


def _agent_triangles(rec: SimRecord) -> int:
    if not rec.n_agents:
        return 0
    from realsim.assets.skeleton import Skeleton

    from .body import BodyModel

    return rec.n_agents * len(BodyModel(Skeleton(rec.names, np.array(rec.parents), np.zeros((len(rec.names), 3)))).faces)


def write_physics_usd(out: str | os.PathLike, scene, scale: float, rec: SimRecord | None = None, triangles: int = 100_000,
                      texture_size: int = 2048, gaussians=None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """The physics-ready stage (.usd/.usda/.usdc, Z-up, metres): scene mesh, World colliders, rec's agents / props /
    camera; `gaussians` (a GaussianCloud in scene units) adds /Root/World/Gaussians. Returns a report."""
    from realsim.assets.usd_ar import write_scene_usd

    from .world import world_from_scene

    out = Path(out)
    if out.suffix.lower() not in (".usd", ".usda", ".usdc"):
        raise InputError(f"the physics stage is a .usd, .usda or .usdc file (got {out.name})")
    report(progress, "world", 0, 1)
    world = world_from_scene(scene, scale=scale)
    report(progress, "world", 1, 1)
    mesh, m = scene_ar_mesh(scene, scale, triangles, texture_size, progress)
    extra: list[Callable[[Any, str], None]] = []
    if rec is not None:
        extra.append(sim_content(rec, animate_props=False, progress=progress))
    boxes, source = static_boxes(world, scene, rec)
    extra.append(physics_content(world, rec, boxes))
    if gaussians is not None:
        from realsim.assets.usd import add_particle_field

        extra.append(lambda stage, root: add_particle_field(stage, f"{root}/World/Gaussians", gaussians, scale))
    write_scene_usd(out, mesh, y_up=False, meters_per_unit=1.0, extra=tuple(extra))
    return {"out": str(out), "bytes": out.stat().st_size, "triangles": m.n_triangles, "ground": "height field"
            if world.heights is not None else "plane", "boxes": int(len(boxes)), "boxes_from": source,
            "props": len(rec.props) if rec is not None else 0, "agents": rec.n_agents if rec is not None else 0,
            "gaussians": 0 if gaussians is None else len(gaussians), **_checks(out, False)}
