"""Readable PyTorch reference of 3D Gaussian splatting, with no tiling: the oracle every kernel backend is tested against.

The algorithm (shared exactly by the C++ and CUDA kernels, see render/csrc/ops.h):
  projection: EWA splatting with a perspective Jacobian whose lateral position is clamped to 1.3x the field of view;
    cov2d = J W Sigma W^T J^T + eps2d I; conic = cov2d^-1; antialiased mode multiplies opacity by
    compensation = sqrt(det(cov2d - eps2d I) / det(cov2d)).
  extent: per axis radius = ceil(extend * sqrt(cov2d_ii)) with extend = min(3.33, sqrt(2 ln(255 * opacity))), which
    provably contains every pixel where alpha >= 1/255, so tiling never changes the image. Culled (radii 0) when depth is
    outside [near, far], det <= 0, opacity < 1/255 or the box is off-screen.
  blending: pixel centres (x + 0.5, y + 0.5); sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with d = mean2d - pixel;
    alpha = min(0.999, opacity exp(-sigma)); skipped if sigma < 0 or alpha < 1/255; Gaussians in ascending depth (ties by
    index); a pixel stops before the Gaussian that would bring its transmittance to <= 1e-4; colour += T_final * background.
"""
from __future__ import annotations

import torch
import torch.utils.checkpoint
import torch.nn.functional as F

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
EXTEND_MAX = 3.33


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [..., 3, 3] of quaternions [..., 4] (w, x, y, z; normalised here)."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(quats.shape[:-1] + (3, 3))


def project(means, quats, scales, opacities, viewmats, Ks, width: int, height: int, near_plane: float = 0.01,
            far_plane: float = 1e10, eps2d: float = 0.3, antialiased: bool = False):
    """Project N Gaussians into C cameras.

    Returns radii [C,N,2] int32 (0 = culled), means2d [C,N,2], depths [C,N], conics [C,N,3] (a, b, c of cov2d^-1),
    compensations [C,N] (ones unless antialiased). Culled entries hold harmless finite values and get zero gradient.
    """
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]                     # [C,3,3], [C,3]
    pc = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]        # [C,N,3] camera-space means
    Rq = quat_to_rotmat(quats)                                        # [N,3,3]
    M = Rq * scales[:, None, :]                                       # R S
    cov = M @ M.transpose(-1, -2)                                     # [N,3,3]
    covc = R[:, None] @ cov[None] @ R.transpose(-1, -2)[:, None]      # [C,N,3,3]

    x, y, z = pc.unbind(-1)
    valid = (z >= near_plane) & (z <= far_plane)
    z = torch.where(valid, z, torch.ones_like(z))                     # keep culled entries finite (no NaN gradients)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]                     # [C,1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    u = torch.clamp(x / z, -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x)
    v = torch.clamp(y / z, -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * u / z, zero, fy / z, -fy * v / z], -1).reshape(z.shape + (2, 3))
    cov2d = J @ covc @ J.transpose(-1, -2)                            # [C,N,2,2]
    a, b, d = cov2d[..., 0, 0], cov2d[..., 0, 1], cov2d[..., 1, 1]
    det_orig = a * d - b * b
    a, d = a + eps2d, d + eps2d
    det = a * d - b * b
    valid = valid & (det > 0)
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([d / det, -b / det, a / det], -1)            # [C,N,3]
    if antialiased:
        ratio = det_orig / det
        pos = ratio > 0
        comp = torch.where(pos, torch.sqrt(torch.where(pos, ratio, torch.ones_like(ratio))), torch.zeros_like(ratio))
    else:
        comp = torch.ones_like(det)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)     # [C,N,2]

    with torch.no_grad():
        op = opacities[None, :] * comp                                 # effective opacity [C,N]
        valid = valid & (op >= ALPHA_MIN)
        extend = torch.sqrt(2 * torch.log(torch.clamp(op, min=ALPHA_MIN) * 255.0)).clamp(max=EXTEND_MAX)
        rx = torch.ceil(extend * torch.sqrt(torch.clamp(a, min=0)))
        ry = torch.ceil(extend * torch.sqrt(torch.clamp(d, min=0)))
        mx, my = means2d[..., 0], means2d[..., 1]
        valid = valid & (rx > 0) & (ry > 0)
        valid = valid & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        radii = torch.stack([rx, ry], -1).where(valid[..., None], torch.zeros_like(means2d)).to(torch.int32)
    return radii, means2d, pc[..., 2], conics, comp


def rasterize(means2d, conics, colors, opacities, depths, radii, width: int, height: int, backgrounds=None,
              absgrad: bool = False, max_elems: int = 1 << 23, checkpoint: bool = True):
    """Dense front-to-back blending of every visible Gaussian at every pixel (chunked over pixels).

    means2d [C,N,2], conics [C,N,3], colors [C,N,D], opacities [C,N] (effective), depths [C,N], radii [C,N,2] int,
    backgrounds [C,D] or None. Returns render_colors [C,H,W,D], render_alphas [C,H,W,1]. With absgrad, means2d.absgrad
    (filled during backward) is the sum over pixels of |d loss / d means2d|, like gsplat. With checkpoint (default) each
    pixel chunk is recomputed in backward, so training on this fallback holds one chunk's [P,M] tensors, not all of them.
    """
    C, N, D = colors.shape
    dev, dt = means2d.device, means2d.dtype
    ys, xs = torch.meshgrid(torch.arange(height, device=dev, dtype=dt), torch.arange(width, device=dev, dtype=dt),
                            indexing="ij")
    pix = torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5              # [P,2] pixel centres
    if absgrad:
        means2d.absgrad = torch.zeros_like(means2d)
    out_c, out_a = [], []
    for c in range(C):
        vis = (radii[c, :, 0] > 0).nonzero().squeeze(1)
        g = vis[torch.argsort(depths[c, vis].detach(), stable=True)]   # visible ids, front to back
        M = g.numel()
        mu, con, op, col = means2d[c, g], conics[c, g], opacities[c, g], colors[c, g]
        rad = radii[c, g].to(dt)
        chunk = max(1, max_elems // max(M, 1))
        cols, alps = [], []
        for p0 in range(0, pix.shape[0], chunk):
            px = pix[p0:p0 + chunk]                                     # [P,2]
            if M == 0:  # nothing visible: zeros that stay in the graph (backward gives zero gradients)
                link = 0.0 * (mu.sum() + con.sum() + op.sum() + col.sum())
                cols.append(torch.zeros(px.shape[0], D, device=dev, dtype=dt) + link)
                alps.append(torch.zeros(px.shape[0], device=dev, dtype=dt) + link)
                continue
            hook = _absgrad_hook(means2d, c, g) if absgrad else None
            if checkpoint and torch.is_grad_enabled():  # recompute in backward: memory O(chunk), not O(pixels x M)
                rgb, a = torch.utils.checkpoint.checkpoint(_blend_chunk, px, mu, con, op, col, rad, hook,
                                                           use_reentrant=False)
            else:
                rgb, a = _blend_chunk(px, mu, con, op, col, rad, hook)
            cols.append(rgb)
            alps.append(a)
        rc, ra = torch.cat(cols), torch.cat(alps)
        if backgrounds is not None:
            rc = rc + (1 - ra)[:, None] * backgrounds[c]
        out_c.append(rc.reshape(height, width, D))
        out_a.append(ra.reshape(height, width, 1))
    return torch.stack(out_c), torch.stack(out_a)


def _blend_chunk(px, mu, con, op, col, rad, hook):
    """Colour [P,D] and alpha [P] of pixels px [P,2] from the depth-sorted Gaussians mu [M,2], con [M,3], op [M], col [M,D]."""
    mu_p = mu[None].expand(px.shape[0], mu.shape[0], 2)
    if hook is not None and mu_p.requires_grad:
        mu_p.register_hook(hook)
    delta = mu_p - px[:, None, :]                                       # [P,M,2] mean - pixel
    dx, dy = delta[..., 0], delta[..., 1]
    sigma = 0.5 * (con[:, 0] * dx * dx + con[:, 2] * dy * dy) + con[:, 1] * dx * dy
    alpha = torch.clamp(op * torch.exp(-sigma), max=ALPHA_MAX)
    with torch.no_grad():
        keep = (sigma >= 0) & (alpha >= ALPHA_MIN) & (dx.abs() <= rad[:, 0]) & (dy.abs() <= rad[:, 1])
        alive = torch.cumprod(1 - alpha * keep, dim=1) > T_MIN           # stop before T would fall to <= T_MIN
    alpha = alpha * (keep & alive)
    trans = torch.cumprod(1 - alpha, dim=1)                             # T after each Gaussian
    t_before = torch.cat([torch.ones_like(trans[:, :1]), trans[:, :-1]], 1)
    return (alpha * t_before) @ col, 1 - trans[:, -1]


def _absgrad_hook(means2d: torch.Tensor, c: int, g: torch.Tensor):
    def hook(grad: torch.Tensor) -> None:                              # grad [P,M,2] per pixel
        means2d.absgrad[c].index_add_(0, g, grad.abs().sum(0))
    return hook


def reference_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width: int, height: int,
                            near_plane=0.01, far_plane=1e10, eps2d=0.3, backgrounds=None, antialiased=False):
    """Project + blend in one call (colors [N,D] or [C,N,D]); returns (render_colors, render_alphas, radii, means2d)."""
    radii, means2d, depths, conics, comp = project(means, quats, scales, opacities, viewmats, Ks, width, height,
                                                   near_plane, far_plane, eps2d, antialiased)
    C = viewmats.shape[0]
    if colors.dim() == 2:
        colors = colors[None].expand(C, -1, -1)
    op = opacities[None] * comp
    rc, ra = rasterize(means2d, conics, colors, op, depths, radii, width, height, backgrounds)
    return rc, ra, radii, means2d


__all__ = ["quat_to_rotmat", "project", "rasterize", "reference_rasterization", "ALPHA_MIN", "ALPHA_MAX", "T_MIN",
           "EXTEND_MAX"]
