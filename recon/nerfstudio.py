"""nerfstudio `transforms.json` in and out (OpenGL camera-to-world; global or per-frame intrinsics with OpenCV distortion)."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realsim.assets.atomic import write_text_atomic
from realsim.assets.config import read_json
from realsim.assets.errors import InputError
from realsim.assets.frames import c2w_opengl_to_viewmat, viewmat_to_c2w_opengl

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
DIST_KEYS = {"OPENCV": ("k1", "k2", "p1", "p2"), "OPENCV_FISHEYE": ("k1", "k2", "k3", "k4")}


@dataclass
class NsFrame:
    """One frame of a transforms.json: image path, pinhole+distortion intrinsics, OpenCV world-to-camera."""

    path: Path  # absolute image path
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    model: str  # "PINHOLE" | "OPENCV" | "OPENCV_FISHEYE"
    dist: tuple[float, ...]
    viewmat: np.ndarray  # [4,4]


def read_transforms(path: str | os.PathLike) -> tuple[list[NsFrame], Path | None]:
    """Parse transforms.json -> frames and the point cloud PLY it names (None when it names none)."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    data = read_json(path, "nerfstudio transforms file")
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise InputError(f"{path} is not a nerfstudio transforms.json (no 'frames' list)")
    root = path.parent
    frames: list[NsFrame] = []
    for i, fr in enumerate(data["frames"]):
        try:
            get = lambda k, d=None: fr.get(k, data.get(k, d))  # noqa: E731  per-frame values override global ones
            w, h = get("w"), get("h")
            if w is None or h is None:
                from PIL import Image

                with Image.open(root / fr["file_path"]) as im:
                    w, h = im.size
            fx = get("fl_x")
            if fx is None and get("camera_angle_x") is not None:  # NeRF-synthetic (Blender) layout
                fx = 0.5 * float(w) / math.tan(0.5 * float(get("camera_angle_x")))
            fy = get("fl_y", fx)
            cx, cy = get("cx", float(w) / 2), get("cy", float(h) / 2)
            model = str(get("camera_model", "OPENCV")).upper()
            if model not in ("OPENCV", "OPENCV_FISHEYE", "PINHOLE"):
                raise ValueError(f"camera_model {model} is not supported (OPENCV, OPENCV_FISHEYE)")
            dist = tuple(float(get(k, 0.0)) for k in DIST_KEYS.get(model, ()))
            if model == "OPENCV" and not any(dist):
                model, dist = "PINHOLE", ()
            c2w = np.asarray(fr["transform_matrix"], dtype=np.float64)
            if c2w.shape not in ((4, 4), (3, 4)) or not np.isfinite(c2w).all():
                raise ValueError("transform_matrix must be 4x4 finite numbers")
            fp = Path(fr["file_path"])
            p = fp if fp.is_absolute() else root / fp
            if not p.suffix and not p.exists():  # Blender sets omit the extension
                p = p.with_suffix(".png")
            frames.append(NsFrame(p, int(w), int(h), float(fx), float(fy), float(cx), float(cy), model, dist,
                                  c2w_opengl_to_viewmat(c2w)))
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise InputError(f"{path}: frame {i} is malformed: {e}") from None
    if len(frames) < 3:
        raise InputError(f"{path} has {len(frames)} frame(s); at least 3 are needed")
    missing = [str(f.path) for f in frames if not f.path.is_file()]
    if missing:
        raise InputError(f"{path}: {len(missing)} image(s) listed but missing, e.g. {missing[0]}")
    ply = data.get("ply_file_path")
    return frames, ((root / ply) if ply else None)


def frames_to_reconstruction(frames: list[NsFrame], names: list[str]):
    """A pycolmap.Reconstruction holding the given cameras and poses (no points); one camera per distinct intrinsics."""
    import pycolmap

    rec = pycolmap.Reconstruction()
    cam_ids: dict[tuple, int] = {}
    for i, (f, name) in enumerate(zip(frames, names), start=1):
        key = (f.width, f.height, f.fx, f.fy, f.cx, f.cy, f.model, f.dist)
        if key not in cam_ids:
            cid = len(cam_ids) + 1
            params = [f.fx, f.fy, f.cx, f.cy, *f.dist]
            cam = pycolmap.Camera(camera_id=cid, model=f.model, width=f.width, height=f.height, params=params)
            rec.add_camera_with_trivial_rig(cam)
            cam_ids[key] = cid
        im = pycolmap.Image(name=name, camera_id=cam_ids[key], image_id=i)
        rec.add_image_with_trivial_frame(im, pycolmap.Rigid3d(f.viewmat[:3, :4]))
    return rec


def write_transforms(path: str | os.PathLike, cams, ply_name: str | None = None,
                     image_ids: dict[str, int] | None = None) -> None:
    """transforms.json for undistorted cameras (assets.cameras.CameraSet) whose images sit in cams.images_dir.

    `image_ids` (image name -> COLMAP image id of the sparse model) fills each frame's colmap_im_id. The train/test split
    of cameras.json goes into top-level train_filenames / val_filenames / test_filenames (nerfstudio reads those lists,
    not a per-frame "split"; once one list is given it needs the one for every split it loads, and evaluates on "val"
    while training, so val = test). Without held-out views no lists are written and nerfstudio splits by itself.
    """
    frames = []
    for f in cams.frames:
        K = np.asarray(f.K, dtype=float)
        fr = {
            "file_path": f"{cams.images_dir}/{f.name}",
            "transform_matrix": viewmat_to_c2w_opengl(f.viewmat).tolist(),
            "fl_x": float(K[0, 0]), "fl_y": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
            "w": int(f.width), "h": int(f.height), "camera_model": "OPENCV",
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "split": f.split,
        }
        if image_ids is not None and f.name in image_ids:
            fr["colmap_im_id"] = int(image_ids[f.name])
        frames.append(fr)
    data: dict = {"camera_model": "OPENCV", "frames": frames}
    if ply_name:
        data["ply_file_path"] = ply_name
    test = [fr["file_path"] for fr in frames if fr["split"] == "test"]
    if test:
        data["train_filenames"] = [fr["file_path"] for fr in frames if fr["split"] != "test"]
        data["val_filenames"] = test
        data["test_filenames"] = test
    write_text_atomic(path, json.dumps(data, indent=1))


def write_points_ply(path: str | os.PathLike, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Binary PLY point cloud (x y z float, red green blue uchar): what nerfstudio's ply_file_path expects."""
    from plyfile import PlyData, PlyElement

    v = np.empty(len(xyz), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    v["x"], v["y"], v["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    v["red"], v["green"], v["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    PlyData([PlyElement.describe(v, "vertex")]).write(str(path))


def read_points_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """xyz [P,3] float32, rgb [P,3] uint8 from a PLY point cloud (grey when it has no colours)."""
    from plyfile import PlyData

    try:
        v = PlyData.read(str(path))["vertex"]
        xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32)
        names = v.data.dtype.names
        rgb = (np.stack([v["red"], v["green"], v["blue"]], 1).astype(np.uint8) if "red" in names
               else np.full((len(xyz), 3), 128, np.uint8))
    except Exception as e:  # plyfile raises several types for malformed files
        raise InputError(f"cannot read point cloud {path}: {e}") from None
    return xyz, rgb
