"""realsim.sim (public API documented here as it lands)."""

# Simulation layer [sim team]:
#   world_from_scene(scene, scale=None) / world_from_points(xyz, camera_centers, metric, scale) -> World (ground plane or
#     height field, walkable/obstacle grid in metres; World.height(xy), is_walkable(xy), sample_free(n, rng));
#   plan_path(world, start, goal) -> [K,2] (A* + string pulling); Crowd (social forces + hard separation);
#   load_scenario(yaml) / parse_scenario(dict) -> Scenario; run_sim(world, scenario, motion="auto") -> SimResult
#     (joints [T,A,J,3], root, heading, contacts, metrics); BodyModel(skeleton).vertices(joints, heading, looks) (LBS body);
#   write_outputs(out_dir, layer, world, sim, camera_path) -> rgb.mp4, depth/, masks/, keypoints.json (COCO-17),
#     cameras.json, trajectories.json, motion.safetensors, sim.json;
#     sim.json metrics include frames_with_agent_fraction / visible_agents_mean (how much the video shows the agents);
#   make_camera_path(kind, frames, seconds, fps, ...) (sim.camera): interp | orbit | spiral | static | follow | FILE.json;
#     follow (sim.follow): plan_follow(world, frames, ...) picks a window of the capture walk and the region agents use,
#     follow_path(...) walks that window behind the agents and turns (bounded rate) to frame them;
#   simulate_scene(scene_dir, out_dir, SimulateOptions) and run_demo(out_dir, DemoOptions) behind `realsim simulate|demo`
#     (the demo films with the follow camera at the photos' size);
#   make_capture(out_dir, CaptureConfig) -> the SYNTHETIC procedural street photographed along a walk.
from .world import World, WorldConfig, world_from_points, world_from_scene  # noqa: E402
from .planner import plan_path  # noqa: E402
from .crowd import Crowd, CrowdConfig  # noqa: E402
from .scenario import AgentSpec, Scenario, load_scenario, parse_scenario  # noqa: E402
from .body import AgentLook, BodyModel  # noqa: E402
from .loop import SimResult, run_sim  # noqa: E402
from .outputs import write_outputs  # noqa: E402
from .capture import CaptureConfig, make_capture  # noqa: E402
from .pipeline import DemoOptions, SimulateOptions, run_demo, simulate_scene  # noqa: E402
