"""SYNTHETIC capture: a procedural street (ground, facades, props, procedural textures) photographed along a walk.

The demo's input when no real photos are given. Rendered by realsim's own mesh rasteriser (render/mesh.py) with textures
evaluated per pixel in world space (cobbles, slabs, bricks, plaster, windows, posters, wood, foliage), so structure from
motion finds plenty of features. Every file it writes says SYNTHETIC (file names and capture.json), and the exact cameras
are written beside the images as cameras_gt.json. World: +Z up, metres, the street runs along +Y, ground at z = 0.

Public API:
    CaptureConfig, make_capture(out_dir, cfg, overwrite, progress) -> out_dir   -- images/, cameras_gt.json, capture.json,
                                       geometry.safetensors (rig.py)
    walk_cameras(cfg) -> [viewmat]  -- the capture walk (rig.py)
    ProceduralScene, build_street(seed), sample_surface_points(scene, n, seed)  -- geometry (street.py)
    shade_scene(scene, xyz, normal, face_id) -> albedo   -- procedural textures (textures.py)
    render_view(scene, viewmat, K, width, height, ssaa) -> {"rgb", "depth"}  -- one view (view.py)
    pose_error_vs_ground_truth(est, gt) -> errors after a similarity alignment (evaluate.py)
"""
from .evaluate import pose_error_vs_ground_truth
from .rig import CaptureConfig, make_capture, walk_cameras
from .street import ProceduralScene, build_street, sample_surface_points
from .textures import shade_scene
from .view import render_view

__all__ = ["CaptureConfig", "make_capture", "walk_cameras", "ProceduralScene", "build_street", "sample_surface_points",
           "shade_scene", "render_view", "pose_error_vs_ground_truth"]
