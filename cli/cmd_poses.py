"""`realsim poses INPUT -o WORKDIR`: camera poses (pycolmap SfM) in a gravity-aligned, metric-when-possible world."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.argtypes import pos_int as _positive_int, pos_float as _positive_float
from realsim.cli.common import add_output_flags, add_threads_option


def add_parser(sub) -> None:
    p = sub.add_parser("poses", help="camera poses from photos, a video, a COLMAP model or a transforms.json",
                       description="Estimate camera poses (pycolmap SfM), undistort, align +Z up and scale to metres; "
                                   "writes WORKDIR/{images/, cameras.json, scene.json, sparse/0, transforms.json}.")
    p.add_argument("input", nargs="?", type=Path, help="folder of images, video file, transforms.json (or its folder); "
                                                      "with --colmap: the model's image folder")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="WORKDIR", help="output folder (written all-or-nothing)")
    p.add_argument("--colmap", type=Path, metavar="DIR", help="use an existing COLMAP model (text or binary) instead of SfM")
    p.add_argument("--matcher", default="auto", choices=["auto", "exhaustive", "sequential", "spatial"],
                   help="pair selection: auto = exhaustive for small sets, sequential + loop closure for videos/sequences")
    p.add_argument("--mapper", default="incremental", choices=["incremental", "global"],
                   help="incremental (default; retried with relaxed initialisation) or global SfM (pycolmap's GLOMAP: "
                        "rotation averaging + global positioning, for long sequences)")
    p.add_argument("--partition", default="auto", choices=["auto", "on", "off"],
                   help="incremental mapper: map overlapping chunks of the sequence separately, merge them into one frame "
                        "and bundle adjust once (auto: sequences of more than 100 photos)")
    p.add_argument("--chunk-size", type=_positive_int, default=24,
                   help="partitioned mapping: consecutive photos per chunk, a third of them shared with the next (default 24)")
    p.add_argument("--max-image-size", type=_positive_int, default=1600, help="longest image side used and written (default 1600)")
    p.add_argument("--scale", type=_positive_float, help="metres per SfM unit (overrides GPS)")
    p.add_argument("--camera-height", type=_positive_float, help="camera height above the ground in metres (sets the scale)")
    p.add_argument("--holdout-every", type=int, default=8, help="every Nth image (by name) is a test view; 0 = none (default 8)")
    p.add_argument("--video-fps", type=_positive_float, default=2.0, help="frames per second sampled from a video (default 2)")
    p.add_argument("--max-frames", type=_positive_int, default=300, help="at most this many video frames (default 300)")
    p.add_argument("--no-align", action="store_true", help="keep the frame of a given COLMAP model / transforms.json")
    p.add_argument("--text", action="store_true", help="also write the COLMAP model as text (sparse/0_text)")
    add_threads_option(p)
    p.add_argument("--seed", type=int, default=0)
    add_output_flags(p, "replace a non-empty WORKDIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.poses import PosesOptions, run_poses

    if args.holdout_every < 0:
        raise InputError(f"--holdout-every must be >= 0, got {args.holdout_every}")
    opts = PosesOptions(max_image_size=args.max_image_size, seed=args.seed, matcher=args.matcher, scale=args.scale,
                        camera_height=args.camera_height, holdout_every=args.holdout_every, video_fps=args.video_fps,
                        max_frames=args.max_frames, num_threads=args.threads, align=not args.no_align,
                        text_model=args.text, mapper=args.mapper, partition=args.partition,
                        chunk_size=args.chunk_size)
    with RichProgress(not args.quiet) as prog:
        res = run_poses(args.input, args.output, opts, colmap_dir=args.colmap, overwrite=args.overwrite, progress=prog)
    summary = {"workdir": str(res.workdir), "registered": res.n_registered, "images": res.n_images, "points": res.n_points,
               "mean_reprojection_error_px": round(res.mean_reproj_px, 4), "metric": res.metric,
               "scale_source": res.scale_source, "matcher": res.matcher, "seconds": round(res.seconds, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        units = "metres" if res.metric else "SfM units (non-metric: pass --scale or --camera-height)"
        print(f"registered {res.n_registered}/{res.n_images} images, {res.n_points} points, "
              f"reprojection error {res.mean_reproj_px:.3f} px, {units} [{res.scale_source}], {res.seconds:.1f} s -> {res.workdir}")
    sys.stdout.flush()
    return 0
