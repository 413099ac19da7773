"""The SYNTHETIC capture's camera rig and writer: a walk up the street photographed to OUT/images, with the exact cameras."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from realsim.assets.atomic import atomic_dir
from realsim.assets.cameras import CameraFrame, CameraSet, holdout_split, save_cameras
from realsim.assets.errors import RealsimError
from realsim.assets.frames import camera_center
from realsim.assets.progress import ProgressFn, report
from realsim.recon.geodesy import enu_to_lla
from realsim.render.paths import look_at

from .street import build_street
from .view import render_view


@dataclass
class CaptureConfig:
    """What the synthetic capture looks like and how it is photographed."""

    n_images: int = 30
    width: int = 480
    height: int = 360
    focal: float = 400.0  # pixels (horizontal FOV ~62 degrees at 480 px)
    camera_height: float = 1.6  # metres above the ground
    walk_length: float | None = None  # metres along the street (None: 0.83 m between photos, at most 24 m)
    ssaa: int = 2
    seed: int = 0
    jpeg_quality: int = 95
    look_period_m: float | None = 12.0  # metres of walk per slow look left and right; None: swing every photo (old walk)
    street_length_m: float | None = None  # a longer street (>= 54 m, props repeated every 48 m); None: the demo's 54 m
    # EXIF GPS per photo (as a phone writes it): the true centre + N(0, sigma) east and north, N(0, 2 sigma) up (altitude is
    # a phone's worst axis), around GPS_ORIGIN with +X east and +Y north; None: no GPS (the demo)
    gps_sigma_m: float | None = None


GPS_ORIGIN = (48.0, 11.0, 500.0)  # latitude, longitude (degrees), altitude (m) of the synthetic world's origin: arbitrary


def walk_cameras(cfg: CaptureConfig) -> list[np.ndarray]:
    """Viewmats [4,4] along a walk up the street: gentle weaving, a slow look left and right, slight pitch down, a small head bob.

    The look sweeps left and right once every look_period_m of walk (or once on a shorter walk), <= 15 deg between
    photos 0.83 m apart, so consecutive photos share most of their view.
    The former yaw that swung up to 30 deg between consecutive photos left the start of some streets (seed 3) with
    rotation-dominated pairs and short tracks, where the mapper settled a folded start (2-4 m off) even with every wrong
    match removed; with the slow sweep seeds 0..4 pose to 1-2 cm (seed 4 on the demo's second mapper seed).
    """
    rng = np.random.default_rng(cfg.seed + 1)
    out = []
    n = cfg.n_images
    length = cfg.walk_length if cfg.walk_length is not None else min(24.0, 0.83 * (n - 1))
    if cfg.walk_length is None and cfg.street_length_m is not None:  # a long street: walk all of it, 6 m short of the far wall
        length = cfg.street_length_m - 12.0
    period = max(min(cfg.look_period_m or 1.0, length), 1e-3)  # a short walk still looks both ways once
    for i in range(n):
        t = i / max(1, n - 1)
        y = 0.0 + length * t
        x = 1.2 * math.sin(2 * math.pi * t * 1.5)
        z = cfg.camera_height + 0.03 * math.sin(i * 2.1)
        if cfg.look_period_m is None:  # the old walk: the look swings up to 30 deg between photos (short mesh tests)
            yaw = math.radians(22.0 * math.sin(i * 1.3) + rng.uniform(-4, 4))  # about +Z, 0 = looking +Y
        else:
            yaw = math.radians(22.0 * math.sin(2 * math.pi * y / period) + rng.uniform(-3, 3))
        pitch = math.radians(-7.0 + rng.uniform(-2, 2))
        fwd = np.array([math.sin(-yaw) * math.cos(pitch), math.cos(yaw) * math.cos(pitch), math.sin(pitch)])
        eye = np.array([x, y, z])
        out.append(look_at(eye, eye + fwd))
    return out


def _config_record(cfg: CaptureConfig) -> dict:
    """The config as capture.json records it (the demo street's record has no street_length_m: it is unchanged)."""
    d = asdict(cfg)
    for key in ("street_length_m", "gps_sigma_m"):  # added options, recorded only when used
        if d[key] is None:
            del d[key]
    return d


def _exif_gps(exif, lla: tuple[float, float, float]) -> None:
    """GPS IFD as cameras write it: degrees / minutes / seconds (1e-5 s, ~0.3 mm), hemisphere refs, altitude in cm."""
    from PIL.TiffImagePlugin import IFDRational

    def dms(v: float) -> tuple:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        sec = round(((v - d) * 60 - m) * 60 * 100000)
        return (IFDRational(d, 1), IFDRational(m, 1), IFDRational(sec, 100000))

    gps = exif.get_ifd(0x8825)
    gps[0] = b"\x02\x03\x00\x00"  # GPSVersionID 2.3
    gps[1], gps[2] = ("N" if lla[0] >= 0 else "S"), dms(lla[0])
    gps[3], gps[4] = ("E" if lla[1] >= 0 else "W"), dms(lla[1])
    gps[5], gps[6] = (0 if lla[2] >= 0 else 1), IFDRational(round(abs(lla[2]) * 100), 100)


def _exif_focal(exif, focal_px: float, pixel_pitch_mm: float = 0.01) -> None:
    """The lens as a camera writes it (FocalLength + focal-plane resolution), so COLMAP starts from the true focal length.

    Without it COLMAP guesses 1.2 x the image width (576 px for 400 px), verifies pairs with the uncalibrated (fundamental
    matrix) model and self-calibrates; with it, pairs are verified with the calibrated (essential matrix) model.
    """
    from PIL.TiffImagePlugin import IFDRational

    sub = exif.get_ifd(0x8769)  # Exif sub-IFD
    sub[0x920A] = IFDRational(round(focal_px * pixel_pitch_mm * 1000), 1000)  # FocalLength, mm
    sub[0xA20E] = sub[0xA20F] = IFDRational(round(10.0 / pixel_pitch_mm), 1)  # FocalPlaneX/YResolution, pixels per cm
    sub[0xA210] = 3  # FocalPlaneResolutionUnit: centimetre


def make_capture(out_dir: str | os.PathLike, cfg: CaptureConfig | None = None, overwrite: bool = False,
                 progress: ProgressFn | None = None) -> Path:
    """Write OUT/images/SYNTHETIC_street_XXXX.jpg, OUT/cameras_gt.json (exact cameras), OUT/capture.json, OUT/geometry.safetensors."""
    from PIL import Image

    from realsim.assets.scene import save_tensors

    cfg = cfg or CaptureConfig()
    if cfg.n_images < 3 or cfg.width < 32 or cfg.height < 32:
        raise RealsimError("synthetic capture needs at least 3 images of at least 32x32 pixels")
    scene = build_street(cfg.seed, cfg.street_length_m)
    K = np.array([[cfg.focal, 0, cfg.width / 2], [0, cfg.focal, cfg.height / 2], [0, 0, 1.0]])
    views = walk_cameras(cfg)
    out_dir = Path(out_dir)
    names = [f"SYNTHETIC_street_{i:04d}.jpg" for i in range(len(views))]
    split = holdout_split(names)
    gps_rng = np.random.default_rng(cfg.seed + 7)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        frames = []
        for i, (V, name) in enumerate(zip(views, names)):
            r = render_view(scene, V, K, cfg.width, cfg.height, cfg.ssaa)
            img = Image.fromarray((r["rgb"] * 255 + 0.5).astype(np.uint8))
            exif = Image.Exif()
            exif[0x010F] = "realsim SYNTHETIC"  # Make
            exif[0x0110] = "procedural street"  # Model
            exif[0x010E] = "SYNTHETIC render by realsim.sim.capture (not a photograph)"  # ImageDescription
            _exif_focal(exif, cfg.focal)
            if cfg.gps_sigma_m is not None:
                fix = camera_center(V) + gps_rng.normal(0.0, 1.0, 3) * cfg.gps_sigma_m * np.array([1, 1, 2])  # [3] ENU metres
                _exif_gps(exif, enu_to_lla(fix, GPS_ORIGIN))
            img.save(tmp / "images" / name, quality=cfg.jpeg_quality, exif=exif)
            frames.append(CameraFrame(name, K.copy(), V, cfg.width, cfg.height, split[i]))
            report(progress, "synthetic capture", i + 1, len(views))
        save_cameras(tmp / "cameras_gt.json", CameraSet(frames, "images"))
        meta = {"synthetic": True, "label": "SYNTHETIC procedural street rendered by realsim (not real photos)",
                "generator": "realsim.sim.capture", "config": _config_record(cfg), "camera_height": cfg.camera_height,
                "world": {"up": [0, 0, 1], "units": "metres", "ground_z": 0.0},
                "obstacles": scene.obstacles, "walk_extent": list(scene.walk_extent)}
        (tmp / "capture.json").write_text(json.dumps(meta, indent=1))
        save_tensors(tmp / "geometry.safetensors", {"vertices": torch.from_numpy(scene.vertices), "faces": torch.from_numpy(scene.faces),
                                                     "material": torch.from_numpy(scene.material)}, {"synthetic": "true"})
    return out_dir
