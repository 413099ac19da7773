"""Input images for `poses`: a photo folder (corrupt files skipped) or a video (frames sampled by time, sharpest kept)."""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

log = logging.getLogger("realsim.recon.inputs")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mts"}
MIN_IMAGES = 3


@dataclass
class StagedImages:
    """Images copied (and possibly downscaled) into one folder, ready for feature extraction."""

    folder: Path
    names: list[str]  # sorted file names inside `folder`
    skipped: list[str] = field(default_factory=list)  # unreadable inputs, by original name
    camera_keys: dict[str, tuple] = field(default_factory=dict)  # name -> (make, model, w, h, focal): same key = same camera
    from_video: bool = False


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _camera_key(im: Image.Image, size: tuple[int, int]) -> tuple:
    """What identifies a physical camera in EXIF: make, model, image size and focal length."""
    try:
        exif = im.getexif()
        sub = exif.get_ifd(0x8769)
        make, model = str(exif.get(0x010F, "")).strip(), str(exif.get(0x0110, "")).strip()
        focal = sub.get(0x920A) or exif.get(0x920A)
        focal = round(float(focal), 3) if focal is not None else None
    except Exception:  # malformed EXIF must not stop anything
        make, model, focal = "", "", None
    return (make, model, size[0], size[1], focal)


def _save_resized(src: Path, im: Image.Image, dst: Path, max_size: int | None) -> tuple[int, int]:
    """Write `im` to `dst`, longest side <= max_size, keeping the EXIF block (focal length, GPS) for COLMAP."""
    exif = im.info.get("exif")
    w, h = im.size
    if max_size and max(w, h) > max_size:
        f = max_size / max(w, h)
        im = im.convert("RGB").resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS)
    elif im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    kw = {"quality": 95} if dst.suffix.lower() in (".jpg", ".jpeg") else {}
    if exif and dst.suffix.lower() in (".jpg", ".jpeg"):
        kw["exif"] = exif
    im.save(dst, **kw)
    return im.size


def stage_image_folder(src: Path, dst: Path, max_image_size: int | None = None, progress: ProgressFn | None = None) -> StagedImages:
    """Copy readable images of `src` into `dst` (downscaled to `max_image_size`); unreadable ones are skipped and listed."""
    if not src.is_dir():
        raise InputError(f"input {src} is not a folder, a video or a transforms.json")
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images found in {src} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    dst.mkdir(parents=True, exist_ok=True)
    names, skipped, keys = [], [], {}
    for i, p in enumerate(files):
        report(progress, "read images", i, len(files))
        try:
            with Image.open(p) as im:
                im.load()  # decodes fully: truncated/corrupt files fail here, not later in COLMAP
                rotated = im.getexif().get(0x0112, 1) != 1
                if rotated:  # rotate by EXIF orientation so the pixels are what every later stage sees
                    im = ImageOps.exif_transpose(im)
                if not rotated and (not max_image_size or max(im.size) <= max_image_size) and im.mode in ("RGB", "L"):
                    shutil.copyfile(p, dst / p.name)  # no re-encoding when nothing changes
                    size = im.size
                else:
                    size = _save_resized(p, im, dst / p.name, max_image_size)
                keys[p.name] = _camera_key(im, size)
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            skipped.append(p.name)
            (dst / p.name).unlink(missing_ok=True)
            continue
        names.append(p.name)
    report(progress, "read images", len(files), len(files))
    if skipped:
        log.warning("skipped %d unreadable image(s): %s", len(skipped), ", ".join(skipped))
    if len(names) < MIN_IMAGES:
        raise InputError(f"only {len(names)} usable image(s) in {src} ({len(skipped)} unreadable); at least {MIN_IMAGES} are needed")
    return StagedImages(dst, names, skipped, keys)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low for motion-blurred or defocused frames."""
    g = gray.astype(np.float32)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def extract_video_frames(video: Path, dst: Path, fps: float = 2.0, max_frames: int = 300, max_image_size: int | None = None,
                         progress: ProgressFn | None = None) -> StagedImages:
    """Sample a video every 1/fps seconds, keeping the sharpest decoded frame of each time slot, as JPEGs in `dst`."""
    import av

    if fps <= 0:
        raise InputError(f"--video-fps must be positive, got {fps}")
    dst.mkdir(parents=True, exist_ok=True)
    best: dict[int, tuple[float, np.ndarray]] = {}
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise InputError(f"{video} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            total = None
            if stream.duration is not None and stream.time_base is not None:
                total = int(float(stream.duration * stream.time_base) * fps) + 1
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else 0.0
                slot = int(t * fps + 1e-6)
                if slot >= max_frames:
                    break
                rgb = frame.to_ndarray(format="rgb24")  # [H,W,3] uint8
                small = rgb[::2, ::2].mean(axis=2) if max(rgb.shape[:2]) > 960 else rgb.mean(axis=2)
                s = sharpness(small)
                if slot not in best or s > best[slot][0]:
                    best[slot] = (s, rgb)
                report(progress, "video frames", len(best), total)
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as e:
        raise InputError(f"cannot decode video {video}: {e}") from None
    if len(best) < MIN_IMAGES:
        raise InputError(f"video {video} gave only {len(best)} frame(s) at {fps} fps; at least {MIN_IMAGES} are needed "
                         f"(try a higher --video-fps)")
    names, keys = [], {}
    for slot in sorted(best):
        name = f"frame_{slot:05d}.jpg"
        size = _save_resized(video, Image.fromarray(best[slot][1]), dst / name, max_image_size)
        names.append(name)
        keys[name] = ("video", str(video.name), size[0], size[1], None)
    return StagedImages(dst, names, [], keys, from_video=True)


def single_camera(staged: StagedImages) -> bool:
    """One shared camera when every image has the same EXIF make/model/size/focal, else one camera per image."""
    return len(set(staged.camera_keys[n] for n in staged.names)) <= 1


def looks_sequential(names: list[str]) -> bool:
    """Names that are one numbered run (frame_001, 002, ...) suggest a walk or a video."""
    import re

    nums = []
    for n in names:
        m = re.findall(r"\d+", Path(n).stem)
        if not m:
            return False
        nums.append(int(m[-1]))
    if len(nums) < 3:
        return False
    d = np.diff(sorted(nums))
    return bool((d > 0).all() and np.median(d) <= 2 and d.max() <= 10)


def prepare_input(src: Path, dst: Path, max_image_size: int | None = None, video_fps: float = 2.0, max_frames: int = 300,
                  progress: ProgressFn | None = None) -> StagedImages:
    """Folder of images or video file -> staged images in `dst`."""
    if not src.exists():
        raise InputError(f"input {src} does not exist")
    if is_video(src):
        return extract_video_frames(src, dst, video_fps, max_frames, max_image_size, progress)
    if src.is_file():
        raise InputError(f"input {src} is a file of unknown type (expected a folder of images, a video "
                         f"({', '.join(sorted(VIDEO_SUFFIXES))}) or transforms.json)")
    return stage_image_folder(src, dst, max_image_size, progress)


def default_threads() -> int:
    """Threads for COLMAP: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
