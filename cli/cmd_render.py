"""`realsim render SCENE -o OUT`: render a camera path into the 3D-guided video bundle (rgb / depth / normal / alpha)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.argtypes import pos_float as _pos_float
from realsim.cli.common import add_backend_option, add_max_pixels_option, add_output_flags, add_threads_option

PATH_KINDS = ("interp", "orbit", "spiral")


def _even_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v <= 0 or v % 2:
        raise argparse.ArgumentTypeError(f"expected a positive even number (H.264 yuv420p), got {v}")
    return v


def add_parser(sub) -> None:
    p = sub.add_parser("render", help="render a camera path into the 3D-guided video bundle",
                       description="Render SCENE along a camera path and write OUT/: rgb.mp4, depth.mp4 + depth/*.png "
                                   "(16-bit, metres = value x depth_scale), normal.mp4, alpha.mp4, cameras.json (per "
                                   "frame K, viewmat, time) and camera_path.json (nerfstudio; replay with --path).")
    p.add_argument("scene", type=Path, help="scene bundle folder (from `realsim train` / `reconstruct`)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT", help="bundle folder to write")
    p.add_argument("--path", default="interp", metavar="interp|orbit|spiral|FILE.json",
                   help="interp: smooth path through the training cameras; orbit / spiral around the scene's focus "
                        "point; or a nerfstudio camera_path.json (default interp)")
    p.add_argument("--seconds", type=_pos_float, help="video length (default 8, or the path file's own)")
    p.add_argument("--fps", type=_pos_float, help="frame rate (default 30, or the path file's own)")
    p.add_argument("--width", type=_even_int, help="frame width in pixels (even; default from the cameras or file)")
    p.add_argument("--height", type=_even_int, help="frame height in pixels (even; default keeps the aspect ratio)")
    p.add_argument("--streams", default="rgb,depth,normal,alpha", help="comma list of rgb, depth, normal, alpha")
    p.add_argument("--order", choices=["name", "nearest"], default="name",
                   help="camera order for --path interp: capture (name) order or a nearest-neighbour chain")
    p.add_argument("--smooth", type=float, default=0.0,
                   help="--path interp: Gaussian smoothing of the cameras (sigma in cameras, e.g. 1.5) for a steady video")
    p.add_argument("--turns", type=_pos_float, help="orbit turns / spiral rotations (default 1 / 2)")
    p.add_argument("--lod", type=_pos_float, metavar="PX",
                   help="level of detail (Scaffold scenes, e.g. a merged --blocks street): distant content from coarser "
                        "anchors whose voxel is at most PX pixels on screen (e.g. 2); default off (exact)")
    p.add_argument("--appearance", choices=["auto", "shared"], default="auto",
                   help="auto: each frame takes the colour (exposure, white balance) of the photos taken near it, where "
                        "the model learned one per photo (the real preset); shared: the model's one appearance")
    add_backend_option(p)
    p.add_argument("--crf", type=int, default=18, help="H.264 quality (0 best .. 51 worst; default 18)")
    add_output_flags(p, "replace a non-empty output folder")
    add_max_pixels_option(p)
    add_threads_option(p)
    p.set_defaults(func=run)


def build_path(scene, args: argparse.Namespace, points):
    """The CameraPath the arguments ask for."""
    from realsim.render import paths as P

    frames = scene.cameras.frames
    kind = str(args.path)
    if kind in PATH_KINDS:
        if not frames:
            raise InputError(f"{scene.root} has no cameras to build a path from")
        seconds = args.seconds or 8.0
        fps = args.fps or 30.0
        if kind == "interp":
            if args.smooth < 0:
                raise InputError(f"--smooth must be >= 0, got {args.smooth}")
            return P.interp_path(frames, seconds, fps, args.width, args.height, order=args.order, smooth=args.smooth)
        if kind == "orbit":
            return P.orbit_path(frames, seconds, fps, args.width, args.height, turns=args.turns or 1.0, points=points)
        return P.spiral_path(frames, seconds, fps, args.width, args.height, rotations=args.turns or 2.0, points=points)
    file = Path(kind)
    if file.suffix.lower() != ".json":
        raise InputError(f"--path must be interp, orbit, spiral or a camera_path .json file (got {kind!r})")
    path = P.load_camera_path(file, args.width, args.height, max_pixels=args.max_pixels)
    if args.seconds or args.fps:
        path = P.resample_path(path, args.seconds or path.seconds, args.fps or path.fps)
    if path.width % 2 or path.height % 2:
        raise InputError(f"{file}: render size {path.width}x{path.height} is odd; pass even --width/--height")
    return path


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.bundle import load_scene
    from realsim.assets.atomic import check_writable
    from realsim.render import paths as P
    from realsim.render.bundle import parse_streams, write_video_bundle
    from realsim.render.limits import check_frame_size

    if not 0 <= args.crf <= 51:
        raise InputError(f"--crf must be 0..51, got {args.crf}")
    streams = parse_streams(args.streams)
    out = args.output
    if out.resolve() == args.scene.resolve():
        raise InputError("the output folder must not be the scene folder")
    # absurd frame sizes fail now, before the scene loads
    if args.width and args.height:
        check_frame_size(args.width, args.height, args.max_pixels)
    if str(args.path) not in PATH_KINDS and Path(str(args.path)).suffix.lower() == ".json":
        P.load_camera_path(args.path, args.width, args.height, max_pixels=args.max_pixels)
    check_writable(out)
    scene = load_scene(args.scene)
    if args.lod:
        from realsim.recon.lod import LODConfig, with_lod

        scene.model = with_lod(scene.model, LODConfig(pixel_error=args.lod))
    try:
        points = scene.points()[0]
    except InputError:
        points = None  # no SfM points: the focus point and depth range come from the cameras / first frame
    path = build_path(scene, args, points)
    check_frame_size(path.width, path.height, args.max_pixels)

    def render_fn(V, K, W, H):
        return scene.render(V, K, W, H, backend=args.backend, appearance=args.appearance)

    meta = {"scene": str(args.scene), "model_kind": scene.kind, "metric": bool(scene.info.world.metric),
            "path": str(args.path), "backend": args.backend, "lod_pixel_error": args.lod,
            "appearance": "per-photo blend" if args.appearance == "auto" and scene.appearance else "shared"}
    t0 = time.perf_counter()
    with RichProgress(not args.quiet) as prog:
        summary = write_video_bundle(render_fn, path, out, streams, points=points, overwrite=args.overwrite,
                                     crf=args.crf, metadata=meta, progress=prog)
    dt = time.perf_counter() - t0
    summary["seconds_total"] = round(dt, 3)
    summary["seconds_per_frame"] = round(dt / max(len(path), 1), 4)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"wrote {out}: {len(path)} frames {path.width}x{path.height} @ {path.fps:g} fps "
              f"({', '.join(streams)}) in {dt:.1f} s ({dt / max(len(path), 1):.2f} s/frame)")
    return 0
