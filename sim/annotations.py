"""Per-frame annotations of a simulation: COCO-17 keypoints of the agents, the top-down world map, visibility metrics."""
from __future__ import annotations

import numpy as np

from .body import coco17_points
from .loop import SimResult
from .world import World

__all__ = ["COCO_SKELETON", "keypoints", "world_map", "visibility_metrics", "project"]

COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10], [9, 11],
                 [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]


def project(points: np.ndarray, V: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pc = points @ V[:3, :3].T + V[:3, 3]
    z = pc[..., 2]
    uv = pc @ K.T
    return uv[..., :2] / np.maximum(uv[..., 2:3], 1e-9), z


def keypoints(sim: SimResult, t: int, V: np.ndarray, K: np.ndarray, width: int, height: int, depth: np.ndarray,
               inst: np.ndarray) -> list[dict]:
    kp3 = coco17_points(sim.skeleton, sim.joints[t], sim.heading[t])  # [A,17,3]
    uv, z = project(kp3, V, K)
    anns = []
    for a in range(sim.n_agents):
        kps = []
        nvis = 0
        for k in range(17):
            u, v, zz = float(uv[a, k, 0]), float(uv[a, k, 1]), float(z[a, k])
            if zz <= 0.05 or not (0 <= u < width and 0 <= v < height):
                kps += [0.0, 0.0, 0]
                continue
            px, py = int(u), int(v)
            d = float(depth[py, px, 0])
            # visible when nothing in front of the joint except this agent's own surface (~body radius)
            vis = d <= 0 or zz <= d + 0.2 or inst[py, px] == a
            kps += [round(u, 2), round(v, 2), 2 if vis else 1]
            nvis += 1
        ys, xs = np.nonzero(inst == a)
        if len(xs):
            bbox = [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]
            area = float(len(xs))
        else:
            bbox, area = [0.0, 0.0, 0.0, 0.0], 0.0
        if nvis == 0 and area == 0:
            continue
        anns.append({"track_id": a, "keypoints": kps, "num_keypoints": nvis, "bbox": bbox, "area": area, "iscrowd": 0,
                     "category_id": 1})
    return anns


def world_map(world: World, sim: SimResult | None = None, px_per_cell: int = 3) -> np.ndarray:
    """Top-down map uint8 [H,W,3] (+y up): walkable grey, obstacles dark red, unobserved black, agent tracks in their colours."""
    img = np.zeros(world.shape + (3,), np.uint8)
    img[world.support] = (60, 60, 60)
    img[world.walkable] = (150, 160, 150)
    img[world.obstacle] = (140, 30, 30)
    img = np.repeat(np.repeat(img, px_per_cell, 0), px_per_cell, 1)
    if sim is not None:
        for a in range(sim.n_agents):
            col = (np.array(sim.looks[a].shirt) * 255).astype(np.uint8)
            ij = ((sim.joints[:, a, 0, :2] - world.origin) / world.cell * px_per_cell).astype(int)
            ok = (ij[:, 0] >= 0) & (ij[:, 1] >= 0) & (ij[:, 0] < img.shape[0]) & (ij[:, 1] < img.shape[1])
            img[ij[ok, 0], ij[ok, 1]] = col
    return np.ascontiguousarray(img.transpose(1, 0, 2)[::-1])  # rows = -y, columns = +x


def visibility_metrics(shown: np.ndarray, frame_pixels: int) -> dict[str, float]:
    """How much the video shows the agents, from mask pixels per frame per agent shown [T,A]."""
    vis = shown > 0
    return {"frames_with_agent_fraction": float(vis.any(1).mean()), "visible_agents_mean": float(vis.sum(1).mean()),
            "agent_pixels_fraction_mean": float(shown.sum(1).mean() / frame_pixels)}
