"""`realsim eval SCENE`: PSNR / SSIM (LPIPS when its weights are on disk) on the held-out views, size, render time."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realsim.assets.atomic import check_writable, write_text_atomic
from realsim.cli.common import add_backend_option, add_output_flags, add_threads_option


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="held-out PSNR / SSIM, size on disk and render time of a scene bundle",
                       description="Evaluate a trained scene bundle on its held-out (test) views at the training resolution.")
    p.add_argument("scene", type=Path, help="scene bundle folder")
    p.add_argument("--downscale", type=float, help="evaluate at image size / this (default: the training resolution)")
    p.add_argument("--split", choices=["test", "train"], default="test")
    add_backend_option(p)
    p.add_argument("-o", "--output", type=Path, metavar="JSON", help="also write the results to this JSON file")
    add_output_flags(p, None, "print the results as JSON")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.trainer import evaluate_scene

    from realsim.recon.bundle import load_scene

    scene = load_scene(args.scene)  # bad bundles fail here, before any progress output
    if args.output:
        check_writable(args.output)  # before the evaluation, not after it
    with RichProgress(not args.quiet) as prog:
        res = evaluate_scene(scene, args.downscale, args.backend, args.split, progress=prog)
    text = json.dumps(res, indent=1)
    if args.output:
        write_text_atomic(args.output, text)
    if args.json:
        print(text)
    else:
        lp = f", LPIPS {res['lpips']:.3f}" if res.get("lpips") is not None else ""
        count = f"{res['anchors']} anchors" if "anchors" in res else f"{res['gaussians']} Gaussians"
        print(f"{res['model']} {res['scene']}: {args.split} PSNR {res['psnr']:.2f} dB, SSIM {res['ssim']:.3f}{lp} on "
              f"{res['n_views']} views at {res['resolution'][0]}x{res['resolution'][1]}; model {res['model_bytes'] / 1e6:.2f} MB, "
              f"{count}, {res['gaussians_per_view']} Gaussians/view, {res['render_s_per_frame'] * 1000:.0f} ms/frame")
    sys.stdout.flush()
    return 0
