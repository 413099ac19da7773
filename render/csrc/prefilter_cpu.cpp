// C++ CPU Scaffold-GS anchor prefilter (OpenMP over anchors): the exact sphere-frustum test of prefilter_common.h.
// Part of the CPU kernel module (cpu_kernels.cpp; bound in cpu_bindings.cpp, declared in ops.h).
#include <ATen/ATen.h>

#include "ops.h"
#include "prefilter_common.h"

namespace realsim {

// anchors [M,3] float32, radii [M] float32, viewmat [4,4] float32, K [3,3] float32 (all CPU, contiguous) -> mask [M] bool.
Tensor anchor_prefilter(const Tensor& anchors, const Tensor& radii, const Tensor& viewmat, const Tensor& K, int64_t width,
                        int64_t height, double near_plane, double pad) {
    TORCH_CHECK(anchors.device().is_cpu() && anchors.scalar_type() == at::kFloat && anchors.dim() == 2 &&
                    anchors.size(1) == 3 && anchors.is_contiguous(),
                "anchors must be a contiguous float32 CPU tensor [M,3]");
    const int64_t M = anchors.size(0);
    TORCH_CHECK(radii.device().is_cpu() && radii.scalar_type() == at::kFloat && radii.dim() == 1 &&
                    radii.size(0) == M && radii.is_contiguous(),
                "radii must be a contiguous float32 CPU tensor [M]");
    TORCH_CHECK(viewmat.scalar_type() == at::kFloat && viewmat.numel() == 16 && viewmat.is_contiguous(),
                "viewmat must be a contiguous float32 [4,4]");
    TORCH_CHECK(K.scalar_type() == at::kFloat && K.numel() == 9 && K.is_contiguous(), "K must be float32 [3,3]");
    auto mask = at::empty({M}, anchors.options().dtype(at::kBool));
    const float* a = anchors.data_ptr<float>();
    const float* r = radii.data_ptr<float>();
    const float* vm = viewmat.data_ptr<float>();
    bool* out = mask.data_ptr<bool>();
    const realsim_prefilter::Frustum f = realsim_prefilter::make_frustum(
        K.data_ptr<float>(), static_cast<int>(width), static_cast<int>(height), static_cast<float>(near_plane),
        static_cast<float>(pad));
#pragma omp parallel for schedule(static) if (M > 4096)
    for (int64_t i = 0; i < M; ++i) {
        float p[3];
        realsim_prefilter::to_camera(vm, a + i * 3, p);
        out[i] = realsim_prefilter::sphere_meets_frustum(f, p, r[i]);
    }
    return mask;
}

}  // namespace realsim
