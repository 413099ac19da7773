"""What a simulation writes: the composited RGB video and the 3D-guided streams, frame-aligned.

OUTDIR/
  rgb.mp4                 composited video (scene + agents + contact shadows)
  depth.mp4, depth/NNNNNN.png   colour-mapped depth video; 16-bit metric depth (value * depth_scale metres, 0 = none)
  normal.mp4, alpha.mp4   camera-space normals from depth, coverage (these streams and cameras.json / camera_path.json
                          are written by render.streams.StreamWriter, the same writer as `realsim render`)
  masks/NNNNNN.png        instance ids (uint8: 0 = none, i+1 = agent i, A+1+p = prop p), masks.mp4 for viewing
  props.json              props per frame (position, quat w,x,y,z, velocity; contact onsets) when the scenario has props
  keypoints.json          COCO-17 person keypoints per agent per frame (track_id = agent), visibility from depth
  cameras.json            camera per frame (realsim cameras.json), camera_path.json (nerfstudio layout)
  trajectories.json       per agent: root path, heading, foot contacts, planned paths, style, speed
  motion.safetensors      joints [T,A,J,3] world metres, root [T,A,3], heading [T,A] (+ skeleton in metadata)
  sim.json                summary: metrics, world, motion backend, timings, provenance (SYNTHETIC flag when it applies)
  world_map.png           top-down walkable (grey) / obstacle (red) grid with the agents' tracks (+y up, +x right)
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from realsim.assets.atomic import atomic_dir
from realsim.assets.errors import RealsimError
from realsim.assets.progress import ProgressFn, report
from realsim.assets.scene import save_tensors
from realsim.assets.skeleton import COCO17
from realsim.render.composite import composite_layers, contact_shadow, unproject_depth
from realsim.render.limits import frames_in_flight
from realsim.render.mesh import MeshRenderConfig, render_mesh
from realsim.render.paths import CameraPath
from realsim.render.streams import STREAMS, StreamWriter, frame_name

from .annotations import COCO_SKELETON, keypoints, visibility_metrics, world_map
from .body import BodyModel
from .camera import make_camera_path, visible_mask  # noqa: F401  (re-exported: the path helpers moved to sim.camera)
from .loop import SimResult
from .world import World

__all__ = ["SceneLayer", "gaussian_layer", "mesh_layer", "make_camera_path", "visible_mask", "render_frame", "write_outputs",
           "visibility_metrics"]

# (viewmat [4,4] metres-world, K [3,3], width, height) -> {"rgb" [H,W,3], "depth" [H,W,1] metres, "alpha" [H,W,1]}
SceneLayer = Callable[[np.ndarray, np.ndarray, int, int], dict[str, torch.Tensor]]


def gaussian_layer(scene, scale: float = 1.0, backend: str = "auto", background=(0.0, 0.0, 0.0)) -> SceneLayer:
    """Render a trained scene (realsim.recon Scene) for metric cameras; depth returned in metres."""

    def fn(viewmat: np.ndarray, K: np.ndarray, width: int, height: int) -> dict[str, torch.Tensor]:
        V = np.asarray(viewmat, np.float64).copy()
        V[:3, 3] /= scale  # metres -> scene units
        o = scene.render(V, K, width, height, backend=backend, background=background)
        return {"rgb": o["rgb"].float(), "depth": o["depth"].float() * scale, "alpha": o["alpha"].float()}

    return fn


def mesh_layer(proc_scene, ssaa: int = 1) -> SceneLayer:
    """A procedural (synthetic) scene rendered directly by the mesh rasteriser: the ground truth layer for tests."""
    from .capture import render_view

    def fn(viewmat: np.ndarray, K: np.ndarray, width: int, height: int) -> dict[str, torch.Tensor]:
        r = render_view(proc_scene, viewmat, K, width, height, ssaa=ssaa)
        d = torch.from_numpy(r["depth"])
        return {"rgb": torch.from_numpy(r["rgb"]), "depth": d, "alpha": (d > 0).float()}

    return fn


def _render_agents(verts: np.ndarray, faces: np.ndarray, cols: np.ndarray, V: np.ndarray, K: np.ndarray, width: int, height: int,
                   ssaa: int, n_verts_per_agent: int) -> dict[str, torch.Tensor]:
    """Rasterise the bodies only inside their screen bounding box (bodies are small; the frame is not), then paste."""
    cfg = MeshRenderConfig(ssaa=ssaa, ambient=0.5, geometry=False)
    pc = verts @ V[:3, :3].T + V[:3, 3]
    # drop whole bodies behind the camera or outside the image (their faces are contiguous blocks per agent)
    nv = n_verts_per_agent
    A = len(verts) // nv
    z = pc[:, 2].reshape(A, nv)
    uvz = pc @ np.asarray(K, np.float64).T
    u = (uvz[:, 0] / np.maximum(uvz[:, 2], 1e-9)).reshape(A, nv)
    v = (uvz[:, 1] / np.maximum(uvz[:, 2], 1e-9)).reshape(A, nv)
    straddle = (z.min(1) <= cfg.near) & (z.max(1) > cfg.near)
    inside = (z.max(1) > cfg.near) & (u.max(1) >= 0) & (u.min(1) < width) & (v.max(1) >= 0) & (v.min(1) < height)
    keep = straddle | inside
    if not keep.all():
        fpa = len(faces) // A
        fsel = np.repeat(keep, fpa)
        faces = faces[fsel]
        # keep global face ids (agent = face_id // faces per agent) by rendering with a face-id offset table
        face_ids = np.nonzero(fsel)[0]
    else:
        face_ids = None
    if faces.size == 0:
        return {"rgb": torch.zeros(height, width, 3), "depth": torch.zeros(height, width, 1),
                "alpha": torch.zeros(height, width, 1), "face_id": torch.full((height, width), -1, dtype=torch.long)}
    used = np.unique(faces)
    vis = pc[used, 2] > cfg.near
    out = _render_agents_box(verts, faces, cols, pc[used], vis, V, K, width, height, cfg)
    if face_ids is not None:
        fid = out["face_id"]
        out["face_id"] = torch.where(fid >= 0, torch.from_numpy(face_ids)[fid.clamp_min(0)], fid)
    return out


def _render_agents_box(verts: np.ndarray, faces: np.ndarray, cols: np.ndarray, pc: np.ndarray, vis: np.ndarray, V: np.ndarray,
                       K: np.ndarray, width: int, height: int, cfg: MeshRenderConfig) -> dict[str, torch.Tensor]:
    """Render inside the screen box of the used vertices pc [U,3] (camera space) when all are in front of the camera."""
    if not vis.all():  # something reaches behind the camera: render the full frame (clipping handles it)
        return render_mesh(torch.from_numpy(verts).float(), torch.from_numpy(faces), torch.from_numpy(cols).float(), V, K,
                           width, height, cfg)
    uv = pc @ np.asarray(K, np.float64).T
    uv = uv[:, :2] / uv[:, 2:3]
    x0, y0 = np.floor(uv.min(0)).astype(int) - 2
    x1, y1 = np.ceil(uv.max(0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, width), min(y1, height)
    out = {"rgb": torch.zeros(height, width, 3), "depth": torch.zeros(height, width, 1), "alpha": torch.zeros(height, width, 1),
           "face_id": torch.full((height, width), -1, dtype=torch.long)}
    if x1 <= x0 or y1 <= y0:
        return out
    Kc = np.asarray(K, np.float64).copy()
    Kc[0, 2] -= x0
    Kc[1, 2] -= y0
    m = render_mesh(torch.from_numpy(verts).float(), torch.from_numpy(faces), torch.from_numpy(cols).float(), V, Kc,
                    x1 - x0, y1 - y0, cfg)
    for k in out:
        out[k][y0:y1, x0:x1] = m[k]
    return out


def _render_props(props, meshes, t: int, V: np.ndarray, K: np.ndarray, width: int, height: int,
                  ssaa: int) -> dict[str, torch.Tensor] | None:
    """The props at frame t (mesh layer with face_id indexing meshes.faces); None when none is in front of the camera."""
    cfg = MeshRenderConfig(ssaa=ssaa, ambient=0.5, geometry=False)
    pos, quat = props.position[t], props.quat[t]
    zc = pos @ V[2, :3] + V[2, 3]  # camera z of each prop centre
    keep = zc + meshes.radius > cfg.near
    if not keep.any():
        return None
    verts = meshes.vertices(quat, pos)
    fsel = keep[meshes.face_prop]
    face_ids = np.nonzero(fsel)[0]
    faces = meshes.faces[fsel]
    pc = verts @ V[:3, :3].T + V[:3, 3]
    used = np.unique(faces)
    out = _render_agents_box(verts, faces, meshes.colors, pc[used], pc[used, 2] > cfg.near, V, K, width, height, cfg)
    fid = out["face_id"]
    out["face_id"] = torch.where(fid >= 0, torch.from_numpy(face_ids)[fid.clamp_min(0)], fid)
    return out


def render_frame(layer: SceneLayer, world: World, body: BodyModel, sim: SimResult, t: int, V: np.ndarray, K: np.ndarray,
                 width: int, height: int, ssaa: int = 2, shadow: bool = True, background=(0.0, 0.0, 0.0), props=None,
                 prop_meshes=None) -> dict[str, Any]:
    """One composited frame: {"rgb","depth","alpha","mesh_weight","instance" [H,W] int (-1 none; A + p for prop p),"scene_depth"}.

    props: a physics PropsResult (frame t drawn with prop_meshes, a physics.mesh.PropMeshes of its props)."""
    sc = layer(V, K, width, height)
    A = sim.n_agents
    nf = len(body.faces)
    if A:
        verts = body.vertices(sim.joints[t], sim.heading[t], sim.looks)  # [A,Vb,3]
        cols = body.colors(sim.looks)
        faces = np.concatenate([body.faces + a * body.n_verts for a in range(A)])
        m = _render_agents(verts.reshape(-1, 3), faces, cols.reshape(-1, 3), V, K, width, height, ssaa, body.n_verts)
    else:
        m = {"rgb": torch.zeros(height, width, 3), "depth": torch.zeros(height, width, 1),
             "alpha": torch.zeros(height, width, 1), "face_id": torch.full((height, width), -1, dtype=torch.long)}
    # work only inside the box that holds the bodies and their shadows (everything else is the scene as rendered)
    feet = sim.joints[t][:, [body.sem["l_ankle"], body.sem["r_ankle"]]].mean(1)
    centers = np.c_[0.5 * (feet[:, :2] + sim.joints[t][:, 0, :2]), world.height(feet[:, :2])]
    radii = 0.45 * np.array([lk.build for lk in sim.looks])
    face_inst = None
    if props is not None and props.n_props:
        mp = _render_props(props, prop_meshes, t, V, K, width, height, ssaa)
        if mp is not None:  # props and agents by depth: the nearer mesh wins per pixel
            take = (mp["alpha"] > 0) & ((m["alpha"] <= 0) | (mp["depth"] < m["depth"]))
            pf = mp["face_id"] + A * nf
            m = {k: torch.where(take, mp[k], m[k]) for k in ("rgb", "depth", "alpha")} | {
                "face_id": torch.where(take[..., 0], pf, m["face_id"])}
            face_inst = torch.from_numpy(np.concatenate([np.repeat(np.arange(A), nf), A + prop_meshes.face_prop]))
        # contact shadows under props near the ground
        pos = props.position[t]
        gz = world.height(pos[:, :2])
        low = pos[:, 2] - gz < prop_meshes.radius + 0.3
        centers = np.vstack([centers, np.c_[pos[low, :2], gz[low]]])
        radii = np.r_[radii, 1.3 * prop_meshes.radius[low]]
    box = _work_box(m["alpha"], centers, radii * 1.6, V, K, width, height)
    rgb_full = sc["rgb"].clone()
    depth_full = sc["depth"].clone()
    weight = torch.zeros(height, width, 1)
    if box is not None:
        y0, y1, x0, x1 = box
        crop = (slice(y0, y1), slice(x0, x1))
        rgb = sc["rgb"][crop]
        sd, sa = sc["depth"][crop], sc["alpha"][crop]
        Kc = np.asarray(K, np.float64).copy()
        Kc[0, 2] -= x0
        Kc[1, 2] -= y0
        pts = unproject_depth(sd, V, Kc)
        gz = torch.from_numpy(world.height(pts[..., :2].numpy().astype(np.float64))).float()
        if shadow:
            fac = contact_shadow(pts, gz, centers, radii)
            rgb = torch.where((sa > 0.05) & (sd > 0), rgb * fac, rgb)
        sd_occ = _ground_occluder_depth(sd, pts, gz, V)
        out = composite_layers(rgb, sd_occ, sa, m["rgb"][crop], m["depth"][crop], m["alpha"][crop], background)
        rgb_full[crop] = out["rgb"]
        # the depth stream keeps the scene's own depth wherever the scene shows (only the occlusion test uses the ground's)
        depth_full[crop] = torch.where((out["mesh_weight"] < 0.5) & (sd > 0), sd, out["depth"])
        weight[crop] = out["mesh_weight"]
    hit = (m["face_id"] >= 0) & (weight[..., 0] >= 0.5)
    if face_inst is None:
        inst = torch.where(hit, torch.div(m["face_id"], nf, rounding_mode="floor"), torch.full_like(m["face_id"], -1))
    else:
        inst = torch.where(hit, face_inst[m["face_id"].clamp_min(0)], torch.full_like(m["face_id"], -1))
    return {"rgb": rgb_full, "depth": depth_full, "alpha": torch.maximum(sc["alpha"].float(), weight),
            "mesh_weight": weight, "instance": inst,
            "scene_depth": sc["depth"], "mesh_depth": m["depth"]}


GROUND_BAND_M = 0.25  # a rendered surface this close to the World's ground is the ground (WorldConfig.obstacle_min)


def _ground_occluder_depth(sd: torch.Tensor, pts: torch.Tensor, gz: torch.Tensor, V: np.ndarray) -> torch.Tensor:
    """Scene depth [h,w,1] for the occlusion test: where the rendered surface is ground (within GROUND_BAND_M of the World's
    ground), no nearer than the World's ground along the ray. A trained scene's flat, textureless ground renders view-
    dependently +-10-20 cm around the fitted ground (README "Props and physics"); bodies and props stand on the World's
    ground, so that noise must not hide their feet or a ball's lower half."""
    Vt = torch.as_tensor(V, dtype=torch.float32)
    cz = float(-(Vt[:3, :3].T @ Vt[:3, 3])[2])  # camera centre height
    d = sd[..., 0]
    down = pts[..., 2] - cz  # the ray's world z per unit of depth is down / d
    ground = (d > 0) & (down < -0.05) & ((pts[..., 2] - gz).abs() < GROUND_BAND_M)
    zg = d * (gz - cz) / torch.where(down < -0.05, down, torch.full_like(down, -1.0))  # depth where the ray meets the ground
    return torch.where(ground, torch.maximum(d, zg), d)[..., None]


def _work_box(alpha: torch.Tensor, centers: np.ndarray, radii: np.ndarray, V: np.ndarray, K: np.ndarray, width: int,
              height: int) -> tuple[int, int, int, int] | None:
    """Pixel box (y0, y1, x0, x1) covering the rendered bodies and their ground shadow discs; None if nothing shows."""
    ys, xs = torch.nonzero(alpha[..., 0] > 0, as_tuple=True)
    pts = [np.c_[xs.numpy(), ys.numpy()].astype(np.float64)] if len(xs) else []
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = (centers[:, None, :] + np.stack([np.cos(ang), np.sin(ang), 0 * ang], -1)[None] * radii[:, None, None]).reshape(-1, 3)
    pc = ring @ V[:3, :3].T + V[:3, 3]
    if (pc[:, 2] <= 0.05).any():
        return 0, height, 0, width  # a shadow reaches behind the camera: do the whole frame
    uv = pc @ np.asarray(K, np.float64).T
    pts.append(uv[:, :2] / uv[:, 2:3])
    P = np.vstack(pts)
    x0, y0 = np.floor(P.min(0)).astype(int) - 2
    x1, y1 = np.ceil(P.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return y0, y1, x0, x1


RENDER_WORKERS = 2  # frames rendered at once (each still uses the kernels' threads), fewer when memory is short


def _frames_in_order(render: Callable[[int], dict[str, Any]], T: int, workers: int):
    """Yield (t, render(t)) for t < T in order, `workers` frames in flight on threads.

    A frame's single-threaded parts (bodies, compositing) overlap the next frame's multi-threaded Gaussian render:
    the demo's 180 frames at 480x360 on 2 cores take 15-20% less wall time (bench/demo_stages.py). Frames are
    independent, so the output is the same as rendering them one by one."""
    if workers <= 1 or T <= 1:
        for t in range(T):
            yield t, render(t)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="realsim-frame") as pool:
        pending: deque = deque()
        nxt = 0
        try:
            for t in range(T):
                while nxt < T and len(pending) < workers:
                    pending.append(pool.submit(render, nxt))
                    nxt += 1
                yield t, pending.popleft().result()
        finally:
            for f in pending:  # an error or an interrupt: drop the frames not started
                f.cancel()


def _save_png(path: Path, image: np.ndarray) -> None:
    """One PNG (on the stream writer's thread)."""
    from PIL import Image

    Image.fromarray(image).save(path)


def write_outputs(out_dir: str | os.PathLike, layer: SceneLayer, world: World, sim: SimResult, path, *, overwrite: bool = False,
                  ssaa: int = 2, provenance: dict | None = None, progress: ProgressFn | None = None,
                  preview_every: int = 0, props=None, streams: Sequence[str] = STREAMS) -> dict:
    """Render every frame and write the streams under out_dir (atomically: complete or absent). Returns sim.json's dict.

    The 3D-guided streams (rgb/depth/normal/alpha, cameras.json, camera_path.json) go through render.streams'
    StreamWriter, as for `realsim render`; this adds masks, keypoints, trajectories, motion, props and sim.json.
    props: a physics PropsResult (at the video's fps): drawn, masked as ids A+1.., written to props.json."""
    from PIL import Image

    T = min(len(path), sim.n_frames)
    if T < 1:
        raise RealsimError("nothing to render: the camera path or the simulation has no frames")
    W, H = path.width, path.height
    body = BodyModel(sim.skeleton)
    t0 = time.time()
    pm = None
    if props is not None and props.n_props:
        from .physics.mesh import PropMeshes

        pm = PropMeshes(props.props)
        T = min(T, props.n_frames)
    path = CameraPath(path.viewmats[:T], path.Ks[:T], W, H, path.fps)
    palette = (np.array([[0, 0, 0]] + [[int(255 * c) for c in lk.shirt] for lk in sim.looks]
                        + [[int(255 * c) for c in p.color] for p in (props.props if pm is not None else [])])).astype(np.uint8)
    images, anns = [], []
    stats = {"render_s": 0.0}
    shown = np.zeros((T, sim.n_agents), np.int64)  # mask pixels of each agent in each frame
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        with StreamWriter(tmp, path, streams, extra_videos=("masks",)) as sw:
            masks = sw.png_dir("masks")
            preview = sw.png_dir("preview") if preview_every else None
            ts = time.time()
            workers = frames_in_flight(W, H, ssaa, RENDER_WORKERS)  # one at a time where two would crowd memory
            for t, fr in _frames_in_order(lambda t: render_frame(layer, world, body, sim, t, path.viewmats[t], path.Ks[t], W, H,
                                                                 ssaa=ssaa, props=props, prop_meshes=pm), T, workers):
                rgb = fr["rgb"].numpy()
                depth = fr["depth"].numpy()
                inst = fr["instance"].numpy()
                shown[t] = np.bincount(inst[inst >= 0].ravel(), minlength=sim.n_agents)[:sim.n_agents]
                sw.write(t, rgb, depth, fr["alpha"].numpy(), masks=palette[inst + 1])
                sw.submit(_save_png, masks / frame_name(t), (inst + 1).clip(0, 255).astype(np.uint8))
                if preview is not None and t % preview_every == 0:
                    sw.submit(_save_png, preview / frame_name(t), (rgb * 255 + 0.5).clip(0, 255).astype(np.uint8))
                images.append({"id": t, "file_name": frame_name(t), "width": W, "height": H, "frame": t,
                               "time": t / path.fps})
                for a in keypoints(sim, t, path.viewmats[t], path.Ks[t], W, H, depth, inst):
                    a["id"] = len(anns) + 1
                    a["image_id"] = t
                    anns.append(a)
                report(progress, "render", t + 1, T)
            stats["render_s"] = time.time() - ts  # wall seconds of the frame loop (frames overlap: see _frames_in_order)
        coco = {"info": {"description": "realsim simulated agents: COCO-17 keypoints per agent per frame",
                         **({"synthetic_scene": True} if (provenance or {}).get("synthetic") else {})},
                "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": COCO17,
                                "skeleton": COCO_SKELETON}],
                "images": images, "annotations": anns}
        (tmp / "keypoints.json").write_text(json.dumps(coco))
        Image.fromarray(world_map(world, sim)).save(tmp / "world_map.png")
        bundle = sw.finish({"metric": True})
        traj = {"fps": sim.fps, "frames": T, "world_up": [0, 0, 1], "units": "metres", "agents": []}
        for a in range(sim.n_agents):
            traj["agents"].append({
                "id": a, "style": sim.styles[a], "speed_mps": float(sim.speeds[a]), "radius_m": float(sim.radii[a]),
                "look": asdict(sim.looks[a]), "root": np.round(sim.root[:T, a], 4).tolist(),
                "heading": np.round(sim.heading[:T, a], 4).tolist(), "contacts": sim.contacts[:T, a].astype(int).tolist(),
                "paths": [np.round(p, 3).tolist() for p in sim.paths[a]]})
        (tmp / "trajectories.json").write_text(json.dumps(traj))
        skel = {"names": list(sim.skeleton.names), "parents": [int(p) for p in sim.skeleton.parents]}
        save_tensors(tmp / "motion.safetensors", {"joints": torch.from_numpy(sim.joints[:T]).float(),
                                                  "root": torch.from_numpy(sim.root[:T]).float(),
                                                  "heading": torch.from_numpy(sim.heading[:T]).float()},
                     {"skeleton": json.dumps(skel), "fps": str(sim.fps)})
        summary = {"frames": T, "fps": path.fps, "width": W, "height": H, "agents": sim.n_agents,
                   "motion_backend": sim.motion_backend, "metrics": {**sim.metrics, **visibility_metrics(shown, W * H)},
                   "world": world.summary(),
                   "streams": bundle["streams"] + bundle["extra_streams"],
                   "depth_png_scale_m": bundle["depth_scale"], "depth_range_m": bundle["depth_range"], "render_s": round(stats["render_s"], 2),
                   "render_s_per_frame": round(stats["render_s"] / T, 3), "total_s": round(time.time() - t0, 2),
                   "provenance": provenance or {}}
        if pm is not None:
            (tmp / "props.json").write_text(json.dumps(props.to_json(T)))
            summary["physics"] = props.physics_summary()
            summary["props"] = props.n_props
            summary["mask_ids"] = {"agents": [1, sim.n_agents], "props": [sim.n_agents + 1, sim.n_agents + props.n_props]}
        (tmp / "sim.json").write_text(json.dumps(summary, indent=1))
    return summary
