"""Plain 3D Gaussian Splatting (Kerbl et al. 2023) as the baseline: explicit Gaussians with SH colour (degree 3)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realsim.assets.config import ConfigDict

from .scaffold import knn_mean_dist
from .splats import Splats

SH_C0 = 0.28209479177387814


@dataclass
class GS3DConfig(ConfigDict):
    sh_degree: int = 3
    init_opacity: float = 0.1



class GS3DModel(nn.Module):
    """means [N,3], scales [N,3] (log), quats [N,4], opacities [N] (logit), sh0 [N,1,3], shN [N,K-1,3]."""

    kind = "3dgs"

    def __init__(self, config: GS3DConfig, n: int = 0) -> None:
        super().__init__()
        self.config = config
        K = (config.sh_degree + 1) ** 2
        self.means = nn.Parameter(torch.zeros(n, 3))
        self.scales = nn.Parameter(torch.zeros(n, 3))
        self.quats = nn.Parameter(torch.zeros(n, 4))
        self.opacities = nn.Parameter(torch.zeros(n))
        self.sh0 = nn.Parameter(torch.zeros(n, 1, 3))
        self.shN = nn.Parameter(torch.zeros(n, K - 1, 3))
        self.active_sh_degree = config.sh_degree  # the trainer raises it gradually; bundles render at full degree

    @classmethod
    def from_points(cls, xyz: np.ndarray, rgb: np.ndarray, config: GS3DConfig, seed: int = 0) -> "GS3DModel":
        xyz = np.asarray(xyz, np.float32)
        m = cls(config, len(xyz))
        with torch.no_grad():
            m.means.copy_(torch.from_numpy(xyz))
            m.scales.copy_(torch.from_numpy(np.log(np.maximum(knn_mean_dist(xyz), 1e-7)))[:, None].repeat(1, 3))
            m.quats.zero_()
            m.quats[:, 0] = 1.0
            m.opacities.fill_(float(torch.logit(torch.tensor(config.init_opacity))))
            m.sh0.copy_(((torch.from_numpy(np.asarray(rgb, np.float32) / 255.0) - 0.5) / SH_C0)[:, None, :])
        return m

    @classmethod
    def empty_like_state(cls, config: GS3DConfig, tensors: dict[str, torch.Tensor]) -> "GS3DModel":
        return cls(config, int(tensors["means"].shape[0]))

    def dynamic_params(self) -> dict[str, nn.Parameter]:
        return {"means": self.means, "scales": self.scales, "quats": self.quats, "opacities": self.opacities,
                "sh0": self.sh0, "shN": self.shN}

    def static_groups(self) -> dict[str, list[nn.Parameter]]:
        return {}

    @property
    def n_gaussians(self) -> int:
        return int(self.means.shape[0])

    def decode(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, cam_index: int | None = None,
               backend: str = "auto") -> tuple[Splats, dict[str, torch.Tensor]]:
        deg = min(self.active_sh_degree, self.config.sh_degree)
        sh = torch.cat([self.sh0, self.shN], 1)
        splats = Splats(self.means, F.normalize(self.quats, dim=1), torch.exp(self.scales), torch.sigmoid(self.opacities),
                        sh=sh, sh_degree=deg)
        return splats, {}

    def splats(self, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int, cam_index: int | None = None,
               backend: str = "auto") -> Splats:
        return self.decode(viewmat, K, width, height, cam_index, backend)[0]

    def volume_loss(self, info: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.zeros(())


def lr_schedule_3dgs(extent: float) -> dict[str, tuple[float, float]]:
    """Published 3DGS learning rates; means decay exponentially and scale with the scene extent."""
    return {
        "means": (1.6e-4 * extent, 1.6e-6 * extent),
        "scales": (5e-3, 5e-3),
        "quats": (1e-3, 1e-3),
        "opacities": (5e-2, 5e-2),
        "sh0": (2.5e-3, 2.5e-3),
        "shN": (2.5e-3 / 20, 2.5e-3 / 20),
    }
