"""Physics in the simulation (MuJoCo): rigid props from the scenario, colliders from the reconstruction, agents as kinematic
limb capsules that push props.

Public API:
    simulate_props(world, props, frames, fps, sim=None, rate=1000, spawn_mask=None, seed=0) -> PropsResult
    PropsResult: position / quat / velocity / angular_velocity per video frame, contact onsets, to_json() (props.json)
    restitution_solref(e, dt) -> MuJoCo solref (-k, -b) giving restitution e (the mapping is documented in physics.model)
    collider_boxes(world, points=None) -> static voxel boxes [N,6] from the World's obstacle grid
    collider_fit(world, boxes, points, weights) -> weighted fraction of points within 5 / 10 / 25 cm of a collider surface
    prop_meshes(props) -> per-prop local meshes for the mesh renderer
"""
from .engine import DEFAULT_RATE, PropsResult, auto_positions, quat_rotate, simulate_props
from .model import build_mjcf, collider_boxes, collider_fit, prop_mass, restitution_solref

__all__ = ["DEFAULT_RATE", "PropsResult", "auto_positions", "quat_rotate", "simulate_props", "build_mjcf", "collider_boxes", "collider_fit",
           "prop_mass", "restitution_solref"]
