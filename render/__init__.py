"""realsim.render: Gaussian rasterization (torch, C++/OpenMP CPU, CUDA, gsplat), camera paths, video, meshes, compositing.

Public API:
    rasterization(means, quats, scales, opacities, colors, viewmats, Ks, width, height, ..., backend="auto")
                                    -- mirrors gsplat.rasterization; backends torch | cpu | cuda | gsplat | auto
    spherical_harmonics(degree, dirs [...,3], coeffs [...,K,3]) -> [...,3]  -- the caller adds 0.5, as in gsplat
    anchor_prefilter(anchors [M,3], radii, viewmat, K, width, height, near_plane, pad, backend) -> mask [M] bool
                                    -- Scaffold-GS anchors whose sphere meets the camera frustum (exact distance test)
    CameraPath                      -- viewmats [T,4,4] (OpenCV world-to-camera), Ks [T,3,3], width, height, fps
    interp_path / orbit_path / spiral_path(frames, seconds, fps, ...), resample_path(path, seconds, fps)
    focus_point(viewmats, points=None), look_at(position, target, up) -> viewmat
    load_camera_path / save_camera_path  -- nerfstudio camera_path.json
    VideoWriter(path, fps, width, height) -- H.264 MP4, atomic; read_video(path) -> (frames, fps)
    colorize_depth(depth, vmin, vmax), save_depth_png16(path, depth, scale), normals_from_depth(depth, K, alpha)
    write_video_bundle(render_fn, path, out_dir, streams, ...) -> summary  -- rgb/depth/normal/alpha MP4s, depth PNGs,
                                       cameras.json, camera_path.json (render.streams.StreamWriter: the same bundle
                                       writer `simulate` uses, plus its masks/keypoints/trajectories)
    render_mesh(vertices, faces, vertex_colors, viewmat, K, width, height, MeshRenderConfig, ...)
                                    -- z-buffered triangles -> {"rgb","depth","alpha","face_id","xyz","normal"}
    composite_layers(scene rgb/depth/alpha, mesh rgb/depth/alpha, background) -> {"rgb","depth","mesh_weight"}
    unproject_depth(depth, viewmat, K) -> world points; contact_shadow(points, ground_z, centers, radii, ...)

Internal: `spline` (quaternion / Catmull-Rom maths behind `paths`), `camera_path` (CameraPath, its JSON I/O), `ref` (pure-torch reference), `_cpu` / `_cuda` / `_jit` (kernel builds from csrc/), `_functions` (autograd),
`gsplat_backend`, `limits` (frame-size guard).
"""
from .bundle import write_video_bundle
from .composite import composite_layers, contact_shadow, unproject_depth
from .mesh import MeshRenderConfig, render_mesh
from .paths import (CameraPath, focus_point, interp_path, load_camera_path, look_at, orbit_path, resample_path,
                    save_camera_path, spiral_path)
from .prefilter import anchor_prefilter
from .rasterization import rasterization
from .sh import spherical_harmonics
from .streams import StreamWriter
from .video import VideoWriter, colorize_depth, normals_from_depth, read_video, save_depth_png16

__all__ = [
    "rasterization", "spherical_harmonics", "anchor_prefilter",
    "CameraPath", "interp_path", "orbit_path", "spiral_path", "resample_path", "focus_point", "look_at",
    "load_camera_path", "save_camera_path",
    "VideoWriter", "read_video", "colorize_depth", "save_depth_png16", "normals_from_depth", "write_video_bundle",
    "StreamWriter",
    "render_mesh", "MeshRenderConfig", "composite_layers", "unproject_depth", "contact_shadow",
]
