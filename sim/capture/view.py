"""Render a view of the SYNTHETIC street: realsim's mesh rasteriser, textures shaded per pixel, Lambert light, sky."""
from __future__ import annotations

import numpy as np
import torch

from realsim.render.mesh import MeshRenderConfig, render_mesh

from .street import ProceduralScene
from .textures import shade_scene, sky


def render_view(scene: ProceduralScene, viewmat: np.ndarray, K: np.ndarray, width: int, height: int, ssaa: int = 2,
                light_dir=(0.35, -0.45, 0.82)) -> dict[str, np.ndarray]:
    """Textured, Lambert-shaded render of the procedural scene: {"rgb" [H,W,3], "depth" [H,W,1]} numpy float32."""
    s = max(1, int(ssaa))
    Ks = np.asarray(K, np.float64).copy()
    Ks[:2] *= s
    W, H = width * s, height * s
    cfg = MeshRenderConfig(shading="none", near=0.05)
    o = render_mesh(torch.from_numpy(scene.vertices), torch.from_numpy(scene.faces), None, viewmat, Ks, W, H, cfg)
    fid = o["face_id"].numpy().reshape(-1)
    hit = fid >= 0
    xyz = o["xyz"].numpy().reshape(-1, 3)[hit]
    nrm = o["normal"].numpy().reshape(-1, 3)[hit]
    alb = shade_scene(scene, xyz, nrm, fid[hit])
    L = np.asarray(light_dir, np.float64)
    L /= np.linalg.norm(L)
    lam = 0.5 + 0.5 * np.clip(nrm @ L, 0, 1)
    # cheap ambient occlusion towards the ground-wall junction and under props
    ao = 1 - 0.25 * np.exp(-np.clip(xyz[:, 2], 0, None) / 0.4) * (np.abs(nrm[:, 2]) < 0.7)
    img = np.zeros((H * W, 3))
    img[hit] = alb * (lam * ao)[:, None]
    # sky for empty pixels: world ray directions
    miss = ~hit
    if miss.any():
        idx = np.nonzero(miss)[0]
        px = np.stack([(idx % W) + 0.5, (idx // W) + 0.5, np.ones(len(idx))], 1)
        dc = px @ np.linalg.inv(Ks).T
        Rm = np.asarray(viewmat, np.float64)[:3, :3]
        dw = dc @ Rm  # camera -> world rotation is R^T: d_w = R^T d_c  (row form: d_c @ R)
        dw /= np.linalg.norm(dw, axis=1, keepdims=True)
        img[miss] = sky(dw)
    img = img.reshape(H, W, 3)
    depth = o["depth"].numpy()
    if s > 1:
        img = img.reshape(height, s, width, s, 3).mean((1, 3))
        dd = depth.reshape(height, s, width, s)
        depth = dd.min((1, 3))[..., None]
    return {"rgb": np.clip(img, 0, 1).astype(np.float32), "depth": depth.astype(np.float32)}
