"""`realsim export SCENE --format ply|splat|usdz -o FILE`: plain Gaussians for splat viewers (Scaffold baked to SH)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.common import add_threads_option, check_output_file


NON_METRIC_NOTE = "the scene is not metric (SfM units), so metersPerUnit is left unset on purpose"


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
    p.add_argument("--target", choices=["gaussians", "arkit", "physics"], default="gaussians",
                   help="gaussians (default): the splats as above; arkit: a textured mesh (realsim mesh) as an AR-ready, "
                        "Y-up USDZ for AR Quick Look / Vision Pro (UsdPreviewSurface, PNG texture inside, metres); "
                        "physics: a Z-up .usd/.usda/.usdc stage with the mesh, UsdPhysics colliders (ground, obstacle "
                        "boxes) and, with --sim, the props as rigid bodies")
    p.add_argument("--sim", type=Path, metavar="SIMDIR",
                   help="arkit / physics: add a `realsim simulate` output folder of this scene (agents as UsdSkel, props, "
                        "camera path)")
    p.add_argument("--gaussians", action="store_true",
                   help="physics: also write the Gaussians as a ParticleField3DGaussianSplat prim")
    p.add_argument("--scale", type=float,
                   help="arkit / physics: metres per scene unit for a non-metric scene (metric scenes are already in metres)")
    p.add_argument("--triangles", type=int, default=100_000, help="arkit / physics: mesh triangle budget (default 100000, max 200000)")
    p.add_argument("--texture-size", type=int, default=2048, help="arkit / physics: texture side (default 2048, max 4096)")
    p.add_argument("--sh-degree", type=int, default=3, help="SH degree of the exported colour, 0-3 (default 3)")
    p.add_argument("--views-between", type=int, default=2,
                   help="Scaffold bake: extra spline viewpoints between consecutive cameras (default 2)")
    p.add_argument("--chunk", type=int, default=4096, metavar="ANCHORS",
                   help="Scaffold bake: anchors baked at a time (bounded memory: ~0.4 MB each at 10 offsets and SH degree "
                        "3; the result does not depend on it); 0 = all at once (default 4096)")
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

    if args.target in ("arkit", "physics"):
        return _run_usd_target(args)
    if args.sim is not None or args.gaussians:
        raise InputError("--sim and --gaussians go with --target arkit or physics")
    fmt = args.format or args.output.suffix.lower().lstrip(".")
    if fmt not in ("ply", "splat", "usd", "usda", "usdc", "usdz"):
        raise InputError(f"cannot tell the format from {args.output.name!r}: pass --format ply, splat or usdz")
    if not 0 <= args.sh_degree <= 3:
        raise InputError(f"--sh-degree must be 0..3, got {args.sh_degree}")
    if args.views_between < 0:
        raise InputError(f"--views-between must be >= 0, got {args.views_between}")
    _check_chunk(args.chunk)
    check_output_file(args.output, args.overwrite)  # before the bake, not after it
    scene = load_scene(args.scene)
    cfg = ExportConfig(sh_degree=args.sh_degree, views_between=args.views_between, chunk=args.chunk)
    with RichProgress(not args.quiet) as prog:
        rep = export_scene(scene, args.output, fmt, args.sh_degree, evaluate=not args.no_eval, backend=args.backend,
                           cfg=cfg, progress=prog)
    if fmt.startswith("usd"):  # every usd-core validator; a non-metric scene's missing metersPerUnit is the truth
        from realsim.assets.usd_ar import validate_usd

        metric = bool(getattr(scene.info.world, "metric", False))
        val = validate_usd(args.output, expected=None if metric else {"MissingMetersPerUnitMetadata": NON_METRIC_NOTE})
        rep.update(validator_errors=val["errors"], validator_warnings=val["warnings"], validator_expected=val["expected"])
    if args.json:
        print(json.dumps(rep, indent=1))
    else:
        line = (f"wrote {args.output}: {rep['n_gaussians']} Gaussians ({rep['model_kind']} -> {fmt}, SH degree "
                f"{0 if fmt == 'splat' else rep['sh_degree']}), {rep['bytes'] / 1e6:.2f} MB")
        if "psnr_vs_model" in rep:
            line += (f"; PSNR vs the model's render {rep['psnr_vs_model']:.2f} dB (min {rep['psnr_vs_model_min']:.2f}) "
                     f"over {len(rep['eval_views'])} views at {rep['eval_size'][0]}x{rep['eval_size'][1]}")
        if fmt.startswith("usd"):
            line += (f"; validators: {len(rep['validator_errors'])} errors, {len(rep['validator_warnings'])} warnings"
                     + (f" (expected: {'; '.join(rep['validator_expected'])})" if rep["validator_expected"] else ""))
        print(line)
    return 1 if rep.get("validator_errors") else 0


def _check_chunk(chunk: int) -> None:
    if chunk < 0:
        raise InputError(f"--chunk must be >= 0 anchors (0 = all at once), got {chunk}")


def check_usd_budget(triangles: int, texture_size: int) -> None:
    from realsim.assets.usd_ar import MAX_TEXTURE, MAX_TRIANGLES

    if not 100 <= triangles <= MAX_TRIANGLES:
        raise InputError(f"--triangles must be 100..{MAX_TRIANGLES} for AR, got {triangles}")
    if not 64 <= texture_size <= MAX_TEXTURE:
        raise InputError(f"--texture-size must be 64..{MAX_TEXTURE} for AR, got {texture_size}")


def usd_report_line(rep: dict) -> str:
    """One line for an AR / physics USD report (sim.usd_export / the arkit mesh export)."""
    parts = [f"wrote {rep['out']}: {rep['triangles']} triangles"]
    if rep.get("texture_size"):
        parts.append(f"{rep['texture_size']} px texture")
    if rep.get("frames"):
        parts.append(f"{rep['agents']} agents ({rep['joints']} joints) and {rep['props']} props over {rep['frames']} "
                     f"frames at {rep['fps']:g} fps")
    if "boxes" in rep:
        parts.append(f"colliders: {rep['ground']} ground + {rep['boxes']} boxes, {rep['props']} rigid props")
    parts.append(f"{rep['bytes'] / 1e6:.2f} MB")
    line = ", ".join(parts) + f"; validators: {len(rep['validator_errors'])} errors, {len(rep['validator_warnings'])} warnings"
    if rep["validator_errors"]:
        line += f" ({'; '.join(rep['validator_errors'][:3])})"
    if "arkit_problems" in rep:
        line += f"; ARKit rules: {'ok' if not rep['arkit_problems'] else '; '.join(rep['arkit_problems'])}"
    if rep.get("budget_problems"):
        line += f"; over budget: {'; '.join(rep['budget_problems'])}"
    return line


def usd_exit_code(rep: dict) -> int:
    return 1 if rep["validator_errors"] or rep.get("arkit_problems") else 0


def _run_usd_target(args: argparse.Namespace) -> int:
    """--target arkit (Y-up USDZ) or physics (Z-up stage with UsdPhysics): the scene's textured mesh, plus --sim."""
    from realsim.cli.progress import RichProgress
    from realsim.recon.bundle import load_scene

    ar = args.target == "arkit"
    suffix = args.output.suffix.lower()
    if ar and suffix != ".usdz":
        raise InputError(f"--target arkit writes a .usdz package (got {args.output.name})")
    if not ar and suffix not in (".usd", ".usda", ".usdc"):
        raise InputError(f"--target physics writes a .usd, .usda or .usdc stage (got {args.output.name})")
    if args.gaussians and ar:
        raise InputError("--gaussians goes with --target physics (AR Quick Look does not draw ParticleField prims)")
    check_usd_budget(args.triangles, args.texture_size)
    _check_chunk(args.chunk)
    if args.scale is not None and not args.scale > 0:
        raise InputError(f"--scale must be positive, got {args.scale}")
    check_output_file(args.output, args.overwrite)
    scene = load_scene(args.scene)
    rec = None
    if args.sim is not None:
        from realsim.sim.usd_record import load_sim_record

        rec = load_sim_record(args.sim, args.scene)
        if args.scale is not None and abs(args.scale - rec.scale) > 1e-9 * rec.scale:
            raise InputError(f"--scale {args.scale:g} differs from the sim's ({rec.scale:g} metres per scene unit)")
    metric = bool(getattr(scene.info.world, "metric", False))
    scale = rec.scale if rec is not None else (args.scale if args.scale is not None else 1.0)
    if not metric and args.scale is None and rec is None:
        raise InputError(f"{args.scene} is not metric (SfM units): {'AR' if ar else 'physics'} needs metres; pass --scale "
                         "METRES_PER_UNIT or re-run `realsim poses` with --scale / --camera-height")
    with RichProgress(not args.quiet) as prog:
        if ar and rec is not None:
            from realsim.sim.usd_export import write_sim_usdz

            rep = write_sim_usdz(args.output, scene, rec, args.triangles, args.texture_size, prog)
        elif ar:
            rep = _arkit_mesh_only(args, scene, scale, prog)
        else:
            from realsim.sim.usd_export import write_physics_usd

            cloud = None
            if args.gaussians:
                from realsim.recon.export import ExportConfig, model_to_cloud

                ecfg = ExportConfig(sh_degree=args.sh_degree, views_between=args.views_between, chunk=args.chunk)
                cloud, _ = model_to_cloud(scene.model, scene.cameras, ecfg, prog)
            rep = write_physics_usd(args.output, scene, scale, rec, args.triangles, args.texture_size, cloud, prog)
    rep["scale"] = scale
    print(json.dumps(rep, indent=1) if args.json else usd_report_line(rep))
    return usd_exit_code(rep)


def _arkit_mesh_only(args: argparse.Namespace, scene, scale: float, prog) -> dict:
    from realsim.assets.usd_ar import ar_budget_problems, arkit_problems, validate_usd, write_scene_usd
    from realsim.recon.mesh import MeshConfig, mesh_scene

    from realsim.assets.usd_ar import ArMesh

    m = mesh_scene(scene, MeshConfig(target_triangles=args.triangles, texture_size=args.texture_size), prog)
    write_scene_usd(args.output, ArMesh(m.vertices * scale, m.faces, m.uv, m.texture, m.vertex_colors), y_up=True,
                    meters_per_unit=1.0)
    val = validate_usd(args.output)
    return {"out": str(args.output), "bytes": args.output.stat().st_size, "triangles": m.n_triangles,
            "texture_size": None if m.texture is None else int(m.texture.shape[0]),
            "validator_errors": val["errors"], "validator_warnings": val["warnings"], "arkit_problems": arkit_problems(args.output),
            "budget_problems": ar_budget_problems(args.output, m.n_triangles,
                                                  [m.texture.shape[0]] if m.texture is not None else []),
            **{k: v for k, v in m.info.items() if k not in ("triangles",)}}
