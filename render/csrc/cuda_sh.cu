// CUDA spherical harmonics (degrees 0-3, gsplat's / 3DGS's real basis) toward per-camera view directions, fused
// forward and hand-derived backward: the same arithmetic as cpu_sh.cpp and render/sh.py. Forward: one thread per
// (camera, Gaussian). Backward: one thread per Gaussian looping over the cameras, so the coefficient gradient (summed
// over cameras) needs no atomics and is deterministic; the direction gradient is per (camera, Gaussian).
#include <type_traits>

#include "cuda_common.cuh"

namespace realsim_cuda {

namespace {

constexpr int kShBlock = 256;
constexpr double kShC0 = 0.28209479177387814, kShC1 = 0.4886025119029199;

// Basis values b[k] at unit direction (x, y, z); with db (16 x 3) also d b[k] / d(x, y, z).
template <typename T>
RS_HD void sh_basis_eval(int degree, T x, T y, T z, T* b, T (*db)[3]) {
    // (local arrays: namespace-scope constexpr arrays are not visible in device code; unrolled, these fold away)
    const T kShC2[5] = {T(1.0925484305920792), T(-1.0925484305920792), T(0.31539156525252005), T(-1.0925484305920792),
                        T(0.5462742152960396)};
    const T kShC3[7] = {T(-0.5900435899266435), T(2.890611442640554), T(-0.4570457994644658), T(0.3731763325901154),
                        T(-0.4570457994644658), T(1.445305721320277), T(-0.5900435899266435)};
    b[0] = T(kShC0);
    if (db) db[0][0] = db[0][1] = db[0][2] = T(0);
    if (degree < 1) return;
    b[1] = -T(kShC1) * y;
    b[2] = T(kShC1) * z;
    b[3] = -T(kShC1) * x;
    if (db) {
#pragma unroll
        for (int k = 1; k < 4; ++k) db[k][0] = db[k][1] = db[k][2] = T(0);
        db[1][1] = -T(kShC1);
        db[2][2] = T(kShC1);
        db[3][0] = -T(kShC1);
    }
    if (degree < 2) return;
    const T xx = x * x, yy = y * y, zz = z * z, xy = x * y, yz = y * z, xz = x * z;
    b[4] = T(kShC2[0]) * xy;
    b[5] = T(kShC2[1]) * yz;
    b[6] = T(kShC2[2]) * (T(2) * zz - xx - yy);
    b[7] = T(kShC2[3]) * xz;
    b[8] = T(kShC2[4]) * (xx - yy);
    if (db) {
        const T d2[5][3] = {{y, x, T(0)}, {T(0), z, y}, {-T(2) * x, -T(2) * y, T(4) * z}, {z, T(0), x},
                            {T(2) * x, -T(2) * y, T(0)}};
#pragma unroll
        for (int k = 0; k < 5; ++k)
#pragma unroll
            for (int a = 0; a < 3; ++a) db[4 + k][a] = T(kShC2[k]) * d2[k][a];
    }
    if (degree < 3) return;
    b[9] = T(kShC3[0]) * y * (T(3) * xx - yy);
    b[10] = T(kShC3[1]) * xy * z;
    b[11] = T(kShC3[2]) * y * (T(4) * zz - xx - yy);
    b[12] = T(kShC3[3]) * z * (T(2) * zz - T(3) * xx - T(3) * yy);
    b[13] = T(kShC3[4]) * x * (T(4) * zz - xx - yy);
    b[14] = T(kShC3[5]) * z * (xx - yy);
    b[15] = T(kShC3[6]) * x * (xx - T(3) * yy);
    if (db) {
        const T d3[7][3] = {{T(6) * xy, T(3) * xx - T(3) * yy, T(0)},
                            {yz, xz, xy},
                            {-T(2) * xy, T(4) * zz - xx - T(3) * yy, T(8) * yz},
                            {-T(6) * xz, -T(6) * yz, T(6) * zz - T(3) * xx - T(3) * yy},
                            {T(4) * zz - T(3) * xx - yy, -T(2) * xy, T(8) * xz},
                            {T(2) * xz, -T(2) * yz, xx - yy},
                            {T(3) * xx - T(3) * yy, -T(6) * xy, T(0)}};
#pragma unroll
        for (int k = 0; k < 7; ++k)
#pragma unroll
            for (int a = 0; a < 3; ++a) db[9 + k][a] = T(kShC3[k]) * d3[k][a];
    }
}

// Unit direction n of d and 1 / max(|d|, 1e-12) (F.normalize's rule); *norm gets |d|.
template <typename T>
RS_HD T sh_unit(const T* d, T* n, T* norm) {
    *norm = d_sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    const T inv = T(1) / d_max(*norm, T(1e-12));
#pragma unroll
    for (int a = 0; a < 3; ++a) n[a] = d[a] * inv;
    return inv;
}

// colors[i] (i = camera * N + gaussian) = sum_k b_k(dirs[i] / |dirs[i]|) coeffs[gaussian, k]. The degree is a
// template parameter so every loop unrolls and the basis stays in registers (no local-memory arrays).
template <typename T, int DEG>
RS_HD void sh_forward_one(int64_t i, const T* dirs, const T* coeffs, int N, int K, T* colors) {
    constexpr int nb = (DEG + 1) * (DEG + 1);
    T n[3], b[16], norm;
    sh_unit(dirs + i * 3, n, &norm);
    sh_basis_eval<T>(DEG, n[0], n[1], n[2], b, nullptr);
    const T* c = coeffs + (i % N) * int64_t(K) * 3;
    T acc[3] = {T(0), T(0), T(0)};
#pragma unroll
    for (int k = 0; k < nb; ++k)
#pragma unroll
        for (int ch = 0; ch < 3; ++ch) acc[ch] += b[k] * c[k * 3 + ch];
#pragma unroll
    for (int ch = 0; ch < 3; ++ch) colors[i * 3 + ch] = acc[ch];
}

// Gaussian g over all cameras: v_coeffs[g] += b v^T (rows beyond the degree's bases untouched), v_dirs[c, g] through
// the normalisation: (vn - n (n . vn)) / |d| (below the 1e-12 floor n = d * 1e12 is linear: vn * 1e12).
template <typename T, int DEG>
RS_HD void sh_backward_one(int64_t g, const T* dirs, const T* coeffs, const T* v_colors, int C, int N, int K,
                           T* v_coeffs, T* v_dirs) {
    constexpr int nb = (DEG + 1) * (DEG + 1);
    const T* c = coeffs + g * int64_t(K) * 3;
    T* gc = v_coeffs + g * int64_t(K) * 3;
    for (int cam = 0; cam < C; ++cam) {
        const int64_t i = int64_t(cam) * N + g;
        T n[3], b[16], db[16][3], norm;
        const T inv = sh_unit(dirs + i * 3, n, &norm);
        sh_basis_eval<T>(DEG, n[0], n[1], n[2], b, db);
        const T* v = v_colors + i * 3;
        T vn[3] = {T(0), T(0), T(0)};
#pragma unroll
        for (int k = 0; k < nb; ++k) {
            T vb = T(0);
#pragma unroll
            for (int ch = 0; ch < 3; ++ch) {
                gc[k * 3 + ch] += b[k] * v[ch];
                vb += c[k * 3 + ch] * v[ch];
            }
#pragma unroll
            for (int a = 0; a < 3; ++a) vn[a] += vb * db[k][a];
        }
        const T dot = norm > T(1e-12) ? n[0] * vn[0] + n[1] * vn[1] + n[2] * vn[2] : T(0);
#pragma unroll
        for (int a = 0; a < 3; ++a) v_dirs[i * 3 + a] = (vn[a] - n[a] * dot) * inv;
    }
}

#if defined(__CUDACC__) || defined(RS_CUDA_EMULATION)
template <typename T, int DEG>
__global__ void __launch_bounds__(kShBlock) sh_forward_kernel(const T* __restrict__ dirs, const T* __restrict__ coeffs,
                                                              int C, int N, int K, T* __restrict__ colors) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= static_cast<int64_t>(C) * N) return;
    sh_forward_one<T, DEG>(i, dirs, coeffs, N, K, colors);
}

template <typename T, int DEG>
__global__ void __launch_bounds__(kShBlock) sh_backward_kernel(const T* __restrict__ dirs,
                                                               const T* __restrict__ coeffs,
                                                               const T* __restrict__ v_colors, int C, int N, int K,
                                                               T* __restrict__ v_coeffs, T* __restrict__ v_dirs) {
    const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (g >= N) return;
    sh_backward_one<T, DEG>(g, dirs, coeffs, v_colors, C, N, K, v_coeffs, v_dirs);
}

// fn(std::integral_constant<int, DEG>) for a runtime degree 0-3; false (nothing called) for any other degree.
template <typename F>
inline bool sh_dispatch_degree(int degree, F&& fn) {
    switch (degree) {
        case 0: fn(std::integral_constant<int, 0>()); return true;
        case 1: fn(std::integral_constant<int, 1>()); return true;
        case 2: fn(std::integral_constant<int, 2>()); return true;
        case 3: fn(std::integral_constant<int, 3>()); return true;
        default: return false;
    }
}
#endif  // __CUDACC__ || RS_CUDA_EMULATION

}  // namespace

#if defined(__CUDACC__)
template <typename T>
void sh_forward(int degree, const T* dirs, const T* coeffs, int C, int N, int K, T* colors, cudaStream_t stream) {
    const int64_t total = static_cast<int64_t>(C) * N;
    if (total == 0) return;
    const bool ok = sh_dispatch_degree(degree, [&](auto deg) {
        sh_forward_kernel<T, decltype(deg)::value><<<div_up(total, kShBlock), kShBlock, 0, stream>>>(dirs, coeffs, C,
                                                                                                      N, K, colors);
    });
    if (!ok) set_launch_error("sh degree must be 0..3");
}

template <typename T>
void sh_backward(int degree, const T* dirs, const T* coeffs, const T* v_colors, int C, int N, int K, T* v_coeffs,
                 T* v_dirs, cudaStream_t stream) {
    if (N == 0 || C == 0) return;
    const bool ok = sh_dispatch_degree(degree, [&](auto deg) {
        sh_backward_kernel<T, decltype(deg)::value><<<div_up(N, kShBlock), kShBlock, 0, stream>>>(
            dirs, coeffs, v_colors, C, N, K, v_coeffs, v_dirs);
    });
    if (!ok) set_launch_error("sh degree must be 0..3");
}

#define RS_INSTANTIATE_SH(T)                                                                                        \
    template void sh_forward<T>(int, const T*, const T*, int, int, int, T*, cudaStream_t);                          \
    template void sh_backward<T>(int, const T*, const T*, const T*, int, int, int, T*, T*, cudaStream_t);
RS_INSTANTIATE_SH(float)
RS_INSTANTIATE_SH(double)
#undef RS_INSTANTIATE_SH
#endif  // __CUDACC__

}  // namespace realsim_cuda
