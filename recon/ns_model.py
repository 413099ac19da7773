"""realsim's Scaffold-GS / 3DGS as a nerfstudio `Model`: realsim's own models, kernels, loss, learning-rate schedule and
densification strategy, driven by nerfstudio's trainer, datamanager, viewer and renderer.

Needs nerfstudio (the `.venv-ns` made by `.ci/install.sh --nerfstudio`): nothing else in realsim imports this module.
The nerfstudio world is realsim's world (the methods parse transforms.json with no re-orientation, centring or scaling).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, Tuple, Type

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from torch import nn

from .antialias import EPS2D
from .bundle import render_model
from .gs3d import GS3DConfig, GS3DModel
from .metrics import psnr, ssim
from .scaffold import ScaffoldConfig, ScaffoldModel, exp_lr
from .splats import rasterize_splats
from .trainer import lr_table
from .train_config import TrainConfig, scale_schedule

GL_TO_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


@dataclass
class RealsimModelConfig(ModelConfig):
    """realsim model inside nerfstudio: the model kind and shape (as in scene.json's model config) and the loss weights."""

    _target: Type = field(default_factory=lambda: RealsimModel)
    kind: Literal["scaffold", "3dgs"] = "scaffold"
    backend: str = "auto"  # realsim rasterizer backend: auto | cpu | cuda | torch
    voxel_size: float = 0.0  # Scaffold: anchor voxel; <= 0 picks the median nearest-neighbour distance of the seed points
    n_offsets: int = 10
    feat_dim: int = 32
    hidden_dim: int = 32
    use_dist: bool = False
    appearance_dim: int = 0
    n_appearance: int = 0
    feature_bank: bool = False
    sh_degree: int = 3  # 3DGS
    init_opacity: float = 0.1
    lambda_dssim: float = 0.2
    lambda_volume: float = 0.01
    lr_scale: float = 1.0
    densify: bool = True  # run realsim's densification strategy (ScaffoldStrategy / ADCStrategy) on its schedule
    background: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    eps2d: float = EPS2D  # the rasterizer's 2-D widening (px^2): a converted bundle's own (TrainConfig.eps2d)
    enable_collider: bool = False

    def realsim_config(self) -> ScaffoldConfig | GS3DConfig:
        if self.kind == "scaffold":
            return ScaffoldConfig(self.voxel_size, self.n_offsets, self.feat_dim, self.hidden_dim, self.use_dist,
                                  self.appearance_dim, self.n_appearance, self.feature_bank)
        return GS3DConfig(self.sh_degree, self.init_opacity)


def camera_to_realsim(camera: Cameras) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """First camera of a nerfstudio `Cameras` -> (OpenCV viewmat [4,4], K [3,3], W, H), float32 on CPU or its device."""
    c2w = camera.camera_to_worlds.reshape(-1, 3, 4)[0].float()
    c2w = torch.cat([c2w, torch.tensor([[0.0, 0.0, 0.0, 1.0]], device=c2w.device)], 0)
    viewmat = torch.linalg.inv(c2w @ GL_TO_CV.to(c2w))
    f = lambda t: float(t.reshape(-1)[0])  # noqa: E731
    K = torch.tensor([[f(camera.fx), 0.0, f(camera.cx)], [0.0, f(camera.fy), f(camera.cy)], [0.0, 0.0, 1.0]],
                     device=c2w.device)
    return viewmat, K, int(f(camera.width)), int(f(camera.height))


class RealsimModel(Model):
    """Holds the realsim model as `rs` (state dict keys rs.*); resizes it to a checkpoint's element count on load."""

    config: RealsimModelConfig

    def __init__(self, config: RealsimModelConfig, *args: Any,
                 seed_points: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, **kwargs: Any) -> None:
        self.seed_points = seed_points
        super().__init__(config, *args, **kwargs)

    def populate_modules(self) -> None:
        c = self.config.realsim_config()
        cls = ScaffoldModel if self.config.kind == "scaffold" else GS3DModel
        if self.seed_points is not None and len(self.seed_points[0]) >= 4:
            xyz = self.seed_points[0].detach().cpu().numpy().astype(np.float64)
            rgb = self.seed_points[1].detach().cpu().numpy().astype(np.uint8)
            self.rs = ScaffoldModel.from_points(xyz, c) if cls is ScaffoldModel else GS3DModel.from_points(xyz, rgb, c)
        else:  # no seed points: an empty model (a checkpoint load resizes it)
            self.rs = cls(c, 0)
        self.config.voxel_size = getattr(self.rs.config, "voxel_size", self.config.voxel_size)
        for p in self.rs.dynamic_params().values():
            p.requires_grad_(True)
        self.step = 0
        self.n_iter = 30000
        self._last: dict[str, Any] = {}
        self.strategy: Any = None
        self.strategy_state: dict[str, torch.Tensor] = {}
        self.lrs: dict[str, tuple[float, float]] = {}
        self.gen = torch.Generator().manual_seed(0)

    # ------------------------------------------------------------------ optimisation
    def get_param_groups(self) -> Dict[str, List[nn.Parameter]]:
        """One group per realsim optimiser (names as realsim's trainer): the strategy edits them and their Adam moments."""
        return {name: [p] for name, p in self.rs.dynamic_params().items()} | dict(self.rs.static_groups())

    def get_training_callbacks(self, attrs: TrainingCallbackAttributes) -> List[TrainingCallback]:
        self.n_iter = int(attrs.trainer.config.max_num_iterations) if attrs.trainer is not None else self.n_iter
        cfg = TrainConfig(model=self.config.kind, iterations=self.n_iter, lr_scale=self.config.lr_scale)
        scale_schedule(cfg)
        self.sh_interval = cfg.sh_degree_interval
        extent = 1.0
        dm = attrs.pipeline.datamanager if attrs.pipeline is not None else None
        if dm is not None and getattr(dm, "train_dataset", None) is not None:
            centres = dm.train_dataset.cameras.camera_to_worlds[:, :3, 3].double().numpy()
            extent = max(float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) * 1.1, 1e-6)
        self.lrs = lr_table(cfg, extent)
        self.strategy = cfg.scaffold_strategy if self.config.kind == "scaffold" else cfg.adc
        self.strategy_state = self.strategy.initialize_state(self.rs, extent)
        opts = attrs.optimizers.optimizers
        self.strategy.check_sanity(self.rs, opts)
        return [TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], self._before, args=[opts]),
                TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._after, args=[opts])]

    def _before(self, opts: dict[str, torch.optim.Optimizer], step: int) -> None:
        """realsim's exponential learning-rate decay over the run and the 3DGS SH-degree warm-up."""
        self.step = step
        for name, opt in opts.items():
            if name in self.lrs:
                for g in opt.param_groups:
                    g["lr"] = exp_lr(*self.lrs[name], step, self.n_iter)
        if isinstance(self.rs, GS3DModel):
            self.rs.active_sh_degree = min(step // max(self.sh_interval, 1), self.rs.config.sh_degree)

    def _after(self, opts: dict[str, torch.optim.Optimizer], step: int) -> None:
        """realsim's densification after the optimisers stepped (grows / prunes anchors or Gaussians with their moments)."""
        if self.config.densify and self._last:
            self.strategy.step_post_backward(self.rs, opts, self.strategy_state, step, self._last["info"],
                                             self._last["meta"], generator=self.gen)
        self._last = {}

    # ------------------------------------------------------------------ rendering
    def _background(self) -> torch.Tensor:
        return torch.tensor(self.config.background, dtype=torch.float32)

    def get_outputs(self, camera: Cameras) -> Dict[str, torch.Tensor]:  # type: ignore[override]
        """rgb [H,W,3], depth [H,W,1] (z; 0 where empty), accumulation [H,W,1], background [3] for the first camera."""
        viewmat, K, W, H = camera_to_realsim(camera.to("cpu") if self.device.type == "cpu" else camera)
        cam_idx = None
        if camera.metadata and "cam_idx" in camera.metadata:
            cam_idx = int(camera.metadata["cam_idx"])
        bg = self._background().to(viewmat.device)
        if not self.training:
            out = render_model(self.rs, viewmat, K, W, H, self.config.backend, tuple(self.config.background), cam_idx,
                               eps2d=self.config.eps2d)
            return {"rgb": out["rgb"], "depth": out["depth"], "accumulation": out["alpha"], "background": bg}
        splats, info = self.rs.decode(viewmat, K, W, H, cam_index=cam_idx, backend=self.config.backend)
        img, alpha, meta = rasterize_splats(splats, viewmat, K, W, H, backend=self.config.backend, background=bg,
                                            eps2d=self.config.eps2d)
        if self.strategy is not None:
            self.strategy.step_pre_backward(meta)
        self._last = {"info": info, "meta": meta}
        return {"rgb": img, "accumulation": alpha, "background": bg, "info": info}  # type: ignore[dict-item]

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, torch.Tensor]:
        return self.get_outputs(camera.to(self.device))

    # ------------------------------------------------------------------ losses and metrics
    def _gt(self, image: torch.Tensor) -> torch.Tensor:
        img = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        if img.shape[-1] == 4:  # RGBA: composite over the background realsim renders
            img = img[..., :3] * img[..., 3:] + (1 - img[..., 3:]) * self._background().to(img)
        return img.to(self.device)

    def get_metrics_dict(self, outputs: Dict[str, Any], batch: Dict[str, Any]) -> Dict[str, torch.Tensor]:
        gt = self._gt(batch["image"])
        n = self.rs.n_anchors if isinstance(self.rs, ScaffoldModel) else self.rs.n_gaussians
        return {"psnr": torch.tensor(psnr(outputs["rgb"].detach(), gt)), "realsim_elements": torch.tensor(float(n))}

    def get_loss_dict(self, outputs: Dict[str, Any], batch: Dict[str, Any],
                      metrics_dict: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """realsim's loss: (1 - l) L1 + l D-SSIM, plus the Scaffold volume regulariser."""
        gt, img = self._gt(batch["image"]), outputs["rgb"]
        lam = self.config.lambda_dssim
        loss = {"main_loss": (1 - lam) * (img - gt).abs().mean() + lam * (1 - ssim(img, gt))}
        if self.config.kind == "scaffold" and self.config.lambda_volume > 0 and "info" in outputs:
            loss["volume_loss"] = self.config.lambda_volume * self.rs.volume_loss(outputs["info"])
        return loss

    def get_image_metrics_and_images(self, outputs: Dict[str, torch.Tensor], batch: Dict[str, torch.Tensor]
                                     ) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
        """Held-out PSNR / SSIM (realsim.recon.metrics; no LPIPS: it would download weights) and the side-by-side image."""
        gt, img = self._gt(batch["image"]), outputs["rgb"]
        return ({"psnr": float(psnr(img, gt)), "ssim": float(ssim(img, gt))},
                {"img": torch.cat([gt, img], dim=1)})

    # ------------------------------------------------------------------ checkpoints
    def load_state_dict(self, state_dict: Dict[str, torch.Tensor], strict: bool = True, **kw: Any):  # type: ignore[override]
        """Resize the realsim model's per-element tensors to the checkpoint's before loading (densification changed them)."""
        names = list(self.rs.dynamic_params()) + (["anchors"] if isinstance(self.rs, ScaffoldModel) else [])
        for name in names:
            key = f"rs.{name}"
            if key in state_dict:
                old = getattr(self.rs, name)
                setattr(self.rs, name, nn.Parameter(torch.zeros(state_dict[key].shape, device=old.device),
                                                    requires_grad=old.requires_grad))
        return super().load_state_dict(state_dict, strict=strict, **kw)
