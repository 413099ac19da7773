"""Shared trainer for Scaffold-GS and 3DGS: Adam with per-group schedules, loss 0.8 L1 + 0.2 D-SSIM (+ 0.01 volume for
Scaffold), a densification strategy object, progress callbacks, a JSONL metrics log and PNG curves, checkpoints every
N iterations and on Ctrl-C, and bit-exact resume (model, Adam moments, strategy statistics and every RNG state are saved).

Config and presets live in train_config.py, checkpoints and resume rules in checkpoint.py, evaluation in evaluation.py;
their public names are re-exported here.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from realsim.assets.atomic import atomic_dir, check_output_dir, check_writable, make_dirs, write_text_atomic
from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report
from realsim.assets.scene import SceneInfo, load_scene_info

from .appearance import NeighbourAppearance
from .bundle import build_model, render_model, write_bundle
from .checkpoint import (ckpt_dir_for, guard_interrupted_run, load_checkpoint, restore_optimizers, resumed_config,
                         save_checkpoint)
from .dataset import Dataset, View, load_camera_source, load_dataset
from .evaluation import evaluate_scene, evaluate_views, model_counts, plot_curves
from .dense_init import DenseInitConfig, dense_points
from .depth_prior import DepthPrior
from .floaters import drop_unseen
from .gs3d import GS3DConfig, GS3DModel, lr_schedule_3dgs
from .metrics import psnr, ssim
from .pose_refine import trainer_refiner, write_back
from .scaffold import ScaffoldConfig, ScaffoldModel, exp_lr, lr_schedule_scaffold, median_nn_distance
from .splats import rasterize_splats
from .train_config import PRESETS, TrainConfig, preset_config, scale_schedule
from .train_device import checkpoint_to, image_float, resolve_device, train_backend, view_to
from .view_balance import epoch_order, training_weights

__all__ = ["TrainConfig", "PRESETS", "preset_config", "scale_schedule", "TrainResult", "train", "make_model",
           "evaluate_views", "evaluate_scene", "load_checkpoint", "guard_interrupted_run"]

log = logging.getLogger("realsim.recon.trainer")


# ---------------------------------------------------------------------------------------------------------------- helpers
def make_model(cfg: TrainConfig, ds: Dataset) -> nn.Module:
    if cfg.model == "scaffold":
        sc = ScaffoldConfig(**asdict(cfg.scaffold))
        if sc.appearance_dim > 0 or sc.affine_appearance:
            sc.n_appearance = len(ds.train)
        if sc.voxel_size <= 0:  # the SfM points' own voxel, also when denser points join them
            sc.voxel_size = median_nn_distance(np.asarray(ds.points, np.float64))
        return ScaffoldModel.from_points(start_points(cfg, ds)[0], sc, seed=cfg.seed)
    if cfg.model == "3dgs":
        return GS3DModel.from_points(*start_points(cfg, ds), GS3DConfig(**asdict(cfg.gs3d)), seed=cfg.seed)
    raise InputError(f"unknown model {cfg.model!r} (choose scaffold or 3dgs)")


def start_points(cfg: TrainConfig, ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The SfM points, plus the agreed interpolated ones with dense_init_stride > 0: xyz [P,3], rgb [P,3] uint8."""
    if cfg.dense_init_stride <= 0:
        return ds.points, ds.colors
    xyz, rgb, info = dense_points(ds, DenseInitConfig(stride=cfg.dense_init_stride))
    log.info("dense start: %d of %d interpolated samples agreed across photos", info["kept"], info["candidates"])
    return np.concatenate([ds.points, xyz]), np.concatenate([ds.colors, rgb])


def lr_table(cfg: TrainConfig, extent: float) -> dict[str, tuple[float, float]]:
    t = lr_schedule_scaffold(min(extent, cfg.offset_lr_max_extent)) if cfg.model == "scaffold" else lr_schedule_3dgs(extent)
    unknown = sorted(set(cfg.lr_groups) - set(t))
    if unknown:
        raise InputError(f"lr_groups names {', '.join(unknown)}: not a parameter group of {cfg.model} ({', '.join(t)})")
    f = {k: cfg.lr_scale * float(cfg.lr_groups.get(k, 1.0)) for k in t}
    return {k: (a * f[k], b * f[k]) for k, (a, b) in t.items()}


def make_optimizers(model: nn.Module, lrs: dict[str, tuple[float, float]]) -> dict[str, torch.optim.Optimizer]:
    """One Adam per named group (per-element tensors each get their own, so the strategy can resize them).

    torch's fused Adam (one pass over each tensor) on CPU and CUDA: a 100k-Gaussian step on 2 cores spends 4x less in it.
    """
    opts: dict[str, torch.optim.Optimizer] = {}
    groups = {name: [p] for name, p in model.dynamic_params().items()} | dict(model.static_groups())
    for name, ps in groups.items():
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in ps)
        opts[name] = torch.optim.Adam(ps, lr=lrs[name][0], eps=1e-15, fused=fused)
    return opts


def set_lrs(opts: dict[str, torch.optim.Optimizer], lrs: dict[str, tuple[float, float]], step: int, n: int) -> None:
    for name, opt in opts.items():
        lr = exp_lr(*lrs[name], step, n)
        for g in opt.param_groups:
            g["lr"] = lr


def _strategy(cfg: TrainConfig):
    return cfg.scaffold_strategy if cfg.model == "scaffold" else cfg.adc


# ---------------------------------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    out: Path
    iterations: int
    seconds: float
    metrics: dict[str, Any]
    model: nn.Module | None = None  # the trained model (eval mode), as written into the bundle


class _StopFlag:
    """SIGINT sets a flag so the loop stops at an iteration boundary (consistent checkpoint), then re-raises."""

    def __init__(self) -> None:
        self.stop = False
        self._old: Any = None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        if self.stop:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def train(source: str | os.PathLike, out: str | os.PathLike, cfg: TrainConfig, progress: ProgressFn | None = None,
          resume: bool = False, overwrite: bool = False, dataset: Dataset | None = None,
          stop_after: int | None = None, override_config: bool = False,
          on_step: Callable[[int, nn.Module, dict[str, Any]], None] | None = None,
          device: str | torch.device = "auto") -> TrainResult:
    """Train cfg.model on the posed images at `source` and write the scene bundle `out`.

    Checkpoints and the metrics log live in OUT's sibling `.OUT.train/` until the bundle is complete. `stop_after`
    ends the run (with a checkpoint, no bundle) after that many iterations, as an interruption would. An interrupted
    run's checkpoint is never dropped silently: `resume` continues it (its config must equal `cfg` unless
    `override_config`), `overwrite` starts over, neither is refused. `on_step(step, model, metrics)` is called after
    every iteration (metrics: iterations, loss, eval_psnr = the last held-out view PSNR, counts); it must not change
    the model (a live viewer reads it). `device` (auto | cpu | cuda): where the model, images, optimiser and strategy
    state live; one code path for all (train_device.py). The returned model is on the CPU.
    """
    if not 0.0 < cfg.eps2d <= 4.0:
        raise InputError(f"eps2d {cfg.eps2d} px^2: the 2-D widening must be in (0, 4] (published 0.3)")
    dev = resolve_device(device, cfg.backend)
    backend = train_backend(cfg.backend, dev)  # the concrete rasterizer; cfg keeps what was asked (checkpoints compare it)
    out = Path(out)
    check_output_dir(out, overwrite or resume)
    guard_interrupted_run(out, resume, overwrite)
    check_writable(out)
    work = ckpt_dir_for(out)
    ckpt_path = work / "checkpoint.safetensors"
    metrics_path = work / "metrics.jsonl"
    ck = None
    if resume:
        if not ckpt_path.is_file():
            raise InputError(f"nothing to resume: no checkpoint at {ckpt_path}")
        ck = checkpoint_to(load_checkpoint(ckpt_path), dev)
        cfg = resumed_config(TrainConfig.from_dict(ck["config"]), cfg, ckpt_path, ck["step"], override_config)
    elif work.exists():
        shutil.rmtree(work)
    make_dirs(work)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)

    ds = dataset or load_dataset(source, cfg.downscale, cfg.max_width, cfg.holdout_every)
    lrs = lr_table(cfg, ds.scene_extent)
    run_cfg = replace(cfg, backend=backend)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    if ck is None:
        model = make_model(cfg, ds)
        dropped = drop_unseen(model, ds.train, cfg.min_views)
        if dropped:
            log.info("dropped %d initial anchors/Gaussians seen by fewer than %d training views", dropped, cfg.min_views)
        cap, grows = cfg.scaffold_strategy.max_anchors, cfg.scaffold_strategy.update_depth > 0
        if cfg.model == "scaffold" and grows and 0 < cap <= model.n_anchors:  # e.g. a dense start under a preset's cap
            log.warning("no anchor growth: the start has %d anchors, at or above max_anchors %d", model.n_anchors, cap)
        model.to(dev)
        start, order = 0, []
        strategy = _strategy(cfg)
        opts = make_optimizers(model, lrs)
        strat_state = strategy.initialize_state(model, ds.scene_extent)
        strategy.check_sanity(model, opts)
        elapsed0 = 0.0
    else:
        mt = {k[6:]: v for k, v in ck["tensors"].items() if k.startswith("model.")}
        model = build_model(ck["kind"], ck["model_config"], mt, str(ckpt_path)).train().to(dev)
        for p in model.dynamic_params().values():
            p.requires_grad_(True)
        strategy = _strategy(cfg)
        opts = make_optimizers(model, lrs)
        restore_optimizers(opts, ck["tensors"])
        strat_state = {k[9:]: v.clone() for k, v in ck["tensors"].items() if k.startswith("strategy.")}
        strat_state.setdefault("scene_extent", torch.tensor([float(ds.scene_extent)], dtype=torch.float64,
                                                            device=dev))  # older checkpoints
        torch.set_rng_state(ck["tensors"]["rng.torch"])
        gen.set_state(ck["tensors"]["rng.gen"])
        s = ck["numpy_rng"]
        np.random.set_state((s[0], np.asarray(s[1], dtype=np.uint32), s[2], s[3], s[4]))
        start, order = ck["step"], list(ck["order"])
        elapsed0 = float(ck["extra"].get("elapsed", 0.0))
        # drop log lines written after the checkpoint (they will be produced again)
        if metrics_path.is_file():
            keep = [ln for ln in metrics_path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= start]
            write_text_atomic(metrics_path, "".join(x + "\n" for x in keep))
    dprior = DepthPrior.from_dataset(ds, cfg.lambda_depth)  # None unless lambda_depth > 0
    poses, pose_opt = trainer_refiner(cfg.refine_poses, cfg.pose_refine, len(ds.train), ds.scene_extent, ck, strat_state)
    if poses is not None:
        poses.to(dev)  # in place: its optimiser keeps the same parameter
    model.train()
    n_iter = cfg.iterations
    train_views = [view_to(v, dev) for v in ds.train]  # photos as uint8 on the device
    view_w = training_weights(ds.points, ds.train, cfg.view_balance)  # [V] or None (uniform epochs)
    eval_view = view_to(ds.test[0] if ds.test else ds.train[0], dev, compact=False)
    bg = torch.tensor(cfg.background, dtype=torch.float32, device=dev)
    _warmup(backend, dev)  # JIT-building / loading kernels is not training time
    t0 = time.perf_counter() - elapsed0
    c0 = time.process_time()
    budget_used = (lambda: time.process_time() - c0) if cfg.budget_clock == "cpu" else (lambda: time.perf_counter() - t0)
    step = start
    last_loss = float("nan")
    last_eval = float("nan")
    coarse: dict = {}
    logf = open(metrics_path, "a")
    report(progress, "train", start, n_iter)
    stopped = False
    try:
        with _StopFlag() as flag:
            while step < n_iter:
                if not order:
                    order = epoch_order(view_w, len(ds.train), gen)
                vi = order.pop()
                # schedule position: the iteration, or with a time budget the elapsed share of it if that is further
                sched = step
                if cfg.max_seconds > 0:
                    sched = min(max(step, int(budget_used() / cfg.max_seconds * n_iter)), n_iter - 1)
                view = _at_resolution(train_views[vi], _res_factor(cfg, sched), coarse, vi)
                set_lrs(opts, lrs, sched, n_iter)
                if cfg.model == "3dgs":
                    model.active_sh_degree = min(sched // max(cfg.sh_degree_interval, 1), model.config.sh_degree)
                loss, l1, info, meta, img = _train_step(model, view, vi, run_cfg, bg, strategy, poses, sched, dprior)
                for opt in opts.values():
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                if pose_opt is not None and poses is not None:  # kept out of opts: strategies resize what is there
                    for g in pose_opt.param_groups:
                        g["lr"] = exp_lr(*poses.lr_range(), sched, n_iter)
                    pose_opt.step()
                    pose_opt.zero_grad(set_to_none=True)
                changes = strategy.step_post_backward(model, opts, strat_state, sched, info, meta, generator=gen)
                step += 1
                last_loss = loss
                elapsed = time.perf_counter() - t0
                rec: dict[str, Any] = {}
                if step % cfg.log_every == 0 or step == n_iter or changes:
                    rec = {"step": step, "loss": loss, "l1": l1, "elapsed": round(elapsed, 3),
                           "cpu_s": round(time.process_time() - c0, 2), **model_counts(model), **changes}
                if cfg.eval_every and (step % cfg.eval_every == 0 or step == n_iter):
                    last_eval = _eval_view_psnr(model, eval_view, run_cfg, bg)
                    rec = rec or {"step": step, "loss": loss, "l1": l1, "elapsed": round(elapsed, 3), **model_counts(model)}
                    rec["eval_psnr"] = last_eval
                if rec:
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                done_here = step - start
                its = done_here / max(elapsed - elapsed0, 1e-9)
                report(progress, "train", step, n_iter, loss=last_loss, psnr=last_eval, it_s=its,
                       eta_s=(n_iter - step) / max(its, 1e-9), **model_counts(model))
                if on_step is not None:
                    on_step(step, model, {"iterations": n_iter, "loss": last_loss, "eval_psnr": last_eval,
                                          **model_counts(model)})
                timeout = cfg.max_seconds > 0 and budget_used() >= cfg.max_seconds
                if timeout:
                    n_iter = step
                    break
                if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < n_iter) or flag.stop or \
                        (stop_after is not None and step >= stop_after):
                    save_checkpoint(ckpt_path, step, cfg, model, opts if poses is None else {**opts, "pose": pose_opt},
                                    strat_state if poses is None else {**strat_state, "pose_delta": poses.delta.detach()},
                                    gen, order, {"elapsed": elapsed})
                if flag.stop:
                    raise KeyboardInterrupt
                if stop_after is not None and step >= stop_after and step < n_iter:
                    stopped = True
                    break
    finally:
        logf.close()
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    if stopped:
        return TrainResult(out, step, seconds, {"stopped": True}, model.to("cpu"))
    model.eval()
    # the bundle's cameras.json carries the refined training poses
    cams = ds.cameras if poses is None else write_back(poses, [v.name for v in ds.train], ds.cameras)
    report(progress, "evaluate", 0, len(ds.test))
    metrics = evaluate_views(model, [view_to(v, dev, compact=False) for v in ds.test], backend, cfg.background,
                             progress=lambda i: report(progress, "evaluate", i, len(ds.test)),
                             appearance=NeighbourAppearance.for_model(model, cams), eps2d=cfg.eps2d)
    metrics.update({"iterations": step, "train_seconds": round(seconds, 2), "train_cpu_seconds": round(cpu_seconds, 2),
                    "device": dev.type, "backend": backend, **model_counts(model)})
    model.to("cpu")  # bundles, viewers and callers read CPU tensors
    with open(metrics_path, "a") as f:
        f.write(json.dumps({"step": step, "final": metrics}) + "\n")
    plot_path = work / "curves.png"
    plot_curves(metrics_path, plot_path)
    _write_output(out, source, ds, cams, model, cfg, metrics, metrics_path, plot_path, overwrite or resume)
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out, step, seconds, metrics, model)


def _warmup(backend: str, device: torch.device) -> None:
    """Render one tiny Gaussian on `device` so a kernel backend is built and loaded before the clock starts."""
    from .splats import Splats

    t = lambda x: torch.tensor(x, dtype=torch.float32, device=device)  # noqa: E731
    sp = Splats(t([[0.0, 0.0, 2.0]]), t([[1.0, 0, 0, 0]]), t([[0.1] * 3]), t([0.5]), colors=t([[1.0] * 3]))
    rasterize_splats(sp, torch.eye(4, device=device), t([[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]]), 8, 8, backend=backend)


def _res_factor(cfg: TrainConfig, step: int) -> int:
    for frac, factor in cfg.res_schedule:
        if step < frac * cfg.iterations:
            return int(factor)
    return 1


def _at_resolution(view: View, factor: int, cache: dict, key: int) -> View:
    """The view box-filtered by an integer factor (K scaled to match); cached."""
    if factor <= 1:
        return view
    ck = (key, factor)
    if ck not in cache:
        H, W = view.height // factor, view.width // factor
        img = image_float(view.image)[: H * factor, : W * factor].reshape(H, factor, W, factor, 3).mean((1, 3))
        K = view.K.clone()
        K[:2] /= factor
        cache[ck] = View(view.name, img.contiguous(), view.viewmat, K, W, H)
    return cache[ck]


def _train_step(model: nn.Module, view: View, vi: int, cfg: TrainConfig, bg: torch.Tensor, strategy: Any,
                poses: nn.Module | None = None, step: int = 0, dprior: DepthPrior | None = None):
    vm = view.viewmat if poses is None else poses(view.viewmat, vi, step)  # [4,4], refined pose when learning poses
    splats, info = model.decode(vm, view.K, view.width, view.height, cam_index=vi, backend=cfg.backend)
    img, _alpha, meta = rasterize_splats(splats, vm, view.K, view.width, view.height, backend=cfg.backend,
                                         background=bg, render_mode="RGB" if dprior is None else "RGB+ED",
                                         absgrad=bool(getattr(strategy, "absgrad", False)), eps2d=cfg.eps2d)
    strategy.step_pre_backward(meta)
    depth, img = img[..., 3:], img[..., :3]  # expected depth [H,W,1] (empty without the SfM depth prior)
    gt = image_float(view.image)  # [H,W,3] float32 (training photos travel as uint8)
    app = getattr(model, "appearance", None)
    if app is not None:  # this photo's exposure / white balance
        img = app(img, vi)
    l1 = (img - gt).abs().mean()
    loss = (1 - cfg.lambda_dssim) * l1 + cfg.lambda_dssim * (1 - ssim(img, gt))
    if cfg.lambda_volume > 0 and cfg.model == "scaffold":
        loss = loss + cfg.lambda_volume * model.volume_loss(info)
    if app is not None and cfg.lambda_affine > 0:
        loss = loss + cfg.lambda_affine * app.reg(vi)
    if cfg.lambda_opacity > 0:
        n = int(info.get("n_neural", len(splats)))
        if n:
            loss = loss + cfg.lambda_opacity * splats.opacities[:n].mean()
    if dprior is not None:
        loss = loss + cfg.lambda_depth * dprior.loss(depth, vi)
    loss.backward()
    return float(loss.detach()), float(l1.detach()), info, meta, img


def _eval_view_psnr(model: nn.Module, view: View, cfg: TrainConfig, bg: torch.Tensor) -> float:
    was = model.training
    model.eval()
    out = render_model(model, view.viewmat, view.K, view.width, view.height, cfg.backend, cfg.background, eps2d=cfg.eps2d)
    model.train(was)
    return psnr(out["rgb"], view.image)


def _write_output(out: Path, source: str | os.PathLike, ds: Dataset, cams: Any, model: nn.Module, cfg: TrainConfig,
                  metrics: dict[str, Any], metrics_path: Path, plot_path: Path, overwrite: bool) -> None:
    src = Path(source)
    try:
        info = load_scene_info(src / "scene.json")
    except InputError:
        info = SceneInfo(metadata={"source": str(src)})
    info.metadata = dict(info.metadata)
    info.metadata["train"] = {"config": cfg.to_dict(), "downscale": ds.downscale, "metrics": metrics}
    with atomic_dir(out, overwrite=True if overwrite else False) as tmp:
        write_bundle(tmp, model, info, cams, load_camera_source(src)[1],
                     {"train/metrics.jsonl": metrics_path, "train/curves.png": plot_path})
