"""The one COLMAP room: models <-> realsim cameras and points, through pycolmap (text or binary models alike).

    find_model(root) -> folder | None   -- the model folder of root itself, root/sparse/0, root/sparse or root/0
    read_model(path) -> pycolmap.Reconstruction  -- a full model (cameras, images, points3D); one-line InputError otherwise
    read_points(root) / load_sfm_points(root) -> (xyz [P,3] float32, rgb [P,3] uint8)  -- in point id order; a folder with
                                           points3D but no images (LLFF's sparse/0) is read without pycolmap, which
                                           cannot load it
    camera_set(rec, holdout_every)      -- cameras.json records of a PINHOLE model; distorted models are refused with the
                                           command that undistorts them (never treated as pinhole)
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from realsim.assets.cameras import CameraFrame, CameraSet, holdout_split
from realsim.assets.errors import InputError
from realsim.assets.frames import camera_center

PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")


def _has(folder: Path, stem: str) -> bool:
    return any((folder / f"{stem}.{e}").is_file() for e in ("bin", "txt"))


def find_model(root: str | os.PathLike) -> Path | None:
    """The COLMAP model folder (cameras or points3D files, .bin or .txt) at root, root/sparse/0, root/sparse or root/0."""
    root = Path(root)
    for cand in (root, root / "sparse" / "0", root / "sparse", root / "0"):
        if _has(cand, "cameras") or _has(cand, "points3D"):
            return cand
    return None


def read_model(path: str | os.PathLike):
    """A COLMAP model folder (cameras/images/points3D as .bin or .txt; or a folder holding one) -> pycolmap.Reconstruction."""
    import pycolmap

    p = find_model(path)
    if p is None or not _has(p, "cameras"):
        raise InputError(f"{path} is not a COLMAP model folder (no cameras.bin or cameras.txt)")
    try:
        return pycolmap.Reconstruction(p)
    except Exception as e:  # pycolmap raises plain RuntimeError/ValueError for truncated or foreign files
        raise InputError(f"cannot read COLMAP model {p}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def write_model(rec, path: str | os.PathLike, text: bool = False) -> None:
    """Write a reconstruction as COLMAP binary (or text) files into `path`."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (rec.write_text if text else rec.write_binary)(str(p))


def registered_images(rec) -> list:
    """Registered images sorted by name."""
    return sorted((im for im in rec.images.values() if im.has_pose), key=lambda im: im.name)


def viewmat_of(image) -> np.ndarray:
    """World-to-camera [4,4] (OpenCV) of a pycolmap image."""
    V = np.eye(4)
    V[:3, :4] = image.cam_from_world().matrix()
    return V


def rotations_centers(rec) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names, world-to-camera rotations [N,3,3] and camera centres [N,3] of the registered images."""
    ims = registered_images(rec)
    Vs = np.stack([viewmat_of(im) for im in ims]) if ims else np.zeros((0, 4, 4))
    R = Vs[:, :3, :3]
    return [im.name for im in ims], R, camera_center(Vs)


def points_of(rec) -> tuple[np.ndarray, np.ndarray]:
    """xyz [P,3] float32 and rgb [P,3] uint8 of a reconstruction's 3D points, in point id order (as the files store them)."""
    pts = [rec.points3D[i] for i in sorted(rec.points3D.keys())]
    if not pts:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    xyz = np.stack([p.xyz for p in pts]).astype(np.float32)
    rgb = np.stack([p.color for p in pts]).astype(np.uint8)
    return xyz, rgb


def _points_file(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """points3D.bin / .txt alone (no cameras or images beside it, which pycolmap needs), in file order."""
    path = folder / "points3D.bin"
    if path.is_file():
        try:
            data = path.read_bytes()
            (n,) = struct.unpack_from("<Q", data, 0)
            off = 8
            xyz = np.empty((n, 3), np.float64)
            rgb = np.empty((n, 3), np.uint8)
            for i in range(n):
                # point3D_id u64, xyz 3xf64, rgb 3xu8, error f64, track_length u64, then (image_id, point2D_idx) i32 pairs
                _, x, y, z, r, g, b, _, tl = struct.unpack_from("<Q3d3BdQ", data, off)
                xyz[i] = (x, y, z)
                rgb[i] = (r, g, b)
                off += 8 + 24 + 3 + 8 + 8 + 8 * tl
        except (OSError, struct.error) as e:
            raise InputError(f"cannot read COLMAP points {path}: {e}") from None
        return xyz.astype(np.float32), rgb
    path = folder / "points3D.txt"
    try:
        rows = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        xyz = np.array([[float(v) for v in r[1:4]] for r in rows], np.float32).reshape(-1, 3)
        rgb = np.array([[int(v) for v in r[4:7]] for r in rows], np.uint8).reshape(-1, 3)
    except (OSError, UnicodeDecodeError, ValueError, IndexError) as e:
        raise InputError(f"cannot read COLMAP points {path}: {e}") from None
    return xyz, rgb


def read_points(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """SfM points of a WORKDIR, scene bundle, LLFF or COLMAP folder (world frame): xyz [P,3] float32, rgb [P,3] uint8."""
    model = find_model(root)
    if model is None or not _has(model, "points3D"):
        raise InputError(f"{root} has no SfM points (expected sparse/0/points3D.bin; run `realsim poses` first)")
    if _has(model, "cameras") and _has(model, "images"):
        return points_of(read_model(model))
    return _points_file(model)


def camera_set(rec, holdout_every: int = 8, images_dir: str = "images") -> CameraSet:
    """cameras.json records for the registered images of a PINHOLE (undistorted) model; test split every `holdout_every`.

    Distorted camera models (SIMPLE_RADIAL, OPENCV, ...) are refused: `realsim poses IMAGES --colmap MODEL` undistorts them.
    """
    ims = registered_images(rec)
    split = holdout_split([im.name for im in ims], holdout_every)
    frames = []
    for im, sp in zip(ims, split):
        cam = rec.cameras[im.camera_id]
        if cam.model_name not in PINHOLE_MODELS:
            raise InputError(f"COLMAP camera {cam.camera_id} is {cam.model_name} (lens distortion), not PINHOLE: undistort "
                             f"the model first with `realsim poses IMAGES --colmap MODEL -o WORKDIR`")
        frames.append(CameraFrame(im.name, np.asarray(cam.calibration_matrix(), np.float64), viewmat_of(im), int(cam.width),
                                  int(cam.height), sp, int(im.camera_id)))
    return CameraSet(frames, images_dir)


def load_sfm_points(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """SfM points of a poses WORKDIR or scene bundle (its sparse/0): xyz [P,3] float32 world frame, rgb [P,3] uint8."""
    return read_points(path)
