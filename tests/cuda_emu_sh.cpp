// Host-emulation driver for tests/test_sh_fused.py: render/csrc/cuda_sh.cu compiled as plain C++ (RS_CUDA_EMULATION,
// tests/cuda_emu.h), its real kernels launched block by block with std::threads; loaded with ctypes.
#define RS_CUDA_EMULATION 1
#include "cuda_emu.h"

#include "cuda_sh.cu"

using namespace realsim_cuda;

namespace {

template <typename T>
int sh_fwd(int degree, const T* dirs, const T* coeffs, int C, int N, int K, T* colors) {
    const int64_t total = int64_t(C) * N;
    return sh_dispatch_degree(degree, [&](auto deg) {
        rs_emu::launch(dim3(div_up(total, kShBlock), 1, 1), dim3(kShBlock, 1, 1), 0, [&] {
            sh_forward_kernel<T, decltype(deg)::value>(dirs, coeffs, C, N, K, colors);
        });
    }) ? 0 : 1;
}

template <typename T>
int sh_bwd(int degree, const T* dirs, const T* coeffs, const T* v_colors, int C, int N, int K, T* v_coeffs,
           T* v_dirs) {
    return sh_dispatch_degree(degree, [&](auto deg) {
        rs_emu::launch(dim3(div_up(N, kShBlock), 1, 1), dim3(kShBlock, 1, 1), 0, [&] {
            sh_backward_kernel<T, decltype(deg)::value>(dirs, coeffs, v_colors, C, N, K, v_coeffs, v_dirs);
        });
    }) ? 0 : 1;
}

}  // namespace

extern "C" {
int emu_sh_fwd_f32(int d, const float* a, const float* b, int C, int N, int K, float* o) {
    return sh_fwd<float>(d, a, b, C, N, K, o);
}
int emu_sh_fwd_f64(int d, const double* a, const double* b, int C, int N, int K, double* o) {
    return sh_fwd<double>(d, a, b, C, N, K, o);
}
int emu_sh_bwd_f32(int d, const float* a, const float* b, const float* v, int C, int N, int K, float* o1, float* o2) {
    return sh_bwd<float>(d, a, b, v, C, N, K, o1, o2);
}
int emu_sh_bwd_f64(int d, const double* a, const double* b, const double* v, int C, int N, int K, double* o1,
                   double* o2) {
    return sh_bwd<double>(d, a, b, v, C, N, K, o1, o2);
}
}
