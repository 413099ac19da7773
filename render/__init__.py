"""realsim.render (public API documented here as it lands)."""

# Gaussian rasterization [kernels team]: rasterization(...) mirrors gsplat.rasterization (backends torch | cpu | cuda |
# gsplat | auto); spherical_harmonics(degree, dirs [...,3], coeffs [...,K,3]) -> [...,3] (caller adds 0.5, like gsplat).
from .rasterization import rasterization  # noqa: E402
from .sh import spherical_harmonics  # noqa: E402
# Scaffold-GS anchor prefilter [kernels team, CUDA side]: anchor_prefilter(anchors [M,3], radii [M] or scalar, viewmat [4,4],
# K [3,3], width, height, near_plane=0.01, pad=0.0, backend="auto") -> mask [M] bool (sphere meets the camera frustum;
# exact distance test; backends torch | cpu (C++/OpenMP) | cuda | auto).
from .prefilter import anchor_prefilter  # noqa: E402
# Camera paths, video and the 3D-guided video bundle [render team]: CameraPath (viewmats [T,4,4], Ks [T,3,3], width,
# height, fps); interp_path / orbit_path / spiral_path(frames, seconds, fps, ...); focus_point(viewmats, points=None);
# load_camera_path / save_camera_path (nerfstudio camera_path.json); VideoWriter(path, fps, width, height) (H.264 MP4,
# atomic); colorize_depth(depth, vmin, vmax); save_depth_png16(path, depth, scale); normals_from_depth(depth, K, alpha);
# write_video_bundle(render_fn, path, out_dir, streams, ...) -> summary (rgb/depth/normal/alpha MP4s, depth PNGs, cameras).
from .paths import (CameraPath, focus_point, interp_path, load_camera_path, look_at, orbit_path,  # noqa: E402
                    resample_path, save_camera_path, spiral_path)
from .video import VideoWriter, colorize_depth, normals_from_depth, read_video, save_depth_png16  # noqa: E402
from .bundle import write_video_bundle  # noqa: E402
# Mesh rendering and compositing [sim team]: render_mesh(vertices [V,3], faces [F,3], vertex_colors [V,3] | None, viewmat,
# K, width, height, config=MeshRenderConfig(near, shading "lambert"|"none", light_dir, ambient, ssaa), face_colors,
# background) -> {"rgb","depth","alpha","face_id","xyz","normal"} (z-buffer, near-plane clipping, pixel centres at +0.5);
# composite_layers(scene rgb/depth/alpha, mesh rgb/depth/alpha, background) -> {"rgb","depth","mesh_weight"} (per-pixel
# nearest depth wins, alpha-aware); unproject_depth(depth, viewmat, K) -> world points; contact_shadow(points, ground_z, ...).
from .mesh import MeshRenderConfig, render_mesh  # noqa: E402
from .composite import composite_layers, contact_shadow, unproject_depth  # noqa: E402
