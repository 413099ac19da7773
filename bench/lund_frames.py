"""Before / after frames of trained bundles at the photos' own positions, side by side at one size (our renders only,
never the photos: the lund data licence forbids committing them), with each render's sharpness at that size.

    .venv/bin/python bench/lund_frames.py --scene build/lund/poses --out docs/lund --size-of after \\
        before=build/lund/abl/real-floaters_scaffold after=build/lund/h13/long_real_scaffold --views 01,05,09,13,17,21,25

Every bundle renders through Scene.render, so a bundle trained at another size than the output is drawn anti-aliased
(recon/antialias.py); the sharpness printed is the variance of the Laplacian of the render over that of the photo,
both at the output size, and the same after a 1 px Gaussian blur of both (recon/evaluation.py).

With --path (a render or sim bundle's cameras.json) the frames are those of a walk video instead, at its own size; --video
adds that bundle's composited rgb.mp4 (agents included) as the last column:

    .venv/bin/python bench/lund_frames.py --scene build/lund/poses --out docs/lund --path build/lund/demo33b/sim/cameras.json \
        --frames 30,150 --video build/lund/demo33b/sim/rgb.mp4 before=build/lund/lr/before_s0_scaffold \
        after=build/lund/demo33b/scene
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from realsim.assets.cameras import load_cameras
from realsim.recon.bundle import load_scene
from realsim.recon.dataset import load_dataset
from realsim.recon.evaluation import band_laplacian_variance
from realsim.recon.metrics import laplacian_variance, psnr, ssim


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundles", nargs="+", metavar="LABEL=BUNDLE")
    ap.add_argument("--scene", type=Path, required=True, help="the poses WORKDIR (photos for the sharpness figure)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size-of", default=None, help="label whose trained size the frames use (default: the last)")
    ap.add_argument("--views", default="01,05,09,13,17,21,25", help="photo name stems")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--path", type=Path, help="a bundle's cameras.json: render these walk frames instead of the photos'")
    ap.add_argument("--frames", default="30,90,150", help="--path frame indices")
    ap.add_argument("--video", type=Path, help="--path: the bundle's rgb.mp4, shown as the last column")
    args = ap.parse_args()
    torch.set_num_threads(1)
    scenes = {lab: load_scene(p) for lab, _, p in (b.partition("=") for b in args.bundles)}
    if args.path is not None:
        return walk_frames(args, scenes)
    ref = scenes[args.size_of or list(scenes)[-1]]
    ds = load_dataset(args.scene, downscale=ref.info.metadata["train"]["downscale"])
    want = set(args.views.split(","))
    views = sorted((v for v in ds.train + ds.test if Path(v.name).stem in want), key=lambda v: v.name)
    args.out.mkdir(parents=True, exist_ok=True)
    for v in views:
        row = []
        for lab, sc in scenes.items():
            rgb = sc.render(v.viewmat, v.K, v.width, v.height, backend=args.backend)["rgb"]
            print(f"{v.name} {lab} ({v.width}x{v.height}, {'test' if v in ds.test else 'train'}): PSNR {psnr(rgb, v.image):.2f} "
                  f"SSIM {float(ssim(rgb, v.image)):.3f} sharpness {laplacian_variance(rgb) / laplacian_variance(v.image):.3f} "
                  f"band {band_laplacian_variance(rgb) / band_laplacian_variance(v.image):.3f}")
            row += [(rgb.numpy() * 255).round().astype(np.uint8), np.full((v.height, 8, 3), 255, np.uint8)]
        tmp = args.out / f".{Path(v.name).stem}.tmp.png"
        Image.fromarray(np.concatenate(row[:-1], 1)).save(tmp)
        tmp.replace(args.out / f"{Path(v.name).stem}_{'_vs_'.join(scenes)}.png")
    return 0


def walk_frames(args: argparse.Namespace, scenes: dict) -> int:
    """The --path frames of every bundle (and of --video) side by side, our renders only."""
    frames = load_cameras(args.path).frames
    want = [int(i) for i in args.frames.split(",")]
    video = {}
    if args.video is not None:
        import av

        with av.open(str(args.video)) as c:
            video = {i: f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i in want}
    args.out.mkdir(parents=True, exist_ok=True)
    labels = list(scenes) + (["video"] if video else [])
    for i in want:
        f = frames[i]
        row = []
        for lab, sc in scenes.items():
            rgb = sc.render(np.asarray(f.viewmat), np.asarray(f.K), f.width, f.height, backend=args.backend)["rgb"]
            print(f"walk frame {i} {lab} ({f.width}x{f.height}): Laplacian variance {laplacian_variance(rgb):.5f}")
            row += [(rgb.numpy() * 255).round().astype(np.uint8), np.full((f.height, 8, 3), 255, np.uint8)]
        if video:
            row += [video[i], row[-1]]
        tmp = args.out / f".walk{i:03d}.tmp.png"
        Image.fromarray(np.concatenate(row[:-1], 1)).save(tmp)
        tmp.replace(args.out / f"walk{i:03d}_{'_vs_'.join(labels)}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
