"""Training inputs: posed images + SfM points from a poses WORKDIR (cameras.json), an LLFF folder or a COLMAP model.

Accepted layouts (first match wins):
  * WORKDIR / scene bundle: cameras.json (+ images/, sparse/0/points3D.bin)              -- `realsim poses` output
  * LLFF: poses_bounds.npy + images*/ (+ sparse/0/points3D.bin, the COLMAP points the poses came from)
  * COLMAP: sparse/0 (or sparse/) with cameras/images/points3D + images/ (PINHOLE)       -- read by colmap_io (pycolmap)
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from realsim.assets.cameras import CameraFrame, CameraSet, holdout_split, load_cameras
from realsim.assets.errors import InputError

from . import colmap_io

log = logging.getLogger("realsim.recon.dataset")

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".JPG", ".JPEG", ".PNG")


def load_points(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """SfM points for a WORKDIR / bundle / LLFF / COLMAP folder, world frame (xyz [P,3] float32, rgb [P,3] uint8)."""
    return colmap_io.read_points(root)


# ---------------------------------------------------------------- camera sources
def _llff_cameras(root: Path) -> CameraSet:
    """LLFF poses_bounds.npy ([N,17]: 3x5 c2w|hwf with columns down,right,back) -> OpenCV viewmats, K for the image folder."""
    pb = np.load(root / "poses_bounds.npy", allow_pickle=False)
    if pb.ndim != 2 or pb.shape[1] != 17:
        raise InputError(f"{root / 'poses_bounds.npy'} is not an LLFF poses_bounds array (shape {pb.shape})")
    poses = pb[:, :15].reshape(-1, 3, 5)
    img_dir = None
    for name in ("images", "images_4", "images_8", "images_2"):
        d = root / name
        if d.is_dir() and sorted(p for p in d.iterdir() if p.suffix in IMAGE_EXTS):
            img_dir = d
            break
    if img_dir is None:
        raise InputError(f"LLFF folder {root} has no images*/ folder")
    files = sorted(p.name for p in img_dir.iterdir() if p.suffix in IMAGE_EXTS)
    if len(files) != len(poses):
        raise InputError(f"{img_dir} has {len(files)} images but poses_bounds.npy has {len(poses)} poses")
    from PIL import Image

    with Image.open(img_dir / files[0]) as im:
        w, h = im.size
    splits = holdout_split(files, 8)
    frames = []
    for name, P, split in zip(files, poses, splits):
        H0, W0, f0 = P[:, 4]
        s = w / W0
        K = np.array([[f0 * s, 0, w / 2.0], [0, f0 * s, h / 2.0], [0, 0, 1]], np.float64)
        c2w = np.eye(4)
        # LLFF columns [down, right, back] -> OpenCV [right, down, forward]
        c2w[:3, 0] = P[:, 1]
        c2w[:3, 1] = P[:, 0]
        c2w[:3, 2] = -P[:, 2]
        c2w[:3, 3] = P[:, 3]
        frames.append(CameraFrame(name, K, np.linalg.inv(c2w), w, h, split, 1))
    return CameraSet(frames, os.path.relpath(img_dir, root))


def _colmap_cameras(sparse: Path, root: Path) -> CameraSet:
    """A full COLMAP model beside images/: PINHOLE cameras only (distorted models are refused, see colmap_io.camera_set)."""
    rec = colmap_io.read_model(sparse)
    if not (root / "images").is_dir():
        raise InputError(f"{root} has a COLMAP model but no images/ folder")
    return colmap_io.camera_set(rec, 8, "images")


def load_camera_source(root: str | os.PathLike) -> tuple[CameraSet, Path]:
    """Cameras of any accepted layout and the folder their images_dir is relative to."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder (expected a `realsim poses` WORKDIR, an LLFF or a COLMAP folder)")
    if (root / "cameras.json").is_file():
        return load_cameras(root / "cameras.json"), root
    if (root / "poses_bounds.npy").is_file():
        return _llff_cameras(root), root
    sp = colmap_io.find_model(root)
    if sp is not None and ((sp / "images.bin").is_file() or (sp / "images.txt").is_file()):
        return _colmap_cameras(sp, root), root
    raise InputError(f"{root}: no cameras.json, poses_bounds.npy or COLMAP sparse model found")


# ---------------------------------------------------------------- images
def load_image(path: Path, width: int, height: int) -> torch.Tensor:
    """RGB float32 [H,W,3] in [0,1], resized (area filter) to width x height."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (width, height):
                fx, fy = im.size[0] / width, im.size[1] / height
                if abs(fx - round(fx)) < 1e-6 and abs(fy - round(fy)) < 1e-6 and round(fx) == round(fy) and round(fx) > 1:
                    im = im.reduce(int(round(fx)))
                else:
                    im = im.resize((width, height), Image.Resampling.BOX if fx > 1 else Image.Resampling.BICUBIC)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e}") from None
    return torch.from_numpy(arr.copy())


@dataclass
class View:
    """One training/eval image at the training resolution."""

    name: str
    image: torch.Tensor  # [H,W,3] float32
    viewmat: torch.Tensor  # [4,4] float32 world-to-camera (OpenCV)
    K: torch.Tensor  # [3,3] float32
    width: int
    height: int


@dataclass
class Dataset:
    """Posed images at one resolution, split into train/test, plus SfM points (world frame)."""

    root: Path
    cameras: CameraSet
    train: list[View]
    test: list[View]
    points: np.ndarray  # [P,3] float32
    colors: np.ndarray  # [P,3] uint8
    downscale: float
    scene_extent: float = field(default=1.0)  # radius of the training camera centres around their mean (scene_extent())


def resolve_downscale(frames: list[CameraFrame], downscale: float | None, max_width: int | None) -> float:
    """Downscale factor: explicit, or the smallest integer bringing the widest image to <= max_width (1% slack: undistorted
    photos come out a pixel or two wider, 1026 for 1024, and must not drop to the next factor, 342 px instead of 512)."""
    if downscale is not None:
        if downscale <= 0:
            raise InputError(f"--downscale must be positive, got {downscale}")
        return float(downscale)
    if max_width:
        w = max(f.width for f in frames)
        d = 1
        while w / d > max_width * 1.01 + 1e-6:
            d += 1
        return float(d)
    return 1.0


def load_dataset(root: str | os.PathLike, downscale: float | None = None, max_width: int | None = None,
                 holdout_every: int | None = None) -> Dataset:
    """Load posed images (at width/downscale) and SfM points; holdout_every re-splits every n-th view by name as test."""
    cams, base = load_camera_source(root)
    if len(cams.frames) < 2:
        raise InputError(f"{root}: need at least 2 posed images, found {len(cams.frames)}")
    if holdout_every is not None:
        names = [f.name for f in cams.frames]
        for f, s in zip(cams.frames, holdout_split(names, holdout_every)):
            f.split = s
    ds = resolve_downscale(cams.frames, downscale, max_width)
    img_dir = base / cams.images_dir
    train, test = [], []
    for f in sorted(cams.frames, key=lambda f: f.name):
        w, h = max(1, int(round(f.width / ds))), max(1, int(round(f.height / ds)))
        K = f.K.copy()
        K[0] *= w / f.width
        K[1] *= h / f.height
        p = img_dir / f.name
        if not p.is_file():
            raise InputError(f"image {p} listed in the cameras but missing")
        v = View(f.name, load_image(p, w, h), torch.tensor(f.viewmat, dtype=torch.float32), torch.tensor(K, dtype=torch.float32), w, h)
        (test if f.split == "test" else train).append(v)
    if not train:
        raise InputError(f"{root}: no training views (all held out)")
    xyz, rgb = load_points(base)
    if len(xyz) < 10:
        raise InputError(f"{root}: only {len(xyz)} SfM points; need at least 10 to initialise a model")
    return Dataset(Path(root), cams, train, test, xyz, rgb, ds, scene_extent([f for f in cams.frames if f.split != "test"]))


def scene_extent(frames: list[CameraFrame]) -> float:
    """1.1 x the largest distance of the (training) camera centres from their mean (3DGS's cameras_extent); held-out
    cameras are left out: they must not change how a model is trained."""
    centres = np.stack([np.linalg.inv(f.viewmat)[:3, 3] for f in frames])
    return max(float(np.linalg.norm(centres - centres.mean(0), axis=1).max()) * 1.1, 1e-6)
