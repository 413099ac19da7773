"""Camera pose refinement during training: one SE(3) correction per training camera (axis-angle + translation, zero
at the start) left-multiplied onto its world-to-camera viewmat and learned through the rasterizer's viewmat gradient,
so the small errors of SfM poses on real captures stop blurring the reconstruction.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from realsim.assets.config import ConfigDict

__all__ = ["PoseRefineConfig", "PoseRefiner", "so3_exp", "se3_delta", "pose_errors", "trainer_refiner", "write_back"]


@dataclass
class PoseRefineConfig(ConfigDict):
    """Optimizer of the pose corrections: one Adam over [rotation (radians) | translation (scene extents)]."""

    lr_init: float = 1e-4        # learning rate at iteration 0, decayed log-linearly (exp_lr's law) ...
    lr_final: float = 1e-6       # ... to this at the last iteration
    weight_decay: float = 1e-6   # L2 pull of the corrections toward zero (gsplat's pose_opt_reg)
    start_iteration: int = 0     # the poses stay fixed before this iteration (the scene settles first)


def _skew(w: torch.Tensor) -> torch.Tensor:
    """[..., 3] -> [..., 3, 3] cross-product matrices."""
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(w.shape[:-1] + (3, 3))


def so3_exp(omega: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] of axis-angle vectors [..., 3] (Rodrigues; Taylor series near zero, so the
    value and the gradient at omega = 0, where refinement starts, are exact and finite)."""
    th2 = (omega * omega).sum(-1)[..., None, None]
    small = th2 < 1e-4
    th2s = torch.where(small, torch.ones_like(th2), th2)
    th = th2s.sqrt()
    a = torch.where(small, 1 - th2 / 6 + th2 * th2 / 120, torch.sin(th) / th)                # sin t / t
    b = torch.where(small, 0.5 - th2 / 24 + th2 * th2 / 720, 2 * torch.sin(th / 2) ** 2 / th2s)  # (1 - cos t) / t^2
    K = _skew(omega)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand(K.shape)
    return eye + a * K + b * (K @ K)


def se3_delta(delta: torch.Tensor, extent: float = 1.0) -> torch.Tensor:
    """4x4 corrections [n,4,4] of parameters [n,6] = (axis-angle, translation / extent)."""
    n = delta.shape[0]
    T = torch.zeros(n, 4, 4, dtype=delta.dtype, device=delta.device)
    T[:, :3, :3] = so3_exp(delta[:, :3])
    T[:, :3, 3] = delta[:, 3:] * extent
    T[:, 3, 3] = 1
    return T


def pose_errors(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation angle (radians) and camera-centre distance between viewmats a and b [n,4,4] (OpenCV world-to-camera)."""
    Ra, Rb = a[:, :3, :3], b[:, :3, :3]
    cos = (((Ra @ Rb.transpose(1, 2)).diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    ca = -(Ra.transpose(1, 2) @ a[:, :3, 3:])[..., 0]
    cb = -(Rb.transpose(1, 2) @ b[:, :3, 3:])[..., 0]
    return torch.arccos(cos), (ca - cb).norm(dim=-1)


class PoseRefiner(nn.Module):
    """Per-camera corrections: refined viewmat = [exp(w) | t * extent] @ viewmat (a motion in the camera's own frame).

    delta [n_cameras, 6] starts at zero, so training begins from the given poses; translations are in units of the
    scene extent so one learning rate suits every scene scale.
    """

    def __init__(self, n_cameras: int, extent: float = 1.0, config: PoseRefineConfig | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = config or PoseRefineConfig()
        self.extent = float(extent)
        self.delta = nn.Parameter(torch.zeros(n_cameras, 6, device=device, dtype=dtype))

    def corrections(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """The 4x4 corrections [n,4,4] of cameras `ids` (all cameras when None)."""
        d = self.delta if ids is None else self.delta[ids]
        return se3_delta(d, self.extent)

    def forward(self, viewmats: torch.Tensor, ids: int | torch.Tensor, step: int | None = None) -> torch.Tensor:
        """Refined viewmats ([4,4] for one camera index, or [B,4,4] for ids [B]); unchanged before start_iteration."""
        if step is not None and step < self.config.start_iteration:
            return viewmats
        single = viewmats.dim() == 2
        idx = torch.as_tensor([ids] if single else ids, dtype=torch.long, device=self.delta.device)
        vm = viewmats[None] if single else viewmats
        out = self.corrections(idx).to(vm.dtype) @ vm.to(self.delta.device)
        return out[0] if single else out

    @torch.no_grad()
    def refined(self, viewmats: torch.Tensor) -> torch.Tensor:
        """Every camera's refined viewmat [n,4,4] (detached), e.g. to write back into cameras.json."""
        return self.corrections().to(viewmats.dtype) @ viewmats.to(self.delta.device)

    def make_optimizer(self) -> torch.optim.Adam:
        """Adam over delta at lr_init (the trainer's schedule then sets the lr each step, see lr_range)."""
        c = self.config
        return torch.optim.Adam([self.delta], lr=c.lr_init, eps=1e-15, weight_decay=c.weight_decay)

    def lr_range(self) -> tuple[float, float]:
        """(initial, final) learning rate for the trainer's log-linear schedule (exp_lr)."""
        return self.config.lr_init, self.config.lr_final


def trainer_refiner(cfg_on: bool, cfg: PoseRefineConfig, n_train: int, extent: float, ck: dict | None,
                    strat_state: dict[str, torch.Tensor]) -> tuple[PoseRefiner | None, torch.optim.Adam | None]:
    """The trainer's refiner and its optimizer (None, None when off); restored from a checkpoint's `pose_delta`
    (popped from the strategy state it travels in) and `opt.pose.*` moments."""
    if not cfg_on:
        return None, None
    from .checkpoint import restore_optimizers

    poses = PoseRefiner(n_train, extent, cfg)
    opt = poses.make_optimizer()
    if ck is not None:
        if "pose_delta" in strat_state:
            poses.delta.data.copy_(strat_state.pop("pose_delta").to(poses.delta.dtype))
        restore_optimizers({"pose": opt}, ck["tensors"])
    return poses, opt


@torch.no_grad()
def write_back(poses: PoseRefiner, names: list[str], cameras: Any) -> Any:
    """A copy of the CameraSet `cameras` whose training frames `names` (matched by name, in refiner order) carry their
    refined float64 viewmats; the other frames (held-out views) are unchanged."""
    frames = []
    index = {n: i for i, n in enumerate(names)}
    for f in cameras.frames:
        f = copy.copy(f)
        if f.name in index:
            corr = poses.corrections(torch.tensor([index[f.name]]))[0].double().cpu().numpy()
            f.viewmat = corr @ f.viewmat
        frames.append(f)
    return dataclasses.replace(cameras, frames=frames)
