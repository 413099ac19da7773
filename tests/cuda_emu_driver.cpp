// Host-emulation driver for tests/test_cuda_build.py: compiles realsim's CUDA kernel sources as plain C++ (g++,
// RS_CUDA_EMULATION) and exposes C entry points that run the very same kernel bodies on the CPU — per-element functions
// in loops for projection / tile intersection, the block kernels of the rasterizer through tests/cuda_emu.h.
// cub's scan and radix sort are not emulated (the Python side does them with numpy). Loaded with ctypes.
#define RS_CUDA_EMULATION 1
#include "cuda_emu.h"

#include "cuda_isect.cu"
#include "cuda_project.cu"
#include "cuda_rasterize.cu"

using namespace realsim_cuda;

namespace {

template <typename T>
void project_fwd(const T* means, const T* quats, const T* scales, const T* opac, const T* viewmats, const T* Ks, int C,
                 int N, int W, int H, double eps2d, double near, double far, int aa, int32_t* radii, T* means2d,
                 T* depths, T* conics, T* comps) {
    for (int64_t idx = 0; idx < int64_t(C) * N; ++idx)
        project_forward_one<T>(idx, means, quats, scales, opac, viewmats, Ks, N, W, H, T(eps2d), T(near), T(far),
                               aa != 0, radii, means2d, depths, conics, comps);
}

// The real backward kernel (blocks of kProjectBlock threads, warp reduction of the viewmat gradient; v_view may be null).
template <typename T>
void project_bwd(const T* means, const T* quats, const T* scales, const T* viewmats, const T* Ks, int C, int N, int W,
                 int H, double eps2d, int aa, const int32_t* radii, const T* conics, const T* comps, const T* v_m2,
                 const T* v_d, const T* v_c, const T* v_comp, T* v_means, T* v_quats, T* v_scales, T* v_view) {
    const int64_t total = int64_t(C) * N;
    rs_emu::launch(dim3(div_up(total, kProjectBlock), 1, 1), dim3(kProjectBlock, 1, 1), 0, [&] {
        project_backward_kernel<T>(means, quats, scales, viewmats, Ks, C, N, W, H, T(eps2d), aa != 0, radii, conics,
                                   comps, v_m2, v_d, v_c, v_comp, v_means, v_quats, v_scales, v_view);
    });
}

template <typename T>
void isect_count_all(const int32_t* radii, const T* means2d, int C, int N, int ts, int tw, int th, int32_t* tpg) {
    for (int64_t idx = 0; idx < int64_t(C) * N; ++idx) isect_count_one<T>(idx, radii, means2d, ts, tw, th, tpg);
}

template <typename T>
void isect_emit_all(const int32_t* radii, const T* means2d, const T* depths, const int64_t* cum, int C, int N, int ts,
                    int tw, int th, int tile_bits, int64_t* keys, int32_t* vals) {
    for (int64_t idx = 0; idx < int64_t(C) * N; ++idx)
        isect_emit_one<T>(idx, radii, means2d, depths, cum, N, ts, tw, th, tile_bits, keys, vals);
}

template <typename T, int D>
void raster_fwd(const T* m2, const T* con, const T* col, const T* op, const T* bg, const int32_t* radii,
                const int32_t* offs, const int32_t* flat, int C, int W, int H, int ts, int tw, int th, int64_t n_isects,
                T* rc, T* ra, int32_t* last) {
    rs_emu::launch(dim3(tw, th, C), dim3(ts, ts, 1), forward_smem_bytes<T, D>(ts), [&] {
        rasterize_forward_kernel<T, D>(m2, con, col, op, bg, radii, offs, flat, W, H, tw, th, n_isects, rc, ra, last);
    });
}

template <typename T, int D>
void raster_bwd(const T* m2, const T* con, const T* col, const T* op, const T* bg, const int32_t* radii,
                const int32_t* offs, const int32_t* flat, int C, int W, int H, int ts, int tw, int th, int64_t n_isects,
                const T* ra, const int32_t* last, const T* v_rc, const T* v_ra, T* v_m2, T* v_con, T* v_col, T* v_op,
                T* v_abs) {
    rs_emu::launch(dim3(tw, th, C), dim3(ts, ts, 1), backward_smem_bytes<T, D>(ts), [&] {
        rasterize_backward_kernel<T, D>(m2, con, col, op, bg, radii, offs, flat, W, H, tw, th, n_isects, ra, last,
                                        v_rc, v_ra, v_m2, v_con, v_col, v_op, v_abs);
    });
}

}  // namespace

#define RS_EMU_EXPORTS(T, SUF)                                                                                        \
    void emu_project_fwd_##SUF(const T* a, const T* b, const T* c, const T* d, const T* e, const T* f, int C, int N,  \
                               int W, int H, double eps, double nr, double fr, int aa, int32_t* r, T* m2, T* dp,     \
                               T* con, T* comp) {                                                                    \
        project_fwd<T>(a, b, c, d, e, f, C, N, W, H, eps, nr, fr, aa, r, m2, dp, con, comp);                         \
    }                                                                                                                 \
    void emu_project_bwd_##SUF(const T* a, const T* b, const T* c, const T* e, const T* f, int C, int N, int W, int H, \
                               double eps, int aa, const int32_t* r, const T* con, const T* comp, const T* v1,       \
                               const T* v2, const T* v3, const T* v4, T* o1, T* o2, T* o3, T* o4) {                  \
        project_bwd<T>(a, b, c, e, f, C, N, W, H, eps, aa, r, con, comp, v1, v2, v3, v4, o1, o2, o3, o4);            \
    }                                                                                                                 \
    void emu_isect_count_##SUF(const int32_t* r, const T* m2, int C, int N, int ts, int tw, int th, int32_t* tpg) {  \
        isect_count_all<T>(r, m2, C, N, ts, tw, th, tpg);                                                             \
    }                                                                                                                 \
    void emu_isect_emit_##SUF(const int32_t* r, const T* m2, const T* dp, const int64_t* cum, int C, int N, int ts,  \
                              int tw, int th, int tb, int64_t* k, int32_t* v) {                                       \
        isect_emit_all<T>(r, m2, dp, cum, C, N, ts, tw, th, tb, k, v);                                                \
    }                                                                                                                 \
    int emu_raster_fwd_##SUF(const T* m2, const T* con, const T* col, const T* op, const T* bg, const int32_t* r,    \
                             const int32_t* offs, const int32_t* flat, int C, int D, int W, int H, int ts, int tw,    \
                             int th, int64_t n, T* rc, T* ra, int32_t* last) {                                        \
        if (D == 3) raster_fwd<T, 3>(m2, con, col, op, bg, r, offs, flat, C, W, H, ts, tw, th, n, rc, ra, last);      \
        else if (D == 4) raster_fwd<T, 4>(m2, con, col, op, bg, r, offs, flat, C, W, H, ts, tw, th, n, rc, ra, last); \
        else return 1;                                                                                                \
        return 0;                                                                                                     \
    }                                                                                                                 \
    int emu_raster_bwd_##SUF(const T* m2, const T* con, const T* col, const T* op, const T* bg, const int32_t* r,    \
                             const int32_t* offs, const int32_t* flat, int C, int D, int W, int H, int ts, int tw,    \
                             int th, int64_t n, const T* ra, const int32_t* last, const T* vrc, const T* vra,        \
                             T* vm2, T* vcon, T* vcol, T* vop, T* vabs) {                                            \
        if (D == 3)                                                                                                   \
            raster_bwd<T, 3>(m2, con, col, op, bg, r, offs, flat, C, W, H, ts, tw, th, n, ra, last, vrc, vra, vm2,    \
                             vcon, vcol, vop, vabs);                                                                  \
        else if (D == 4)                                                                                              \
            raster_bwd<T, 4>(m2, con, col, op, bg, r, offs, flat, C, W, H, ts, tw, th, n, ra, last, vrc, vra, vm2,    \
                             vcon, vcol, vop, vabs);                                                                  \
        else                                                                                                          \
            return 1;                                                                                                 \
        return 0;                                                                                                     \
    }

extern "C" {
RS_EMU_EXPORTS(float, f32)
RS_EMU_EXPORTS(double, f64)
const char* emu_launch_limit_error(int threads, int64_t smem, int max_threads, int64_t max_smem) {
    return launch_limit_error("rasterize_backward", threads, static_cast<size_t>(smem), max_threads,
                              static_cast<size_t>(max_smem));
}
// Dynamic shared memory of the rasterizer's blocks (what the launch check compares with the device's limit).
int64_t emu_raster_smem_bytes(int backward, int f64, int D, int ts) {
    if (D != 64) return -1;
    if (f64) return static_cast<int64_t>(backward ? backward_smem_bytes<double, 64>(ts) : forward_smem_bytes<double, 64>(ts));
    return static_cast<int64_t>(backward ? backward_smem_bytes<float, 64>(ts) : forward_smem_bytes<float, 64>(ts));
}
void emu_isect_offsets(const int64_t* keys, int64_t n, int C, int n_tiles, int tile_bits, int32_t* offs) {
    for (int64_t i = 0; i <= n; ++i) isect_offsets_one(i, keys, n, n_tiles, tile_bits, int64_t(C) * n_tiles, offs);
}
}
