// Small device helpers shared by realsim's CUDA kernels (plain CUDA C++, no torch), templated on the scalar type.
// The per-element kernel bodies are RS_HD functions: under nvcc they are __host__ __device__; compiled as plain C++
// (no __CUDACC__, tests/test_cuda_build.py's host emulation) they are ordinary inline functions and atomics are plain
// adds, so their arithmetic can be checked against the CPU kernels on a machine without a GPU.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "cuda_api.h"

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define RS_HD __host__ __device__ __forceinline__
// The block's dynamic shared memory (host emulation, RS_CUDA_EMULATION, defines its own).
#define RS_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#else
#define RS_HD inline
#endif

namespace realsim_cuda {

// Accumulate into global memory: atomicAdd on the device, a plain add in host emulation.
template <typename T>
RS_HD void rs_atomic_add(T* p, T v) {
#if defined(__CUDA_ARCH__) || defined(RS_CUDA_EMULATION)
    atomicAdd(p, v);
#else
    *p += v;
#endif
}

template <typename T>
struct M3 {  // 3x3 row-major matrix
    T m[3][3];
};

template <typename T>
RS_HD M3<T> m3_mul(const M3<T>& a, const M3<T>& b) {
    M3<T> r;
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) r.m[i][j] = a.m[i][0] * b.m[0][j] + a.m[i][1] * b.m[1][j] + a.m[i][2] * b.m[2][j];
    return r;
}

template <typename T>
RS_HD M3<T> m3_transpose(const M3<T>& a) {
    M3<T> r;
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) r.m[i][j] = a.m[j][i];
    return r;
}

// Rotation matrix of a unit quaternion (w, x, y, z).
template <typename T>
RS_HD M3<T> quat_to_rotmat(T w, T x, T y, T z) {
    M3<T> r;
    r.m[0][0] = T(1) - T(2) * (y * y + z * z);
    r.m[0][1] = T(2) * (x * y - w * z);
    r.m[0][2] = T(2) * (x * z + w * y);
    r.m[1][0] = T(2) * (x * y + w * z);
    r.m[1][1] = T(1) - T(2) * (x * x + z * z);
    r.m[1][2] = T(2) * (y * z - w * x);
    r.m[2][0] = T(2) * (x * z - w * y);
    r.m[2][1] = T(2) * (y * z + w * x);
    r.m[2][2] = T(1) - T(2) * (x * x + y * y);
    return r;
}

// Camera rotation R and translation t of a row-major 4x4 world-to-camera matrix.
template <typename T>
RS_HD void load_viewmat(const T* vm, M3<T>& R, T t[3]) {
#pragma unroll
    for (int i = 0; i < 3; ++i) {
#pragma unroll
        for (int j = 0; j < 3; ++j) R.m[i][j] = vm[i * 4 + j];
        t[i] = vm[i * 4 + 3];
    }
}

inline unsigned int div_up(int64_t a, int b) { return static_cast<unsigned int>((a + b - 1) / b); }

inline const char* launch_limit_error(const char* kernel, int threads, size_t smem, int max_threads,
                                      size_t max_smem) {
    static thread_local char buf[320];
    buf[0] = '\0';
    if (threads > max_threads) {
        std::snprintf(buf, sizeof(buf),
                      "%s needs %d threads per block (the tile's pixels) but its build allows %d on this GPU (register "
                      "use); use a smaller tile_size (16)", kernel, threads, max_threads);
    } else if (smem > max_smem) {
        std::snprintf(buf, sizeof(buf),
                      "%s needs %zu bytes of shared memory per block but this GPU allows %zu; use a smaller tile_size "
                      "or fewer colour channels", kernel, smem, max_smem);
    }
    return buf;
}

// Precision-matched math: float uses the single-precision functions, double the double ones.
RS_HD float d_sqrt(float x) { return sqrtf(x); }
RS_HD double d_sqrt(double x) { return sqrt(x); }
RS_HD float d_exp(float x) { return expf(x); }
RS_HD double d_exp(double x) { return exp(x); }
RS_HD float d_log(float x) { return logf(x); }
RS_HD double d_log(double x) { return log(x); }
RS_HD float d_ceil(float x) { return ceilf(x); }
RS_HD double d_ceil(double x) { return ceil(x); }
RS_HD float d_floor(float x) { return floorf(x); }
RS_HD double d_floor(double x) { return floor(x); }
RS_HD float d_abs(float x) { return fabsf(x); }
RS_HD double d_abs(double x) { return fabs(x); }
template <typename T>
RS_HD T d_min(T a, T b) { return a < b ? a : b; }
template <typename T>
RS_HD T d_max(T a, T b) { return a > b ? a : b; }

#if defined(__CUDACC__) || defined(RS_CUDA_EMULATION)
// Sum of a value over the 32 lanes of a warp (all lanes must call it); lane 0 gets the total.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}
#endif

}  // namespace realsim_cuda
