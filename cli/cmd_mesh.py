"""`realsim mesh SCENE -o scene.ply|.obj|.glb`: a textured triangle mesh by TSDF fusion of the scene's own renders."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from realsim.assets.errors import InputError
from realsim.cli.common import add_threads_option, check_output_file


def add_parser(sub) -> None:
    p = sub.add_parser("mesh", help="a textured triangle mesh of a scene (TSDF fusion of its renders)",
                       description="Render SCENE's depth and colour from the training cameras and spline views between "
                                   "them, fuse them into a TSDF (open3d VoxelBlockGrid), extract, clean (small components, "
                                   "floaters), simplify to --triangles, UV-unwrap (xatlas) and texture by projecting the "
                                   "renders. .ply keeps vertex colours; .obj (+ .mtl + PNG) and .glb carry the texture. "
                                   "Prints the PSNR of the textured mesh against the Gaussians at the held-out views, and "
                                   "Chamfer / F-score against --ground-truth geometry when given.")
    p.add_argument("scene", type=Path, help="scene bundle folder")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="output .ply, .obj or .glb")
    p.add_argument("--triangles", type=int, default=100_000, help="target triangle count after decimation (default 100000)")
    p.add_argument("--texture-size", type=int, default=2048, help="texture atlas side in pixels, 0 = vertex colours (default 2048)")
    p.add_argument("--voxel", type=float, help="TSDF voxel size in scene units (default: median rendered depth / 150)")
    p.add_argument("--depth-max", type=float, help="ignore rendered depths beyond this (default: 90th percentile)")
    p.add_argument("--views-between", type=int, default=2, help="spline views between consecutive cameras (default 2)")
    p.add_argument("--max-side", type=int, default=320, help="render resolution, longest side (default 320)")
    p.add_argument("--ground-truth", type=Path, metavar="CAPTURE",
                   help="a synthetic capture folder (geometry.safetensors, cameras_gt.json): report Chamfer and F-score at 5 cm")
    p.add_argument("--no-eval", action="store_true", help="skip the held-out PSNR against the Gaussians")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_threads_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realsim.cli.progress import RichProgress
    from realsim.recon.bundle import load_scene
    from realsim.recon.mesh import MESH_SUFFIXES, MeshConfig, mesh_psnr, mesh_scene, save_mesh

    if args.output.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"cannot tell the mesh format from {args.output.name!r}: use .ply, .obj or .glb")
    if args.triangles < 100:
        raise InputError(f"--triangles must be >= 100, got {args.triangles}")
    if args.texture_size and not 64 <= args.texture_size <= 8192:
        raise InputError(f"--texture-size must be 0 or 64..8192, got {args.texture_size}")
    if args.voxel is not None and not args.voxel > 0:
        raise InputError(f"--voxel must be positive, got {args.voxel}")
    check_output_file(args.output, args.overwrite)
    gt = None
    if args.ground_truth is not None:
        gt = args.ground_truth
        if not (gt / "geometry.safetensors").is_file() or not (gt / "cameras_gt.json").is_file():
            raise InputError(f"{gt} is not a synthetic capture folder (needs geometry.safetensors and cameras_gt.json)")
    scene = load_scene(args.scene)
    cfg = MeshConfig(max_side=args.max_side, views_between=args.views_between, voxel_size=args.voxel,
                     depth_max=args.depth_max, target_triangles=args.triangles, texture_size=args.texture_size)
    with RichProgress(not args.quiet) as prog:
        m = mesh_scene(scene, cfg, prog)
    files = save_mesh(m, args.output)
    rep = {"out": [str(f) for f in files], "bytes": sum(f.stat().st_size for f in files), **m.info}
    if not args.no_eval:
        test = scene.cameras.split("test")
        which = "held-out" if test else "training (no held-out cameras)"
        test = test or scene.cameras.frames[:: max(1, len(scene.cameras.frames) // 4)]
        rep["vs_gaussians"] = {**mesh_psnr(m, scene, test, args.max_side), "views_kind": which}
    if gt is not None:
        rep["vs_ground_truth"] = _ground_truth(m, scene, gt)
    if args.json:
        print(json.dumps(rep, indent=1))
        return 0
    line = (f"wrote {args.output}: {m.n_triangles} triangles, {len(m.vertices)} vertices"
            + (f", {m.texture.shape[1]}x{m.texture.shape[0]} texture" if m.texture is not None else ", vertex colours")
            + f", {rep['bytes'] / 1e6:.2f} MB (voxel {m.info['voxel_size']:.3f})")
    if "vs_gaussians" in rep and rep["vs_gaussians"]["views"]:
        g = rep["vs_gaussians"]
        line += (f"; PSNR vs the Gaussians {g['psnr']:.2f} dB over {g['views']} {g['views_kind']} views "
                 f"(coverage {g['coverage']:.0%})")
    if gt is not None:
        a = rep["vs_ground_truth"]
        line += f"; vs ground truth: Chamfer {a['chamfer'] * 100:.1f} cm, F-score@5cm {a['fscore']:.3f}"
    print(line)
    return 0


def _ground_truth(m, scene, capture: Path) -> dict:
    from realsim.assets.cameras import load_cameras
    from realsim.assets.scene import load_tensors
    from realsim.recon.mesh import align_to_ground_truth, mesh_accuracy, visible_gt_points

    g, _ = load_tensors(capture / "geometry.safetensors")
    gt_cams = load_cameras(capture / "cameras_gt.json")
    s, R, t = align_to_ground_truth(scene.cameras, gt_cams)
    pts = visible_gt_points(g["vertices"].numpy(), g["faces"].numpy(), gt_cams.frames, m.info["depth_max"] * s)
    return {**mesh_accuracy(m, pts, (s, R, t)), "scale_to_gt": float(s)}
