"""Real spherical harmonics (degrees 0-3) in gsplat's / 3DGS's convention, differentiable through plain torch ops."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from realsim.assets.errors import InputError

_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
       1.445305721320277, -0.5900435899266435)


def num_sh_bases(degree: int) -> int:
    """Number of SH coefficients of a degree: (degree + 1)^2."""
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """SH basis values [..., (degree+1)^2] at unit directions dirs [..., 3]."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, _C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [_C2[0] * xy, _C2[1] * yz, _C2[2] * (2.0 * zz - xx - yy), _C2[3] * xz, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            _C3[0] * y * (3.0 * xx - yy),
            _C3[1] * xy * z,
            _C3[2] * y * (4.0 * zz - xx - yy),
            _C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            _C3[4] * x * (4.0 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(out, dim=-1)


def spherical_harmonics(degree: int, dirs: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Evaluate SH colours [..., 3] from coeffs [..., K, 3] (K >= (degree+1)^2) toward dirs [..., 3] (any norm).

    Like gsplat, no +0.5 offset is applied here: callers use colors = clamp(result + 0.5, min=0).
    """
    if not 0 <= degree <= 3:
        raise InputError(f"sh degree must be 0..3, got {degree}")
    k = num_sh_bases(degree)
    if coeffs.shape[-1] != 3 or coeffs.shape[-2] < k:
        raise InputError(f"SH coefficients must be [..., K>={k}, 3] for degree {degree}, got {tuple(coeffs.shape)}")
    basis = sh_basis(degree, F.normalize(dirs, dim=-1))  # [..., k]
    return (basis.unsqueeze(-1) * coeffs[..., :k, :]).sum(-2)
