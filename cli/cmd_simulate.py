"""`realsim simulate SCENE [--scenario FILE] [--agents N] [--seconds S] -o OUTDIR`: agents in a reconstructed scene, composited video."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from realsim.cli.argtypes import pos_float as _pos_float, nonneg_int as _nonneg_int
from realsim.cli.cmd_export import usd_exit_code, usd_report_line
from realsim.cli.common import add_backend_option, add_max_pixels_option, add_output_flags, add_threads_option


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="simulate walking agents in a scene bundle; write the composited video and 3D-guided streams",
                       description="Builds the walkable world (ground, obstacles) from the scene, plans and simulates agents "
                                   "(A*, social forces, motion controller, feet on the terrain), renders them composited with "
                                   "the Gaussian scene by depth and writes OUTDIR/{rgb.mp4, depth.mp4, depth/, normal.mp4, "
                                   "alpha.mp4, masks/, keypoints.json, cameras.json, camera_path.json, trajectories.json, "
                                   "sim.json} (the `realsim render` bundle plus masks, keypoints and agents).")
    p.add_argument("scene", type=Path, help="scene bundle folder (from `realsim train` / `realsim reconstruct`)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help="output folder (written all-or-nothing)")
    p.add_argument("--scenario", type=Path, metavar="FILE", help="YAML scenario (agents, goals, camera, duration, seed)")
    p.add_argument("--agents", type=_nonneg_int, help="number of agents (random places; default 6 without a scenario)")
    p.add_argument("--seconds", type=_pos_float, help="duration (default 8, or the scenario's)")
    p.add_argument("--seed", type=_nonneg_int)
    p.add_argument("--scale", type=_pos_float, help="metres per scene unit, needed for a non-metric scene")
    p.add_argument("--camera", help="interp | orbit | spiral | follow | static | camera_path.json (default interp)")
    p.add_argument("--width", type=_nonneg_int)
    p.add_argument("--height", type=_nonneg_int)
    p.add_argument("--fps", type=_pos_float)
    p.add_argument("--motion", default="auto", choices=["auto", "controller", "procedural"],
                   help="auto: the shipped motion-diffusion controller when present, else a procedural walk cycle")
    p.add_argument("--motion-weights", type=Path, metavar="FILE", help="motion model weights instead of the shipped default")
    add_backend_option(p, "Gaussian rasteriser backend")
    p.add_argument("--ssaa", type=int, default=2, help="agent anti-aliasing samples per axis (1-4, default 2)")
    p.add_argument("--lod", type=_pos_float, metavar="PX",
                   help="level of detail of the scene render (as `render --lod`): distant content from coarser anchors "
                        "whose voxel is at most PX pixels on screen (e.g. 2); default off (exact)")
    p.add_argument("--usdz", type=Path, metavar="FILE",
                   help="also write an AR-ready USDZ (AR Quick Look / Vision Pro): the scene's textured mesh, the agents "
                        "as UsdSkel, the props and the camera, animated at the sim's fps (as `realsim export SCENE "
                        "--target arkit --sim OUTDIR`)")
    p.add_argument("--bvh", type=Path, metavar="DIR",
                   help="also write each agent's animation as DIR/agent_NN.bvh (metres, Y up; rotations of the skinned body)")
    p.add_argument("--usdz-triangles", type=int, default=100_000, help="--usdz: mesh triangle budget (default 100000)")
    p.add_argument("--usdz-texture-size", type=int, default=2048, help="--usdz: texture side (default 2048)")
    add_output_flags(p, "replace a non-empty OUTDIR")
    add_max_pixels_option(p)
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.assets.errors import InputError
    from realsim.cli.progress import RichProgress
    from realsim.sim.pipeline import SimulateOptions, simulate_scene

    if args.usdz is not None:  # bad USDZ arguments fail before the simulation, not after it
        from realsim.cli.cmd_export import check_usd_budget
        from realsim.cli.common import check_output_file

        if args.usdz.suffix.lower() != ".usdz":
            raise InputError(f"--usdz writes a .usdz package (got {args.usdz.name})")
        check_usd_budget(args.usdz_triangles, args.usdz_texture_size)
        check_output_file(args.usdz, args.overwrite)

    opts = SimulateOptions(scenario=str(args.scenario) if args.scenario else None, agents=args.agents, seconds=args.seconds,
                           seed=args.seed, scale=args.scale, camera=args.camera, width=args.width, height=args.height,
                           fps=args.fps, motion=args.motion,
                           motion_weights=str(args.motion_weights) if args.motion_weights else None, backend=args.backend,
                           ssaa=args.ssaa, overwrite=args.overwrite, max_pixels=args.max_pixels, lod=args.lod)
    if args.bvh is not None:
        from realsim.assets.atomic import check_output_dir, check_writable

        check_output_dir(args.bvh, args.overwrite)  # before the simulation, not after it
        check_writable(args.bvh)
    usd = bvh = None
    with RichProgress(not args.quiet) as prog:
        s = simulate_scene(args.scene, args.output, opts, progress=prog)
        if args.usdz is not None:
            from realsim.recon.bundle import load_scene
            from realsim.sim.usd_export import write_sim_usdz
            from realsim.sim.usd_record import load_sim_record

            usd = write_sim_usdz(args.usdz, load_scene(args.scene), load_sim_record(args.output, args.scene),
                                 args.usdz_triangles, args.usdz_texture_size, prog)
        if args.bvh is not None:
            from realsim.sim.bvh_export import write_agent_bvhs
            from realsim.sim.usd_record import load_sim_record

            bvh = write_agent_bvhs(load_sim_record(args.output, args.scene), args.bvh, args.overwrite)
    if args.json:
        print(json.dumps(s if usd is None else {**s, "usdz": usd}, indent=1))
        return 0 if usd is None else usd_exit_code(usd)
    m = s["metrics"]
    print(f"simulated {s['agents']} agents for {s['frames']} frames ({s['motion_backend']} motion) -> {args.output}")
    print(f"  video {args.output / 'rgb.mp4'}  ({s['width']}x{s['height']} @ {s['fps']:g} fps, {s['render_s_per_frame']:.2f} s/frame)")
    if "min_agent_distance_m" in m:
        print(f"  min distance between agents {m['min_agent_distance_m']:.2f} m; off walkable {m['off_walkable_fraction']:.3f}; "
              f"feet-ground error max {100 * m['foot_error_m_max']:.1f} cm")
    if "frames_with_agent_fraction" in m:
        print(f"  agents in view in {100 * m['frames_with_agent_fraction']:.0f}% of the frames "
              f"({m['visible_agents_mean']:.1f} per frame on average)")
    if bvh is not None:
        print(f"  {len(bvh)} agent BVH files -> {args.bvh}")
    if usd is not None:
        print("  " + usd_report_line(usd))
        return usd_exit_code(usd)
    return 0
