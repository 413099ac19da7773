"""COLMAP models <-> realsim cameras and points (through pycolmap; text or binary models are both read)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from realsim.assets.cameras import CameraFrame, CameraSet, holdout_split
from realsim.assets.errors import InputError


def read_model(path: str | os.PathLike):
    """A COLMAP model folder (cameras/images/points3D as .bin or .txt) -> pycolmap.Reconstruction."""
    import pycolmap

    p = Path(path)
    if p.is_dir() and not any((p / f"cameras.{e}").exists() for e in ("bin", "txt")):
        for sub in (p / "sparse" / "0", p / "sparse", p / "0"):
            if any((sub / f"cameras.{e}").exists() for e in ("bin", "txt")):
                p = sub
                break
    if not p.is_dir() or not any((p / f"cameras.{e}").exists() for e in ("bin", "txt")):
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
    C = -np.einsum("nji,nj->ni", R, Vs[:, :3, 3])
    return [im.name for im in ims], R, C


def points_of(rec) -> tuple[np.ndarray, np.ndarray]:
    """xyz [P,3] float32 and rgb [P,3] uint8 of a reconstruction's 3D points."""
    pts = list(rec.points3D.values())
    if not pts:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    xyz = np.stack([p.xyz for p in pts]).astype(np.float32)
    rgb = np.stack([p.color for p in pts]).astype(np.uint8)
    return xyz, rgb


def camera_set(rec, holdout_every: int = 8, images_dir: str = "images") -> CameraSet:
    """cameras.json records for the registered images of a PINHOLE (undistorted) model; test split every `holdout_every`."""
    ims = registered_images(rec)
    split = holdout_split([im.name for im in ims], holdout_every)
    frames = []
    for im, sp in zip(ims, split):
        cam = rec.cameras[im.camera_id]
        if cam.model_name not in ("PINHOLE", "SIMPLE_PINHOLE"):
            raise InputError(f"camera {cam.camera_id} is {cam.model_name}; undistort to PINHOLE before writing cameras.json")
        frames.append(CameraFrame(im.name, np.asarray(cam.calibration_matrix(), np.float64), viewmat_of(im), int(cam.width),
                                  int(cam.height), sp, int(im.camera_id)))
    return CameraSet(frames, images_dir)


def load_sfm_points(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """SfM points of a poses WORKDIR or scene bundle (its sparse/0): xyz [P,3] float32 world frame, rgb [P,3] uint8."""
    p = Path(path)
    model = p / "sparse" / "0" if (p / "sparse" / "0").is_dir() else p
    if not model.is_dir():
        raise InputError(f"{path}: no sparse/0 COLMAP model found (run `realsim poses` first)")
    return points_of(read_model(model))
