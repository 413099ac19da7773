"""`realsim train WORKDIR -o SCENE`: train Scaffold-GS (or the 3DGS baseline) on posed images and write a scene bundle."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.argtypes import nonneg_int as _nonneg_int, pos_int as _pos_int, pos_float as _pos_float
from realsim.cli.common import add_threads_option


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `reconstruct`."""
    p.add_argument("--model", choices=["scaffold", "3dgs"], default="scaffold", help="scene model (default scaffold)")
    p.add_argument("--preset", choices=["auto", "cpu-fast", "cpu", "gpu", "real"], default="auto",
                   help="resolution and iterations: cpu-fast (256 px wide, 500 it), cpu (504 px, 3000 it), gpu (1600 px, 30k it), "
                        "real (sparse real photos: 512 px, ~100 epochs, exposure + sky models); auto (default): real for a "
                        "`realsim poses` WORKDIR of real photos or video, else cpu")
    p.add_argument("--iterations", type=_pos_int, help="training iterations (overrides the preset; schedules follow)")
    p.add_argument("--downscale", type=_pos_float, help="divide image size by this (overrides the preset's width)")
    p.add_argument("--backend", choices=["auto", "torch", "cpu", "cuda", "gsplat"], default="auto",
                   help="rasterizer backend (auto: realsim's CUDA kernels on a GPU, else gsplat; the C++ kernels on the CPU)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where training runs: model, images, optimiser and densification (auto: cuda when torch sees a GPU)")
    p.add_argument("--max-anchors", type=_nonneg_int, metavar="N",
                   help="Scaffold-GS: stop growing anchors at N (0 = no cap; default from the preset)")
    p.add_argument("--dense-init", type=_nonneg_int, metavar="PX",
                   help="start from denser points: each photo's SfM depths interpolated every PX pixels, kept where "
                        "another photo agrees (dense walks, e.g. 8; 0 = SfM points only, the presets' default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout-every", type=int, help="re-split: every Nth view (by name) held out (default: the WORKDIR's split)")
    p.add_argument("--checkpoint-every", type=_pos_int, help="iterations between checkpoints (default from the preset)")
    p.add_argument("--max-minutes", type=_pos_float, help="stop training after this wall time and write the bundle")
    p.add_argument("--refine-poses", action="store_true",
                   help="also learn a small SE(3) correction per training camera (written into the bundle's cameras.json)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last checkpoint (give the options it was started with)")
    p.add_argument("--override-config", action="store_true",
                   help="with --resume: continue with these options where they differ from the checkpoint's")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty output folder, or start over an interrupted run's checkpoint")
    add_threads_option(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    v = p.add_argument_group("live viewer (viser)")
    v.add_argument("--view", action="store_true",
                   help="serve the scene in the browser while it trains (splats, cameras, loss, held-out PSNR)")
    v.add_argument("--port", type=_pos_int, default=7007, help="viewer port (default 7007)")
    v.add_argument("--host", default="127.0.0.1", help="viewer address (default 127.0.0.1, this machine only)")
    v.add_argument("--view-every", type=_pos_float, default=2.0, metavar="S",
                   help="seconds between splat updates in the viewer (default 2; they take training time)")
    v.add_argument("--view-seconds", type=float, metavar="S",
                   help="keep the viewer serving S seconds after training (default: until Ctrl-C)")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train Scaffold-GS / 3DGS on a poses WORKDIR",
                       description="Train a scene model on posed images (a `realsim poses` WORKDIR, an LLFF folder with "
                                   "poses_bounds.npy, or a COLMAP folder) and write the scene bundle SCENE.")
    p.add_argument("workdir", type=Path, help="poses WORKDIR (or LLFF / COLMAP folder)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="SCENE", help="scene bundle folder to write")
    add_train_options(p)
    b = p.add_argument_group("large scenes: blocks trained as Ray tasks, merged into one bundle")
    b.add_argument("--blocks", type=_blocks_arg, metavar="auto|N",
                   help="split the scene on the ground into N blocks (auto: about 60 training photos each), train them "
                        "in parallel on Ray and merge them; --iterations is the whole scene's, shared by the blocks")
    b.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: a local runtime on --threads cores)")
    b.add_argument("--partition", type=Path, metavar="FILE", help="with --blocks: re-use this partition.json plan")
    b.add_argument("--block-overlap", type=_pos_float, default=0.2, metavar="F",
                   help="each block's training region extends its core by this fraction per side (default 0.2)")
    p.set_defaults(func=run)


def _blocks_arg(text: str) -> int:
    """--blocks auto -> 0, else a whole number >= 1."""
    if text == "auto":
        return 0
    return _pos_int(text)


def config_from_args(args: argparse.Namespace):
    from realsim.recon.trainer import preset_config

    from realsim.recon.train_config import auto_preset

    preset, n_img = (args.preset, None) if args.preset != "auto" else auto_preset(getattr(args, "workdir", None))
    cfg = preset_config(preset, args.model, args.iterations, n_images=n_img)
    cfg.seed = int(args.seed)
    cfg.backend = args.backend
    if args.downscale is not None:
        cfg.downscale = float(args.downscale)
    if args.holdout_every is not None:
        if args.holdout_every < 0:
            raise InputError(f"--holdout-every must be >= 0, got {args.holdout_every}")
        cfg.holdout_every = int(args.holdout_every)
    if args.checkpoint_every is not None:
        cfg.checkpoint_every = int(args.checkpoint_every)
    if args.max_minutes is not None:
        cfg.max_seconds = float(args.max_minutes) * 60.0
    cfg.refine_poses = bool(getattr(args, "refine_poses", False))
    if getattr(args, "dense_init", None) is not None:
        cfg.dense_init_stride = int(args.dense_init)
    if getattr(args, "max_anchors", None) is not None:
        cfg.scaffold_strategy.max_anchors = int(args.max_anchors)
    return cfg


def train_and_report(source: Path, args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.trainer import train

    from realsim.recon.dataset import load_camera_source
    from realsim.recon.train_device import resolve_device, train_backend

    cfg = config_from_args(args)
    device = resolve_device(args.device, cfg.backend)  # no GPU for --device cuda: one line, exit 2, before any output
    train_backend(cfg.backend, device)
    if args.override_config and not args.resume:
        raise InputError("--override-config only applies with --resume")
    cams = None
    if not args.resume or getattr(args, "view", False):
        cams, cam_root = load_camera_source(source)  # bad input fails here, before any progress output
    viewer = _start_viewer(args, cams, cam_root) if getattr(args, "view", False) else None
    try:
        with RichProgress(not args.quiet) as prog:
            res = train(source, args.output, cfg, progress=prog, resume=args.resume, overwrite=args.overwrite,
                        override_config=args.override_config, on_step=viewer.on_step if viewer else None, device=device)
        if viewer is not None and res.model is not None:
            viewer.finish(res.model, res.metrics, res.iterations)
    except BaseException:
        if viewer is not None:
            viewer.stop()
        raise
    m = res.metrics
    summary = {"scene": str(res.out), "model": cfg.model, "iterations": res.iterations, "train_seconds": round(res.seconds, 1),
               "test_views": m.get("n_views"), "psnr": m.get("psnr"), "ssim": m.get("ssim"),
               "anchors": m.get("anchors"), "gaussians": m.get("gaussians", m.get("gaussians_per_view"))}
    if args.json:
        print(json.dumps(summary))
    else:
        q = f"held-out PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.3f} on {m['n_views']} views" if m.get("n_views") else "no held-out views"
        print(f"{cfg.model}: {res.iterations} iterations in {res.seconds:.0f} s, {q} -> {res.out}")
    sys.stdout.flush()
    if viewer is not None:
        _linger(viewer, args.view_seconds)
    return 0


def _start_viewer(args: argparse.Namespace, cams, root: Path):
    try:
        import viser  # noqa: F401
    except ImportError:
        raise InputError("--view needs viser: pip install -c .ci/constraints.txt 'viser==1.1.1'") from None
    from realsim.cli.viewer.training import TrainingViewer

    if args.view_seconds is not None and args.view_seconds < 0:
        raise InputError(f"--view-seconds must be >= 0, got {args.view_seconds}")
    viewer = TrainingViewer(cams, root, host=args.host, port=args.port, every_s=args.view_every)
    viewer.start()
    print(f"realsim train: viewer at {viewer.url} (splats every {args.view_every:g} s)", file=sys.stderr, flush=True)
    return viewer


def _linger(viewer, seconds: float | None) -> None:
    """After training: the viewer keeps showing the result (`seconds`, or until Ctrl-C), then stops."""
    n = len(viewer.snapshots)
    steps = ", ".join(f"{s.step}:{s.splats}" for s in viewer.snapshots[:4]) + (" ..." if n > 4 else "")
    print(f"realsim train: viewer showed {n} updates (step:splats {steps}; {viewer.update_seconds:.1f} s), serving "
          f"{viewer.url} {'until Ctrl-C' if seconds is None else f'for {seconds:g} s'}", file=sys.stderr, flush=True)
    try:
        viewer.serve(seconds)
    finally:
        viewer.stop()


def run(args: argparse.Namespace) -> int:
    if args.blocks is not None:
        return train_blocks_and_report(args)
    if args.ray_address or args.partition:
        raise InputError("--ray-address and --partition apply with --blocks")
    return train_and_report(args.workdir, args)


def train_blocks_and_report(args: argparse.Namespace) -> int:
    """`realsim train WORKDIR -o SCENE --blocks auto|N`: per-block progress bars, one summary line per block."""
    from realsim.cli.progress import RichProgress
    from realsim.recon.blocks import train_blocks
    from realsim.recon.partition import PartitionConfig

    if args.view:
        raise InputError("--view does not apply to --blocks (view the merged scene with `realsim view SCENE`)")
    if args.device != "auto":
        raise InputError("--device does not apply to --blocks (each block trains on the GPU when there is one, else the CPU)")
    cfg = config_from_args(args)
    pcfg = PartitionConfig(blocks=args.blocks, overlap=args.block_overlap)
    with RichProgress(not args.quiet) as prog:
        res = train_blocks(args.workdir, args.output, cfg, pcfg, plan=args.partition, ray_address=args.ray_address,
                           num_cpus=args.threads, resume=args.resume, overwrite=args.overwrite,
                           override_config=args.override_config, progress=prog)
    m = res.metrics
    st = m.get("straddling") or {}
    if args.json:
        print(json.dumps({"scene": str(res.out), "blocks": res.blocks, "seconds": round(res.seconds, 1),
                          "iterations": m.get("iterations"), "test_views": m.get("n_views"), "psnr": m.get("psnr"),
                          "ssim": m.get("ssim"), "straddling_psnr": st.get("psnr"), "anchors": m.get("anchors")}, default=str))
        return 0
    for b in res.blocks:
        again = f", resumed from iteration {b['resumed_from']}" if b.get("resumed_from") else ""
        print(f"block {b['name']}: {b['iterations']} iterations in {b['seconds']:.0f} s{again}, "
              f"{b['anchors_kept']} of {b['anchors_block']} anchors kept (core)")
    q = f"held-out PSNR {m['psnr']:.2f} dB on {m['n_views']} views" if m.get("n_views") else "no held-out views"
    q += f" ({st['psnr']:.2f} dB on {st['n_views']} straddling a block boundary)" if st else ""
    print(f"{len(res.blocks)} blocks merged: {m.get('anchors')} anchors, {q} -> {res.out} ({res.seconds:.0f} s)")
    return 0
