"""`realsim reconstruct INPUT -o SCENE`: poses (pycolmap SfM) then training, in one command."""
from __future__ import annotations

import argparse
from pathlib import Path

from realsim.cli.cmd_train import add_train_options, train_and_report


def add_parser(sub) -> None:
    p = sub.add_parser("reconstruct", help="photos / video -> poses -> trained scene bundle",
                       description="Run `realsim poses` into SCENE.poses/ (kept, so a failed training can be resumed) and "
                                   "then `realsim train` on it, writing the scene bundle SCENE.")
    p.add_argument("input", type=Path, help="folder of images or a video file")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="SCENE", help="scene bundle folder to write")
    p.add_argument("--max-image-size", type=int, default=1600, help="longest image side for SfM (default 1600)")
    p.add_argument("--scale", type=float, help="metres per SfM unit (overrides GPS)")
    p.add_argument("--camera-height", type=float, help="camera height above the ground in metres (sets the scale)")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.poses import PosesOptions, run_poses

    from realsim.assets.atomic import check_writable
    from realsim.recon.trainer import guard_interrupted_run

    guard_interrupted_run(args.output, args.resume, args.overwrite)  # before poses, not after them
    check_writable(args.output)
    workdir = args.output.parent / f"{args.output.name}.poses"
    if not (args.resume and (workdir / "cameras.json").is_file()):
        opts = PosesOptions(max_image_size=args.max_image_size, seed=args.seed, scale=args.scale,
                            camera_height=args.camera_height, num_threads=args.threads)
        with RichProgress(not args.quiet) as prog:
            run_poses(args.input, workdir, opts, overwrite=True, progress=prog)
    return train_and_report(workdir, args)
