"""Physics in the simulation (MuJoCo): rigid props from the scenario, colliders from the reconstruction, agents as kinematic
limb capsules that push props.

Public API:
    simulate_props(world, props, frames, fps, sim=None, rate=1000, spawn_mask=None, seed=0) -> PropsResult
    PropsResult: position / quat / velocity / angular_velocity per video frame, contact events, to_json() (props.json)
    scene_colliders(world, scene, scene_dir, cfg=ColliderConfig()) -> (boxes [N,6], info): static colliders fitted to the
        scene's Gaussians (0.1 m voxel columns), cached in the bundle (colliders.json, keyed by content hash + settings)
    ContactTracker: contact events with hysteresis (one per touch: start / end), used by simulate_props
    restitution_solref(e, dt) -> MuJoCo solref (-k, -b) giving restitution e (the mapping is documented in physics.model)
    collider_boxes(world, points=None) -> static boxes [N,6] from the World's 0.25 m obstacle grid (the `grid` method)
    collider_fit(world, boxes, points, weights) -> weighted fraction of points within 5 / 10 / 25 cm of a collider surface
    prop_meshes(props) -> per-prop local meshes for the mesh renderer
"""
from .colliders import ColliderConfig, scene_colliders
from .contacts import ContactTracker
from .engine import DEFAULT_RATE, PropsResult, auto_positions, quat_rotate, simulate_props
from .model import build_mjcf, collider_boxes, collider_fit, prop_mass, restitution_solref

__all__ = ["DEFAULT_RATE", "PropsResult", "auto_positions", "quat_rotate", "simulate_props", "build_mjcf", "collider_boxes", "collider_fit",
           "prop_mass", "restitution_solref", "ColliderConfig", "scene_colliders", "ContactTracker"]
