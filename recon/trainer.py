"""Shared trainer for Scaffold-GS and 3DGS: Adam with per-group schedules, loss 0.8 L1 + 0.2 D-SSIM (+ 0.01 volume for
Scaffold), a densification strategy object, progress callbacks, a JSONL metrics log and PNG curves, checkpoints every
N iterations and on Ctrl-C, and bit-exact resume (model, Adam moments, strategy statistics and every RNG state are saved).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from realsim.assets.atomic import atomic_dir, check_writable, make_dirs, write_text_atomic
from realsim.assets.errors import InputError, RealsimError
from realsim.assets.progress import ProgressFn, report
from realsim.assets.scene import SceneInfo, load_scene_info, load_tensors, save_tensors

from .bundle import build_model, model_tensors, render_model, render_splats, write_bundle
from .dataset import Dataset, View, load_dataset
from .gs3d import GS3DConfig, GS3DModel, lr_schedule_3dgs
from .metrics import lpips_fn, psnr, ssim
from .scaffold import ScaffoldConfig, ScaffoldModel, exp_lr, lr_schedule_scaffold
from .splats import rasterize_splats
from .strategy import ADCStrategy, ScaffoldStrategy

log = logging.getLogger("realsim.recon.trainer")

CKPT_FORMAT = "realsim-train-ckpt-1"


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved into checkpoints and the bundle's scene.json)."""

    model: str = "scaffold"  # "scaffold" | "3dgs"
    preset: str = "cpu"
    iterations: int = 3000
    downscale: float | None = None  # explicit factor; else max_width decides
    max_width: int | None = 504
    holdout_every: int | None = None  # None: keep the split recorded in cameras.json
    backend: str = "auto"
    seed: int = 0
    # coarse-to-fine: [(fraction of the run, image downscale)] e.g. [[0.2, 4], [0.5, 2]] trains the first 20% at 1/4 and
    # up to 50% at 1/2 of the training resolution (fewer pixels: much cheaper early iterations on CPU)
    res_schedule: list = field(default_factory=list)
    lambda_dssim: float = 0.2
    lambda_volume: float = 0.01
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    checkpoint_every: int = 500
    eval_every: int = 100  # PSNR on one fixed held-out view
    log_every: int = 10
    lr_scale: float = 1.0  # multiplies every learning rate (short CPU runs use > 1)
    sh_degree_interval: int = 1000  # 3DGS: raise the active SH degree every this many steps
    threads: int = 0  # torch CPU threads; 0 = leave them as set (the CLI sets --threads / $REALSIM_THREADS at start)
    # wall-time budget (0 = off): training stops when it is spent, and learning-rate, resolution and densification
    # schedules advance by max(iteration, elapsed share of the budget) so a run fits the budget (not bit-reproducible)
    max_seconds: float = 0.0
    budget_clock: str = "wall"  # "wall" | "cpu": the budget counts process CPU seconds (all threads) instead of wall time
    scaffold: ScaffoldConfig = field(default_factory=ScaffoldConfig)
    gs3d: GS3DConfig = field(default_factory=GS3DConfig)
    scaffold_strategy: ScaffoldStrategy = field(default_factory=ScaffoldStrategy)
    adc: ADCStrategy = field(default_factory=ADCStrategy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["background"] = list(self.background)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        sub = {"scaffold": ScaffoldConfig, "gs3d": GS3DConfig, "scaffold_strategy": ScaffoldStrategy, "adc": ADCStrategy}
        names = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in d.items():
            if k not in names:
                continue
            if k in sub:
                sn = {f.name for f in fields(sub[k])}
                v = sub[k](**{a: b for a, b in v.items() if a in sn})
            elif k == "background":
                v = tuple(v)
            kw[k] = v
        return cls(**kw)


PRESETS = ("cpu-fast", "cpu", "gpu")


def preset_config(name: str, model: str = "scaffold", iterations: int | None = None) -> TrainConfig:
    """Resolution, iterations and schedule for a preset; the densification schedule scales with the iteration count."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    if name == "gpu":
        cfg = TrainConfig(model=model, preset=name, iterations=30000, max_width=1600, checkpoint_every=2000, eval_every=500,
                          log_every=50, lr_scale=1.0)
    elif name == "cpu":
        cfg = TrainConfig(model=model, preset=name, iterations=3000, max_width=504, checkpoint_every=300, eval_every=100,
                          res_schedule=[[0.1, 4], [0.35, 2]])
    else:
        cfg = TrainConfig(model=model, preset=name, iterations=500, max_width=256, checkpoint_every=100, eval_every=50,
                          res_schedule=[[0.3, 2]])
    if iterations is not None:
        cfg.iterations = int(iterations)
    scale_schedule(cfg)
    return cfg


def scale_schedule(cfg: TrainConfig) -> None:
    """Map the published 30k-iteration densification schedule onto cfg.iterations (unchanged at >= 30k)."""
    n = cfg.iterations
    f = min(n / 30000.0, 1.0)
    if f >= 1.0:
        return
    # short runs: statistics from ~10%, growth from ~15% to ~60% of the run, checked every ~1/30 of it
    every = max(10, int(round(n / 30 / 10.0)) * 10)
    s = cfg.scaffold_strategy
    s.start_stat = max(int(0.08 * n), 20)
    s.update_from = max(int(0.15 * n), s.start_stat + every)
    s.update_interval = every
    s.update_until = max(int(0.6 * n), s.update_from + every)
    a = cfg.adc
    a.refine_start = max(int(0.08 * n), 20)
    a.refine_every = every
    a.refine_stop = max(int(0.6 * n), a.refine_start + every)
    a.reset_every = max(int(0.3 * n), 3 * every)  # one opacity reset in a short run (each costs ~10% of it to recover)
    cfg.sh_degree_interval = max(int(n / 30), 10)


# ---------------------------------------------------------------------------------------------------------------- helpers
def make_model(cfg: TrainConfig, ds: Dataset) -> nn.Module:
    if cfg.model == "scaffold":
        sc = ScaffoldConfig(**asdict(cfg.scaffold))
        if sc.appearance_dim > 0:
            sc.n_appearance = len(ds.train)
        return ScaffoldModel.from_points(ds.points, sc, seed=cfg.seed)
    if cfg.model == "3dgs":
        return GS3DModel.from_points(ds.points, ds.colors, GS3DConfig(**asdict(cfg.gs3d)), seed=cfg.seed)
    raise InputError(f"unknown model {cfg.model!r} (choose scaffold or 3dgs)")


def lr_table(cfg: TrainConfig, extent: float) -> dict[str, tuple[float, float]]:
    t = lr_schedule_scaffold(extent) if cfg.model == "scaffold" else lr_schedule_3dgs(extent)
    return {k: (a * cfg.lr_scale, b * cfg.lr_scale) for k, (a, b) in t.items()}


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


# ---------------------------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, step: int, cfg: TrainConfig, model: nn.Module, opts: dict[str, torch.optim.Optimizer],
                    strat_state: dict[str, torch.Tensor], gen: torch.Generator, order: list[int], extra: dict[str, Any]) -> None:
    """model.*, opt.<group>.<i>.<moment>, strategy.*, rng.* in one safetensors file; the JSON side in its metadata."""
    t: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model_tensors(model).items()}
    for name, opt in opts.items():
        for i, p in enumerate(opt.param_groups[0]["params"]):
            st = opt.state.get(p)
            if not st:
                continue
            t[f"opt.{name}.{i}.exp_avg"] = st["exp_avg"]
            t[f"opt.{name}.{i}.exp_avg_sq"] = st["exp_avg_sq"]
            t[f"opt.{name}.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1)
    for k, v in strat_state.items():
        t[f"strategy.{k}"] = v
    t["rng.torch"] = torch.get_rng_state()
    t["rng.gen"] = gen.get_state()
    meta = {"format": CKPT_FORMAT, "step": str(step), "config": json.dumps(cfg.to_dict()), "kind": model.kind,
            "model_config": json.dumps(model.config.to_dict()), "order": json.dumps(order),
            "numpy_rng": json.dumps(_np_state()), "extra": json.dumps(extra)}
    save_tensors(path, t, meta)


def _np_state() -> list:
    s = np.random.get_state()
    return [s[0], s[1].tolist(), int(s[2]), int(s[3]), float(s[4])]


def load_checkpoint(path: Path) -> dict[str, Any]:
    tensors, meta = load_tensors(path)
    if meta.get("format") != CKPT_FORMAT:
        raise InputError(f"{path} is not a realsim training checkpoint")
    try:
        return {"tensors": tensors, "step": int(meta["step"]), "config": json.loads(meta["config"]), "kind": meta["kind"],
                "model_config": json.loads(meta["model_config"]), "order": json.loads(meta["order"]),
                "numpy_rng": json.loads(meta["numpy_rng"]), "extra": json.loads(meta.get("extra", "{}"))}
    except (KeyError, ValueError) as e:
        raise InputError(f"checkpoint {path} is malformed: {e}") from None


def restore_optimizers(opts: dict[str, torch.optim.Optimizer], tensors: dict[str, torch.Tensor]) -> None:
    for name, opt in opts.items():
        for i, p in enumerate(opt.param_groups[0]["params"]):
            key = f"opt.{name}.{i}"
            if f"{key}.exp_avg" not in tensors:
                continue
            opt.state[p] = {"step": tensors[f"{key}.step"].reshape(()).to(torch.float32),
                            "exp_avg": tensors[f"{key}.exp_avg"].clone(), "exp_avg_sq": tensors[f"{key}.exp_avg_sq"].clone()}


def checkpoint_step(path: Path) -> int | None:
    """The iteration a checkpoint was saved at (from its header only), or None when it is unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return int((f.metadata() or {})["step"])
    except Exception:  # corrupt or foreign file: the caller says so
        return None


# TrainConfig fields a resumed run cannot change (the checkpoint's model and train/test split are fixed) / does not compare
RESUME_FIXED = ("model", "holdout_every")
RESUME_FIXED_PREFIXES = ("scaffold.", "gs3d.")  # the model's architecture comes from the checkpoint
RESUME_IGNORED = ("threads",)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_diff(old: TrainConfig, new: TrainConfig) -> list[tuple[str, Any, Any]]:
    """[(field, old, new)] where two configs differ (nested fields dotted, e.g. scaffold_strategy.update_until);
    top-level fields first, fields in RESUME_IGNORED skipped."""
    a, b = (_flat(json.loads(json.dumps(c.to_dict()))) for c in (old, new))
    diffs = [(k, a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k) and k not in RESUME_IGNORED]
    return sorted(diffs, key=lambda d: "." in d[0])


def format_diff(diffs: list[tuple[str, Any, Any]], limit: int = 8) -> str:
    """"iterations 3000 -> 500, max_width 504 -> 256, and 4 more"."""
    def f(v: Any) -> str:
        return "none" if v is None else (json.dumps(v) if isinstance(v, (list, dict)) else str(v))

    text = ", ".join(f"{k} {f(a)} -> {f(b)}" for k, a, b in diffs[:limit])
    return text + (f", and {len(diffs) - limit} more" if len(diffs) > limit else "")


def resumed_config(saved: TrainConfig, new: TrainConfig, ckpt: Path, step: int, override: bool) -> TrainConfig:
    """The config a resumed run continues with: the checkpoint's, or with `override` the new one (one warning line).

    Differences are refused unless `override`; a different model or split is refused always.
    """
    diffs = config_diff(saved, new)
    fixed = [d for d in diffs if d[0] in RESUME_FIXED or d[0].startswith(RESUME_FIXED_PREFIXES)]
    if fixed:
        raise InputError(f"--resume: the checkpoint at {ckpt} (iteration {step}) cannot continue with {format_diff(fixed)} "
                         "(its model and train/test split are fixed): give the options it was started with, or pass "
                         "--overwrite to start over")
    if diffs and not override:
        raise InputError(f"--resume: options differ from the checkpoint at {ckpt} (iteration {step}): {format_diff(diffs)}; "
                         "give the same options, or pass --override-config to continue with the new values")
    if diffs:
        log.warning("--override-config: resuming from iteration %d with %s", step, format_diff(diffs, limit=len(diffs)))
        return new
    saved.threads = new.threads  # how many threads run it is not part of the run
    return saved


def guard_interrupted_run(out: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Refuse to start over an interrupted run's checkpoint (beside OUT) unless asked to resume or overwrite it."""
    ck = ckpt_dir_for(Path(out)) / "checkpoint.safetensors"
    if resume or overwrite or not ck.is_file():
        return
    step = checkpoint_step(ck)
    at = f"iteration {step}" if step is not None else "unreadable"
    raise RealsimError(f"an interrupted run's checkpoint is at {ck} ({at}): pass --resume to continue it or --overwrite "
                       "to start over")


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


def ckpt_dir_for(out: Path) -> Path:
    return out.parent / f".{out.name}.train"


def train(source: str | os.PathLike, out: str | os.PathLike, cfg: TrainConfig, progress: ProgressFn | None = None,
          resume: bool = False, overwrite: bool = False, dataset: Dataset | None = None,
          stop_after: int | None = None, override_config: bool = False,
          on_step: Callable[[int, nn.Module, dict[str, Any]], None] | None = None) -> TrainResult:
    """Train cfg.model on the posed images at `source` and write the scene bundle `out`.

    Checkpoints and the metrics log live in OUT's sibling `.OUT.train/` until the bundle is complete. `stop_after`
    ends the run (with a checkpoint, no bundle) after that many iterations, as an interruption would. An interrupted
    run's checkpoint is never dropped silently: `resume` continues it (its config must equal `cfg` unless
    `override_config`), `overwrite` starts over, neither is refused. `on_step(step, model, metrics)` is called after
    every iteration (metrics: iterations, loss, eval_psnr = the last held-out view PSNR, counts); it must not change
    the model (a live viewer reads it).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite and not resume:
        raise RealsimError(f"output folder {out} is not empty (pass --overwrite to replace it)")
    guard_interrupted_run(out, resume, overwrite)
    check_writable(out)
    work = ckpt_dir_for(out)
    ckpt_path = work / "checkpoint.safetensors"
    metrics_path = work / "metrics.jsonl"
    ck = None
    if resume:
        if not ckpt_path.is_file():
            raise InputError(f"nothing to resume: no checkpoint at {ckpt_path}")
        ck = load_checkpoint(ckpt_path)
        cfg = resumed_config(TrainConfig.from_dict(ck["config"]), cfg, ckpt_path, ck["step"], override_config)
    elif work.exists():
        shutil.rmtree(work)
    make_dirs(work)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)

    ds = dataset or load_dataset(source, cfg.downscale, cfg.max_width, cfg.holdout_every)
    lrs = lr_table(cfg, ds.scene_extent)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    if ck is None:
        model = make_model(cfg, ds)
        start, order = 0, []
        strategy = _strategy(cfg)
        opts = make_optimizers(model, lrs)
        strat_state = strategy.initialize_state(model)
        elapsed0 = 0.0
    else:
        mt = {k[6:]: v for k, v in ck["tensors"].items() if k.startswith("model.")}
        model = build_model(ck["kind"], ck["model_config"], mt, str(ckpt_path)).train()
        for p in model.dynamic_params().values():
            p.requires_grad_(True)
        strategy = _strategy(cfg)
        opts = make_optimizers(model, lrs)
        restore_optimizers(opts, ck["tensors"])
        strat_state = {k[9:]: v.clone() for k, v in ck["tensors"].items() if k.startswith("strategy.")}
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
    model.train()
    n_iter = cfg.iterations
    eval_view = ds.test[0] if ds.test else ds.train[0]
    bg = torch.tensor(cfg.background, dtype=torch.float32)
    _warmup(cfg.backend)  # JIT-building / loading kernels is not training time
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
                    order = torch.randperm(len(ds.train), generator=gen).tolist()
                vi = order.pop()
                # schedule position: the iteration, or with a time budget the elapsed share of it if that is further
                sched = step
                if cfg.max_seconds > 0:
                    sched = min(max(step, int(budget_used() / cfg.max_seconds * n_iter)), n_iter - 1)
                view = _at_resolution(ds.train[vi], _res_factor(cfg, sched), coarse, vi)
                set_lrs(opts, lrs, sched, n_iter)
                if cfg.model == "3dgs":
                    model.active_sh_degree = min(sched // max(cfg.sh_degree_interval, 1), model.config.sh_degree)
                loss, l1, info, meta, img = _train_step(model, view, vi, cfg, bg, strategy)
                for opt in opts.values():
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                kw = {"extent": ds.scene_extent} if cfg.model == "3dgs" else {}
                changes = strategy.step_post_backward(model, opts, strat_state, sched, info, meta, view.width, view.height,
                                                      generator=gen, **kw)
                step += 1
                last_loss = loss
                elapsed = time.perf_counter() - t0
                rec: dict[str, Any] = {}
                if step % cfg.log_every == 0 or step == n_iter or changes:
                    rec = {"step": step, "loss": loss, "l1": l1, "elapsed": round(elapsed, 3),
                           "cpu_s": round(time.process_time() - c0, 2), **_counts(model), **changes}
                if cfg.eval_every and (step % cfg.eval_every == 0 or step == n_iter):
                    last_eval = _eval_view_psnr(model, eval_view, cfg, bg)
                    rec = rec or {"step": step, "loss": loss, "l1": l1, "elapsed": round(elapsed, 3), **_counts(model)}
                    rec["eval_psnr"] = last_eval
                if rec:
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                done_here = step - start
                its = done_here / max(elapsed - elapsed0, 1e-9)
                report(progress, "train", step, n_iter, loss=last_loss, psnr=last_eval, it_s=its,
                       eta_s=(n_iter - step) / max(its, 1e-9), **_counts(model))
                if on_step is not None:
                    on_step(step, model, {"iterations": n_iter, "loss": last_loss, "eval_psnr": last_eval,
                                          **_counts(model)})
                timeout = cfg.max_seconds > 0 and budget_used() >= cfg.max_seconds
                if timeout:
                    n_iter = step
                    break
                if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < n_iter) or flag.stop or \
                        (stop_after is not None and step >= stop_after):
                    save_checkpoint(ckpt_path, step, cfg, model, opts, strat_state, gen, order, {"elapsed": elapsed})
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
        return TrainResult(out, step, seconds, {"stopped": True}, model)
    model.eval()
    report(progress, "evaluate", 0, len(ds.test))
    metrics = evaluate_views(model, ds.test, cfg.backend, cfg.background,
                             progress=lambda i: report(progress, "evaluate", i, len(ds.test)))
    metrics.update({"iterations": step, "train_seconds": round(seconds, 2), "train_cpu_seconds": round(cpu_seconds, 2),
                    **_counts(model)})
    with open(metrics_path, "a") as f:
        f.write(json.dumps({"step": step, "final": metrics}) + "\n")
    plot_path = work / "curves.png"
    plot_curves(metrics_path, plot_path)
    _write_output(out, source, ds, model, cfg, metrics, metrics_path, plot_path, overwrite or resume)
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out, step, seconds, metrics, model)


def _warmup(backend: str) -> None:
    """Render one tiny Gaussian so a kernel backend is built and loaded before the clock starts."""
    from .splats import Splats

    sp = Splats(torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1),
                torch.tensor([0.5]), colors=torch.ones(1, 3))
    rasterize_splats(sp, torch.eye(4), torch.tensor([[8.0, 0, 4], [0, 8.0, 4], [0, 0, 1]]), 8, 8, backend=backend)


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
        img = view.image[: H * factor, : W * factor].reshape(H, factor, W, factor, 3).mean((1, 3))
        K = view.K.clone()
        K[:2] /= factor
        cache[ck] = View(view.name, img.contiguous(), view.viewmat, K, W, H)
    return cache[ck]


def _train_step(model: nn.Module, view: View, vi: int, cfg: TrainConfig, bg: torch.Tensor, strategy: Any):
    splats, info = model.decode(view.viewmat, view.K, view.width, view.height, cam_index=vi, backend=cfg.backend)
    img, _alpha, meta = rasterize_splats(splats, view.viewmat, view.K, view.width, view.height, backend=cfg.backend,
                                         background=bg)
    strategy.step_pre_backward(meta)
    gt = view.image
    l1 = (img - gt).abs().mean()
    loss = (1 - cfg.lambda_dssim) * l1 + cfg.lambda_dssim * (1 - ssim(img, gt))
    if cfg.lambda_volume > 0 and cfg.model == "scaffold":
        loss = loss + cfg.lambda_volume * model.volume_loss(info)
    loss.backward()
    return float(loss.detach()), float(l1.detach()), info, meta, img


def _counts(model: nn.Module) -> dict[str, int]:
    if model.kind == "scaffold":
        return {"anchors": model.n_anchors}
    return {"gaussians": model.n_gaussians}


def _eval_view_psnr(model: nn.Module, view: View, cfg: TrainConfig, bg: torch.Tensor) -> float:
    was = model.training
    model.eval()
    out = render_model(model, view.viewmat, view.K, view.width, view.height, cfg.backend, cfg.background)
    model.train(was)
    return psnr(out["rgb"], view.image)


def evaluate_views(model: nn.Module, views: list[View], backend: str = "auto",
                   background: tuple[float, float, float] = (0.0, 0.0, 0.0), progress: Any = None) -> dict[str, Any]:
    """Mean PSNR / SSIM (/ LPIPS when available) over views, render seconds per frame, Gaussians per view."""
    lp = lpips_fn()
    ps, ss, ls, times, ng = [], [], [], [], []
    for i, v in enumerate(views):
        t = time.perf_counter()
        with torch.no_grad():
            splats, _ = model.decode(v.viewmat, v.K, v.width, v.height, backend=backend)
        out = render_splats(splats, v.viewmat, v.K, v.width, v.height, backend, background)
        times.append(time.perf_counter() - t)
        ng.append(len(splats))
        ps.append(psnr(out["rgb"], v.image))
        ss.append(float(ssim(out["rgb"], v.image)))
        if lp is not None:
            ls.append(lp(out["rgb"], v.image))
        if progress is not None:
            progress(i + 1)
    res: dict[str, Any] = {"n_views": len(views)}
    if views:
        res.update({"psnr": float(np.mean(ps)), "ssim": float(np.mean(ss)), "per_view_psnr": [round(x, 3) for x in ps],
                    "render_s_per_frame": float(np.mean(times)), "gaussians_per_view": int(np.mean(ng)),
                    "resolution": [views[0].width, views[0].height]})
        res["lpips"] = float(np.mean(ls)) if ls else None
    return res


def plot_curves(metrics_path: Path, png: Path) -> None:
    """Loss and held-out PSNR against iteration (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln.strip()]
    tr = [r for r in rows if "loss" in r]
    ev = [r for r in rows if "eval_psnr" in r]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot([r["step"] for r in tr], [r["loss"] for r in tr])
    ax[0].set_xlabel("iteration")
    ax[0].set_ylabel("loss")
    ax[0].set_yscale("log")
    ax[1].plot([r["step"] for r in ev], [r["eval_psnr"] for r in ev], "o-")
    ax[1].set_xlabel("iteration")
    ax[1].set_ylabel("held-out PSNR (dB)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, png)


def _write_output(out: Path, source: str | os.PathLike, ds: Dataset, model: nn.Module, cfg: TrainConfig,
                  metrics: dict[str, Any], metrics_path: Path, plot_path: Path, overwrite: bool) -> None:
    src = Path(source)
    try:
        info = load_scene_info(src / "scene.json")
    except InputError:
        info = SceneInfo(metadata={"source": str(src)})
    info.metadata = dict(info.metadata)
    info.metadata["train"] = {"config": cfg.to_dict(), "downscale": ds.downscale, "metrics": metrics}
    with atomic_dir(out, overwrite=True if overwrite else False) as tmp:
        write_bundle(tmp, model, info, ds.cameras, _camera_base(src),
                     {"train/metrics.jsonl": metrics_path, "train/curves.png": plot_path})


def _camera_base(src: Path) -> Path:
    from .dataset import load_camera_source

    return load_camera_source(src)[1]


def evaluate_scene(path: Any, downscale: float | None = None, backend: str = "auto", split: str = "test",
                   progress: ProgressFn | None = None) -> dict[str, Any]:
    """Held-out quality of a bundle at its training resolution (or `downscale`), its size on disk and render time."""
    from .bundle import Scene, load_scene

    scene = path if isinstance(path, Scene) else load_scene(path)
    train_meta = scene.info.metadata.get("train", {}) if isinstance(scene.info.metadata, dict) else {}
    ds_factor = downscale if downscale is not None else train_meta.get("downscale")
    ds = load_dataset(scene.root, downscale=ds_factor, max_width=None if ds_factor else 504)
    views = ds.test if split == "test" else ds.train
    if not views:
        raise InputError(f"{path} has no {split} views to evaluate")
    bg = tuple(train_meta.get("config", {}).get("background", (0.0, 0.0, 0.0)))
    res = evaluate_views(scene.model, views, backend, bg, progress=lambda i: report(progress, "evaluate", i, len(views)))
    root = Path(scene.root)
    res.update({"scene": str(root), "model": scene.kind, "split": split, "downscale": ds.downscale,
                "model_bytes": (root / "model.safetensors").stat().st_size,
                "bundle_bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()), **_counts(scene.model)})
    return res
