// C++ CPU triangle z-buffer for the mesh renderer (render/mesh.py `_rasterize` is the reference; the same float32
// expressions in the same order, so the winning triangle per pixel is identical). Part of the CPU kernel module
// (cpu_kernels.cpp; bound in cpu_bindings.cpp, declared in ops.h).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "ops.h"

// no fused multiply-add: the torch reference rounds every product before the subtraction
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")

namespace realsim {

// uv [T,3,2] float32 (pixel units), z [T,3] float32 (camera depth) -> [H*W] int64: nearest triangle per pixel centre, -1 empty.
Tensor mesh_zbuffer(const Tensor& uv, const Tensor& z, int64_t width, int64_t height, double near_plane, double far_plane) {
    TORCH_CHECK(uv.device().is_cpu() && uv.scalar_type() == at::kFloat && uv.dim() == 3 && uv.size(1) == 3 &&
                    uv.size(2) == 2 && uv.is_contiguous(),
                "uv must be a contiguous float32 CPU tensor [T,3,2]");
    const int64_t T = uv.size(0);
    TORCH_CHECK(z.device().is_cpu() && z.scalar_type() == at::kFloat && z.dim() == 2 && z.size(0) == T && z.size(1) == 3 &&
                    z.is_contiguous(),
                "z must be a contiguous float32 CPU tensor [T,3]");
    TORCH_CHECK(width > 0 && height > 0, "width and height must be positive");
    const int64_t W = width, H = height;
    const int64_t EMPTY = std::numeric_limits<int64_t>::max();
    std::vector<int64_t> zbuf(static_cast<size_t>(W * H), EMPTY);
    const float* U = uv.data_ptr<float>();
    const float* Z = z.data_ptr<float>();
    const float lo_z = static_cast<float>(near_plane * 0.999), hi_z = static_cast<float>(far_plane);
    const float eps = -1e-6f;
    for (int64_t t = 0; t < T; ++t) {
        const float *p = U + 6 * t, *zt = Z + 3 * t;
        const float x0 = p[0], y0 = p[1], x1 = p[2], y1 = p[3], x2 = p[4], y2 = p[5];
        // pixel centres at integer + 0.5: covered column range is ceil(u - 0.5) .. floor(u - 0.5)
        int64_t lx = static_cast<int64_t>(std::ceil(std::min(std::min(x0, x1), x2) - 0.5f));
        int64_t ly = static_cast<int64_t>(std::ceil(std::min(std::min(y0, y1), y2) - 0.5f));
        int64_t hx = static_cast<int64_t>(std::floor(std::max(std::max(x0, x1), x2) - 0.5f));
        int64_t hy = static_cast<int64_t>(std::floor(std::max(std::max(y0, y1), y2) - 0.5f));
        lx = std::max<int64_t>(lx, 0);
        ly = std::max<int64_t>(ly, 0);
        hx = std::min<int64_t>(hx, W - 1);
        hy = std::min<int64_t>(hy, H - 1);
        const float a2 = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
        if (hx < lx || hy < ly || !(std::fabs(a2) > 1e-9f)) continue;
        for (int64_t py = ly; py <= hy; ++py) {
            const float fy = static_cast<float>(py) + 0.5f;
            for (int64_t px = lx; px <= hx; ++px) {
                const float fx = static_cast<float>(px) + 0.5f;
                const float b0 = ((x1 - fx) * (y2 - fy) - (x2 - fx) * (y1 - fy)) / a2;
                const float b1 = ((x2 - fx) * (y0 - fy) - (x0 - fx) * (y2 - fy)) / a2;
                const float b2 = 1.0f - b0 - b1;
                if (!(b0 >= eps && b1 >= eps && b2 >= eps)) continue;
                const float invz = b0 / zt[0] + b1 / zt[1] + b2 / zt[2];
                const float depth = 1.0f / (invz < 1e-12f ? 1e-12f : invz);
                if (!(depth >= lo_z && depth <= hi_z)) continue;
                int32_t bits;
                std::memcpy(&bits, &depth, sizeof bits);
                const int64_t key = (static_cast<int64_t>(bits) << 32) | t;  // depth first, then the lower index
                int64_t& cell = zbuf[static_cast<size_t>(py * W + px)];
                if (key < cell) cell = key;
            }
        }
    }
    auto out = at::empty({H * W}, uv.options().dtype(at::kLong));
    int64_t* o = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < H * W; ++i) o[i] = zbuf[static_cast<size_t>(i)] == EMPTY ? -1 : (zbuf[static_cast<size_t>(i)] & 0xFFFFFFFF);
    return out;
}

}  // namespace realsim

#pragma GCC pop_options
