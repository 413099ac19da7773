"""Scaffold-GS anchor prefilter: which anchors' neighbourhood spheres meet a camera's view frustum.

The frustum is {z >= near_plane, u in [-pad, width+pad], v in [-pad, height+pad]} of an OpenCV pinhole camera (no far
plane). The test is exact (Euclidean distance from the sphere centre to the frustum <= radius, through its faces, edges and
corners), not the usual conservative plane test. Backends: "torch" (the readable reference below), "cpu" (C++/OpenMP,
render/csrc/prefilter_cpu.cpp, in the CPU kernel module), "cuda" (render/csrc/prefilter_cuda.cu); all share the geometry of
render/csrc/prefilter_common.h.
"""
from __future__ import annotations

import logging

import torch

from realsim.assets.errors import InputError, RealsimError

from . import _cpu

_LOG = logging.getLogger("realsim.render.prefilter")
BACKENDS = ("auto", "torch", "cpu", "cuda", "gsplat")


def frustum_planes(K: torch.Tensor, width: int, height: int, near_plane: float, pad: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Inward unit normals n [5,3] and offsets o [5] of the frustum planes (n . p + o >= 0 inside), camera coordinates.

    Order: near, left (u = -pad), right (u = width+pad), top (v = -pad), bottom (v = height+pad).
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    ax0, ax1 = (-pad - cx) / fx, (width + pad - cx) / fx  # x/z limits
    ay0, ay1 = (-pad - cy) / fy, (height + pad - cy) / fy  # y/z limits
    one, zero = torch.ones_like(fx), torch.zeros_like(fx)
    n = torch.stack([
        torch.stack([zero, zero, one]),
        torch.stack([one, zero, -ax0]) / torch.sqrt(1 + ax0 * ax0),
        torch.stack([-one, zero, ax1]) / torch.sqrt(1 + ax1 * ax1),
        torch.stack([zero, one, -ay0]) / torch.sqrt(1 + ay0 * ay0),
        torch.stack([zero, -one, ay1]) / torch.sqrt(1 + ay1 * ay1),
    ])
    o = torch.stack([-near_plane * one, zero, zero, zero, zero])
    return n, o


def _dist2_to_edges(p: torch.Tensor, start: torch.Tensor, d: torch.Tensor, tmax: torch.Tensor) -> torch.Tensor:
    """Squared distances [M,E] from points p [M,3] to segments/rays start [E,3] + t d [E,3], t in [0, tmax] (inf = ray)."""
    w = p[:, None, :] - start[None]  # [M,E,3]
    t = (w * d).sum(-1) / (d * d).sum(-1)
    t = torch.minimum(t.clamp(min=0), tmax)
    e = w - t[..., None] * d
    return (e * e).sum(-1)


def anchor_prefilter_torch(anchors: torch.Tensor, radii: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor,
                           width: int, height: int, near_plane: float = 0.01, pad: float = 0.0) -> torch.Tensor:
    """Reference implementation (any float dtype/device): mask [M] bool, exact distance to the frustum <= radius."""
    dt = anchors.dtype
    viewmat, K = viewmat.to(dt), K.to(dt)
    p = anchors @ viewmat[:3, :3].T + viewmat[:3, 3]  # [M,3] camera coordinates
    n, o = frustum_planes(K, width, height, near_plane, pad)
    s = p @ n.T + o  # [M,5] signed inside-distances
    inside = (s >= 0).all(dim=1)
    # Faces: projecting p onto a violated plane gives the nearest point when that projection is inside the frustum.
    tol = 1e-6 * (1 + p.abs().sum(dim=1, keepdim=True))  # [M,1]
    face_d2 = torch.full_like(s, float("inf"))
    for i in range(5):
        q = p - s[:, i:i + 1] * n[i]  # [M,3]
        sq = q @ n.T + o  # [M,5]
        others = torch.cat([sq[:, :i], sq[:, i + 1:]], dim=1)
        ok = (s[:, i] < 0) & (others >= -tol).all(dim=1)
        face_d2[:, i] = torch.where(ok, s[:, i] ** 2, face_d2[:, i])
    # Edges: 4 lateral rays from the near corners along the corner directions, 4 edges of the near rectangle.
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    xs = torch.stack([(-pad - cx) / fx, (width + pad - cx) / fx])
    ys = torch.stack([(-pad - cy) / fy, (height + pad - cy) / fy])
    zn = torch.tensor(near_plane, dtype=dt, device=p.device)
    one = torch.ones((), dtype=dt, device=p.device)
    zero = torch.zeros((), dtype=dt, device=p.device)
    inf = torch.tensor(float("inf"), dtype=dt, device=p.device)
    starts, dirs, tmaxs = [], [], []
    for a in range(2):
        for b in range(2):
            starts.append(torch.stack([xs[a] * zn, ys[b] * zn, zn]))
            dirs.append(torch.stack([xs[a], ys[b], one]))
            tmaxs.append(inf)
        starts.append(torch.stack([xs[0] * zn, ys[a] * zn, zn]))  # near edge along x at y = ys[a]
        dirs.append(torch.stack([(xs[1] - xs[0]) * zn, zero, zero]))
        tmaxs.append(one)
        starts.append(torch.stack([xs[a] * zn, ys[0] * zn, zn]))  # near edge along y at x = xs[a]
        dirs.append(torch.stack([zero, (ys[1] - ys[0]) * zn, zero]))
        tmaxs.append(one)
    edge_d2 = _dist2_to_edges(p, torch.stack(starts), torch.stack(dirs), torch.stack(tmaxs))
    d2 = torch.minimum(face_d2.min(dim=1).values, edge_d2.min(dim=1).values)
    finite = torch.isfinite(p).all(dim=1)
    return finite & (inside | (d2 <= radii * radii))


_cpu_ext = _cpu.load  # the C++ CPU kernel module carries the prefilter (one extension: one cold build)


def _check(anchors: torch.Tensor, radii, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
           near_plane: float, pad: float) -> torch.Tensor:
    if not isinstance(anchors, torch.Tensor) or anchors.dim() != 2 or anchors.shape[1] != 3:
        raise InputError(f"anchor_prefilter: anchors must be a tensor [M,3], got {tuple(getattr(anchors, 'shape', ()))}")
    if not anchors.is_floating_point():
        raise InputError("anchor_prefilter: anchors must be floating point")
    radii = torch.as_tensor(radii, dtype=anchors.dtype, device=anchors.device)
    if radii.dim() == 0:
        radii = radii.expand(anchors.shape[0])
    if radii.shape != (anchors.shape[0],):
        raise InputError(f"anchor_prefilter: radii must be [M] = [{anchors.shape[0]}], got {tuple(radii.shape)}")
    if bool((radii < 0).any()):
        raise InputError("anchor_prefilter: radii must be >= 0")
    if tuple(viewmat.shape) != (4, 4) or tuple(K.shape) != (3, 3):
        raise InputError(f"anchor_prefilter: viewmat must be [4,4] and K [3,3], got {tuple(viewmat.shape)}, {tuple(K.shape)}")
    if int(width) <= 0 or int(height) <= 0:
        raise InputError(f"anchor_prefilter: width and height must be positive, got {width}x{height}")
    if not near_plane >= 0:
        raise InputError(f"anchor_prefilter: near_plane must be >= 0, got {near_plane}")
    if not 2 * pad > -min(int(width), int(height)):
        raise InputError(f"anchor_prefilter: pad {pad} leaves an empty image window")
    if not (float(K[0, 0]) > 0 and float(K[1, 1]) > 0):
        raise InputError("anchor_prefilter: K must have positive focal lengths")
    return radii


def anchor_prefilter(anchors: torch.Tensor, radii, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                     near_plane: float = 0.01, pad: float = 0.0, backend: str = "auto") -> torch.Tensor:
    """mask [M] bool (on anchors' device): True where the sphere (anchors [M,3] world, radii [M] or scalar) meets the
    frustum of the camera (viewmat [4,4] OpenCV world-to-camera, K [3,3]) widened by pad pixels on every side.

    backend: "auto" (cuda for CUDA tensors, else the C++ kernel, the torch reference if that cannot be built),
    "torch", "cpu", "cuda"; "gsplat" (which has no prefilter) uses realsim's cuda kernel.
    """
    if backend not in BACKENDS:
        raise InputError(f"anchor_prefilter: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    radii = _check(anchors, radii, viewmat, K, width, height, near_plane, pad)
    width, height, near_plane, pad = int(width), int(height), float(near_plane), float(pad)
    with torch.no_grad():
        anchors, radii = anchors.detach(), radii.detach()
        requested = backend
        if backend == "auto":
            backend = "cuda" if anchors.is_cuda else "cpu"
        if backend == "gsplat":
            backend = "cuda"
        if backend == "cuda" and not anchors.is_cuda:
            raise RealsimError(f"anchor_prefilter: backend {requested!r} needs CUDA tensors (anchors are on {anchors.device})")
        if backend == "torch":
            return anchor_prefilter_torch(anchors, radii, viewmat.to(anchors.device), K.to(anchors.device), width,
                                          height, near_plane, pad)
        try:
            if backend == "cuda":
                from realsim.render import _cuda

                ext = _cuda.load()
            else:
                ext = _cpu_ext()
        except RealsimError:
            if requested != "auto":
                raise
            _LOG.warning("compiled %s prefilter unavailable; using the torch reference", backend)
            return anchor_prefilter_torch(anchors, radii, viewmat.to(anchors.device), K.to(anchors.device), width,
                                          height, near_plane, pad)
        f32 = dict(dtype=torch.float32)
        dev = anchors.device
        kdev = dev if backend == "cuda" else torch.device("cpu")
        mask = ext.anchor_prefilter(anchors.to(kdev, **f32).contiguous(), radii.to(kdev, **f32).contiguous(),
                                    viewmat.to(kdev, **f32).contiguous(), K.to("cpu", **f32).contiguous(), width,
                                    height, near_plane, pad)
        return mask.to(dev)
