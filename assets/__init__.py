"""realsim.assets: file formats and shipped data (scene bundles, cameras.json, frames conventions, atomic writes).

Public API:
    RealsimError, InputError                      -- user-facing errors (one line, non-zero exit in the CLI)
    atomic_path, atomic_dir, write_text_atomic    -- write-then-rename helpers
    CameraFrame, CameraSet, load_cameras, save_cameras, holdout_split  -- cameras.json
    SceneInfo, WorldInfo, load_scene_info, save_scene_info, save_tensors, load_tensors  -- scene bundle
    ProgressFn, report                            -- progress callbacks (the library never prints)
    frames                                        -- OpenCV <-> OpenGL camera conversions, quaternions
"""
from . import frames
from .atomic import atomic_dir, atomic_path, write_bytes_atomic, write_text_atomic
from .cameras import CameraFrame, CameraSet, holdout_split, load_cameras, save_cameras
from .errors import InputError, RealsimError
from .progress import ProgressFn, report
from .scene import SceneInfo, WorldInfo, load_scene_info, load_tensors, save_scene_info, save_tensors

__all__ = [
    "frames", "atomic_dir", "atomic_path", "write_bytes_atomic", "write_text_atomic",
    "CameraFrame", "CameraSet", "holdout_split", "load_cameras", "save_cameras",
    "InputError", "RealsimError", "ProgressFn", "report",
    "SceneInfo", "WorldInfo", "load_scene_info", "load_tensors", "save_scene_info", "save_tensors",
]
