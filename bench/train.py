"""Training benchmark: Scaffold-GS vs 3DGS on a real scene (default llff_fern, every 8th view held out, 504x378, cpu backend).

Prints a table and writes bench/results/train.json (merged per scene/model, so runs for different scenes accumulate):
held-out PSNR / SSIM, iterations, wall time, model size on disk, anchors / Gaussians, the held-out PSNR curve, and the
machine's load average (the machine may be shared: wall times are inflated by contention when load > cores).

    nice -n 10 .venv/bin/python bench/train.py --models scaffold,3dgs --minutes 15
    .venv/bin/python bench/train.py --scene build/lund_workdir --name lund_street --models scaffold --minutes 10
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import REPO, RESULTS, apply_sets, data_root, load_avg, read_result, stamp, write_result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, help="WORKDIR / LLFF / COLMAP folder (default: shared llff_fern)")
    ap.add_argument("--name", default=None, help="result key (default: the scene folder name)")
    ap.add_argument("--models", default="scaffold,3dgs")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--iterations", type=int, default=None, help="iterations (default: the preset's)")
    ap.add_argument("--minutes", type=float, default=15.0, help="budget per model (hard stop; schedules follow it)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="budget in wall seconds, or in process CPU seconds (minutes x 60 x --threads): fair on a shared machine")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--downscale", type=float, default=None, help="default: the preset's width (fern: 2 -> 504x378)")
    ap.add_argument("--holdout-every", type=int, default=8)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default="", help="comma-separated seeds (e.g. 0,1,2): one run per seed and model, keyed "
                    "NAME_sSEED/MODEL, plus NAME/summary with the mean and spread over seeds")
    ap.add_argument("--skip-done", action="store_true",
                    help="with --seeds: keep rows already in --json (same NAME_sSEED/MODEL) instead of training them again")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field (dotted for nested, JSON value), e.g. scaffold.sky_gaussians=0; repeatable")
    ap.add_argument("--out", type=Path, default=REPO / "build" / "bench_train")
    ap.add_argument("--json", type=Path, default=RESULTS / "train.json")
    ap.add_argument("--frames", type=Path, metavar="DIR",
                    help="with --frames-from: write PNG renders of the bundles' held-out (and --frames-train) views to DIR")
    ap.add_argument("--frames-from", action="append", default=[], metavar="LABEL=BUNDLE",
                    help="render trained bundles at the photo positions (no training); repeatable, side by side")
    ap.add_argument("--frames-train", default="", help="comma-separated training view names to render as well")
    ap.add_argument("--from-checkpoints", action="store_true",
                    help="evaluate the last checkpoints of interrupted runs (.SCENE_MODEL.train/) instead of training")
    ap.add_argument("--rescore", action="store_true",
                    help="re-evaluate finished bundles (OUT/NAME_MODEL) with the current metrics; the row's training fields stay")
    args = ap.parse_args(argv)
    if args.from_checkpoints:
        return evaluate_checkpoints(args)
    if args.rescore:
        return rescore(args)
    if args.frames_from:
        return render_frames(args)

    from realsim.recon.dataset import load_dataset
    from realsim.recon.trainer import evaluate_scene, preset_config, train

    scene = args.scene or data_root() / "scenes" / "llff_fern"
    name = args.name or scene.name
    rows = []
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    for seed, model in [(s, m) for s in seeds for m in args.models.split(",")]:  # seed-major: a cut-off run stays paired
        key = f"{name}_s{seed}" if len(seeds) > 1 else name
        done = read_result(args.json, {}).get(f"{key}/{model}") if args.skip_done else None
        if done is not None:
            rows.append(done)
            continue
        n_img = None
        if args.preset == "real":
            from realsim.assets.cameras import holdout_split
            from realsim.recon.dataset import load_camera_source

            names = [f.name for f in load_camera_source(scene)[0].frames]
            n_img = sum(x == "train" for x in holdout_split(names, args.holdout_every))
        cfg = preset_config(args.preset, model, args.iterations, n_images=n_img)
        apply_sets(cfg, args.set)
        cfg.backend, cfg.seed, cfg.holdout_every = args.backend, seed, args.holdout_every
        if args.downscale:
            cfg.downscale = args.downscale
        cfg.threads, cfg.budget_clock = args.threads, args.clock
        cfg.max_seconds = args.minutes * 60.0 * (args.threads if args.clock == "cpu" else 1)
        cfg.checkpoint_every = 0
        ds = load_dataset(scene, cfg.downscale, cfg.max_width, cfg.holdout_every)
        out = args.out / f"{key}_{model}"
        load0 = load_avg()
        t0 = time.time()
        last = [0.0]

        def prog(stage, done, total, info):
            if stage == "train" and time.time() - last[0] > 30:
                last[0] = time.time()
                print(f"  {model} {done}/{total} " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                          for k, v in info.items()), file=sys.stderr, flush=True)

        res = train(scene, out, cfg, progress=prog, overwrite=True, dataset=ds)
        wall = time.time() - t0
        ev = evaluate_scene(out, backend=args.backend)
        split = split_metrics(res.model, ds, args.backend, tuple(cfg.background), cfg.eps2d)
        split.update(train_view_scores(res.model, ds, args.backend, tuple(cfg.background), eps2d=cfg.eps2d))
        curve = [(r["step"], round(r["eval_psnr"], 3), round(r["elapsed"], 1))
                 for r in map(json.loads, (out / "train" / "metrics.jsonl").read_text().splitlines()) if "eval_psnr" in r]
        row = {
            "scene": key, "model": model, "seed": seed, "backend": args.backend, "resolution": ev["resolution"],
            "iterations": res.iterations, "planned_iterations": cfg.iterations, "train_seconds": round(res.seconds, 1),
            "train_cpu_seconds": res.metrics.get("train_cpu_seconds"), "budget_clock": args.clock,
            "budget_seconds": cfg.max_seconds,
            "wall_seconds_incl_eval": round(wall, 1), "psnr": round(ev["psnr"], 3), "ssim": round(ev["ssim"], 4),
            "lpips": ev["lpips"], "test_views": ev["n_views"], "model_bytes": ev["model_bytes"],
            "anchors": ev.get("anchors"), "gaussians": ev.get("gaussians"), "gaussians_per_view": ev["gaussians_per_view"],
            "render_s_per_frame": round(ev["render_s_per_frame"], 3), "load_avg_start": load0,
            **split,
            "overrides": args.set, "preset": args.preset,
            "load_avg_end": load_avg(), "threads": cfg.threads, "curve_step_psnr_elapsed": curve, **stamp(),
        }
        rows.append(row)
        _merge(args.json, f"{key}/{model}", row)
    if len(seeds) > 1:
        _merge(args.json, f"{name}/summary", seed_summary(rows))
    for r in rows:
        _print_split(r)
    print(f"{'scene/model':24s} {'it':>6s} {'wall s':>8s} {'cpu s':>7s} {'PSNR':>7s} {'SSIM':>6s} {'MB':>7s} {'anch/gauss':>10s} {'load':>5s}")
    for r in rows:
        n = r["anchors"] if r["anchors"] is not None else r["gaussians"]
        print(f"{r['scene'] + '/' + r['model']:24s} {r['iterations']:6d} {r['train_seconds']:8.0f} {r['train_cpu_seconds']:7.0f} {r['psnr']:7.2f} "
              f"{r['ssim']:6.3f} {r['model_bytes'] / 1e6:7.2f} {n:10d} {(r['load_avg_end'] or [0, 0])[1]:5.1f}")
    return 0


def seed_summary(rows: list[dict]) -> dict:
    """Per model: mean and spread (sample std, min, max) over seeds of held-out PSNR / SSIM, model size and primitive
    count; and the 3DGS / Scaffold-GS model-size and PSNR gaps of the means."""
    import statistics as st

    out: dict = {"seeds": sorted({r["seed"] for r in rows})}
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        m: dict = {"runs": len(rs), "iterations_mean": round(st.mean(r["iterations"] for r in rs), 1),
                   "train_cpu_seconds_mean": round(st.mean(r["train_cpu_seconds"] or 0.0 for r in rs), 1)}
        for k in ("psnr", "ssim", "model_bytes", "anchors", "gaussians"):
            v = [float(r[k]) for r in rs if r.get(k) is not None]
            if v:
                m[k + "_mean"] = round(st.mean(v), 4)
                m[k + "_std"] = round(st.stdev(v), 4) if len(v) > 1 else 0.0
                m[k + "_min"], m[k + "_max"] = min(v), max(v)
        out[model] = m
    if "scaffold" in out and "3dgs" in out:
        out["size_ratio_3dgs_over_scaffold"] = round(out["3dgs"]["model_bytes_mean"] / out["scaffold"]["model_bytes_mean"], 2)
        out["psnr_scaffold_minus_3dgs"] = round(out["scaffold"]["psnr_mean"] - out["3dgs"]["psnr_mean"], 3)
    return out


def split_metrics(model, ds, backend: str, background: tuple, eps2d: float) -> dict:
    """Held-out metrics split into interpolated views and extrapolated ones (the first / last view by name: outside
    the walk), with the half-split colour-affine protocol and sharpness; drawn with the trained widening eps2d."""
    from realsim.recon.appearance import NeighbourAppearance
    from realsim.recon.trainer import evaluate_views

    full = evaluate_views(model, ds.test, backend, background, half_split=True,
                          appearance=NeighbourAppearance.for_model(model, ds.cameras), eps2d=eps2d)
    names = sorted(v.name for v in ds.train + ds.test)
    extra = [i for i, v in enumerate(ds.test) if v.name in (names[0], names[-1])]
    interp = [i for i in range(len(ds.test)) if i not in extra]
    split: dict = {"test_names": [v.name for v in ds.test], "extrapolated": [ds.test[i].name for i in extra]}
    for key in ("psnr", "ssim", "psnr_shared", "ssim_shared", "psnr_affine", "ssim_affine", "psnr_right", "ssim_right",
                "sharpness", "sharpness_band"):
        if "per_view_" + key not in full:  # psnr_shared: only for models with per-photo colour affines
            continue
        pv = full["per_view_" + key]
        split[key + "_interp"] = round(float(sum(pv[i] for i in interp) / max(len(interp), 1)), 4)
        split[key + "_extrap"] = round(float(sum(pv[i] for i in extra) / len(extra)), 4) if extra else None
        split["per_view_" + key] = pv
    return split


def train_view_scores(model, ds, backend: str, background: tuple, eps2d: float, every: int = 2) -> dict:
    """PSNR and sharpness (Laplacian variance of render over photo) at every `every`-th training photo's own position,
    rendered with the shared appearance (no per-image colour affine): where the walk passes the photos."""
    from realsim.recon.trainer import evaluate_views

    ev = evaluate_views(model, ds.train[::every], backend, background, eps2d=eps2d)
    return {"psnr_train": round(ev["psnr"], 3), "sharpness_train": round(ev["sharpness"], 4),
            "per_view_sharpness_train": ev["per_view_sharpness"], "train_views_scored": ev["n_views"],
            "sharpness_band_train": round(ev["sharpness_band"], 4), "per_view_sharpness_band_train": ev["per_view_sharpness_band"]}


def rescore(args: argparse.Namespace) -> int:
    """Split metrics and training-view scores of finished bundles, merged into their existing result rows."""
    from realsim.recon.bundle import load_scene
    from realsim.recon.dataset import load_dataset

    scene = args.scene or data_root() / "scenes" / "llff_fern"
    name = args.name or scene.name
    for model in args.models.split(","):
        sc = load_scene(args.out / f"{name}_{model}")
        tr = sc.info.metadata["train"]
        ds = load_dataset(scene, tr["downscale"], None, tr["config"].get("holdout_every"))
        bg = tuple(tr["config"].get("background", (0.0, 0.0, 0.0)))
        row = read_result(args.json, {}).get(f"{name}/{model}", {"scene": name, "model": model})
        row.update(split_metrics(sc.model, ds, args.backend, bg, sc.train_eps2d()))
        row.update(train_view_scores(sc.model, ds, args.backend, bg, eps2d=sc.train_eps2d()))
        _merge(args.json, f"{name}/{model}", row)
        _print_split(row)
    return 0


def _print_split(r: dict) -> None:
    shared = f" (shared appearance {r['psnr_shared_interp']:.2f} / {r['ssim_shared_interp']:.3f})" if "psnr_shared_interp" in r else ""
    print(f"{r['scene']}/{r['model']}: interpolated PSNR {r['psnr_interp']:.2f} SSIM {r['ssim_interp']:.3f}{shared} "
          f"(affine half-split {r['psnr_affine_interp']:.2f} / {r['ssim_affine_interp']:.3f}, same half raw "
          f"{r['psnr_right_interp']:.2f} / {r['ssim_right_interp']:.3f}); extrapolated {r['extrapolated']}: PSNR "
          f"{r['psnr_extrap']} SSIM {r['ssim_extrap']} (affine {r['psnr_affine_extrap']}); sharpness "
          f"{r['sharpness_interp']:.2f}, at training photos {r.get('sharpness_train')} (PSNR {r.get('psnr_train')}); "
          f"per view {r['per_view_psnr']}")


def _merge(path: Path, key: str, row: dict) -> None:
    """Add one row to the results file (rows of other scenes and models, perhaps written meanwhile, are kept)."""
    results = read_result(path, {})
    results[key] = row
    write_result(path, results, stamp_it=False)


def render_frames(args: argparse.Namespace) -> int:
    """Renders of each bundle at its held-out photo positions (our renders only, never the photos), one PNG per view
    with the bundles side by side (labelled in the file name), and each render's sharpness over the photo's."""
    import numpy as np
    import torch
    from PIL import Image

    from realsim.recon.bundle import load_scene, render_model
    from realsim.recon.dataset import load_dataset
    from realsim.recon.metrics import laplacian_variance, psnr

    labels, renders = [], {}
    for item in args.frames_from:
        label, _, path = item.partition("=")
        if Path(path).is_file():  # an interrupted run's checkpoint: its config and --scene's cameras
            from realsim.recon.bundle import build_model
            from realsim.recon.trainer import TrainConfig, load_checkpoint

            ck = load_checkpoint(Path(path))
            cfg = TrainConfig.from_dict(ck["config"])
            model = build_model(ck["kind"], ck["model_config"], {k[6:]: v for k, v in ck["tensors"].items()
                                                                  if k.startswith("model.")})
            ds = load_dataset(args.scene, cfg.downscale, cfg.max_width, cfg.holdout_every)
            eps2d = cfg.eps2d
        else:
            sc = load_scene(path)
            model, eps2d = sc.model, sc.train_eps2d()
            ds = load_dataset(sc.root, downscale=sc.info.metadata["train"]["downscale"])
        want = set(args.frames_train.split(",")) - {""}
        views = ds.test + [v for v in ds.train if v.name in want]
        labels.append(label)
        for v in views:
            with torch.no_grad():
                rgb = render_model(model, v.viewmat, v.K, v.width, v.height, args.backend, eps2d=eps2d)["rgb"]
            sharp = laplacian_variance(rgb) / laplacian_variance(v.image)
            print(f"{label} {v.name}: PSNR {psnr(rgb, v.image):.2f} sharpness {sharp:.2f}")
            renders.setdefault(v.name, []).append((rgb.numpy() * 255).round().astype(np.uint8))
    args.frames.mkdir(parents=True, exist_ok=True)
    for name, imgs in renders.items():
        gap = np.full((imgs[0].shape[0], 8, 3), 255, np.uint8)
        row = np.concatenate(sum(([im, gap] for im in imgs), [])[:-1], 1)
        Image.fromarray(row).save(args.frames / f"{Path(name).stem}_{'_vs_'.join(labels)}.png")
    return 0


def evaluate_checkpoints(args: argparse.Namespace) -> int:
    """Held-out quality and size of the last checkpoint of each interrupted run (marked "interrupted": true)."""
    import tempfile

    from realsim.recon.bundle import build_model, save_model
    from realsim.recon.dataset import load_dataset
    from realsim.recon.trainer import TrainConfig, evaluate_views, load_checkpoint

    scene = args.scene or data_root() / "scenes" / "llff_fern"
    name = args.name or scene.name
    for model in args.models.split(","):
        work = args.out / f".{name}_{model}.train"
        ck = load_checkpoint(work / "checkpoint.safetensors")
        cfg = TrainConfig.from_dict(ck["config"])
        mt = {k[6:]: v for k, v in ck["tensors"].items() if k.startswith("model.")}
        m = build_model(ck["kind"], ck["model_config"], mt)
        ds = load_dataset(scene, cfg.downscale, cfg.max_width, cfg.holdout_every)
        ev = evaluate_views(m, ds.test, args.backend, tuple(cfg.background), eps2d=cfg.eps2d)
        split = split_metrics(m, ds, args.backend, tuple(cfg.background), cfg.eps2d)
        with tempfile.TemporaryDirectory() as td:
            save_model(Path(td) / "model.safetensors", m)
            size = (Path(td) / "model.safetensors").stat().st_size
        rows = [json.loads(x) for x in (work / "metrics.jsonl").read_text().splitlines() if x.strip()]
        last = [r for r in rows if r.get("step", 0) <= ck["step"] and "cpu_s" in r][-1]
        curve = [(r["step"], round(r["eval_psnr"], 3), round(r["elapsed"], 1), r.get("cpu_s")) for r in rows if "eval_psnr" in r]
        row = {"scene": name, "model": model, "backend": args.backend, "resolution": ev["resolution"], "interrupted": True,
               "iterations": ck["step"], "planned_iterations": cfg.iterations, "train_seconds": round(float(ck["extra"]["elapsed"]), 1),
               "train_cpu_seconds": last["cpu_s"], "budget_clock": cfg.budget_clock, "budget_seconds": cfg.max_seconds,
               "psnr": round(ev["psnr"], 3), "ssim": round(ev["ssim"], 4), "lpips": ev["lpips"], "test_views": ev["n_views"],
               "model_bytes": size, "anchors": getattr(m, "n_anchors", None), "gaussians": getattr(m, "n_gaussians", None),
               "gaussians_per_view": ev["gaussians_per_view"], "render_s_per_frame": round(ev["render_s_per_frame"], 3),
               "load_avg_end": load_avg(), "threads": cfg.threads, "curve_step_psnr_elapsed_cpu": curve, **split, **stamp()}
        _merge(args.json, f"{name}/{model}", row)
        _print_split(row)
        print(f"{name}/{model}: step {ck['step']}, {last['cpu_s']} cpu s, PSNR {ev['psnr']:.2f}, SSIM {ev['ssim']:.3f}, "
              f"{size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
