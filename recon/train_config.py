"""Training configuration: `TrainConfig` (what decides a run; saved in checkpoints and scene.json) and the presets."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from realsim.assets.config import ConfigDict
from realsim.assets.errors import InputError

from .antialias import EPS2D
from .gs3d import GS3DConfig
from .pose_refine import PoseRefineConfig
from .scaffold import ScaffoldConfig
from .strategy import ADCStrategy, ScaffoldStrategy

__all__ = ["TrainConfig", "PRESETS", "preset_config", "scale_schedule", "auto_preset", "real_iterations"]


@dataclass
class TrainConfig(ConfigDict):
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
    lambda_affine: float = 0.01  # per-image colour affine (scaffold.affine_appearance): weight of |A - [I|0]|^2
    lambda_opacity: float = 0.0  # mean opacity of the rendered Gaussians (sparsity: fewer half-transparent floaters)
    lambda_depth: float = 0.0  # SfM sparse depth prior (recon/depth_prior.py): Huber of the relative depth error
    # denser start (recon/dense_init.py): each photo's SfM depths interpolated and sampled every this many pixels, kept
    # where another photo agrees; voxelised with the SfM points at the SfM voxel size (0 = off)
    dense_init_stride: int = 0
    # coverage-balanced sampling (recon/view_balance.py): views drawn with probability ~ coverage^-view_balance (0 = each
    # view once per epoch); photos whose content few others see up close get more steps
    view_balance: float = 0.0
    min_views: int = 0  # drop initial anchors / Gaussians inside fewer than this many training frusta (0 = off)
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    checkpoint_every: int = 500
    eval_every: int = 100  # PSNR on one fixed held-out view
    log_every: int = 10
    lr_scale: float = 1.0  # multiplies every learning rate (short CPU runs use > 1)
    lr_groups: dict = field(default_factory=dict)  # per-group learning-rate factors on top, e.g. {"offsets": 0.1}
    # Scaffold-GS offsets are in units of their anchor's scale, yet the published rate is 0.01 x the camera extent: on a
    # 113 m street walk that is 1.1 anchor scales a step. The extent is capped here (fern's is 5.9; lund: +0.2 / +0.5 dB
    # interpolated on two seeds, 3x sharper, docs/lund/README.md); 1e9 restores the published rule
    offset_lr_max_extent: float = 6.0
    # the rasterizer's 2-D widening (px^2) every projected Gaussian gets in training; recorded in scene.json, and every
    # render of the bundle uses it (recon/antialias.py). 0.3 as published; Mip-Splatting's 2-D filter is 0.1
    eps2d: float = EPS2D
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
    # learn a per-camera SE(3) correction of the training poses through the viewmat gradients (held-out views keep theirs)
    refine_poses: bool = False
    pose_refine: PoseRefineConfig = field(default_factory=PoseRefineConfig)


PRESETS = ("cpu-fast", "cpu", "gpu", "real")
# Scaffold-GS anchor cap per preset (growth stops there): bounds memory and step time; fern at 504 px starts near 9k
MAX_ANCHORS = {"cpu-fast": 20_000, "cpu": 50_000, "real": 100_000, "gpu": 1_000_000}
MAX_ANCHORS_DEFAULT = 100_000  # a preset not listed above


def auto_preset(source: str | os.PathLike | None) -> tuple[str, int | None]:
    """`real` with the training-photo count for a `realsim poses` WORKDIR of real photos or video frames (scene.json says
    so and no synthetic capture.json sits beside the photos), else `cpu`; LLFF / COLMAP folders keep `cpu`."""
    if source is None:
        return "cpu", None
    root = Path(source)
    try:
        meta = json.loads((root / "scene.json").read_text()).get("metadata", {})
        frames = json.loads((root / "cameras.json").read_text())["frames"]
    except (OSError, ValueError, KeyError, AttributeError):
        return "cpu", None
    src = Path(str(meta.get("source", "")))
    if meta.get("input_kind") not in ("images", "video") or (src.parent / "capture.json").is_file():
        return "cpu", None
    return "real", sum(1 for f in frames if f.get("split") != "test")


def real_iterations(n_images: int) -> int:
    """The `real` preset's run length: about 100 epochs of the training photos, 1500 to 6000 iterations."""
    return int(min(6000, max(1500, 100 * n_images)))


def preset_config(name: str, model: str = "scaffold", iterations: int | None = None,
                  n_images: int | None = None) -> TrainConfig:
    """Resolution, iterations and schedule for a preset; the densification schedule scales with the iteration count.

    `real` (sparse real captures, e.g. a street walk): 512 px wide (the demo's render size), coarse-to-fine, per-image
    colour affine, a sky sphere and floater control; its iterations follow n_images (the training photos) when given.
    """
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    if name == "real":
        cfg = TrainConfig(model=model, preset=name, iterations=real_iterations(n_images or 30), max_width=512,
                          checkpoint_every=300, eval_every=100, res_schedule=[[0.15, 4], [0.3, 2]], min_views=0)
        # full resolution from 30% of the run (was 60%): lund +0.11 / +0.33 dB and +0.008 SSIM on seeds 0 / 1 for +44% CPU;
        # 4000 iterations on the old schedule (+74% CPU) gained 0.05 dB (docs/lund/README.md)
        # min_views=2 (few-view pruning) measured -0.18 dB interpolated on lund at equal CPU: off (docs/lund/README.md)
        cfg.scaffold.affine_appearance = True
        cfg.scaffold.sky_gaussians = 2000
        # anchors may grow on 4x finer voxels than published (levels 1.04 / 0.26 / 0.065 m on lund instead of 4.16 / 1.04 /
        # 0.26): lund renders 2.1-2.5x sharper on each of three paired seeds (0.024 -> 0.056) for -0.17 dB mean held-out
        # PSNR and equal SSIM (docs/lund/README.md)
        cfg.scaffold_strategy.growth_factor = 4
        # Mip-Splatting's 2-D filter (0.1 px^2) instead of 0.3: the published widening alone blurs these photos to
        # 0.25-0.34 of their sharpness; lund seeds 0 / 1: sharpness 0.23 / 0.25 -> 0.26 / 0.27 held out, 17.12 dB /
        # 0.555 SSIM interpolated on the mean (was 17.26 / 0.552; docs/lund/README.md)
        cfg.eps2d = 0.1
        # D-SSIM weight 0.4 (alone, or with growth threshold 0.0003) renders lund 27-34% sharper on the bench, but the
        # demo's own runs scored 16.95 / 16.90 dB: the published 0.2 stays, and so does uniform view sampling
        # (docs/lund/README.md, stop 35)
    elif name == "gpu":
        # the published runs: 30k iterations at full resolution (longest side capped at 1600 px as the reference code
        # does), no coarse-to-fine, the published losses and densification schedule (not scaled: 30k iterations)
        cfg = TrainConfig(model=model, preset=name, iterations=30000, max_width=1600, checkpoint_every=2000, eval_every=500,
                          log_every=50, lr_scale=1.0, res_schedule=[], lambda_dssim=0.2, lambda_volume=0.01,
                          sh_degree_interval=1000)
        cfg.scaffold_strategy = ScaffoldStrategy(start_stat=500, update_from=1500, update_interval=100, update_until=15000,
                                                 grad_threshold=0.0002, min_opacity=0.005, success_threshold=0.8,
                                                 update_depth=3, growth_factor=16, level_factor=4)
        cfg.adc = ADCStrategy(refine_start=500, refine_stop=15000, refine_every=100, reset_every=3000, grow_grad2d=0.0002,
                              grow_scale3d=0.01, prune_opa=0.005, prune_scale3d=0.1)
        cfg.scaffold = ScaffoldConfig(n_offsets=10, feat_dim=32, hidden_dim=32)
    elif name == "cpu":
        cfg = TrainConfig(model=model, preset=name, iterations=3000, max_width=504, checkpoint_every=300, eval_every=100,
                          res_schedule=[[0.1, 4], [0.35, 2]])
    else:
        cfg = TrainConfig(model=model, preset=name, iterations=500, max_width=256, checkpoint_every=100, eval_every=50,
                          res_schedule=[[0.3, 2]])
    cfg.scaffold_strategy.max_anchors = MAX_ANCHORS.get(name, MAX_ANCHORS_DEFAULT)
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
