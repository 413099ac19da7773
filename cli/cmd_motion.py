"""`realsim motion train|sample`: train the motion diffusion model; sample a commanded path to BVH + stick-figure MP4."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.common import add_threads_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("motion", help="human-motion diffusion: train on BVH mocap, sample along a path")
    msub = p.add_subparsers(dest="motion_command", metavar="SUBCOMMAND")
    t = msub.add_parser("train", help="train on a motion folder (bandai_namco/, cmu_*/ BVH) -> FILE.safetensors")
    t.add_argument("data", help="folder of BVH clips (e.g. shared/data/motion) or one .bvh")
    t.add_argument("-o", "--output", required=True, help="output weights (.safetensors)")
    t.add_argument("--preset", default="default", help="default (<= 60 min on 2 cores) | finetune (foot terms; with --init) | finetune_speed "
                   "(+ root track) | finetune_style (+ styles sampled evenly) | finetune_turn (+ turning walks 2x, foot "
                   "term 4; shipped: finetune -> finetune_speed -> finetune_style -> finetune_turn) | small | tiny")
    t.add_argument("--steps", type=int, default=None, help="override the preset's number of steps")
    t.add_argument("--minutes", type=float, default=None, help="stop after this many minutes (the result is still saved)")
    t.add_argument("--locomotion-only", action="store_true",
                   help="only walk/run/turn clips (default: every clip; gestures supply the standing frames)")
    t.add_argument("--log", default=None, help="append JSON lines (step, loss) to this file")
    t.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="fine-tune: start from these weights (e.g. the shipped ones, with --preset finetune)")
    t.add_argument("--seed", type=int, default=0)
    add_threads_option(t)
    t.set_defaults(func=run_train)
    s = msub.add_parser("sample", help="generate motion along a path -> OUT.bvh (metres, Y up) + OUT.mp4 stick figure")
    s.add_argument("--path", default="straight", help="straight | circle | zigzag | stopgo | a JSON/CSV file of x,y waypoints (m)")
    s.add_argument("--style", default="neutral", help="style label (see the model card), e.g. neutral, happy, tired, old")
    s.add_argument("--seconds", type=float, default=8.0)
    s.add_argument("--speed", type=float, default=1.2, help="walking speed along the path (m/s)")
    s.add_argument("--radius", type=float, default=2.0, help="circle radius (m)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--weights", default=None, help="model file (default: the shipped weights)")
    s.add_argument("--no-video", action="store_true", help="write only the BVH")
    s.add_argument("-o", "--output", required=True, help="output path stem: writes OUT.bvh and OUT.mp4")
    add_threads_option(s)
    s.set_defaults(func=run_sample)
    p.set_defaults(func=lambda a: (p.print_help(sys.stderr), 2)[1])


def run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from realsim.assets.atomic import check_writable
    from realsim.sim.motion.data import LOCOMOTION, build_dataset
    from realsim.sim.motion.train import PRESETS, train

    from .progress import RichProgress

    if args.preset not in PRESETS:
        raise InputError(f"unknown preset '{args.preset}' (choose from {', '.join(PRESETS)})")
    out = Path(args.output)
    if out.suffix != ".safetensors":
        raise InputError(f"output {out} must end in .safetensors")
    cfg = replace(PRESETS[args.preset], seed=args.seed)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    if args.minutes is not None:
        cfg = replace(cfg, minutes=args.minutes)
    if args.init is not None:
        if not Path(args.init).is_file():
            raise InputError(f"--init weights {args.init} not found")
        cfg = replace(cfg, init=str(args.init))
    if getattr(args, "threads_explicit", False):  # else the preset's own thread count
        cfg = replace(cfg, threads=args.threads)
    check_writable(out)
    with RichProgress(not args.quiet) as prog:
        ds = build_dataset(args.data, actions=LOCOMOTION if args.locomotion_only else None, progress=prog)
        model = train(ds, out, cfg, progress=prog, log_path=args.log)
    print(f"wrote {out} ({model.meta['steps']} steps, {len(ds.clips)} clips, {ds.n_frames} frames, styles: "
          f"{', '.join(model.styles)})")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from realsim.assets.atomic import check_writable
    from realsim.sim.motion.sample import sample_to_files

    from .progress import RichProgress

    check_writable(Path(args.output).with_suffix(".bvh"))
    with RichProgress(not args.quiet) as prog:
        res = sample_to_files(args.path, args.style, args.seconds, args.seed, args.output, weights=args.weights,
                              speed=args.speed, radius=args.radius, video=not args.no_video, progress=prog,
                              threads=args.threads if getattr(args, "threads_explicit", False) else 1)
    for k, v in res.items():
        print(f"{k}: {v}")
    return 0
