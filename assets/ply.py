"""Standard 3DGS PLY (the layout every splat viewer reads): write and read plain Gaussians.

Vertex properties, all float32, binary little endian, in this order:
    x y z, nx ny nz (zeros), f_dc_0..2, f_rest_0..(3*(K-1)-1) channel-major (all R coefficients, then G, then B),
    opacity (logit), scale_0..2 (log), rot_0..3 (quaternion w, x, y, z).
Colour follows the 3DGS/gsplat SH convention: rgb(dir) = clamp(SH(dir, coeffs) + 0.5, 0), so f_dc = (rgb - 0.5) / C0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .errors import InputError

SH_C0 = 0.28209479177387814  # Y_0^0


@dataclass
class GaussianCloud:
    """Plain Gaussians in activated units (what the rasterizer takes), with colour as SH coefficients."""

    means: np.ndarray  # [N,3] float32, world
    quats: np.ndarray  # [N,4] float32, (w, x, y, z), normalised
    scales: np.ndarray  # [N,3] float32, linear (not log)
    opacities: np.ndarray  # [N] float32 in (0, 1)
    sh: np.ndarray  # [N,K,3] float32, K = (degree+1)^2; sh[:, 0] is the DC term

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        k = self.sh.shape[1] if self.sh.ndim == 3 else -1
        if (self.means.shape != (n, 3) or self.quats.shape != (n, 4) or self.scales.shape != (n, 3)
                or self.opacities.shape != (n,) or self.sh.shape != (n, k, 3) or k not in (1, 4, 9, 16)):
            raise ValueError(f"inconsistent Gaussian shapes: means {self.means.shape}, quats {self.quats.shape}, scales "
                             f"{self.scales.shape}, opacities {self.opacities.shape}, sh {self.sh.shape} (K must be 1, 4, 9 or 16)")

    @property
    def sh_degree(self) -> int:
        return int(round(np.sqrt(self.sh.shape[1]))) - 1

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @staticmethod
    def from_rgb(means, quats, scales, opacities, rgb) -> "GaussianCloud":
        """Degree-0 cloud from view-independent RGB [N,3] in [0,1]."""
        rgb = np.asarray(rgb, dtype=np.float32)
        return GaussianCloud(_f32(means), _f32(quats), _f32(scales), _f32(opacities).reshape(-1),
                             ((rgb - 0.5) / SH_C0)[:, None, :].astype(np.float32))


def _f32(a) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor without importing torch here
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def ply_property_names(sh_degree: int) -> list[str]:
    """Vertex property names of the standard 3DGS PLY for an SH degree 0-3."""
    k = (sh_degree + 1) ** 2
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
            + [f"f_rest_{i}" for i in range(3 * (k - 1))]
            + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def cloud_to_ply_array(g: GaussianCloud) -> np.ndarray:
    """[N, P] float32 matrix in PLY property order (activations inverted: logit opacity, log scale)."""
    n = len(g)
    sh = _f32(g.sh)
    k = sh.shape[1]
    q = _f32(g.quats).astype(np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    op = np.clip(_f32(g.opacities).astype(np.float64), 1e-7, 1 - 1e-7)
    cols = [
        _f32(g.means),
        np.zeros((n, 3), np.float32),
        sh[:, 0, :],
        sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1)),  # channel-major as 3DGS viewers expect
        np.log(op / (1 - op))[:, None],
        np.log(np.maximum(_f32(g.scales).astype(np.float64), 1e-30)),
        q,
    ]
    return np.concatenate([c.astype(np.float32) for c in cols], axis=1)


def write_ply(path: str | os.PathLike, g: GaussianCloud) -> None:
    """Write the standard 3DGS binary PLY atomically."""
    names = ply_property_names(g.sh_degree)
    data = cloud_to_ply_array(g)
    if not np.isfinite(data).all():
        raise ValueError("Gaussian parameters contain NaN or inf; refusing to write a PLY viewers cannot read")
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(g)}"]
    header += [f"property float {p}" for p in names]
    header += ["end_header"]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            f.write(data.astype("<f4").tobytes())


def read_ply(path: str | os.PathLike) -> GaussianCloud:
    """Read a 3DGS PLY (ours or any trainer's, binary or ASCII); InputError for missing, corrupt or non-3DGS files."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise InputError(f"PLY file {path} not found")
    try:
        ply = PlyData.read(str(path))
        v = ply["vertex"].data
    except Exception as e:  # plyfile raises assorted errors for truncated or foreign files
        raise InputError(f"{path} is not a readable PLY file ({type(e).__name__}: {e})") from None
    names = set(v.dtype.names or ())
    need = {"x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3"}
    missing = sorted(need - names)
    if missing:
        raise InputError(f"{path} is not a 3DGS PLY (missing vertex properties {', '.join(missing)})")
    n_rest = sum(1 for p in names if p.startswith("f_rest_"))
    if n_rest % 3 or (n_rest // 3 + 1) not in (1, 4, 9, 16):
        raise InputError(f"{path} has {n_rest} f_rest_* properties; expected 0, 9, 24 or 45 (SH degree 0-3)")
    k = n_rest // 3 + 1
    col = lambda name: np.asarray(v[name], dtype=np.float64)  # noqa: E731
    n = len(v)
    sh = np.zeros((n, k, 3))
    for c in range(3):
        sh[:, 0, c] = col(f"f_dc_{c}")
        for j in range(k - 1):
            sh[:, 1 + j, c] = col(f"f_rest_{c * (k - 1) + j}")
    q = np.stack([col(f"rot_{i}") for i in range(4)], 1)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = GaussianCloud(
        means=np.stack([col("x"), col("y"), col("z")], 1).astype(np.float32),
        quats=q.astype(np.float32),
        scales=np.exp(np.stack([col(f"scale_{i}") for i in range(3)], 1)).astype(np.float32),
        opacities=(1.0 / (1.0 + np.exp(-col("opacity")))).astype(np.float32),
        sh=sh.astype(np.float32),
    )
    arrays = [g.means, g.quats, g.scales, g.opacities, g.sh]
    if not all(np.isfinite(a).all() for a in arrays):
        raise InputError(f"{path} contains NaN or inf Gaussian parameters")
    return g
