"""nerfstudio method plugin (entry point group `nerfstudio.method_configs`): `realsim-scaffold` and `realsim-3dgs`.

`ns-train realsim-scaffold --data WORKDIR` trains on a realsim poses WORKDIR (its transforms.json, train/test split and
sparse_pc.ply) with realsim's kernels, in realsim's world frame; `ns-viewer` / `ns-render` read the result.
Needs nerfstudio (`.venv-ns`); nothing else in realsim imports this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Type

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from .gs3d import lr_schedule_3dgs
from .ns_model import RealsimModelConfig
from .scaffold import lr_schedule_scaffold


@dataclass
class FusedAdamConfig(AdamOptimizerConfig):
    """torch's fused Adam, as realsim's trainer uses (one pass per tensor: much faster on CPU)."""

    _target: Type = torch.optim.Adam
    eps: float = 1e-15
    fused: bool = True


def _optimizers(kind: str) -> dict:
    """One optimizer per realsim parameter group; realsim's schedule sets their learning rates every step."""
    table = lr_schedule_scaffold(1.0) if kind == "scaffold" else lr_schedule_3dgs(1.0)
    return {name: {"optimizer": FusedAdamConfig(lr=lr0), "scheduler": None} for name, (lr0, _lr1) in table.items()}


def trainer_config(kind: str, iterations: int = 3000) -> TrainerConfig:
    """The TrainerConfig of realsim-<kind>: realsim's world frame (no re-orientation / scaling), images cached as uint8."""
    name = f"realsim-{kind}"
    return TrainerConfig(
        method_name=name,
        steps_per_eval_image=500,
        steps_per_eval_batch=0,
        steps_per_save=1000,
        steps_per_eval_all_images=100000,
        max_num_iterations=iterations,
        mixed_precision=False,
        pipeline=VanillaPipelineConfig(
            datamanager=FullImageDatamanagerConfig(
                dataparser=NerfstudioDataParserConfig(load_3D_points=True, orientation_method="none",
                                                      center_method="none", auto_scale_poses=False),
                cache_images="gpu",  # = the training device ("cpu" pins memory, which needs a CUDA driver)
                cache_images_type="uint8",
            ),
            model=RealsimModelConfig(kind=kind),
        ),
        optimizers=_optimizers(kind),
        machine=MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu"),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15, websocket_host="127.0.0.1"),  # nerfstudio binds 0.0.0.0
        vis="viewer",
    )


realsim_scaffold = MethodSpecification(
    config=trainer_config("scaffold"),
    description="realsim Scaffold-GS (anchors + MLP-decoded neural Gaussians) on realsim's own rasterization kernels",
)
realsim_3dgs = MethodSpecification(
    config=trainer_config("3dgs"),
    description="realsim 3D Gaussian Splatting (SH degree 3, adaptive density control) on realsim's own kernels",
)

__all__ = ["realsim_scaffold", "realsim_3dgs", "trainer_config", "FusedAdamConfig"]
