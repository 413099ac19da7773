"""Video and image streams of the 3D-guided video bundle: H.264 MP4 through PyAV (written to a temp name, renamed when
complete), colour-mapped depth, lossless 16-bit depth PNGs, normals from depth.
"""
from __future__ import annotations

import logging
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from realsim.assets.errors import InputError, RealsimError

log = logging.getLogger("realsim.render.video")


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def to_uint8(img: Any) -> np.ndarray:
    """[H,W,C] float in [0,1] (clipped) or uint8 -> uint8 [H,W,3] (a single channel is repeated)."""
    a = _to_numpy(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype != np.uint8:
        a = np.clip(np.nan_to_num(a.astype(np.float32), nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.shape[2] != 3:
        raise ValueError(f"expected an [H,W,3] or [H,W,1] image, got {a.shape}")
    return np.ascontiguousarray(a)


class VideoWriter:
    """H.264 MP4 (yuv420p) via PyAV; frames go to a hidden temp file renamed onto `path` only on a clean exit.

    Use as a context manager: `with VideoWriter(p, 30, 640, 480) as w: w.write(frame)`. x264 preset "fast": 10-25% less
    CPU than "medium" at crf 18, within 0.3 dB of it and the same size (the demo's video: bench/demo_stages.py).
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int, crf: int = 18,
                 preset: str = "fast") -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise InputError(f"video size {width}x{height} must be positive and even (H.264 yuv420p)")
        if not fps > 0:
            raise InputError(f"video fps must be positive (got {fps})")
        self.path = Path(path)
        self.fps = fps
        self.width = int(width)
        self.height = int(height)
        self.crf = crf
        self.preset = preset
        self.n_frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._tmp: Path | None = None

    def __enter__(self) -> "VideoWriter":
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width = self.width
        self._stream.height = self.height
        self._stream.pix_fmt = "yuv420p"
        # mbtree (x264's macroblock-tree rate control) off: with it, identical frames encode differently from run to run
        # (3 distinct outputs in 6 runs, even single-threaded); without it every run is the same, -0.6 dB vs the input
        # at crf 18 (39.3 dB) for 3 % smaller files (tests/test_video.py::test_same_frames_same_video_bytes)
        self._stream.options = {"crf": str(self.crf), "preset": self.preset, "x264-params": "mbtree=0"}
        return self

    def write(self, frame: Any) -> None:
        """Append one frame: [H,W,3] float32 in [0,1] or uint8 ([H,W,1] is shown as grey)."""
        import av

        if self._stream is None:
            raise RuntimeError("VideoWriter.write outside its `with` block")
        img = to_uint8(frame)
        if img.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame size {img.shape[1]}x{img.shape[0]} != video size {self.width}x{self.height}")
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.n_frames += 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._tmp is not None
        try:
            if exc_type is None:
                for packet in self._stream.encode():  # flush delayed frames
                    self._container.mux(packet)
            self._container.close()
            if exc_type is None:
                if self.n_frames == 0:
                    raise RealsimError(f"no frames were written to {self.path}")
                os.replace(self._tmp, self.path)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()
            self._container = self._stream = None


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode an MP4 into uint8 frames [T,H,W,3] and its frame rate (for tests and tools)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate) if s.average_rate else float("nan")
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    return np.stack(frames), fps


# ----------------------------------------------------------------------------------------------------- depth
def _lut(cmap: str) -> np.ndarray:
    from matplotlib import colormaps

    if cmap not in _LUTS:
        _LUTS[cmap] = (colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)  # [256,3]
    return _LUTS[cmap]


_LUTS: dict[str, np.ndarray] = {}


def colorize_depth(depth: Any, vmin: float, vmax: float, cmap: str = "turbo") -> np.ndarray:
    """Depth [H,W,1] -> uint8 [H,W,3] with a fixed range (near = first colour of `cmap`); depth <= 0 (no surface) is black."""
    d = _to_numpy(depth).astype(np.float32)
    d = d.reshape(d.shape[:2])
    valid = np.isfinite(d) & (d > 0)
    span = max(float(vmax) - float(vmin), 1e-12)
    t = (np.nan_to_num(d) - np.float32(vmin)) * np.float32(255.0 / span)
    idx = np.clip(np.rint(t), 0, 255).astype(np.uint8)
    out = _lut(cmap)[idx]
    out[~valid] = 0
    return out


DEPTH_PNG_MAX = 65535


def save_depth_png16(path: str | os.PathLike, depth: Any, scale: float) -> int:
    """Lossless-ish metric depth: uint16 PNG with value = round(depth / scale) (depth = value * scale; 0 = no surface).

    Returns how many pixels were beyond the representable range (clipped to 65535).
    """
    from PIL import Image

    if not scale > 0:
        raise ValueError(f"depth scale must be positive (got {scale})")
    d = _to_numpy(depth).astype(np.float64)
    d = d.reshape(d.shape[:2])
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
    q = np.round(d / scale)
    over = int((q > DEPTH_PNG_MAX).sum())
    q = np.clip(q, 0, DEPTH_PNG_MAX).astype(np.uint16)
    from realsim.assets.atomic import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(q).save(tmp, format="PNG", compress_level=1)  # 16-bit greyscale (mode I;16), lossless
    return over


def load_depth_png16(path: str | os.PathLike, scale: float) -> np.ndarray:
    """Inverse of save_depth_png16 -> float32 [H,W,1] metres (0 where there was no surface)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    if a.dtype != np.uint16:
        a = a.astype(np.uint16)
    return (a.astype(np.float64) * scale).astype(np.float32)[:, :, None]


def nice_depth_scale(max_depth: float) -> float:
    """Metres per PNG count so that `max_depth` fits in 16 bits: 1 mm when possible, else a 1/2/5 x 10^k step."""
    need = max(float(max_depth), 1e-9) / DEPTH_PNG_MAX
    if need <= 1e-3 and max_depth > 6.5:
        return 1e-3
    k = int(np.floor(np.log10(need)))  # tiny scenes: finer steps, still covering max_depth
    for step in (float(f"{m}e{k}") for m in (1, 2, 5, 10)):
        if step >= need:
            return step
    return float(f"1e{k + 1}")


# ----------------------------------------------------------------------------------------------------- normals
def normals_from_depth(depth: Any, K: Any, alpha: Any | None = None, alpha_min: float = 0.5) -> np.ndarray:
    """Camera-space unit normals [H,W,3] (OpenCV camera axes, facing the camera) from a depth map and intrinsics.

    Central differences of back-projected points (one-sided next to holes); pixels without depth (or with
    alpha < alpha_min) get 0. Runs in torch (float32) for speed at video resolutions.
    """
    import torch

    d = torch.as_tensor(_to_numpy(depth), dtype=torch.float32)
    d = d.reshape(d.shape[0], d.shape[1])
    Km = _to_numpy(K).astype(np.float64)
    H, W = d.shape
    xs = (torch.arange(W, dtype=torch.float32) + 0.5 - float(Km[0, 2])) / float(Km[0, 0])
    ys = (torch.arange(H, dtype=torch.float32) + 0.5 - float(Km[1, 2])) / float(Km[1, 1])
    valid = d > 0
    if alpha is not None:
        valid &= torch.as_tensor(_to_numpy(alpha)).reshape(H, W) >= alpha_min
    P = torch.stack([xs[None, :] * d, ys[:, None] * d, d])  # [3,H,W]
    Pp = torch.nn.functional.pad(P[None], (1, 1, 1, 1), mode="replicate")[0]  # [3,H+2,W+2]
    Vp = torch.nn.functional.pad(valid[None, None].float(), (1, 1, 1, 1))[0, 0] > 0
    r_ok, l_ok, d_ok, u_ok = Vp[1:-1, 2:], Vp[1:-1, :-2], Vp[2:, 1:-1], Vp[:-2, 1:-1]
    # a missing neighbour is replaced by the pixel itself (one-sided difference)
    dx = torch.where(r_ok, Pp[:, 1:-1, 2:], P) - torch.where(l_ok, Pp[:, 1:-1, :-2], P)
    dy = torch.where(d_ok, Pp[:, 2:, 1:-1], P) - torch.where(u_ok, Pp[:, :-2, 1:-1], P)
    # n = dy x dx: for x right, y down this points towards the camera on a fronto-parallel plane
    n = torch.stack([dy[1] * dx[2] - dy[2] * dx[1], dy[2] * dx[0] - dy[0] * dx[2], dy[0] * dx[1] - dy[1] * dx[0]])
    norm = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt()  # not n.norm(dim=0): that reduction is ~50x slower on CPU
    ok = valid & (r_ok | l_ok) & (d_ok | u_ok) & (norm > 1e-20)
    n = torch.where(ok, n / norm.clamp_min(1e-30), torch.zeros(()))
    flip = (n * P).sum(0) > 0  # every normal faces the camera
    n = torch.where(flip, -n, n)
    return n.permute(1, 2, 0).contiguous().numpy()


def normals_to_rgb(n_cv: np.ndarray) -> np.ndarray:
    """Normal map colours: OpenCV camera normals -> OpenGL camera axes (x right, y up, z to the viewer) -> (n+1)/2 uint8.

    A surface facing the camera is (128, 128, 255) (the usual blue normal map); pixels without a normal are black.
    """
    gl = n_cv * np.array([1.0, -1.0, -1.0], np.float32)
    valid = np.linalg.norm(n_cv, axis=-1) > 0.5
    rgb = np.clip((gl + 1.0) * 0.5 * 255 + 0.5, 0, 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb
