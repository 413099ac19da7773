// realsim Gaussian-splatting ops: the torch-level signatures shared by the C++/OpenMP CPU extension (cpu_*.cpp, module
// built by render/_cpu.py) and the CUDA extension (same op names, different module). render/_functions.py wraps them in
// autograd.Functions in gsplat's decomposition: project -> isect_tiles -> rasterize, each fwd with its bwd.
//
// Conventions for every op:
//   * C cameras, N Gaussians, D colour channels, H x W image, tile_size T (8/16/32), tiles_w = ceil(W/T), tiles_h = ceil(H/T).
//   * All tensors contiguous (the ops check it; Python calls .contiguous()). "float" below means the scalar type S of means:
//     float32 or float64 on CPU (float64 is used by the gradcheck / parity tests); CUDA may support float32 only.
//   * Index tensors: int32 unless stated (isect_ids int64).
//   * The algorithm is exactly render/ref.py (the oracle):
//       - viewmats are OpenCV world-to-camera [C,4,4]; Ks [C,3,3] pinhole (fx, fy, cx, cy).
//       - cov3d = R(q) S S^T R(q)^T (q normalised inside), cov_cam = W cov3d W^T, J = [[fx/z, 0, -fx*u/z], [0, fy/z, -fy*v/z]]
//         with u = clamp(x/z, -(cx/fx + 0.3*tanx), (W-cx)/fx + 0.3*tanx), tanx = 0.5*W/fx (same for v); gradients through
//         a clamped u are zero. cov2d = J cov_cam J^T + eps2d*I; conic = inverse(cov2d) stored (a, b, c) = (00, 01, 11).
//       - compensation = sqrt(max(0, det(cov2d - eps2d I) / det(cov2d))) when antialiased, else 1.
//       - effective opacity o = opacity * compensation; culled (radii = 0) if z < near or z > far, det <= 0,
//         o < 1/255, or the box [mx +- rx] x [my +- ry] misses the image (mx + rx <= 0, mx - rx >= W, same for y).
//         rx = ceil(e * sqrt(cov2d_00)), ry = ceil(e * sqrt(cov2d_11)), e = min(3.33, sqrt(2 ln(255 o))): the box holds every
//         pixel with alpha >= 1/255, so tiling never changes the image.
//       - means2d = (fx x/z + cx, fy y/z + cy) (unclamped); depths = z (camera space, also for culled entries).
//       - pixel centre p = (x + 0.5, y + 0.5); d = means2d - p; sigma = 0.5 (a dx^2 + c dy^2) + b dx dy;
//         alpha = min(0.999, o exp(-sigma)); skip if sigma < 0 or alpha < 1/255 or |dx| > rx or |dy| > ry;
//         front to back in ascending depth (ties: lower index first); stop BEFORE a Gaussian whose blend would bring T
//         to <= 1e-4; colour = sum w_k c_k + T_final * background, alpha = 1 - T_final.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace realsim {

using at::Tensor;

// Projection of N Gaussians into C cameras.
//   means [N,3] S, quats [N,4] S (w,x,y,z, any norm), scales [N,3] S (linear), opacities [N] S (used only for the
//   opacity-aware extent), viewmats [C,4,4] S, Ks [C,3,3] S.
// Returns radii [C,N,2] int32 (0,0 = culled), means2d [C,N,2] S, depths [C,N] S, conics [C,N,3] S,
//   compensations [C,N] S (ones unless antialiased). means2d/conics of culled entries are unspecified (never read).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> project_fwd(const Tensor& means, const Tensor& quats,
                                                               const Tensor& scales, const Tensor& opacities,
                                                               const Tensor& viewmats, const Tensor& Ks, int64_t width,
                                                               int64_t height, double eps2d, double near_plane,
                                                               double far_plane, bool antialiased);

// Vector-Jacobian product of project_fwd (culled entries contribute nothing).
//   radii, conics, compensations: outputs of project_fwd. v_means2d [C,N,2], v_depths [C,N], v_conics [C,N,3],
//   v_compensations [C,N] S (zeros allowed; v_compensations ignored unless antialiased).
// Returns v_means [N,3], v_quats [N,4], v_scales [N,3] S (summed over cameras), and v_viewmats [C,4,4] S when
//   viewmats_grad (else an undefined tensor, None): with p = R mu + t and Sc = R Sw R^T (R, t the top 3x4 of the
//   viewmat, any R, not only rotations), v_R = sum_n vp mu^T + 2 vSc R Sw, v_t = sum_n vp; the bottom row gets 0.
std::tuple<Tensor, Tensor, Tensor, Tensor> project_bwd(const Tensor& means, const Tensor& quats, const Tensor& scales,
                                               const Tensor& viewmats, const Tensor& Ks, int64_t width, int64_t height,
                                               double eps2d, bool antialiased, const Tensor& radii,
                                               const Tensor& conics, const Tensor& compensations,
                                               const Tensor& v_means2d, const Tensor& v_depths,
                                               const Tensor& v_conics, const Tensor& v_compensations,
                                               bool viewmats_grad);

// Tile intersection with a per-tile depth sort (gsplat's isect_tiles + isect_offset_encode in one op).
//   means2d [C,N,2] S, radii [C,N,2] int32, depths [C,N] S. A Gaussian touches tiles
//   x in [floor((mx - rx)/T), ceil((mx + rx)/T)) clamped to [0, tiles_w) (same for y).
// Returns tiles_per_gauss [C,N] int32,
//   isect_ids [n_isects] int64 = (camera << (32 + tile_bits)) | (tile_id << 32) | float32 bits of depth (sorted ascending
//     by camera, tile, then depth; ties by Gaussian index), tile_bits = bit length of tiles_w*tiles_h,
//   flatten_ids [n_isects] int32 = camera * N + gaussian, in that order,
//   isect_offsets [C,tiles_h,tiles_w] int32: first index in flatten_ids of each tile (a tile ends where the next starts;
//     the last tile of the last camera ends at n_isects).
std::tuple<Tensor, Tensor, Tensor, Tensor> isect_tiles(const Tensor& means2d, const Tensor& radii, const Tensor& depths,
                                                       int64_t tile_size, int64_t tiles_w, int64_t tiles_h);

// Front-to-back alpha blending per tile with early termination.
//   means2d [C,N,2] S, conics [C,N,3] S, colors [C,N,D] S, opacities [C,N] S (effective: opacity * compensation),
//   backgrounds [C,D] S or None, radii [C,N,2] int32 (for the per-pixel box test), isect_offsets [C,th,tw] int32,
//   flatten_ids [n_isects] int32.
// Returns render_colors [C,H,W,D] S, render_alphas [C,H,W,1] S, last_ids [C,H,W] int32 (index into flatten_ids of the
//   last Gaussian blended into the pixel, -1 if none).
std::tuple<Tensor, Tensor, Tensor> rasterize_fwd(const Tensor& means2d, const Tensor& conics, const Tensor& colors,
                                                 const Tensor& opacities, const std::optional<Tensor>& backgrounds,
                                                 const Tensor& radii, int64_t width, int64_t height,
                                                 int64_t tile_size, const Tensor& isect_offsets,
                                                 const Tensor& flatten_ids);

// Backward of rasterize_fwd (back to front from each pixel's last Gaussian, T recovered by dividing by 1 - alpha).
//   render_alphas [C,H,W,1], last_ids [C,H,W]: outputs of rasterize_fwd; v_render_colors [C,H,W,D] S,
//   v_render_alphas [C,H,W,1] S (zeros allowed).
// Returns v_means2d [C,N,2], v_conics [C,N,3], v_colors [C,N,D], v_opacities [C,N] S, and v_means2d_abs [C,N,2]
//   (sum over pixels of |dL/dmeans2d| per pixel, gsplat's absgrad) or an undefined tensor (None) unless absgrad.
//   The background gradient is computed in Python: v_bg = sum_pixels v_render_colors * (1 - render_alphas).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> rasterize_bwd(
    const Tensor& means2d, const Tensor& conics, const Tensor& colors, const Tensor& opacities,
    const std::optional<Tensor>& backgrounds, const Tensor& radii, int64_t width, int64_t height, int64_t tile_size,
    const Tensor& isect_offsets, const Tensor& flatten_ids, const Tensor& render_alphas, const Tensor& last_ids,
    const Tensor& v_render_colors, const Tensor& v_render_alphas, bool absgrad);

// Spherical harmonics (degrees 0-3; cpu_sh.cpp and cuda_sh.cu, render/sh.py is the reference): colours [C,N,3] from
//   coefficients coeffs [N,K,3] (K >= (degree+1)^2) toward dirs [C,N,3] (any norm, normalised inside as
//   F.normalize does). No +0.5 offset (gsplat's convention).
Tensor sh_fwd(int64_t degree, const Tensor& dirs, const Tensor& coeffs);

// Backward of sh_fwd: v_colors [C,N,3] -> (v_coeffs [N,K,3] summed over cameras (zero beyond the degree's bases),
//   v_dirs [C,N,3]).
std::tuple<Tensor, Tensor> sh_bwd(int64_t degree, const Tensor& dirs, const Tensor& coeffs, const Tensor& v_colors);

// Scaffold-GS anchor prefilter (prefilter_cpu.cpp / prefilter_cuda.cu, render/prefilter.py is the reference): anchors [M,3],
//   radii [M], viewmat [4,4] float32, K [3,3] float32 (CPU) -> mask [M] bool, True where the sphere meets the camera frustum
//   widened by pad pixels.
Tensor anchor_prefilter(const Tensor& anchors, const Tensor& radii, const Tensor& viewmat, const Tensor& K, int64_t width,
                        int64_t height, double near_plane, double pad);

// Mesh z-buffer (mesh_cpu.cpp, render/mesh.py `_rasterize` is the reference): screen triangles uv [T,3,2] float32 (pixel
//   units), camera depths z [T,3] float32 (CPU) -> [H*W] int64, the nearest triangle whose perspective-correct depth is in
//   [0.999 near, far] at each pixel centre, -1 where none (ties: the lower index).
Tensor mesh_zbuffer(const Tensor& uv, const Tensor& z, int64_t width, int64_t height, double near_plane, double far_plane);

}  // namespace realsim
