"""The 3D-guided video bundle: render a CameraPath into RGB / depth / normal / alpha videos plus lossless depth PNGs
and per-frame cameras, written into a temp folder that replaces OUT only when every stream is complete.

Layout (see README): rgb.mp4, depth.mp4, depth/000000.png (uint16, metres = value * depth_scale), normal.mp4,
alpha.mp4, cameras.json (per frame K, viewmat, time; readable by realsim.assets.load_cameras), path.json (nerfstudio).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from realsim.assets.atomic import atomic_dir, write_text_atomic
from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .paths import CameraPath, save_camera_path
from .video import (VideoWriter, _to_numpy, colorize_depth, nice_depth_scale, normals_from_depth, normals_to_rgb,
                    save_depth_png16)

log = logging.getLogger("realsim.render.bundle")

STREAMS = ("rgb", "depth", "normal", "alpha")
BUNDLE_FORMAT_VERSION = 1

# render_fn(viewmat [4,4] float64, K [3,3] float64, width, height) -> {"rgb": [H,W,3], "depth": [H,W,1], "alpha": [H,W,1]}
RenderFn = Callable[[np.ndarray, np.ndarray, int, int], dict]


def parse_streams(text: str | Sequence[str]) -> tuple[str, ...]:
    """"rgb,depth" -> ("rgb", "depth"); InputError for unknown or empty stream lists."""
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    bad = [s for s in items if s not in STREAMS]
    if bad or not items:
        raise InputError(f"unknown stream(s) {', '.join(bad) or '(none given)'}: choose from {', '.join(STREAMS)}")
    return tuple(dict.fromkeys(items))


def depth_stats_from_points(points: np.ndarray, path: CameraPath, max_cameras: int = 32) -> tuple[float, float, float] | None:
    """(near, far, max) camera-space depths of world points seen along the path (2nd / 98th / 99.9th percentiles)."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) == 0:
        return None
    idx = np.unique(np.linspace(0, len(path) - 1, min(max_cameras, len(path))).round().astype(int))
    zs = []
    for i in idx:
        V, K = path.viewmats[i], path.Ks[i]
        pc = pts @ V[:3, :3].T + V[:3, 3]
        z = pc[:, 2]
        front = z > 1e-6
        uv = (pc[front] @ K.T)[:, :2] / z[front, None]
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < path.width) & (uv[:, 1] >= 0) & (uv[:, 1] < path.height)
        zs.append(z[front][inside])
    z = np.concatenate(zs) if zs else np.zeros(0)
    if len(z) < 10:
        return None
    return float(np.percentile(z, 2)), float(np.percentile(z, 98)), float(np.percentile(z, 99.9))


def _depth_stats_from_render(depth: np.ndarray) -> tuple[float, float, float] | None:
    d = depth[np.isfinite(depth) & (depth > 0)]
    if d.size < 10:
        return None
    return float(np.percentile(d, 2)), float(np.percentile(d, 98)), float(d.max())


def write_video_bundle(render_fn: RenderFn, path: CameraPath, out_dir: str | os.PathLike,
                       streams: Sequence[str] = STREAMS, points: np.ndarray | None = None,
                       depth_range: tuple[float, float] | None = None, depth_scale: float | None = None,
                       overwrite: bool = False, crf: int = 18, metadata: dict[str, Any] | None = None,
                       progress: ProgressFn | None = None) -> dict[str, Any]:
    """Render every camera of `path` and write the bundle to `out_dir` atomically; returns a summary dict.

    The colour-map range (near, far) and the PNG depth step are fixed for the whole video: from `points` (e.g. the SfM
    points) seen along the path, else from the first frame's depth, unless given.
    """
    streams = parse_streams(streams)
    if path.width % 2 or path.height % 2:
        raise InputError(f"video size {path.width}x{path.height} must be even (H.264 yuv420p)")
    T = len(path)
    first: dict[str, np.ndarray] | None = None
    stats = None
    if "depth" in streams and (depth_range is None or depth_scale is None):
        if points is not None:
            stats = depth_stats_from_points(points, path)
        if stats is None:
            first = _render_np(render_fn, path, 0)
            stats = _depth_stats_from_render(first["depth"])
        if stats is None:
            stats = (0.1, 10.0, 10.0)
            log.warning("no surface in view to set the depth range; using 0.1-10 scene units")
    if depth_range is None and stats is not None:
        depth_range = (stats[0], max(stats[1], stats[0] * 1.01 + 1e-6))
    if depth_scale is None and stats is not None:
        depth_scale = nice_depth_scale(1.5 * stats[2])
    n_over = 0
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        with contextlib.ExitStack() as stack:
            writers = {s: stack.enter_context(VideoWriter(tmp / f"{s}.mp4", path.fps, path.width, path.height, crf=crf))
                       for s in streams}
            if "depth" in streams:
                (tmp / "depth").mkdir()
            report(progress, "render", 0, T)
            for t in range(T):
                out = first if (t == 0 and first is not None) else _render_np(render_fn, path, t)
                if "rgb" in writers:
                    writers["rgb"].write(out["rgb"])
                if "alpha" in writers:
                    writers["alpha"].write(out["alpha"])
                if "depth" in writers:
                    writers["depth"].write(colorize_depth(out["depth"], depth_range[0], depth_range[1]))  # type: ignore[index]
                    n_over += save_depth_png16(tmp / "depth" / f"{t:06d}.png", out["depth"], depth_scale)  # type: ignore[arg-type]
                if "normal" in writers:
                    n = normals_from_depth(out["depth"], path.Ks[t], out["alpha"])
                    writers["normal"].write(normals_to_rgb(n))
                report(progress, "render", t + 1, T)
        if n_over:
            log.warning("%d depth pixels were beyond the 16-bit range (%.4g x 65535) and were clipped", n_over, depth_scale)
        summary = {
            "format_version": BUNDLE_FORMAT_VERSION,
            "images_dir": "depth" if "depth" in streams else "",
            "width": path.width, "height": path.height, "fps": path.fps, "n_frames": T, "streams": list(streams),
            "depth_scale": depth_scale if "depth" in streams else None,
            "depth_range": list(depth_range) if depth_range is not None and "depth" in streams else None,
            "depth_units": "metres" if (metadata or {}).get("metric") else "scene units",
            "normal_convention": "camera frame, OpenGL axes (x right, y up, z towards the viewer), rgb = (n + 1) / 2",
            "metadata": metadata or {},
            "frames": [
                {"name": f"{t:06d}.png", "index": t, "time": t / path.fps, "width": path.width, "height": path.height,
                 "K": path.Ks[t].tolist(), "viewmat": path.viewmats[t].tolist(), "split": "test", "camera_id": 1}
                for t in range(T)
            ],
        }
        write_text_atomic(tmp / "cameras.json", json.dumps(summary, indent=1))
        save_camera_path(tmp / "path.json", path)
    return {k: v for k, v in summary.items() if k != "frames"} | {"out": str(Path(out_dir))}


def _render_np(render_fn: RenderFn, path: CameraPath, t: int) -> dict[str, np.ndarray]:
    out = render_fn(path.viewmats[t], path.Ks[t], path.width, path.height)
    res = {k: _to_numpy(out[k]).astype(np.float32) for k in ("rgb", "depth", "alpha")}
    H, W = path.height, path.width
    if res["rgb"].shape != (H, W, 3) or res["depth"].shape != (H, W, 1) or res["alpha"].shape != (H, W, 1):
        raise ValueError(f"render returned shapes {[res[k].shape for k in ('rgb', 'depth', 'alpha')]} for a {W}x{H} frame")
    return res
