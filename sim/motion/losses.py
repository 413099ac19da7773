"""Geometric training losses on the denoiser's x0 estimate (as MDM / CAMDM): forward kinematics of the predicted joint
rotations, foot velocity where the data says the foot is in contact, and agreement of FK with the data's joint positions.

The controller renders bodies from the rotation channels (FK), so the foot terms act on FK of the predicted rotations,
not on the (unused at run time) position channels.
"""
from __future__ import annotations

import torch

from .canon import FOOT_IDX, FPS, SKELETON, SL_CONTACT, SL_H, SL_POS, SL_ROT, SL_VEL, SL_YAW, J, sixd_to_mat


def fk_root_frame(feat: torch.Tensor) -> torch.Tensor:
    """Joint positions [...,J,3] in each frame's root frame (Y up, metres) by FK of the rotation channels of raw feat [...,D]."""
    L = sixd_to_mat(feat[..., SL_ROT].reshape(feat.shape[:-1] + (J, 6)))          # [...,J,3,3]
    h = feat[..., SL_H]
    root = torch.stack([torch.zeros_like(h), h, torch.zeros_like(h)], -1)
    return SKELETON.fk(L, root)[1]


def foot_step(pos: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """Per-frame displacement [B,T-1,4,3] (m) of the ankle/toe joints between consecutive frames, in the earlier frame's
    root frame: R_y(dyaw_t) p_t + v_t / FPS - p_{t-1}. pos [B,T,J,3] root-frame joints, feat [B,T,D] raw features."""
    ids = [j for pair in FOOT_IDX for j in pair]                                  # Foot_L, Toes_L, Foot_R, Toes_R
    p = pos[..., ids, :]                                                          # [B,T,4,3]
    dyaw = feat[:, 1:, SL_YAW] / FPS                                              # [B,T-1]
    c, s = torch.cos(dyaw)[..., None], torch.sin(dyaw)[..., None]
    q = p[:, 1:]
    x = c * q[..., 0] + s * q[..., 2]
    z = -s * q[..., 0] + c * q[..., 2]
    v = feat[:, 1:, SL_VEL] / FPS                                                 # [B,T-1,2]
    moved = torch.stack([x + v[..., :1], q[..., 1], z + v[..., 1:]], -1)
    return moved - p[:, :-1]


def root_track(feat: torch.Tensor) -> torch.Tensor:
    """Root (x, z) [B,F,2] (m) after each of F frames of raw feat [B,F,D], integrated from the root velocity and yaw rate as
    the controller does (velocity in the previous frame's root frame, then the turn), in the current root frame."""
    yaw = torch.cumsum(feat[..., SL_YAW] / FPS, 1)                                # [B,F]
    prev = torch.cat([torch.zeros_like(yaw[:, :1]), yaw[:, :-1]], 1)
    c, s = torch.cos(prev), torch.sin(prev)
    v = feat[..., SL_VEL] / FPS                                                   # [B,F,2]
    step = torch.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], -1)
    return torch.cumsum(step, 1)


def geometric_losses(pred: torch.Tensor, target: torch.Tensor, last_past: torch.Tensor) -> dict[str, torch.Tensor]:
    """pred / target [B,F,D] raw (denormalised) x0 estimate and data, last_past [B,D] raw -> scalar losses:
    foot_vel: mean squared horizontal foot speed (m/s)^2 over (joint, frame) where the data's contact label is 1
    (transition from the last past frame included); fk: mean squared distance (cm^2 / 100) between FK of the predicted
    rotations and the data's joint positions; contact: MSE of the contact channels (0/1 units); track: mean squared
    distance (cm^2 / 100) between the root tracks integrated from the predicted and the data's root velocity and yaw
    rate (root_track): the foot term alone can be lowered by walking slower, this term holds the distance covered."""
    seq = torch.cat([last_past[:, None], pred], 1)                                # [B,F+1,D]
    pos = fk_root_frame(seq)                                                      # [B,F+1,J,3]
    step = foot_step(pos, seq)                                                    # [B,F,4,3]
    cont = target[..., SL_CONTACT].clamp(0, 1)                                    # [B,F,2]
    mask = cont.repeat_interleave(2, -1)                                          # [B,F,4]: ankle+toe per foot
    v2 = (step[..., [0, 2]] ** 2).sum(-1) * FPS ** 2
    foot = (v2 * mask).sum() / mask.sum().clamp(min=1.0)
    gt_pos = target[..., SL_POS].reshape(target.shape[:-1] + (J, 3))
    fk = ((pos[:, 1:] - gt_pos) ** 2).sum(-1).mean() * 100.0
    contact = ((pred[..., SL_CONTACT] - target[..., SL_CONTACT]) ** 2).mean()
    track = ((root_track(pred) - root_track(target)) ** 2).sum(-1).mean() * 100.0
    return {"foot_vel": foot, "fk": fk, "contact": contact, "track": track}
