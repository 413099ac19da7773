"""`realsim demo [-o DIR] [--images DIR]`: the whole pipeline end to end (synthetic capture or your photos -> video)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from realsim.cli.argtypes import pos_int as _pos_int, pos_float as _pos_float
from realsim.cli.common import add_max_pixels_option, add_output_flags, add_preset_option, add_threads_option


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="end to end: capture (SYNTHETIC street, or --images) -> poses -> Scaffold-GS -> agents -> video",
                       description="Without --images it renders its own SYNTHETIC capture (a procedural street photographed "
                                   "along a walk), then runs poses, trains Scaffold-GS at the video's size (coarse to fine), simulates "
                                   "agents walking there and writes DIR/sim/rgb.mp4 with depth, masks, keypoints and cameras. "
                                   "Finished stages are reused when re-run on the same DIR.")
    p.add_argument("-o", "--output", type=Path, default=Path("realsim_demo"), metavar="DIR", help="demo folder (default ./realsim_demo)")
    p.add_argument("--images", type=Path, metavar="DIR", help="real photos instead of the synthetic capture (e.g. lund_street/images)")
    p.add_argument("--agents", type=_pos_int, default=6)
    p.add_argument("--seconds", type=_pos_float, default=6.0, help="simulated seconds (default 6)")
    p.add_argument("--iterations", type=_pos_int, help="Scaffold-GS iterations (default: 60 epochs of the training photos, 600..3000)")
    p.add_argument("--train-minutes", type=_pos_float, default=10.0,
                   help="stop Scaffold-GS training after this many minutes if its iterations are not done (default 10)")
    add_preset_option(p, "cpu-fast")
    p.add_argument("--max-width", type=_pos_int, help="training and video width (default: the synthetic capture's, real photos' up to 640)")
    p.add_argument("--scale", type=_pos_float, help="metres per SfM unit (photos without GPS)")
    p.add_argument("--camera-height", type=_pos_float, help="camera height above the ground in metres (photos without GPS)")
    p.add_argument("--images-count", type=_pos_int, default=30, dest="n_images", help="synthetic photos (default 30)")
    p.add_argument("--capture-size", default="480x360", metavar="WxH", help="synthetic photo size (default 480x360)")
    p.add_argument("--fps", type=_pos_float, default=30.0, help="video frame rate = sim rate (default 30)")
    p.add_argument("--motion", default="auto", choices=["auto", "controller", "procedural"])
    p.add_argument("--seed", type=int, default=0)
    add_output_flags(p, "start from scratch instead of reusing finished stages")
    add_max_pixels_option(p)
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.sim.pipeline import DemoOptions, run_demo

    from realsim.assets.errors import InputError

    try:
        cw, ch = (int(v) for v in args.capture_size.lower().split("x"))
    except ValueError:
        raise InputError(f"--capture-size must look like 480x360, got {args.capture_size!r}") from None
    if cw < 64 or ch < 64 or cw % 2 or ch % 2:
        raise InputError(f"--capture-size needs even sides of at least 64 pixels, got {args.capture_size}")
    opts = DemoOptions(images=str(args.images) if args.images else None, agents=args.agents, seconds=args.seconds,
                       seed=args.seed, iterations=args.iterations, train_minutes=args.train_minutes, preset=args.preset,
                       max_width=args.max_width, scale=args.scale, camera_height=args.camera_height, n_images=args.n_images,
                       capture_width=cw, capture_height=ch, fps=args.fps, motion=args.motion, overwrite=args.overwrite,
                       max_pixels=args.max_pixels)
    with RichProgress(not args.quiet) as prog:
        r = run_demo(args.output, opts, progress=prog)
    if args.json:
        print(json.dumps(r, indent=1, default=str))
        return 0
    t = r["timings"]
    src = "SYNTHETIC procedural street" if r["synthetic"] else str(args.images)
    print(f"demo done in {t['total_s']:.0f} s ({src}): capture {t['capture_s']:.0f} s, poses {t['poses_s']:.0f} s, "
          f"train {t['train_s']:.0f} s, simulate+render {t['simulate_s']:.0f} s")
    if "total_cpu_s" in t:
        print(f"  CPU seconds: {t['total_cpu_s']:.0f} (capture {t['capture_cpu_s']:.0f}, poses {t['poses_cpu_s']:.0f}, "
              f"train {t['train_cpu_s']:.0f}, simulate+render {t['simulate_cpu_s']:.0f}, kernel build "
              f"{t['kernel_build_cpu_s']:.0f})")
    tr = r.get("train", {})
    if tr.get("psnr_interp") is not None or tr.get("psnr_extrap") is not None:
        def _fmt(k: str) -> str:
            return "-" if tr.get(f"psnr_{k}") is None else f"{tr[f'psnr_{k}']:.2f} dB / SSIM {tr[f'ssim_{k}']:.3f}"
        print(f"  held-out PSNR: interpolated {_fmt('interp')} ({len(tr['views_interp'])} views), extrapolated "
              f"{_fmt('extrap')} ({', '.join(tr['views_extrap']) or 'none'}), all views {_fmt('all_views')}")
    print(f"  video: {r['video']} ({r['sim']['width']}x{r['sim']['height']} @ {opts.fps:g} fps)")
    print(f"  streams: {Path(r['video']).parent}/ (depth/, masks/, keypoints.json, cameras.json, trajectories.json)")
    m = r["sim"]["metrics"]
    if "min_agent_distance_m" in m:
        print(f"  {r['sim']['agents']} agents ({r['sim']['motion_backend']} motion), min distance {m['min_agent_distance_m']:.2f} m")
    if "frames_with_agent_fraction" in m:
        print(f"  agents in view in {100 * m['frames_with_agent_fraction']:.0f}% of {r['sim']['frames']} frames "
              f"({m['visible_agents_mean']:.1f} per frame on average)")
    return 0
