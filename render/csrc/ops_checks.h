// Shape and argument checks shared by the C++ CPU ops (cpu_*.cpp) and the CUDA binding (cuda_bindings.cpp): every op
// rejects inputs that disagree with the layouts of ops.h with one clear error naming the tensor, before a kernel could
// read or write out of bounds. Device and dtype checks stay with each backend.
#pragma once
#include <ATen/ATen.h>

#include <initializer_list>
#include <optional>

namespace realsim {

// t must have exactly these sizes (-1 = any); `layout` is how ops.h writes it, e.g. "[C,N,2]".
inline void check_shape(const at::Tensor& t, std::initializer_list<int64_t> want, const char* name,
                        const char* layout) {
    TORCH_CHECK(t.defined(), name, " must be a tensor ", layout);
    bool ok = t.dim() == static_cast<int64_t>(want.size());
    int64_t i = 0;
    for (const int64_t w : want) {
        if (ok && w >= 0 && t.size(i) != w) ok = false;
        ++i;
    }
    TORCH_CHECK(ok, name, " must be ", layout, ", got ", t.sizes());
}

// project_fwd / project_bwd inputs; near_plane > 0 keeps every kept depth positive (the intersection keys sort the
// float32 bits of depth, which order only non-negative values).
inline void check_project_inputs(const at::Tensor& means, const at::Tensor& quats, const at::Tensor& scales,
                                 const at::Tensor* opacities, const at::Tensor& viewmats, const at::Tensor& Ks,
                                 int64_t width, int64_t height) {
    check_shape(means, {-1, 3}, "means", "[N,3]");
    const int64_t N = means.size(0);
    check_shape(quats, {N, 4}, "quats", "[N,4]");
    check_shape(scales, {N, 3}, "scales", "[N,3]");
    if (opacities != nullptr) check_shape(*opacities, {N}, "opacities", "[N]");
    check_shape(viewmats, {-1, 4, 4}, "viewmats", "[C,4,4]");
    check_shape(Ks, {viewmats.size(0), 3, 3}, "Ks", "[C,3,3]");
    TORCH_CHECK(width > 0 && height > 0 && width <= (1 << 20) && height <= (1 << 20), "bad image size ", width, "x",
                height);
}

inline void check_planes(double eps2d, double near_plane, double far_plane) {
    TORCH_CHECK(near_plane > 0, "near_plane must be > 0 (depths are sorted as non-negative floats), got ", near_plane);
    TORCH_CHECK(far_plane > near_plane, "far_plane must exceed near_plane, got ", far_plane, " <= ", near_plane);
    TORCH_CHECK(eps2d >= 0, "eps2d must be >= 0, got ", eps2d);
}

inline void check_project_grads(const at::Tensor& radii, const at::Tensor& conics, const at::Tensor& comps,
                                const at::Tensor& v_means2d, const at::Tensor& v_depths, const at::Tensor& v_conics,
                                const at::Tensor& v_comps, int64_t C, int64_t N) {
    check_shape(radii, {C, N, 2}, "radii", "[C,N,2]");
    TORCH_CHECK(radii.scalar_type() == at::kInt, "radii must be int32");
    check_shape(conics, {C, N, 3}, "conics", "[C,N,3]");
    check_shape(comps, {C, N}, "compensations", "[C,N]");
    check_shape(v_means2d, {C, N, 2}, "v_means2d", "[C,N,2]");
    check_shape(v_depths, {C, N}, "v_depths", "[C,N]");
    check_shape(v_conics, {C, N, 3}, "v_conics", "[C,N,3]");
    check_shape(v_comps, {C, N}, "v_compensations", "[C,N]");
}

inline void check_isect_inputs(const at::Tensor& means2d, const at::Tensor& radii, const at::Tensor& depths,
                               int64_t tile_size, int64_t tiles_w, int64_t tiles_h) {
    check_shape(means2d, {-1, -1, 2}, "means2d", "[C,N,2]");
    const int64_t C = means2d.size(0), N = means2d.size(1);
    check_shape(radii, {C, N, 2}, "radii", "[C,N,2]");
    TORCH_CHECK(radii.scalar_type() == at::kInt, "radii must be int32");
    check_shape(depths, {C, N}, "depths", "[C,N]");
    TORCH_CHECK(tile_size > 0 && tile_size <= 32 && tiles_w > 0 && tiles_h > 0, "bad tile grid: tile_size ", tile_size,
                ", ", tiles_w, "x", tiles_h, " tiles");
}

// rasterize_fwd / rasterize_bwd inputs: returns the channel count D.
inline int64_t check_raster_inputs_shapes(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colors,
                                          const at::Tensor& opacities, const std::optional<at::Tensor>& backgrounds,
                                          const at::Tensor& radii, int64_t width, int64_t height, int64_t tile_size,
                                          const at::Tensor& offsets, const at::Tensor& flatten_ids) {
    check_shape(means2d, {-1, -1, 2}, "means2d", "[C,N,2]");
    const int64_t C = means2d.size(0), N = means2d.size(1);
    check_shape(conics, {C, N, 3}, "conics", "[C,N,3]");
    check_shape(colors, {C, N, -1}, "colors", "[C,N,D]");
    const int64_t D = colors.size(2);
    TORCH_CHECK(D > 0, "colors need at least one channel");
    check_shape(opacities, {C, N}, "opacities", "[C,N]");
    if (backgrounds.has_value() && backgrounds->defined()) check_shape(*backgrounds, {C, D}, "backgrounds", "[C,D]");
    check_shape(radii, {C, N, 2}, "radii", "[C,N,2]");
    TORCH_CHECK(radii.scalar_type() == at::kInt, "radii must be int32");
    TORCH_CHECK(width > 0 && height > 0 && tile_size > 0 && tile_size <= 32, "bad image or tile size: ", width, "x",
                height, ", tile_size ", tile_size);
    check_shape(offsets, {C, (height + tile_size - 1) / tile_size, (width + tile_size - 1) / tile_size},
                "isect_offsets", "[C,tiles_h,tiles_w] of this image and tile size");
    TORCH_CHECK(offsets.scalar_type() == at::kInt, "isect_offsets must be int32");
    check_shape(flatten_ids, {-1}, "flatten_ids", "[n_isects]");
    TORCH_CHECK(flatten_ids.scalar_type() == at::kInt, "flatten_ids must be int32");
    return D;
}

inline void check_raster_grads(const at::Tensor& render_alphas, const at::Tensor& last_ids,
                               const at::Tensor& v_render_colors, const at::Tensor& v_render_alphas, int64_t C,
                               int64_t H, int64_t W, int64_t D) {
    check_shape(render_alphas, {C, H, W, 1}, "render_alphas", "[C,H,W,1]");
    check_shape(last_ids, {C, H, W}, "last_ids", "[C,H,W]");
    TORCH_CHECK(last_ids.scalar_type() == at::kInt, "last_ids must be int32");
    check_shape(v_render_colors, {C, H, W, D}, "v_render_colors", "[C,H,W,D]");
    check_shape(v_render_alphas, {C, H, W, 1}, "v_render_alphas", "[C,H,W,1]");
}

}  // namespace realsim
