"""Z-buffered triangle rasteriser (CPU or CUDA): vertex colours, Lambert shading, depth, face ids. The z-buffer runs in
our C++ kernel on CPU tensors (csrc/mesh_cpu.cpp; `_rasterize` here is its torch reference, also used on CUDA).

Used for the synthetic capture, the agents' bodies and depth compositing with Gaussian renders. Conventions: OpenCV
world-to-camera `viewmat` [4,4], `K` [3,3], pixel (i, j) has its centre at (i + 0.5, j + 0.5) like the Gaussian rasteriser.
Triangles are clipped against the near plane in camera space so geometry that reaches behind the camera renders correctly.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from realsim.assets.errors import RealsimError
from realsim.assets.frames import camera_center

__all__ = ["MeshRenderConfig", "render_mesh", "face_normals"]


@dataclass
class MeshRenderConfig:
    """Shading and rasterisation options."""

    near: float = 0.05
    far: float = 1e6
    shading: str = "lambert"  # "lambert" | "none"
    light_dir: tuple[float, float, float] = (0.35, -0.45, 0.82)  # world, towards the light (+Z up)
    ambient: float = 0.45
    ssaa: int = 1  # supersampling factor per axis (alpha becomes fractional coverage)
    chunk_pixels: int = 1 << 21  # candidate pixels per vectorised chunk (memory vs. Python overhead)
    geometry: bool = True  # also return the "xyz" and "normal" maps (skip them when only colour/depth are needed)
    # z-buffer: "auto" (C++ on CPU tensors; the torch reference while another thread builds the C++ one, if it cannot be
    # built, and on CUDA), "cpu" (C++ only), "torch" (the reference); the same winning triangle per pixel
    # (tests/test_mesh_kernel.py)
    backend: str = "auto"


def _as_t(x, dtype=torch.float32, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit normals [F,3] of triangles (right-hand rule on the face's vertex order)."""
    tri = vertices[faces]  # [F,3,3]
    n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _clip_near(cam: torch.Tensor, attr: torch.Tensor, fid: torch.Tensor, near: float):
    """Clip triangles (camera-space vertices cam [F,3,3], attributes attr [F,3,D]) against z = near.

    Returns the kept/split triangles and the original face index of each; split pieces keep their winding.
    """
    behind = cam[..., 2] < near  # [F,3]
    nb = behind.sum(1)
    keep0 = nb == 0
    out_c, out_a, out_f = [cam[keep0]], [attr[keep0]], [fid[keep0]]
    allv = torch.cat([cam, attr], -1)  # [F,3,3+D]

    def roll(x: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        idx = (first[:, None] + torch.arange(3, device=x.device)[None]) % 3  # [n,3]
        return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))

    def cut(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:  # point on segment p->q at z = near
        t = ((near - p[:, 2]) / (q[:, 2] - p[:, 2])).clamp(0, 1)[:, None]
        return p + (q - p) * t

    one = nb == 1
    if one.any():
        v = allv[one]
        first = behind[one].float().argmax(1)  # the vertex behind goes first
        v = roll(v, first)
        a, b, c = v[:, 0], v[:, 1], v[:, 2]
        ab, ac = cut(a, b), cut(a, c)
        t1 = torch.stack([ab, b, c], 1)
        t2 = torch.stack([ab, c, ac], 1)
        both = torch.cat([t1, t2], 0)
        out_c.append(both[..., :3]); out_a.append(both[..., 3:]); out_f.append(fid[one].repeat(2))
    two = nb == 2
    if two.any():
        v = allv[two]
        first = (~behind[two]).float().argmax(1)  # the vertex in front goes first
        v = roll(v, first)
        a, b, c = v[:, 0], v[:, 1], v[:, 2]
        t1 = torch.stack([a, cut(a, b), cut(a, c)], 1)
        out_c.append(t1[..., :3]); out_a.append(t1[..., 3:]); out_f.append(fid[two])
    return torch.cat(out_c), torch.cat(out_a), torch.cat(out_f)


def _rasterize(uv: torch.Tensor, z: torch.Tensor, W: int, H: int, near: float, far: float, chunk_pixels: int) -> torch.Tensor:
    """Z-buffer over screen triangles uv [T,3,2] (pixel units), depths z [T,3]: returns the winning triangle per pixel [H*W] (-1 empty)."""
    dev = uv.device
    T = uv.shape[0]
    empty = torch.full((H * W,), -1, dtype=torch.long, device=dev)
    if T == 0:
        return empty
    # pixel centres at integer + 0.5: covered column range is ceil(u - 0.5) .. floor(u - 0.5)
    lo = torch.ceil(uv.min(1).values - 0.5).long()
    hi = torch.floor(uv.max(1).values - 0.5).long()
    lo[:, 0].clamp_(min=0); lo[:, 1].clamp_(min=0)
    hi[:, 0].clamp_(max=W - 1); hi[:, 1].clamp_(max=H - 1)
    ext = (hi - lo + 1).clamp_min(0)  # [T,2]
    area2 = ((uv[:, 1, 0] - uv[:, 0, 0]) * (uv[:, 2, 1] - uv[:, 0, 1]) - (uv[:, 2, 0] - uv[:, 0, 0]) * (uv[:, 1, 1] - uv[:, 0, 1]))
    ok = (ext[:, 0] > 0) & (ext[:, 1] > 0) & (area2.abs() > 1e-9)
    idx = torch.nonzero(ok).squeeze(1)
    if idx.numel() == 0:
        return empty
    npx = ext[idx, 0] * ext[idx, 1]  # bounding-box pixels; a chunk enumerates (largest box) pixels per triangle
    order = torch.argsort(npx)
    idx, npx = idx[order], npx[order]
    # key = (float bits of depth) << 32 | triangle index: one amin gives the nearest triangle (positive float bits sort like floats)
    zbuf = torch.full((H * W,), torch.iinfo(torch.int64).max, dtype=torch.int64, device=dev)
    start = 0
    n = idx.numel()
    npx_cpu = npx.cpu().numpy()
    while start < n:
        # largest end with (end - start) * (the chunk's largest square) <= budget: sizes ascend, so the cost is monotone in end
        cost = np.arange(1, n - start + 1, dtype=np.int64) * npx_cpu[start:].astype(np.int64)
        end = start + max(1, int(np.searchsorted(cost, chunk_pixels, side="right")))
        ti = idx[start:end]
        start = end
        e = ext[ti]
        # flattened box enumeration: pixel k of triangle i is (k % width_i, k // width_i) inside its own box, so long thin
        # triangles in any orientation cost their box area, not (longest side)^2
        kmax = int((e[:, 0] * e[:, 1]).max())
        k = torch.arange(kmax, device=dev)[None, :, None]  # [1,kmax,1]: trailing dim keeps the [n,A,B] broadcasting below
        w_i = e[:, 0, None, None]
        px = lo[ti, 0, None, None] + k % w_i  # [n,kmax,1]
        py = lo[ti, 1, None, None] + torch.div(k, w_i, rounding_mode="floor")
        valid = k < (e[:, 0] * e[:, 1])[:, None, None]
        fx = px.float() + 0.5
        fy = py.float() + 0.5
        t = uv[ti]  # [n,3,2]
        a2 = area2[ti][:, None, None]
        x0, y0 = t[:, 0, 0, None, None], t[:, 0, 1, None, None]
        x1, y1 = t[:, 1, 0, None, None], t[:, 1, 1, None, None]
        x2, y2 = t[:, 2, 0, None, None], t[:, 2, 1, None, None]
        b0 = ((x1 - fx) * (y2 - fy) - (x2 - fx) * (y1 - fy)) / a2
        b1 = ((x2 - fx) * (y0 - fy) - (x0 - fx) * (y2 - fy)) / a2
        b2 = 1.0 - b0 - b1
        eps = -1e-6
        inside = valid & (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
        zi = z[ti]
        invz = b0 / zi[:, 0, None, None] + b1 / zi[:, 1, None, None] + b2 / zi[:, 2, None, None]
        depth = 1.0 / invz.clamp_min(1e-12)
        inside &= (depth >= near * 0.999) & (depth <= far)
        if not inside.any():
            continue
        sel = torch.nonzero(inside, as_tuple=True)
        pix = (py[sel] * W + px[sel])
        dbits = depth[sel].contiguous().view(torch.int32).to(torch.int64)
        key = (dbits << 32) | ti[sel[0]]
        zbuf.scatter_reduce_(0, pix, key, reduce="amin")
    hit = zbuf != torch.iinfo(torch.int64).max
    out = empty
    out[hit] = zbuf[hit] & 0xFFFFFFFF
    return out


def _zbuffer(uv: torch.Tensor, z: torch.Tensor, W: int, H: int, cfg: MeshRenderConfig) -> torch.Tensor:
    """The winning triangle per pixel [H*W] (-1 empty) by the configured backend (see MeshRenderConfig.backend)."""
    if cfg.backend not in ("auto", "cpu", "torch"):
        raise RealsimError(f"mesh renderer: unknown backend {cfg.backend!r}; choose auto, cpu or torch")
    if cfg.backend == "torch" or (cfg.backend == "auto" and uv.is_cuda):
        return _rasterize(uv, z, W, H, cfg.near, cfg.far, cfg.chunk_pixels)
    if uv.is_cuda:
        raise RealsimError("mesh renderer: backend 'cpu' needs CPU tensors")
    from realsim.render import _cpu

    try:
        ext = _cpu.load() if cfg.backend == "cpu" else _cpu.load.unless_building()
    except RealsimError:
        if cfg.backend == "cpu":
            raise
        _warn_fallback()
        return _rasterize(uv, z, W, H, cfg.near, cfg.far, cfg.chunk_pixels)
    if ext is None:  # another thread is building the kernels (the demo's prebuild): the exact reference meanwhile
        return _rasterize(uv, z, W, H, cfg.near, cfg.far, cfg.chunk_pixels)
    return ext.mesh_zbuffer(uv.float().contiguous(), z.float().contiguous(), int(W), int(H), float(cfg.near), float(cfg.far))


@functools.lru_cache(maxsize=1)
def _warn_fallback() -> None:
    logging.getLogger("realsim.render").warning("C++ mesh z-buffer unavailable; using the torch reference")


def render_mesh(vertices, faces, vertex_colors=None, viewmat=None, K=None, width: int = 0, height: int = 0,
                config: MeshRenderConfig | None = None, face_colors=None, background=(0.0, 0.0, 0.0)) -> dict[str, torch.Tensor]:
    """Render a triangle mesh with a z-buffer.

    vertices [V,3] world, faces [F,3] int, vertex_colors [V,3] in [0,1] (or face_colors [F,3]; grey if neither).
    Returns {"rgb" [H,W,3], "depth" [H,W,1] (camera z, 0 where empty), "alpha" [H,W,1], "face_id" [H,W] int64 (-1 empty),
    "xyz" [H,W,3] world position, "normal" [H,W,3] world normal facing the camera}.
    """
    cfg = config or MeshRenderConfig()
    dev = vertices.device if isinstance(vertices, torch.Tensor) else None
    V = _as_t(vertices, device=dev)
    Fc = _as_t(faces, dtype=torch.long, device=V.device)
    vm = _as_t(viewmat, device=V.device)
    Km = _as_t(K, device=V.device)
    s = int(max(1, cfg.ssaa))
    W, H = int(width) * s, int(height) * s
    if s > 1:
        Km = Km.clone()
        Km[:2] *= s
    nF = Fc.shape[0]
    if face_colors is not None:
        fcol = _as_t(face_colors, device=V.device)[:, None, :].expand(nF, 3, 3)
    elif vertex_colors is not None:
        fcol = _as_t(vertex_colors, device=V.device)[Fc]
    else:
        fcol = torch.full((nF, 3, 3), 0.7, device=V.device)
    cam = V @ vm[:3, :3].T + vm[:3, 3]
    tri_cam = cam[Fc]  # [F,3,3]
    tri_world = V[Fc]
    attr = torch.cat([tri_world, fcol], -1)  # [F,3,6]
    fid = torch.arange(nF, device=V.device)
    tri_cam, attr, fid = _clip_near(tri_cam, attr, fid, cfg.near)
    z = tri_cam[..., 2]
    uvw = tri_cam @ Km.T
    uv = uvw[..., :2] / uvw[..., 2:3].clamp_min(1e-12)
    win = _zbuffer(uv, z, W, H, cfg)  # [H*W] index into clipped triangles

    rgb = torch.empty(H * W, 3, device=V.device)
    rgb[:] = _as_t(background, device=V.device)
    depth = torch.zeros(H * W, device=V.device)
    xyz = torch.zeros(H * W if cfg.geometry else 0, 3, device=V.device)
    normal = torch.zeros(H * W if cfg.geometry else 0, 3, device=V.device)
    face_id = torch.full((H * W,), -1, dtype=torch.long, device=V.device)
    hit = win >= 0
    if hit.any():
        pix = torch.nonzero(hit).squeeze(1)
        t = win[pix]
        fx = (pix % W).float() + 0.5
        fy = torch.div(pix, W, rounding_mode="floor").float() + 0.5
        q = uv[t]
        x0, y0, x1, y1, x2, y2 = q[:, 0, 0], q[:, 0, 1], q[:, 1, 0], q[:, 1, 1], q[:, 2, 0], q[:, 2, 1]
        a2 = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        b0 = ((x1 - fx) * (y2 - fy) - (x2 - fx) * (y1 - fy)) / a2
        b1 = ((x2 - fx) * (y0 - fy) - (x0 - fx) * (y2 - fy)) / a2
        b = torch.stack([b0, b1, 1 - b0 - b1], 1).clamp(0, 1)
        w = b / z[t]
        invz = w.sum(1, keepdim=True)
        w = w / invz  # perspective-correct barycentrics
        a = (w[..., None] * attr[t]).sum(1)  # [n,6]
        depth[pix] = 1.0 / invz[:, 0]
        if cfg.geometry:
            xyz[pix] = a[:, :3]
        col = a[:, 3:6]
        f = fid[t]
        face_id[pix] = f
        n = face_normals(V, Fc)[f]
        # two-sided: flip normals to face the camera
        cc = camera_center(vm)
        flip = ((cc[None] - a[:, :3]) * n).sum(1) < 0
        n = torch.where(flip[:, None], -n, n)
        if cfg.geometry:
            normal[pix] = n
        if cfg.shading == "lambert":
            L = _as_t(cfg.light_dir, device=V.device)
            L = L / L.norm()
            shade = cfg.ambient + (1 - cfg.ambient) * (n @ L).clamp_min(0)
            col = col * shade[:, None]
        rgb[pix] = col.clamp(0, 1)
    alpha = hit.float()
    out = {"rgb": rgb.view(H, W, 3), "depth": depth.view(H, W, 1), "alpha": alpha.view(H, W, 1), "face_id": face_id.view(H, W)}
    if cfg.geometry:
        out["xyz"] = xyz.view(H, W, 3)
        out["normal"] = normal.view(H, W, 3)
    if s > 1:
        out = _downsample(out, s, _as_t(background, device=V.device))
    return out


def _downsample(out: dict[str, torch.Tensor], s: int, bg: torch.Tensor) -> dict[str, torch.Tensor]:
    """Average s x s blocks: rgb over covered samples (then over background), alpha = coverage, depth = mean covered depth."""
    H, W = out["rgb"].shape[0] // s, out["rgb"].shape[1] // s

    def blocks(x: torch.Tensor) -> torch.Tensor:  # [H*s,W*s,C] -> [H,W,s*s,C]
        C = x.shape[-1]
        return x.view(H, s, W, s, C).permute(0, 2, 1, 3, 4).reshape(H, W, s * s, C)

    a = blocks(out["alpha"])  # [H,W,ss,1]
    cov = a.sum(2)  # [H,W,1]
    safe = cov.clamp_min(1)
    res = {}
    res["alpha"] = cov / (s * s)
    fg = (blocks(out["rgb"]) * a).sum(2) / safe
    res["rgb"] = torch.where(cov > 0, fg * res["alpha"] + bg * (1 - res["alpha"]), bg.expand(H, W, 3))
    res["depth"] = (blocks(out["depth"]) * a).sum(2) / safe
    if "xyz" in out:
        res["xyz"] = (blocks(out["xyz"]) * a).sum(2) / safe
        n = (blocks(out["normal"]) * a).sum(2)
        res["normal"] = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    # face id: the nearest covered sample of the block
    fid = blocks(out["face_id"][..., None].float())[..., 0].long()
    d = blocks(out["depth"])[..., 0].masked_fill(blocks(out["alpha"])[..., 0] <= 0, float("inf"))
    res["face_id"] = torch.gather(fid, 2, d.argmin(2, keepdim=True))[..., 0]
    res["face_id"] = torch.where(cov[..., 0] > 0, res["face_id"], torch.full_like(res["face_id"], -1))
    return res
