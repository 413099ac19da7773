"""`realsim export SCENE --format ply|splat|usdz -o FILE`: plain Gaussians for splat viewers (Scaffold baked to SH)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.common import add_threads_option, check_output_file


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a scene as a standard 3DGS PLY, .splat or USD(Z) file",
                       description="Write SCENE's Gaussians as the standard 3DGS PLY (x y z, nx ny nz, f_dc, f_rest, "
                                   "opacity, scale, rot) or the antimatter15 .splat web format. Scaffold-GS scenes are "
                                   "baked: every anchor's neural Gaussians decoded from many views, view-dependent colour "
                                   "fitted to SH. Prints the PSNR of the export against the model's own render.")
    p.add_argument("scene", type=Path, help="scene bundle folder")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                   help="output .ply, .splat or .usd/.usda/.usdc/.usdz file")
    p.add_argument("--format", choices=["ply", "splat", "usd", "usda", "usdc", "usdz"],
                   help="file format (default from the FILE suffix); usd* writes a UsdVol ParticleField3DGaussianSplat "
                        "(upAxis Z; metersPerUnit 1 for metric scenes only)")
    p.add_argument("--target", choices=["gaussians", "arkit"], default="gaussians",
                   help="gaussians (default): the splats as above; arkit: a textured mesh (realsim mesh) as an AR-ready, "
                        "Y-up USDZ for AR Quick Look / Vision Pro (UsdPreviewSurface, PNG texture inside, metres)")
    p.add_argument("--scale", type=float,
                   help="arkit: metres per scene unit for a non-metric scene (metric scenes are already in metres)")
    p.add_argument("--triangles", type=int, default=100_000, help="arkit: mesh triangle budget (default 100000, max 200000)")
    p.add_argument("--texture-size", type=int, default=2048, help="arkit: texture side (default 2048, max 4096)")
    p.add_argument("--sh-degree", type=int, default=3, help="SH degree of the exported colour, 0-3 (default 3)")
    p.add_argument("--views-between", type=int, default=2,
                   help="Scaffold bake: extra spline viewpoints between consecutive cameras (default 2)")
    p.add_argument("--no-eval", action="store_true", help="skip the PSNR check of the export against the model")
    p.add_argument("--backend", choices=["auto", "torch", "cpu", "cuda", "gsplat"], default="auto", help="rasterizer backend")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.bundle import load_scene
    from realsim.recon.export import ExportConfig, export_scene

    if args.target == "arkit":
        return _run_arkit(args)
    fmt = args.format or args.output.suffix.lower().lstrip(".")
    if fmt not in ("ply", "splat", "usd", "usda", "usdc", "usdz"):
        raise InputError(f"cannot tell the format from {args.output.name!r}: pass --format ply, splat or usdz")
    if not 0 <= args.sh_degree <= 3:
        raise InputError(f"--sh-degree must be 0..3, got {args.sh_degree}")
    if args.views_between < 0:
        raise InputError(f"--views-between must be >= 0, got {args.views_between}")
    check_output_file(args.output, args.overwrite)  # before the bake, not after it
    scene = load_scene(args.scene)
    cfg = ExportConfig(sh_degree=args.sh_degree, views_between=args.views_between)
    with RichProgress(not args.quiet) as prog:
        rep = export_scene(scene, args.output, fmt, args.sh_degree, evaluate=not args.no_eval, backend=args.backend,
                           cfg=cfg, progress=prog)
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        line = (f"wrote {args.output}: {rep['n_gaussians']} Gaussians ({rep['model_kind']} -> {fmt}, SH degree "
                f"{0 if fmt == 'splat' else rep['sh_degree']}), {rep['bytes'] / 1e6:.2f} MB")
        if "psnr_vs_model" in rep:
            line += (f"; PSNR vs the model's render {rep['psnr_vs_model']:.2f} dB (min {rep['psnr_vs_model_min']:.2f}) "
                     f"over {len(rep['eval_views'])} views at {rep['eval_size'][0]}x{rep['eval_size'][1]}")
        print(line)
    return 0


def _run_arkit(args: argparse.Namespace) -> int:
    """The AR-ready USDZ: mesh the scene (recon.mesh), write it Y-up with a PNG texture, check validators and ARKit rules."""
    from realsim.assets.usd_ar import (MAX_TEXTURE, MAX_TRIANGLES, ArMesh, ar_budget_problems, arkit_problems,
                                       validate_usd, write_scene_usd)
    from realsim.cli.progress import RichProgress
    from realsim.recon.bundle import load_scene
    from realsim.recon.mesh import MeshConfig, mesh_scene

    if args.output.suffix.lower() != ".usdz":
        raise InputError(f"--target arkit writes a .usdz package (got {args.output.name})")
    if not 100 <= args.triangles <= MAX_TRIANGLES:
        raise InputError(f"--triangles must be 100..{MAX_TRIANGLES} for AR, got {args.triangles}")
    if not 64 <= args.texture_size <= MAX_TEXTURE:
        raise InputError(f"--texture-size must be 64..{MAX_TEXTURE} for AR, got {args.texture_size}")
    if args.scale is not None and not args.scale > 0:
        raise InputError(f"--scale must be positive, got {args.scale}")
    check_output_file(args.output, args.overwrite)
    scene = load_scene(args.scene)
    metric = bool(getattr(scene.info.world, "metric", False))
    if not metric and args.scale is None:
        raise InputError(f"{args.scene} is not metric (SfM units): AR needs metres; pass --scale METRES_PER_UNIT "
                         "or re-run `realsim poses` with --scale / --camera-height")
    scale = 1.0 if metric and args.scale is None else float(args.scale)
    with RichProgress(not args.quiet) as prog:
        m = mesh_scene(scene, MeshConfig(target_triangles=args.triangles, texture_size=args.texture_size), prog)
    write_scene_usd(args.output, ArMesh(m.vertices * scale, m.faces, m.uv, m.texture, m.vertex_colors), y_up=True,
                    meters_per_unit=1.0)
    val = validate_usd(args.output)
    ark = arkit_problems(args.output)
    budget = ar_budget_problems(args.output, m.n_triangles, [m.texture.shape[0]] if m.texture is not None else [])
    rep = {"out": str(args.output), "bytes": args.output.stat().st_size, "triangles": m.n_triangles,
           "texture_size": None if m.texture is None else int(m.texture.shape[0]), "scale": scale,
           "validator_errors": val["errors"], "validator_warnings": val["warnings"], "arkit_problems": ark,
           "budget_problems": budget, **{k: v for k, v in m.info.items() if k not in ("triangles",)}}
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        print(f"wrote {args.output}: {m.n_triangles} triangles, {rep['texture_size']} px texture, "
              f"{rep['bytes'] / 1e6:.2f} MB, Y-up metres; validators: {len(val['errors'])} errors, "
              f"{len(val['warnings'])} warnings; ARKit rules: {'ok' if not ark else '; '.join(ark)}"
              + (f"; over budget: {'; '.join(budget)}" if budget else ""))
    return 1 if val["errors"] or ark else 0
