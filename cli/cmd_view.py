"""`realsim view SCENE [--sim OUTDIR] [--port 7007] [--host 127.0.0.1]`: the scene, its cameras and a sim in the browser."""
from __future__ import annotations

import argparse
from pathlib import Path

from realsim.cli.argtypes import pos_int
from realsim.cli.common import add_threads_option


def add_parser(sub) -> None:
    p = sub.add_parser("view", help="view a scene (and a simulation) in the browser",
                       description="Serve SCENE in the browser (viser): the Gaussians as splats (Scaffold baked as "
                                   "`export` bakes it), the training cameras with their photos, the world's ground / "
                                   "walkable / obstacle map, a simulation's agents on a timeline, an exact mode "
                                   "(realsim's own render of the view) and a camera-path editor that saves "
                                   "nerfstudio camera_path.json. Blocks until Ctrl-C.")
    p.add_argument("scene", type=Path, help="scene bundle folder")
    p.add_argument("--sim", type=Path, metavar="OUTDIR", help="a `realsim simulate` / `demo` sim folder of this scene")
    p.add_argument("--port", type=pos_int, default=7007, help="port (default 7007)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; anything else is reachable by others)")
    p.add_argument("--path-out", type=Path, default=Path("camera_path.json"), metavar="FILE",
                   help="where the camera-path editor saves (default ./camera_path.json; editable in the page)")
    p.add_argument("--seconds", type=float, metavar="S", help="stop serving after S seconds (default: until Ctrl-C)")
    p.add_argument("--no-world", action="store_true", help="skip the ground / walkable / obstacle map")
    p.add_argument("--backend", choices=["auto", "torch", "cpu", "cuda", "gsplat"], default="auto",
                   help="rasterizer backend of the exact mode")
    p.add_argument("--lod", type=float, metavar="PX",
                   help="level of detail of the exact mode (as `render --lod`; e.g. a merged --blocks street): "
                        "distant content from coarser anchors at most PX pixels on screen; default off")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.assets.errors import InputError
    from realsim.cli.progress import RichProgress

    try:
        import viser  # noqa: F401
    except ImportError:
        raise InputError("the viewer needs viser: pip install -c .ci/constraints.txt 'viser==1.1.1'") from None
    from realsim.cli.viewer import ViewerApp, ViewerOptions

    if args.seconds is not None and not args.seconds > 0:
        raise InputError(f"--seconds must be > 0, got {args.seconds}")
    opts = ViewerOptions(scene=args.scene, sim=args.sim, host=args.host, port=args.port, path_out=args.path_out,
                         backend=args.backend, world=not args.no_world)
    with RichProgress(not args.quiet) as prog:
        app = ViewerApp(opts, progress=prog)
    if args.lod is not None:
        from realsim.recon.lod import LODConfig, with_lod

        app.scene.model = with_lod(app.scene.model, LODConfig(pixel_error=args.lod))
    app.start()
    note = f" ({app.world_note})" if app.world_note else ""
    print(f"realsim view: serving {args.scene} ({app.scene.kind}, {len(app.splats)} Gaussians"
          f"{f', {app.sim.n_agents} agents' if app.sim else ''}) at {app.url}{note}; Ctrl-C to stop", flush=True)
    app.serve(args.seconds)
    return 0
