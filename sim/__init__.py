"""realsim.sim: a walkable world from a reconstruction, agents that plan, crowd and walk in it, and the videos of them.

Public API:
    world_from_scene(scene, scale=None) / world_from_points(xyz, camera_centers, metric, scale) -> World
                                    -- ground plane or height field and a walkable / obstacle grid in metres:
                                       World.height(xy), is_walkable(xy), sample_free(n, rng); WorldConfig
    plan_path(world, start, goal) -> [K,2]  -- A* on the grid + string pulling
    Crowd, CrowdConfig              -- ORCA avoidance along planned paths, re-planning when blocked
    load_scenario(yaml) / parse_scenario(dict) -> Scenario (AgentSpec per agent: start, goals / waypoints, style, speed)
    run_sim(world, scenario, motion="auto") -> SimResult  -- joints [T,A,J,3], root, heading, contacts, metrics
    BodyModel(skeleton).vertices(joints, heading, looks), AgentLook  -- skinned agent bodies
    write_outputs(out_dir, layer, world, sim, camera_path)  -- the render bundle (rgb/depth/normal/alpha, depth/,
                                       cameras.json, camera_path.json: render.streams) + masks/, keypoints.json (COCO-17),
                                       trajectories.json, motion.safetensors, sim.json (with
                                       frames_with_agent_fraction / visible_agents_mean)
    simulate_scene(scene_dir, out_dir, SimulateOptions), run_demo(out_dir, DemoOptions)  -- `realsim simulate | demo`
    make_capture(out_dir, CaptureConfig)  -- the SYNTHETIC procedural street photographed along a walk (sim.capture)
    read_sim_folder(sim_dir, scene=None, need=()) -> SimFolder  -- the one reader of a sim output folder (files,
                                       provenance, joints [T,A,J,3] / root / heading in metres, skeleton, fps, props.json)
    load_sim_record(sim_dir, scene) -> SimRecord; write_sim_usdz(out, scene, rec), write_physics_usd(out, scene, scale,
                                       rec)  -- a sim as the AR USDZ (UsdSkel agents, props, camera) or a UsdPhysics stage
    write_agent_bvhs(rec, out_dir) -> [Path]  -- each agent's animation as BVH (metres, Y up; the skinned body's rotations)

Modules: `ground` (the street plane the world stands on), `camera` (make_camera_path: interp | orbit | spiral | static |
follow | FILE.json), `follow` (the follow camera: plan_follow, follow_path), `spawn` (start and goal placement), `gait`
(procedural walker, the fallback motion), `capture` (synthetic street, textures, camera rig, ground-truth pose check),
`motion` (the motion-diffusion model and MotionController).
"""
from .body import AgentLook, BodyModel
from .bvh_export import write_agent_bvhs
from .capture import CaptureConfig, make_capture
from .crowd import Crowd, CrowdConfig
from .loop import SimResult, run_sim
from .outputs import write_outputs
from .pipeline import DemoOptions, SimulateOptions, run_demo, simulate_scene
from .planner import plan_path
from .scenario import AgentSpec, Scenario, load_scenario, parse_scenario
from .sim_folder import SimFolder, read_sim_folder
from .usd_export import write_physics_usd, write_sim_usdz
from .usd_record import SimRecord, load_sim_record
from .world import World, WorldConfig, world_from_points, world_from_scene

__all__ = [
    "World", "WorldConfig", "world_from_points", "world_from_scene", "plan_path", "Crowd", "CrowdConfig",
    "AgentSpec", "Scenario", "load_scenario", "parse_scenario", "AgentLook", "BodyModel", "SimResult", "run_sim",
    "write_outputs", "CaptureConfig", "make_capture", "DemoOptions", "SimulateOptions", "run_demo", "simulate_scene",
    "SimRecord", "load_sim_record", "write_sim_usdz", "write_physics_usd", "SimFolder", "read_sim_folder",
    "write_agent_bvhs",
]
