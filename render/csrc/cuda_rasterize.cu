// Tile rasterizer: one thread block per (camera, tile), one thread per pixel. Forward blends the tile's depth-sorted
// Gaussians front to back with early termination; backward walks them back to front from each pixel's last one,
// recovering the transmittance by division, and accumulates per-Gaussian gradients (warp-reduced, then atomics).
#include "cuda_common.cuh"

namespace realsim_cuda {

namespace {

// Per-Gaussian data staged in shared memory for one batch.
template <typename T>
struct Splat {
    T u, v, opacity;
    T ca, cb, cc;  // conic
    T rx, ry;      // screen box half-extent (pixels whose centre is outside are skipped)
};

template <typename T>
__device__ __forceinline__ Splat<T> load_splat(const T* means2d, const T* conics, const T* opacities,
                                               const int32_t* radii, int64_t g) {
    Splat<T> s;
    s.u = means2d[g * 2];
    s.v = means2d[g * 2 + 1];
    s.opacity = opacities[g];
    s.ca = conics[g * 3];
    s.cb = conics[g * 3 + 1];
    s.cc = conics[g * 3 + 2];
    s.rx = static_cast<T>(radii[g * 2]);
    s.ry = static_cast<T>(radii[g * 2 + 1]);
    return s;
}

// alpha of splat s at a pixel centre with offset (dx, dy) = mean - pixel; false when the pixel is skipped
// (sigma < 0, outside the box, or alpha < 1/255). vis = exp(-sigma).
template <typename T>
__device__ __forceinline__ bool splat_alpha(const Splat<T>& s, T dx, T dy, T& vis, T& alpha) {
    const T sigma = T(0.5) * (s.ca * dx * dx + s.cc * dy * dy) + s.cb * dx * dy;
    if (sigma < T(0) || d_abs(dx) > s.rx || d_abs(dy) > s.ry) return false;
    vis = d_exp(-sigma);
    alpha = d_min(T(kAlphaMax), s.opacity * vis);
    return alpha >= T(kAlphaMin);
}

template <typename T, int D>
__global__ void rasterize_forward_kernel(const T* __restrict__ means2d, const T* __restrict__ conics,
                                         const T* __restrict__ colors, const T* __restrict__ opacities,
                                         const T* __restrict__ backgrounds, const int32_t* __restrict__ radii,
                                         const int32_t* __restrict__ offsets, const int32_t* __restrict__ flatten_ids,
                                         int width, int height, int tiles_w, int tiles_h, int64_t n_isects,
                                         T* __restrict__ render_colors, T* __restrict__ render_alphas,
                                         int32_t* __restrict__ last_ids) {
    RS_DYNAMIC_SMEM(smem_raw);
    const int block_size = blockDim.x * blockDim.y;
    Splat<T>* s_splats = reinterpret_cast<Splat<T>*>(smem_raw);
    int32_t* s_ids = reinterpret_cast<int32_t*>(s_splats + block_size);

    const int cam = blockIdx.z;
    const int64_t tile_id = (static_cast<int64_t>(cam) * tiles_h + blockIdx.y) * tiles_w + blockIdx.x;
    const int64_t n_tiles_total = static_cast<int64_t>(gridDim.z) * tiles_h * tiles_w;
    const int px = blockIdx.x * blockDim.x + threadIdx.x;
    const int py = blockIdx.y * blockDim.y + threadIdx.y;
    const int tr = threadIdx.y * blockDim.x + threadIdx.x;
    const bool inside = px < width && py < height;
    const int64_t pix = (static_cast<int64_t>(cam) * height + py) * width + px;
    const T fx = static_cast<T>(px) + T(0.5), fy = static_cast<T>(py) + T(0.5);

    const int start = offsets[tile_id];
    const int end = tile_id + 1 < n_tiles_total ? offsets[tile_id + 1] : static_cast<int>(n_isects);

    T trans = T(1);
    T acc[D];
#pragma unroll
    for (int k = 0; k < D; ++k) acc[k] = T(0);
    int last = -1;
    bool done = !inside;

    for (int batch = start; batch < end; batch += block_size) {
        // Barrier before the shared batch is overwritten; stop when every pixel of the tile is finished.
        if (__syncthreads_count(done) == block_size) break;
        const int j = batch + tr;
        if (j < end) {
            const int32_t g = flatten_ids[j];
            s_ids[tr] = g;
            s_splats[tr] = load_splat(means2d, conics, opacities, radii, g);
        }
        __syncthreads();
        const int count = min(block_size, end - batch);
        for (int t = 0; t < count && !done; ++t) {
            const Splat<T> s = s_splats[t];
            T vis, alpha;
            if (!splat_alpha(s, s.u - fx, s.v - fy, vis, alpha)) continue;
            const T next_T = trans * (T(1) - alpha);
            if (next_T <= T(kTransmittanceMin)) {  // stop BEFORE this Gaussian
                done = true;
                break;
            }
            const T w = alpha * trans;
            const T* col = colors + static_cast<int64_t>(s_ids[t]) * D;
#pragma unroll
            for (int k = 0; k < D; ++k) acc[k] += col[k] * w;
            last = batch + t;
            trans = next_T;
        }
    }
    if (!inside) return;
    render_alphas[pix] = T(1) - trans;
    last_ids[pix] = last;
    T* out = render_colors + pix * D;
#pragma unroll
    for (int k = 0; k < D; ++k) out[k] = acc[k] + (backgrounds != nullptr ? trans * backgrounds[cam * D + k] : T(0));
}

template <typename T, int D>
__global__ void rasterize_backward_kernel(
    const T* __restrict__ means2d, const T* __restrict__ conics, const T* __restrict__ colors,
    const T* __restrict__ opacities, const T* __restrict__ backgrounds, const int32_t* __restrict__ radii,
    const int32_t* __restrict__ offsets, const int32_t* __restrict__ flatten_ids, int width, int height, int tiles_w,
    int tiles_h, int64_t n_isects, const T* __restrict__ render_alphas, const int32_t* __restrict__ last_ids,
    const T* __restrict__ v_render_colors, const T* __restrict__ v_render_alphas, T* __restrict__ v_means2d,
    T* __restrict__ v_conics, T* __restrict__ v_colors, T* __restrict__ v_opacities, T* __restrict__ v_means2d_abs) {
    RS_DYNAMIC_SMEM(smem_raw);
    const int block_size = blockDim.x * blockDim.y;
    Splat<T>* s_splats = reinterpret_cast<Splat<T>*>(smem_raw);
    T* s_colors = reinterpret_cast<T*>(s_splats + block_size);
    int32_t* s_ids = reinterpret_cast<int32_t*>(s_colors + block_size * D);
    int* s_warp_last = reinterpret_cast<int*>(s_ids + block_size);  // [32]

    const int cam = blockIdx.z;
    const int64_t tile_id = (static_cast<int64_t>(cam) * tiles_h + blockIdx.y) * tiles_w + blockIdx.x;
    const int64_t n_tiles_total = static_cast<int64_t>(gridDim.z) * tiles_h * tiles_w;
    const int px = blockIdx.x * blockDim.x + threadIdx.x;
    const int py = blockIdx.y * blockDim.y + threadIdx.y;
    const int tr = threadIdx.y * blockDim.x + threadIdx.x;
    const bool inside = px < width && py < height;
    const int64_t pix = (static_cast<int64_t>(cam) * height + py) * width + px;
    const T fx = static_cast<T>(px) + T(0.5), fy = static_cast<T>(py) + T(0.5);
    const unsigned lane = tr & 31u;

    const int start = offsets[tile_id];
    const int end = tile_id + 1 < n_tiles_total ? offsets[tile_id + 1] : static_cast<int>(n_isects);

    // Final transmittance and incoming gradients of this pixel.
    const T T_final = inside ? T(1) - render_alphas[pix] : T(1);
    T trans = T_final;
    const int last = inside ? last_ids[pix] : -1;
    T v_out[D];
    T bg_dot = T(0);  // sum_k bg_k v_out_k: d loss / d T_final through the background
#pragma unroll
    for (int k = 0; k < D; ++k) {
        v_out[k] = inside ? v_render_colors[pix * D + k] : T(0);
        if (backgrounds != nullptr) bg_dot += backgrounds[cam * D + k] * v_out[k];
    }
    const T v_out_alpha = inside ? v_render_alphas[pix] : T(0);
    T behind[D];  // colour blended by the Gaussians behind the current one (already visited)
#pragma unroll
    for (int k = 0; k < D; ++k) behind[k] = T(0);

    // Only list entries up to the largest last_id of the block matter.
    int warp_last = last;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) warp_last = max(warp_last, __shfl_xor_sync(0xffffffffu, warp_last, o));
    if (lane == 0) s_warp_last[tr >> 5] = warp_last;
    __syncthreads();
    int block_last = -1;
    for (int w = 0; w < (block_size + 31) / 32; ++w) block_last = max(block_last, s_warp_last[w]);
    const int stop = min(end, block_last + 1);

    for (int batch_end = stop; batch_end > start; batch_end -= block_size) {
        const int count = min(block_size, batch_end - start);
        __syncthreads();  // the previous batch is fully consumed
        // Load the batch reversed: slot t holds list index batch_end - 1 - t.
        if (tr < count) {
            const int32_t g = flatten_ids[batch_end - 1 - tr];
            s_ids[tr] = g;
            s_splats[tr] = load_splat(means2d, conics, opacities, radii, g);
            const T* col = colors + static_cast<int64_t>(g) * D;
#pragma unroll
            for (int k = 0; k < D; ++k) s_colors[tr * D + k] = col[k];
        }
        __syncthreads();
        for (int t = 0; t < count; ++t) {
            const Splat<T> s = s_splats[t];
            const T dx = s.u - fx, dy = s.v - fy;
            T vis = T(0), alpha = T(0);
            const bool valid = inside && batch_end - 1 - t <= last && splat_alpha(s, dx, dy, vis, alpha);
            if (!__any_sync(0xffffffffu, valid)) continue;  // warp-uniform
            T g_u = T(0), g_v = T(0), g_ca = T(0), g_cb = T(0), g_cc = T(0), g_op = T(0);
            T v_col[D];
#pragma unroll
            for (int k = 0; k < D; ++k) v_col[k] = T(0);
            if (valid) {
                const T ra = T(1) / (T(1) - alpha);
                trans *= ra;  // transmittance in front of this Gaussian
                const T w = alpha * trans;
                T v_alpha = T(0);
                const T* col = s_colors + t * D;
#pragma unroll
                for (int k = 0; k < D; ++k) {
                    v_col[k] = w * v_out[k];
                    v_alpha += (col[k] * trans - behind[k] * ra) * v_out[k];
                    behind[k] += col[k] * w;
                }
                v_alpha += T_final * ra * (v_out_alpha - bg_dot);
                if (s.opacity * vis <= T(kAlphaMax)) {  // alpha not clamped: it depends on opacity and sigma
                    const T v_sigma = -s.opacity * vis * v_alpha;
                    g_ca = T(0.5) * v_sigma * dx * dx;
                    g_cb = v_sigma * dx * dy;
                    g_cc = T(0.5) * v_sigma * dy * dy;
                    g_u = v_sigma * (s.ca * dx + s.cb * dy);
                    g_v = v_sigma * (s.cb * dx + s.cc * dy);
                    g_op = vis * v_alpha;
                }
            }
            // Warp-reduce, then one atomic per warp and quantity.
#pragma unroll
            for (int k = 0; k < D; ++k) v_col[k] = warp_sum(v_col[k]);
            T abs_u = T(0), abs_v = T(0);
            if (v_means2d_abs != nullptr) {
                abs_u = warp_sum(d_abs(g_u));
                abs_v = warp_sum(d_abs(g_v));
            }
            g_u = warp_sum(g_u);
            g_v = warp_sum(g_v);
            g_ca = warp_sum(g_ca);
            g_cb = warp_sum(g_cb);
            g_cc = warp_sum(g_cc);
            g_op = warp_sum(g_op);
            if (lane == 0) {
                const int64_t g = s_ids[t];
                T* vc = v_colors + g * D;
#pragma unroll
                for (int k = 0; k < D; ++k) rs_atomic_add(vc + k, v_col[k]);
                rs_atomic_add(v_means2d + g * 2, g_u);
                rs_atomic_add(v_means2d + g * 2 + 1, g_v);
                rs_atomic_add(v_conics + g * 3, g_ca);
                rs_atomic_add(v_conics + g * 3 + 1, g_cb);
                rs_atomic_add(v_conics + g * 3 + 2, g_cc);
                rs_atomic_add(v_opacities + g, g_op);
                if (v_means2d_abs != nullptr) {
                    rs_atomic_add(v_means2d_abs + g * 2, abs_u);
                    rs_atomic_add(v_means2d_abs + g * 2 + 1, abs_v);
                }
            }
        }
    }
}

// Dynamic shared memory of one block: forward [splats | ids], backward [splats | colours | ids | 32 warp maxima].
template <typename T, int D>
size_t forward_smem_bytes(int tile_size) {
    return static_cast<size_t>(tile_size) * tile_size * (sizeof(Splat<T>) + sizeof(int32_t));
}

template <typename T, int D>
size_t backward_smem_bytes(int tile_size) {
    return static_cast<size_t>(tile_size) * tile_size * (sizeof(Splat<T>) + sizeof(T) * D + sizeof(int32_t)) +
           32 * sizeof(int);
}

#if defined(__CUDACC__)
// Whether `kernel` can run blocks of `threads` threads with `smem` bytes of dynamic shared memory on the current device
// (register-limited threads per block, opt-in shared memory); if not, the reason is left for the binding's check.
template <typename K>
const char* block_limit(K* kernel, const char* name, int threads, size_t smem) {
    cudaFuncAttributes attr{};
    int dev = 0, optin = 0;
    if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess || cudaGetDevice(&dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess) {
        cudaGetLastError();
        return "";  // the launch itself will report the error
    }
    const size_t avail = static_cast<size_t>(optin) > attr.sharedSizeBytes ? optin - attr.sharedSizeBytes : 0;
    return launch_limit_error(name, threads, smem, attr.maxThreadsPerBlock, avail);
}

template <typename K>
bool block_fits(K* kernel, const char* name, int threads, size_t smem) {
    const char* err = block_limit(kernel, name, threads, smem);
    if (err[0] == '\0') return true;
    set_launch_error(err);
    return false;
}

// Largest tile (32, 16, 8) whose blocks both rasterizer kernels of (T, D) can run here; 0 if none.
template <typename T, int D>
int max_tile_for() {
    for (const int ts : {32, 16, 8}) {
        if (block_limit(rasterize_forward_kernel<T, D>, "", ts * ts, forward_smem_bytes<T, D>(ts))[0] == '\0' &&
            block_limit(rasterize_backward_kernel<T, D>, "", ts * ts, backward_smem_bytes<T, D>(ts))[0] == '\0')
            return ts;
    }
    return 0;
}

template <typename T, int D>
void launch_forward(const T* means2d, const T* conics, const T* colors, const T* opacities, const T* backgrounds,
                    const int32_t* radii, const int32_t* offsets, const int32_t* flatten_ids, int C, int width,
                    int height, int tile_size, int tiles_w, int tiles_h, int64_t n_isects, T* render_colors,
                    T* render_alphas, int32_t* last_ids, cudaStream_t stream) {
    const dim3 block(tile_size, tile_size, 1);
    const dim3 grid(tiles_w, tiles_h, C);
    const size_t smem = forward_smem_bytes<T, D>(tile_size);
    if (!block_fits(rasterize_forward_kernel<T, D>, "rasterize_forward", tile_size * tile_size, smem)) return;
    if (smem > 48 * 1024)
        cudaFuncSetAttribute(rasterize_forward_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem));
    rasterize_forward_kernel<T, D><<<grid, block, smem, stream>>>(means2d, conics, colors, opacities, backgrounds,
                                                                  radii, offsets, flatten_ids, width, height, tiles_w,
                                                                  tiles_h, n_isects, render_colors, render_alphas,
                                                                  last_ids);
}

template <typename T, int D>
void launch_backward(const T* means2d, const T* conics, const T* colors, const T* opacities, const T* backgrounds,
                     const int32_t* radii, const int32_t* offsets, const int32_t* flatten_ids, int C, int width,
                     int height, int tile_size, int tiles_w, int tiles_h, int64_t n_isects, const T* render_alphas,
                     const int32_t* last_ids, const T* v_render_colors, const T* v_render_alphas, T* v_means2d,
                     T* v_conics, T* v_colors, T* v_opacities, T* v_means2d_abs, cudaStream_t stream) {
    const dim3 block(tile_size, tile_size, 1);
    const dim3 grid(tiles_w, tiles_h, C);
    const size_t smem = backward_smem_bytes<T, D>(tile_size);
    if (!block_fits(rasterize_backward_kernel<T, D>, "rasterize_backward", tile_size * tile_size, smem)) return;
    if (smem > 48 * 1024)
        cudaFuncSetAttribute(rasterize_backward_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(smem));
    rasterize_backward_kernel<T, D><<<grid, block, smem, stream>>>(
        means2d, conics, colors, opacities, backgrounds, radii, offsets, flatten_ids, width, height, tiles_w, tiles_h,
        n_isects, render_alphas, last_ids, v_render_colors, v_render_alphas, v_means2d, v_conics, v_colors,
        v_opacities, v_means2d_abs);
}

#endif  // __CUDACC__

}  // namespace

// Channel counts with a compiled kernel; other D are zero-padded by the binding.
#define RS_FOR_EACH_D(CALL) \
    CALL(1) CALL(2) CALL(3) CALL(4) CALL(8) CALL(16) CALL(32) CALL(64)

bool rasterize_supports_channels(int D) {
#define RS_CASE(DD) if (D == DD) return true;
    RS_FOR_EACH_D(RS_CASE)
#undef RS_CASE
    return false;
}

#if defined(__CUDACC__)
template <typename T>
void rasterize_forward(const T* means2d, const T* conics, const T* colors, const T* opacities, const T* backgrounds,
                       const int32_t* radii, const int32_t* offsets, const int32_t* flatten_ids, int C, int D,
                       int width, int height, int tile_size, int tiles_w, int tiles_h, int64_t n_isects,
                       T* render_colors, T* render_alphas, int32_t* last_ids, cudaStream_t stream) {
    if (C == 0 || width == 0 || height == 0) return;
#define RS_CASE(DD)                                                                                                   \
    if (D == DD) {                                                                                                    \
        launch_forward<T, DD>(means2d, conics, colors, opacities, backgrounds, radii, offsets, flatten_ids, C, width, \
                              height, tile_size, tiles_w, tiles_h, n_isects, render_colors, render_alphas, last_ids,  \
                              stream);                                                                                \
        return;                                                                                                       \
    }
    RS_FOR_EACH_D(RS_CASE)
#undef RS_CASE
}

template <typename T>
void rasterize_backward(const T* means2d, const T* conics, const T* colors, const T* opacities, const T* backgrounds,
                        const int32_t* radii, const int32_t* offsets, const int32_t* flatten_ids, int C, int D,
                        int width, int height, int tile_size, int tiles_w, int tiles_h, int64_t n_isects,
                        const T* render_alphas, const int32_t* last_ids, const T* v_render_colors,
                        const T* v_render_alphas, T* v_means2d, T* v_conics, T* v_colors, T* v_opacities,
                        T* v_means2d_abs, cudaStream_t stream) {
    if (C == 0 || width == 0 || height == 0) return;
#define RS_CASE(DD)                                                                                                   \
    if (D == DD) {                                                                                                    \
        launch_backward<T, DD>(means2d, conics, colors, opacities, backgrounds, radii, offsets, flatten_ids, C,       \
                               width, height, tile_size, tiles_w, tiles_h, n_isects, render_alphas, last_ids,         \
                               v_render_colors, v_render_alphas, v_means2d, v_conics, v_colors, v_opacities,          \
                               v_means2d_abs, stream);                                                                \
        return;                                                                                                       \
    }
    RS_FOR_EACH_D(RS_CASE)
#undef RS_CASE
}

int rasterize_max_tile(bool f64, int D) {
#define RS_CASE(DD) \
    if (D == DD) return f64 ? max_tile_for<double, DD>() : max_tile_for<float, DD>();
    RS_FOR_EACH_D(RS_CASE)
#undef RS_CASE
    return 0;
}

#define RS_INSTANTIATE_RASTER(T)                                                                                      \
    template void rasterize_forward<T>(const T*, const T*, const T*, const T*, const T*, const int32_t*,             \
                                       const int32_t*, const int32_t*, int, int, int, int, int, int, int, int64_t,    \
                                       T*, T*, int32_t*, cudaStream_t);                                               \
    template void rasterize_backward<T>(const T*, const T*, const T*, const T*, const T*, const int32_t*,            \
                                        const int32_t*, const int32_t*, int, int, int, int, int, int, int, int64_t,   \
                                        const T*, const int32_t*, const T*, const T*, T*, T*, T*, T*, T*,             \
                                        cudaStream_t);
RS_INSTANTIATE_RASTER(float)
RS_INSTANTIATE_RASTER(double)
#undef RS_INSTANTIATE_RASTER

#endif  // __CUDACC__

}  // namespace realsim_cuda
