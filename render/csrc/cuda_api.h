// Plain C++ entry points of realsim's CUDA kernels (raw device pointers, no torch/ATen types), so the .cu files compile
// stand-alone with nvcc; cuda_bindings.cpp wraps them into the ops of ops.h. The algorithm is exactly render/ref.py and
// the comment block of ops.h. Layouts are row-major and contiguous; C cameras, N Gaussians, D channels.
// Every kernel template is instantiated for T = float and T = double.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cuda_runtime_api.h>

namespace realsim_cuda {

// Constants of the algorithm (render/ref.py: ALPHA_MIN, ALPHA_MAX, T_MIN, EXTEND_MAX).
constexpr double kAlphaMin = 1.0 / 255.0;  // contributions with alpha below this are skipped
constexpr double kAlphaMax = 0.999;        // alpha is clamped to this
constexpr double kTransmittanceMin = 1e-4; // a pixel stops before a Gaussian that would bring T to <= this
constexpr double kExtendMax = 3.33;        // screen extent in standard deviations, at most

// Projection of 3D Gaussians into every camera (EWA splatting with a clamped perspective Jacobian).
// means [N,3], quats [N,4] (w,x,y,z, any norm), scales [N,3] linear, opacities [N], viewmats [C,4,4], Ks [C,3,3].
// Outputs: radii [C,N,2] int32 (0 = culled), means2d [C,N,2], depths [C,N], conics [C,N,3] (a,b,c of cov2d^-1),
// compensations [C,N] (ones unless antialiased).
template <typename T>
void project_forward(const T* means, const T* quats, const T* scales, const T* opacities, const T* viewmats,
                     const T* Ks, int C, int N, int width, int height, T eps2d, T near_plane, T far_plane,
                     bool antialiased, int32_t* radii, T* means2d, T* depths, T* conics, T* compensations,
                     cudaStream_t stream);

// Vector-Jacobian product of project_forward; culled entries contribute nothing. v_* inputs [C,N,...] must be valid
// (zeros allowed; v_compensations may be null). Grads are ACCUMULATED into v_means [N,3], v_quats [N,4], v_scales [N,3]
// and, when v_viewmats [C,4,4] is not null, into its rows 0-2 (d loss / d viewmat; ops.h gives the formula).
template <typename T>
void project_backward(const T* means, const T* quats, const T* scales, const T* viewmats, const T* Ks, int C, int N,
                      int width, int height, T eps2d, bool antialiased, const int32_t* radii, const T* conics,
                      const T* compensations, const T* v_means2d, const T* v_depths, const T* v_conics,
                      const T* v_compensations, T* v_means, T* v_quats, T* v_scales, T* v_viewmats,
                      cudaStream_t stream);

// Tile intersection, step 1: tiles each (camera, Gaussian) touches, x in [floor((mx-rx)/ts), ceil((mx+rx)/ts)) clamped
// to [0, tiles_w) (same for y). tiles_per_gauss [C*N] int32.
template <typename T>
void isect_count(const int32_t* radii, const T* means2d, int C, int N, int tile_size, int tiles_w, int tiles_h,
                 int32_t* tiles_per_gauss, cudaStream_t stream);

// Tile intersection, step 2 (after an int64 inclusive prefix sum cum_tiles of tiles_per_gauss, done by the binding):
// one (key, value) per intersection, written in Gaussian-index order;
// key = (camera << (32 + tile_bits)) | (tile << 32) | float32 bits of depth, value = camera * N + gaussian.
template <typename T>
void isect_emit(const int32_t* radii, const T* means2d, const T* depths, const int64_t* cum_tiles, int C, int N,
                int tile_size, int tiles_w, int tiles_h, int tile_bits, int64_t* keys, int32_t* vals,
                cudaStream_t stream);

// Stable LSD radix sort (cub) of (key, value) pairs over bits [0, end_bit): ascending camera, tile, depth; ties keep the
// emission (Gaussian index) order. cub's workspace convention: call with temp == nullptr to get *temp_bytes, then
// again with a buffer of that size.
void isect_sort(const int64_t* keys_in, const int32_t* vals_in, int64_t* keys_out, int32_t* vals_out, int64_t n,
                int end_bit, void* temp, size_t* temp_bytes, cudaStream_t stream);

// First index of every tile in the sorted list: offsets [C*tiles_h*tiles_w] int32 (a tile ends where the next starts,
// the last at n_isects).
void isect_offsets(const int64_t* sorted_keys, int64_t n_isects, int C, int n_tiles, int tile_bits, int32_t* offsets,
                   cudaStream_t stream);

// Channel counts the rasterizer is compiled for; the binding zero-pads colours to the next one (at most 64).
bool rasterize_supports_channels(int D);

// Largest tile size (32, 16 or 8; 0 if none) whose blocks (tile_size^2 threads and their shared memory) both
// rasterizer kernels for float64 (f64) or float32 and a compiled channel count D can run on the current device: the
// register budget of each build and the device's shared memory decide (sm_90: tile 32 does not fit every build).
int rasterize_max_tile(bool f64, int D);

// Front-to-back alpha blending of the depth-sorted Gaussians of every tile (one block per tile, one thread per pixel).
// means2d [C,N,2], conics [C,N,3], colors [C,N,D], opacities [C,N] (effective), backgrounds [C,D] or null,
// radii [C,N,2], offsets [C,th,tw], flatten_ids [n_isects]. Outputs render_colors [C,H,W,D], render_alphas [C,H,W],
// last_ids [C,H,W] int32 (index into flatten_ids of the last blended Gaussian, -1 if none).
template <typename T>
void rasterize_forward(const T* means2d, const T* conics, const T* colors, const T* opacities, const T* backgrounds,
                       const int32_t* radii, const int32_t* offsets, const int32_t* flatten_ids, int C, int D,
                       int width, int height, int tile_size, int tiles_w, int tiles_h, int64_t n_isects,
                       T* render_colors, T* render_alphas, int32_t* last_ids, cudaStream_t stream);

// Backward of rasterize_forward, back to front from each pixel's last Gaussian (T recovered by dividing by 1 - alpha).
// v_render_colors [C,H,W,D], v_render_alphas [C,H,W]. Grads ACCUMULATED into v_means2d [C,N,2], v_conics [C,N,3],
// v_colors [C,N,D], v_opacities [C,N], and v_means2d_abs [C,N,2] when not null (sum over pixels of |dL/dmeans2d|).
template <typename T>
void rasterize_backward(const T* means2d, const T* conics, const T* colors, const T* opacities, const T* backgrounds,
                        const int32_t* radii, const int32_t* offsets, const int32_t* flatten_ids, int C, int D,
                        int width, int height, int tile_size, int tiles_w, int tiles_h, int64_t n_isects,
                        const T* render_alphas, const int32_t* last_ids, const T* v_render_colors,
                        const T* v_render_alphas, T* v_means2d, T* v_conics, T* v_colors, T* v_opacities,
                        T* v_means2d_abs, cudaStream_t stream);

// Spherical harmonics (degrees 0-3, cuda_sh.cu; same values as cpu_sh.cpp and render/sh.py): colors [C,N,3] from
// coeffs [N,K,3] (K >= (degree+1)^2) toward dirs [C,N,3] (any norm, normalised with a 1e-12 floor).
template <typename T>
void sh_forward(int degree, const T* dirs, const T* coeffs, int C, int N, int K, T* colors, cudaStream_t stream);

// Backward of sh_forward: v_colors [C,N,3] -> v_coeffs [N,K,3] ACCUMULATED (summed over cameras; the binding zeroes it)
// and v_dirs [C,N,3] written. One thread per Gaussian (no atomics, deterministic).
template <typename T>
void sh_backward(int degree, const T* dirs, const T* coeffs, const T* v_colors, int C, int N, int K, T* v_coeffs,
                 T* v_dirs, cudaStream_t stream);

// Scaffold-GS anchor prefilter: mask[m] = 1 iff the sphere (anchors[m], radii[m]) meets the camera frustum
// {z >= near, -pad <= u <= width+pad, -pad <= v <= height+pad} (exact distance test of prefilter_common.h).
// anchors [M,3], radii [M], viewmat [4,4] and mask [M] on the device; K [3,3] on the HOST (the frustum is built there).
void anchor_prefilter(const float* anchors, const float* radii, int64_t M, const float* viewmat, const float* K,
                      int width, int height, float near_plane, float pad, bool* mask, cudaStream_t stream);

// Last error as text after a launch ("" when none): a launch refused by the checks below (set_launch_error), else
// cudaGetLastError's; the binding turns it into an exception.
const char* last_error();
void set_launch_error(const char* message);

// Why a block of `threads` threads with `smem` bytes of dynamic shared memory cannot run `kernel`, compiled for at most
// max_threads threads per block (its register use decides: cudaFuncAttributes::maxThreadsPerBlock), on a device that
// allows max_smem bytes per block (the opt-in maximum less the kernel's static shared memory); "" when it can.
// The text stays valid until the next call on the same thread. Defined in cuda_common.cuh (host code, no CUDA calls).
const char* launch_limit_error(const char* kernel, int threads, size_t smem, int max_threads, size_t max_smem);

}  // namespace realsim_cuda
