// CUDA Scaffold-GS anchor prefilter: one thread per anchor, the exact sphere-frustum test of prefilter_common.h.
#include "cuda_common.cuh"
#include "prefilter_common.h"

namespace realsim_cuda {

namespace {

__global__ void anchor_prefilter_kernel(const float* __restrict__ anchors, const float* __restrict__ radii, int64_t M,
                                        realsim_prefilter::Frustum f, const float* __restrict__ viewmat,
                                        bool* __restrict__ mask) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= M) return;
    float p[3];
    realsim_prefilter::to_camera(viewmat, anchors + i * 3, p);
    mask[i] = realsim_prefilter::sphere_meets_frustum(f, p, radii[i]);
}

}  // namespace

void anchor_prefilter(const float* anchors, const float* radii, int64_t M, const float* viewmat, const float* K,
                      int width, int height, float near_plane, float pad, bool* mask, cudaStream_t stream) {
    if (M == 0) return;
    // K is tiny and lives on the host here (the binding copies it), so the frustum is built once on the CPU.
    const realsim_prefilter::Frustum f = realsim_prefilter::make_frustum(K, width, height, near_plane, pad);
    anchor_prefilter_kernel<<<div_up(M, 256), 256, 0, stream>>>(anchors, radii, M, f, viewmat, mask);
}

}  // namespace realsim_cuda
