"""realsim.assets: file formats and shipped data (scene bundles, cameras.json, frames conventions, atomic writes).

Public API:
    RealsimError, InputError                      -- user-facing errors (one line, non-zero exit in the CLI)
    atomic_path, atomic_dir, write_text_atomic    -- write-then-rename helpers
    CameraFrame, CameraSet, load_cameras, save_cameras, holdout_split  -- cameras.json
    SceneInfo, WorldInfo, load_scene_info, save_scene_info, save_tensors, load_tensors  -- scene bundle
    ProgressFn, report                            -- progress callbacks (the library never prints)
    frames                                        -- OpenCV <-> OpenGL camera conversions, camera_center, quaternions
    read_json(path, what, keys)                   -- JSON input with one-line errors (missing, corrupt, foreign)
    ConfigDict, config_to_dict, config_from_dict  -- config dataclasses <-> JSON-ready dicts
    GaussianCloud, read_ply, write_ply            -- standard 3DGS PLY (means, quats wxyz, linear scales, opacities, sh)
    read_splat, write_splat                       -- antimatter15 .splat (32 bytes per Gaussian)
    BVH, read_bvh, parse_bvh, write_bvh           -- motion capture; BVH.local_transforms()
    Skeleton                                      -- names, parents, offsets (m); fk(local_rot, root_pos); coco17()

OpenMP wait policy: importing realsim (any subpackage: all import realsim.assets first) before torch sets
OMP_WAIT_POLICY=PASSIVE unless the environment already sets it. torch's OpenMP threads (which also run realsim's C++
kernels) then sleep at a barrier instead of spinning, so on a shared or busy CPU a waiting thread does not take the core
its partner needs (bench/results/rasterize_wait_policy.json). libgomp reads the variable once, when torch loads it:
importing torch before realsim keeps libgomp's default.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# The imports below come after the environment default on purpose (see above).
from . import frames  # noqa: E402
from .atomic import atomic_dir, atomic_path, write_bytes_atomic, write_text_atomic  # noqa: E402
from .bvh import BVH, parse_bvh, read_bvh, write_bvh  # noqa: E402
from .config import ConfigDict, config_from_dict, config_to_dict, read_json  # noqa: E402
from .cameras import CameraFrame, CameraSet, holdout_split, load_cameras, save_cameras  # noqa: E402
from .errors import InputError, RealsimError  # noqa: E402
from .ply import GaussianCloud, read_ply, write_ply  # noqa: E402
from .progress import ProgressFn, report  # noqa: E402
from .scene import SceneInfo, WorldInfo, load_scene_info, load_tensors, save_scene_info, save_tensors  # noqa: E402
from .skeleton import Skeleton  # noqa: E402
from .splat import read_splat, write_splat  # noqa: E402

__all__ = [
    "frames", "read_json", "ConfigDict", "config_to_dict", "config_from_dict", "atomic_dir", "atomic_path", "write_bytes_atomic", "write_text_atomic",
    "CameraFrame", "CameraSet", "holdout_split", "load_cameras", "save_cameras",
    "InputError", "RealsimError", "ProgressFn", "report",
    "SceneInfo", "WorldInfo", "load_scene_info", "load_tensors", "save_scene_info", "save_tensors",
    "GaussianCloud", "read_ply", "write_ply", "read_splat", "write_splat",
    "BVH", "parse_bvh", "read_bvh", "write_bvh", "Skeleton",
]
