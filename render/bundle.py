"""`realsim render`'s driver: render every camera of a CameraPath with a scene's render function and write the
3D-guided stream bundle (render.streams: the layout `realsim simulate` writes too) into a temp folder that replaces
OUT only when every stream is complete.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from realsim.assets.atomic import atomic_dir
from realsim.assets.progress import ProgressFn, report

from .camera_path import CameraPath
from .streams import BUNDLE_FORMAT_VERSION, STREAMS, StreamWriter, depth_encoding, depth_stats_from_points, parse_streams
from .video import _to_numpy

__all__ = ["BUNDLE_FORMAT_VERSION", "STREAMS", "RenderFn", "parse_streams", "write_video_bundle"]

# render_fn(viewmat [4,4] float64, K [3,3] float64, width, height) -> {"rgb": [H,W,3], "depth": [H,W,1], "alpha": [H,W,1]}
RenderFn = Callable[[np.ndarray, np.ndarray, int, int], dict]


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
    if "depth" in streams and points is not None and (depth_range is None or depth_scale is None):
        stats = depth_stats_from_points(points, path)
        if stats is not None:
            rng, scale = depth_encoding(stats)
            depth_range, depth_scale = depth_range or rng, depth_scale or scale
    T = len(path)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        with StreamWriter(tmp, path, streams, depth_range=depth_range, depth_scale=depth_scale, crf=crf) as sw:
            report(progress, "render", 0, T)
            for t in range(T):
                out = _render_np(render_fn, path, t)
                sw.write(t, out["rgb"], out["depth"], out["alpha"])
                report(progress, "render", t + 1, T)
        summary = sw.finish(metadata)
    return {k: v for k, v in summary.items() if k != "frames"} | {"out": str(Path(out_dir))}


def _render_np(render_fn: RenderFn, path: CameraPath, t: int) -> dict[str, np.ndarray]:
    out = render_fn(path.viewmats[t], path.Ks[t], path.width, path.height)
    res = {k: _to_numpy(out[k]).astype(np.float32) for k in ("rgb", "depth", "alpha")}
    H, W = path.height, path.width
    if res["rgb"].shape != (H, W, 3) or res["depth"].shape != (H, W, 1) or res["alpha"].shape != (H, W, 1):
        raise ValueError(f"render returned shapes {[res[k].shape for k in ('rgb', 'depth', 'alpha')]} for a {W}x{H} frame")
    return res
