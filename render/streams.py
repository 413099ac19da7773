"""The 3D-guided stream bundle: one writer for `realsim render` (render.bundle) and `realsim simulate` / `demo`
(sim.outputs), so both write the same layout, depth encoding and names.

OUT/
  rgb.mp4, depth.mp4, normal.mp4, alpha.mp4   any subset (`streams`); depth.mp4 is turbo over one near..far range
  depth/NNNNNN.png    uint16: metres (scene units if not metric) = value x depth_scale; 0 = no surface
  cameras.json        per frame (name NNNNNN.png, index, time, K, viewmat, size); fps, depth_scale, depth_range
                      (readable by realsim.assets.load_cameras)
  camera_path.json    the path as nerfstudio camera_path.json (replay with `--path` / `--camera`)
  <extra>.mp4         the caller's extra streams (simulate: masks.mp4), frame-aligned

One depth rule for both: the PNG step is nice_depth_scale(1.5 x the far depth) and the colour range the 2nd..98th
percentile of the depths seen, from the caller's stats (e.g. SfM points along the path) or else the first frame.
"""
from __future__ import annotations

import collections
import contextlib
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from realsim.assets.atomic import write_text_atomic
from realsim.assets.errors import InputError

from .camera_path import CameraPath, save_camera_path
from .video import VideoWriter, colorize_depth, nice_depth_scale, normals_from_depth, normals_to_rgb, save_depth_png16

log = logging.getLogger("realsim.render.streams")

STREAMS = ("rgb", "depth", "normal", "alpha")
BUNDLE_FORMAT_VERSION = 1
CAMERA_PATH_FILE = "camera_path.json"
NORMAL_CONVENTION = "camera frame, OpenGL axes (x right, y up, z towards the viewer), rgb = (n + 1) / 2"

DepthStats = tuple[float, float, float]  # (near, far, max) depths: 2nd / 98th / 99.9th percentile (or max)


def frame_name(t: int) -> str:
    """The file name of frame t in every per-frame folder (depth/, masks/, ...) and in cameras.json."""
    return f"{t:06d}.png"


def parse_streams(text: str | Sequence[str]) -> tuple[str, ...]:
    """"rgb,depth" -> ("rgb", "depth"); InputError for unknown or empty stream lists."""
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    bad = [s for s in items if s not in STREAMS]
    if bad or not items:
        raise InputError(f"unknown stream(s) {', '.join(bad) or '(none given)'}: choose from {', '.join(STREAMS)}")
    return tuple(dict.fromkeys(items))


def depth_stats_from_points(points: np.ndarray, path: CameraPath, max_cameras: int = 32) -> DepthStats | None:
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


def depth_stats(depth: np.ndarray) -> DepthStats | None:
    """(near, far, max) of a rendered depth map (2nd / 98th percentile, maximum); None when it shows no surface."""
    d = np.asarray(depth)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size < 10:
        return None
    return float(np.percentile(d, 2)), float(np.percentile(d, 98)), float(d.max())


def depth_encoding(stats: DepthStats | None) -> tuple[tuple[float, float], float]:
    """The one depth rule: (colour range (near, far), PNG metres-per-count) from (near, far, max) depth stats."""
    if stats is None:
        stats = (0.1, 10.0, 10.0)
        log.warning("no surface in view to set the depth range; using 0.1-10 scene units")
    near, far, top = stats
    return (near, max(far, near * 1.01 + 1e-6)), nice_depth_scale(1.5 * top)


class StreamWriter:
    """Writes one frame at a time into an existing (temporary) folder `root`; a context manager for the videos.

    depth_range / depth_scale default to the depth rule applied to the first written frame. `extra_videos` names the
    caller's extra MP4 streams (frames passed to write() by keyword); `png_dir(name)` gives a per-frame PNG folder.
    Inside the context, encoding (x264, PNG, normals) runs in order on one writer thread, up to MAX_PENDING frames
    behind, so it overlaps the caller's rendering of the next frame; its errors surface at the next call or the exit.
    """

    MAX_PENDING = 3  # frames queued for the writer thread (bounds memory: ~3 x 5 arrays of H x W)

    def __init__(self, root: str | Path, path: CameraPath, streams: Sequence[str] = STREAMS, *,
                 depth_range: tuple[float, float] | None = None, depth_scale: float | None = None, crf: int = 18,
                 extra_videos: Sequence[str] = ()) -> None:
        self.root = Path(root)
        self.path = path
        self.streams = parse_streams(streams)
        self.extra_videos = tuple(extra_videos)
        if path.width % 2 or path.height % 2:
            raise InputError(f"video size {path.width}x{path.height} must be even (H.264 yuv420p)")
        self.depth_range = depth_range
        self.depth_scale = depth_scale
        self.crf = crf
        self.n_written = 0
        self.n_clipped = 0
        self._stack = contextlib.ExitStack()
        self._videos: dict[str, VideoWriter] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._pending: collections.deque[Future] = collections.deque()
        self._failed = False

    def __enter__(self) -> "StreamWriter":
        p = self.path
        for s in self.streams + self.extra_videos:
            self._videos[s] = self._stack.enter_context(VideoWriter(self.root / f"{s}.mp4", p.fps, p.width, p.height,
                                                                   crf=self.crf))
        if "depth" in self.streams:
            self.png_dir("depth")
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="realsim-stream-writer")
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            try:
                self._drain()
            except BaseException as e:  # an encoding error: the videos close as failed (no rename onto their names)
                self._close((type(e), e, e.__traceback__))
                raise
        self._close(exc)

    def _close(self, exc: tuple) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()
        self._stack.__exit__(*exc)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) on the writer thread after the frames before it (at once outside the context); the caller
        must not modify the arrays it passes."""
        if self._pool is None:
            fn(*args)
            return
        while len(self._pending) >= self.MAX_PENDING:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._run, fn, args))

    def _run(self, fn: Callable[..., Any], args: tuple) -> None:
        """On the writer thread: after a failure (a full disk) the queued work is skipped, not attempted."""
        if self._failed:
            return
        try:
            fn(*args)
        except BaseException:
            self._failed = True
            raise

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def png_dir(self, name: str) -> Path:
        """root/name, created on first use: per-frame PNGs go there as frame_name(t)."""
        d = self.root / name
        d.mkdir(exist_ok=True)
        return d

    def write(self, t: int, rgb: np.ndarray, depth: np.ndarray, alpha: np.ndarray, **extra: np.ndarray) -> None:
        """Frame t: rgb [H,W,3] in 0..1, depth [H,W,1] (0 = no surface), alpha [H,W,1]; extra: name -> video frame."""
        if t != self.n_written:
            raise ValueError(f"frames must be written in order (got {t}, expected {self.n_written})")
        if "depth" in self.streams and (self.depth_range is None or self.depth_scale is None):
            rng, scale = depth_encoding(depth_stats(depth))
            self.depth_range = self.depth_range or rng
            self.depth_scale = self.depth_scale or scale
        copy = (lambda a: np.array(a, copy=True)) if self._pool is not None else (lambda a: a)  # the caller may reuse them
        self.submit(self._encode, t, copy(rgb), copy(depth), copy(alpha), {k: copy(extra[k]) for k in self.extra_videos})
        self.n_written += 1

    def _encode(self, t: int, rgb: np.ndarray, depth: np.ndarray, alpha: np.ndarray, extra: dict[str, np.ndarray]) -> None:
        v = self._videos
        if "rgb" in v:
            v["rgb"].write(rgb)
        if "alpha" in v:
            v["alpha"].write(alpha)
        if "depth" in v:
            v["depth"].write(colorize_depth(depth, self.depth_range[0], self.depth_range[1]))  # type: ignore[index]
            self.n_clipped += save_depth_png16(self.root / "depth" / frame_name(t), depth, self.depth_scale)  # type: ignore[arg-type]
        if "normal" in v:
            v["normal"].write(normals_to_rgb(normals_from_depth(depth, self.path.Ks[t], alpha)))
        for name in self.extra_videos:
            v[name].write(extra[name])

    def finish(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write cameras.json and camera_path.json for the frames written; returns cameras.json's dict."""
        self._drain()
        p, T = self.path, self.n_written
        if T != len(p):
            p = CameraPath(p.viewmats[:T], p.Ks[:T], p.width, p.height, p.fps)
        has_depth = "depth" in self.streams
        if self.n_clipped:
            log.warning("%d depth pixels were beyond the 16-bit range (%.4g x 65535) and were clipped", self.n_clipped,
                        self.depth_scale)
        summary = {
            "format_version": BUNDLE_FORMAT_VERSION,
            "images_dir": "depth" if has_depth else "",
            "width": p.width, "height": p.height, "fps": p.fps, "n_frames": T, "streams": list(self.streams),
            "extra_streams": list(self.extra_videos),
            "depth_scale": self.depth_scale if has_depth else None,
            "depth_range": list(self.depth_range) if self.depth_range is not None and has_depth else None,
            "depth_units": "metres" if (metadata or {}).get("metric") else "scene units",
            "normal_convention": NORMAL_CONVENTION,
            "metadata": metadata or {},
            "frames": [
                {"name": frame_name(t), "index": t, "time": t / p.fps, "width": p.width, "height": p.height,
                 "K": p.Ks[t].tolist(), "viewmat": p.viewmats[t].tolist(), "split": "test", "camera_id": 1}
                for t in range(T)
            ],
        }
        write_text_atomic(self.root / "cameras.json", json.dumps(summary, indent=1))
        save_camera_path(self.root / CAMERA_PATH_FILE, p)
        return summary
