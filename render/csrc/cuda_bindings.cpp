// Torch binding of realsim's CUDA kernels: implements the ops of ops.h (same names and signatures as the C++ CPU
// extension) on CUDA tensors by calling the raw-pointer launchers of cuda_api.h on the current stream, plus the anchor
// prefilter. Compiled only where CUDA is present (render/_cuda.py); the kernels themselves compile anywhere with nvcc.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include "cuda_api.h"
#include "ops.h"
#include "ops_checks.h"

namespace realsim {

namespace {

void check_cuda(const Tensor& t, const char* name) {
    TORCH_CHECK(t.defined() && t.is_cuda(), name, " must be a CUDA tensor");
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

void check_float(const Tensor& t, const Tensor& like, const char* name) {
    check_cuda(t, name);
    TORCH_CHECK(t.scalar_type() == like.scalar_type(), name, " must have dtype ", like.scalar_type(), ", got ",
                t.scalar_type());
    TORCH_CHECK(t.device() == like.device(), name, " must be on ", like.device());
}

void check_launch(const char* what) {
    const char* err = realsim_cuda::last_error();
    TORCH_CHECK(err[0] == '\0', "realsim CUDA kernel ", what, " failed: ", err);
}

cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

int bit_length(int64_t v) {
    int b = 0;
    while (v > 0) {
        ++b;
        v >>= 1;
    }
    return b;
}

// Smallest channel count >= D that the rasterizer is compiled for.
int padded_channels(int64_t D) {
    for (int p : {1, 2, 3, 4, 8, 16, 32, 64})
        if (p >= D) return p;
    TORCH_CHECK(false, "the CUDA rasterizer supports at most 64 channels, got ", D);
    return 0;
}

// Zero-pad the last dimension of t to P entries (no copy when already P).
Tensor pad_last(const Tensor& t, int64_t P) {
    if (t.size(-1) == P) return t;
    auto sizes = t.sizes().vec();
    sizes.back() = P;
    Tensor out = at::zeros(sizes, t.options());
    out.narrow(-1, 0, t.size(-1)).copy_(t);
    return out;
}

void check_tile_size(int64_t tile_size) {
    TORCH_CHECK(tile_size > 0 && (tile_size * tile_size) % 32 == 0 && tile_size * tile_size <= 1024,
                "CUDA tile_size must make whole warps and at most 1024 threads (8, 16 or 32), got ", tile_size);
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> project_fwd(const Tensor& means, const Tensor& quats,
                                                               const Tensor& scales, const Tensor& opacities,
                                                               const Tensor& viewmats, const Tensor& Ks, int64_t width,
                                                               int64_t height, double eps2d, double near_plane,
                                                               double far_plane, bool antialiased) {
    check_cuda(means, "means");
    TORCH_CHECK(means.dim() == 2 && means.size(1) == 3, "means must be [N,3]");
    check_float(quats, means, "quats");
    check_float(scales, means, "scales");
    check_float(opacities, means, "opacities");
    check_float(viewmats, means, "viewmats");
    check_float(Ks, means, "Ks");
    check_project_inputs(means, quats, scales, &opacities, viewmats, Ks, width, height);
    check_planes(eps2d, near_plane, far_plane);
    const c10::cuda::CUDAGuard guard(means.device());
    const int64_t N = means.size(0), C = viewmats.size(0);
    auto opt = means.options();
    Tensor radii = at::empty({C, N, 2}, opt.dtype(at::kInt));
    Tensor means2d = at::empty({C, N, 2}, opt);
    Tensor depths = at::empty({C, N}, opt);
    Tensor conics = at::empty({C, N, 3}, opt);
    Tensor comp = at::empty({C, N}, opt);
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "realsim_project_fwd", [&] {
        realsim_cuda::project_forward<scalar_t>(
            means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
            opacities.data_ptr<scalar_t>(), viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), (int)C, (int)N,
            (int)width, (int)height, (scalar_t)eps2d, (scalar_t)near_plane, (scalar_t)far_plane, antialiased,
            radii.data_ptr<int32_t>(), means2d.data_ptr<scalar_t>(), depths.data_ptr<scalar_t>(),
            conics.data_ptr<scalar_t>(), comp.data_ptr<scalar_t>(), stream());
    });
    check_launch("project_fwd");
    return {radii, means2d, depths, conics, comp};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> project_bwd(const Tensor& means, const Tensor& quats, const Tensor& scales,
                                               const Tensor& viewmats, const Tensor& Ks, int64_t width, int64_t height,
                                               double eps2d, bool antialiased, const Tensor& radii,
                                               const Tensor& conics, const Tensor& compensations,
                                               const Tensor& v_means2d, const Tensor& v_depths,
                                               const Tensor& v_conics, const Tensor& v_compensations,
                                               bool viewmats_grad) {
    check_cuda(means, "means");
    check_float(quats, means, "quats");
    check_float(scales, means, "scales");
    check_float(viewmats, means, "viewmats");
    check_float(Ks, means, "Ks");
    check_float(conics, means, "conics");
    check_float(compensations, means, "compensations");
    check_float(v_means2d, means, "v_means2d");
    check_float(v_depths, means, "v_depths");
    check_float(v_conics, means, "v_conics");
    check_float(v_compensations, means, "v_compensations");
    check_cuda(radii, "radii");
    check_project_inputs(means, quats, scales, nullptr, viewmats, Ks, width, height);
    check_project_grads(radii, conics, compensations, v_means2d, v_depths, v_conics, v_compensations,
                        viewmats.size(0), means.size(0));
    const c10::cuda::CUDAGuard guard(means.device());
    const int64_t N = means.size(0), C = viewmats.size(0);
    Tensor v_means = at::zeros({N, 3}, means.options());
    Tensor v_quats = at::zeros({N, 4}, means.options());
    Tensor v_scales = at::zeros({N, 3}, means.options());
    Tensor v_viewmats = viewmats_grad ? at::zeros({C, 4, 4}, means.options()) : Tensor();
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "realsim_project_bwd", [&] {
        realsim_cuda::project_backward<scalar_t>(
            means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
            viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), (int)C, (int)N, (int)width, (int)height,
            (scalar_t)eps2d, antialiased, radii.data_ptr<int32_t>(), conics.data_ptr<scalar_t>(),
            compensations.data_ptr<scalar_t>(), v_means2d.data_ptr<scalar_t>(), v_depths.data_ptr<scalar_t>(),
            v_conics.data_ptr<scalar_t>(), v_compensations.data_ptr<scalar_t>(), v_means.data_ptr<scalar_t>(),
            v_quats.data_ptr<scalar_t>(), v_scales.data_ptr<scalar_t>(),
            viewmats_grad ? v_viewmats.data_ptr<scalar_t>() : nullptr, stream());
    });
    check_launch("project_bwd");
    return {v_means, v_quats, v_scales, v_viewmats};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> isect_tiles(const Tensor& means2d, const Tensor& radii, const Tensor& depths,
                                                       int64_t tile_size, int64_t tiles_w, int64_t tiles_h) {
    check_cuda(means2d, "means2d");
    check_cuda(radii, "radii");
    check_float(depths, means2d, "depths");
    check_isect_inputs(means2d, radii, depths, tile_size, tiles_w, tiles_h);
    const c10::cuda::CUDAGuard guard(means2d.device());
    const int64_t C = radii.size(0), N = radii.size(1), total = C * N;
    const int64_t n_tiles = tiles_w * tiles_h;
    const int tile_bits = bit_length(n_tiles), cam_bits = bit_length(C);
    TORCH_CHECK(32 + tile_bits + cam_bits <= 64, "too many cameras x tiles for 64-bit intersection keys");
    auto iopt = radii.options();
    Tensor tiles_per_gauss = at::empty({C, N}, iopt.dtype(at::kInt));
    Tensor offsets = at::empty({C, tiles_h, tiles_w}, iopt.dtype(at::kInt));
    Tensor cum;
    int64_t n_isects = 0;
    if (total > 0) {
        AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "realsim_isect_count", [&] {
            realsim_cuda::isect_count<scalar_t>(radii.data_ptr<int32_t>(), means2d.data_ptr<scalar_t>(), (int)C,
                                                (int)N, (int)tile_size, (int)tiles_w, (int)tiles_h,
                                                tiles_per_gauss.data_ptr<int32_t>(), stream());
        });
        check_launch("isect_count");
        cum = at::cumsum(tiles_per_gauss.reshape({total}), 0, at::kLong);  // summed in int64: no overflow
        n_isects = cum[total - 1].item<int64_t>();
    }
    TORCH_CHECK(n_isects < (int64_t(1) << 31), "too many tile intersections (", n_isects, ") for int32 indices");
    Tensor keys = at::empty({n_isects}, iopt.dtype(at::kLong));
    Tensor vals = at::empty({n_isects}, iopt.dtype(at::kInt));
    Tensor keys_sorted = at::empty({n_isects}, iopt.dtype(at::kLong));
    Tensor vals_sorted = at::empty({n_isects}, iopt.dtype(at::kInt));
    if (n_isects > 0) {
        AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "realsim_isect_emit", [&] {
            realsim_cuda::isect_emit<scalar_t>(radii.data_ptr<int32_t>(), means2d.data_ptr<scalar_t>(),
                                               depths.data_ptr<scalar_t>(), cum.data_ptr<int64_t>(), (int)C, (int)N,
                                               (int)tile_size, (int)tiles_w, (int)tiles_h, tile_bits,
                                               keys.data_ptr<int64_t>(), vals.data_ptr<int32_t>(), stream());
        });
        const int end_bit = 32 + tile_bits + cam_bits;
        size_t temp_bytes = 0;
        realsim_cuda::isect_sort(keys.data_ptr<int64_t>(), vals.data_ptr<int32_t>(), keys_sorted.data_ptr<int64_t>(),
                                 vals_sorted.data_ptr<int32_t>(), n_isects, end_bit, nullptr, &temp_bytes, stream());
        Tensor temp = at::empty({(int64_t)temp_bytes + 1}, iopt.dtype(at::kByte));
        realsim_cuda::isect_sort(keys.data_ptr<int64_t>(), vals.data_ptr<int32_t>(), keys_sorted.data_ptr<int64_t>(),
                                 vals_sorted.data_ptr<int32_t>(), n_isects, end_bit, temp.data_ptr(), &temp_bytes,
                                 stream());
    }
    realsim_cuda::isect_offsets(keys_sorted.data_ptr<int64_t>(), n_isects, (int)C, (int)n_tiles, tile_bits,
                                offsets.data_ptr<int32_t>(), stream());
    check_launch("isect_emit/sort/offsets");
    return {tiles_per_gauss, keys_sorted, vals_sorted, offsets};
}

std::tuple<Tensor, Tensor, Tensor> rasterize_fwd(const Tensor& means2d, const Tensor& conics, const Tensor& colors,
                                                 const Tensor& opacities, const std::optional<Tensor>& backgrounds,
                                                 const Tensor& radii, int64_t width, int64_t height,
                                                 int64_t tile_size, const Tensor& isect_offsets,
                                                 const Tensor& flatten_ids) {
    check_cuda(means2d, "means2d");
    check_float(conics, means2d, "conics");
    check_float(colors, means2d, "colors");
    check_float(opacities, means2d, "opacities");
    check_cuda(radii, "radii");
    check_cuda(isect_offsets, "isect_offsets");
    check_cuda(flatten_ids, "flatten_ids");
    check_tile_size(tile_size);
    check_raster_inputs_shapes(means2d, conics, colors, opacities, backgrounds, radii, width, height, tile_size,
                               isect_offsets, flatten_ids);
    const c10::cuda::CUDAGuard guard(means2d.device());
    const int64_t C = colors.size(0), D = colors.size(2);
    const int64_t tiles_h = isect_offsets.size(1), tiles_w = isect_offsets.size(2);
    const int P = padded_channels(D);
    const Tensor cols = pad_last(colors, P);
    Tensor bg;
    if (backgrounds.has_value() && backgrounds->defined()) {
        check_float(*backgrounds, means2d, "backgrounds");
        bg = pad_last(*backgrounds, P);
    }
    auto opt = means2d.options();
    Tensor rc = at::empty({C, height, width, P}, opt);
    Tensor ra = at::empty({C, height, width, 1}, opt);
    Tensor last_ids = at::empty({C, height, width}, opt.dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "realsim_rasterize_fwd", [&] {
        realsim_cuda::rasterize_forward<scalar_t>(
            means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), cols.data_ptr<scalar_t>(),
            opacities.data_ptr<scalar_t>(), bg.defined() ? bg.data_ptr<scalar_t>() : nullptr, radii.data_ptr<int32_t>(),
            isect_offsets.data_ptr<int32_t>(), flatten_ids.data_ptr<int32_t>(), (int)C, P, (int)width, (int)height,
            (int)tile_size, (int)tiles_w, (int)tiles_h, flatten_ids.numel(), rc.data_ptr<scalar_t>(),
            ra.data_ptr<scalar_t>(), last_ids.data_ptr<int32_t>(), stream());
    });
    check_launch("rasterize_fwd");
    if (P != D) rc = rc.narrow(-1, 0, D).contiguous();
    return {rc, ra, last_ids};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> rasterize_bwd(
    const Tensor& means2d, const Tensor& conics, const Tensor& colors, const Tensor& opacities,
    const std::optional<Tensor>& backgrounds, const Tensor& radii, int64_t width, int64_t height, int64_t tile_size,
    const Tensor& isect_offsets, const Tensor& flatten_ids, const Tensor& render_alphas, const Tensor& last_ids,
    const Tensor& v_render_colors, const Tensor& v_render_alphas, bool absgrad) {
    check_cuda(means2d, "means2d");
    check_float(conics, means2d, "conics");
    check_float(colors, means2d, "colors");
    check_float(opacities, means2d, "opacities");
    check_float(render_alphas, means2d, "render_alphas");
    check_float(v_render_colors, means2d, "v_render_colors");
    check_float(v_render_alphas, means2d, "v_render_alphas");
    check_cuda(radii, "radii");
    check_cuda(isect_offsets, "isect_offsets");
    check_cuda(flatten_ids, "flatten_ids");
    check_cuda(last_ids, "last_ids");
    check_tile_size(tile_size);
    check_raster_inputs_shapes(means2d, conics, colors, opacities, backgrounds, radii, width, height, tile_size,
                               isect_offsets, flatten_ids);
    check_raster_grads(render_alphas, last_ids, v_render_colors, v_render_alphas, colors.size(0), height, width,
                       colors.size(2));
    const c10::cuda::CUDAGuard guard(means2d.device());
    const int64_t C = colors.size(0), N = colors.size(1), D = colors.size(2);
    const int64_t tiles_h = isect_offsets.size(1), tiles_w = isect_offsets.size(2);
    const int P = padded_channels(D);
    const Tensor cols = pad_last(colors, P);
    const Tensor v_rc = pad_last(v_render_colors, P);
    Tensor bg;
    if (backgrounds.has_value() && backgrounds->defined()) {
        check_float(*backgrounds, means2d, "backgrounds");
        bg = pad_last(*backgrounds, P);
    }
    auto opt = means2d.options();
    Tensor v_means2d = at::zeros({C, N, 2}, opt);
    Tensor v_conics = at::zeros({C, N, 3}, opt);
    Tensor v_colors = at::zeros({C, N, P}, opt);
    Tensor v_opacities = at::zeros({C, N}, opt);
    Tensor v_abs;
    if (absgrad) v_abs = at::zeros({C, N, 2}, opt);
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "realsim_rasterize_bwd", [&] {
        realsim_cuda::rasterize_backward<scalar_t>(
            means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), cols.data_ptr<scalar_t>(),
            opacities.data_ptr<scalar_t>(), bg.defined() ? bg.data_ptr<scalar_t>() : nullptr, radii.data_ptr<int32_t>(),
            isect_offsets.data_ptr<int32_t>(), flatten_ids.data_ptr<int32_t>(), (int)C, P, (int)width, (int)height,
            (int)tile_size, (int)tiles_w, (int)tiles_h, flatten_ids.numel(), render_alphas.data_ptr<scalar_t>(),
            last_ids.data_ptr<int32_t>(), v_rc.data_ptr<scalar_t>(), v_render_alphas.data_ptr<scalar_t>(),
            v_means2d.data_ptr<scalar_t>(), v_conics.data_ptr<scalar_t>(), v_colors.data_ptr<scalar_t>(),
            v_opacities.data_ptr<scalar_t>(), absgrad ? v_abs.data_ptr<scalar_t>() : nullptr, stream());
    });
    check_launch("rasterize_bwd");
    if (P != D) v_colors = v_colors.narrow(-1, 0, D).contiguous();
    return {v_means2d, v_conics, v_colors, v_opacities, v_abs};
}

static void check_sh_inputs(int64_t degree, const Tensor& dirs, const Tensor& coeffs) {
    TORCH_CHECK(degree >= 0 && degree <= 3, "sh degree must be 0..3, got ", degree);
    check_cuda(dirs, "dirs");
    TORCH_CHECK(dirs.scalar_type() == at::kFloat || dirs.scalar_type() == at::kDouble, "dirs must be float32/float64");
    check_float(coeffs, dirs, "coeffs");
    TORCH_CHECK(dirs.dim() == 3 && dirs.size(2) == 3, "dirs must be [C,N,3], got ", dirs.sizes());
    TORCH_CHECK(coeffs.dim() == 3 && coeffs.size(0) == dirs.size(1) && coeffs.size(2) == 3 &&
                    coeffs.size(1) >= (degree + 1) * (degree + 1),
                "coeffs must be [N,K>=(degree+1)^2,3] with N = dirs.size(1), got ", coeffs.sizes());
    TORCH_CHECK(dirs.numel() < (int64_t(1) << 31) && coeffs.numel() < (int64_t(1) << 31), "too many SH evaluations");
}

// Fused SH (cuda_sh.cu): colours [C,N,3] of coeffs [N,K,3] toward dirs [C,N,3].
Tensor sh_fwd(int64_t degree, const Tensor& dirs, const Tensor& coeffs) {
    check_sh_inputs(degree, dirs, coeffs);
    const c10::cuda::CUDAGuard guard(dirs.device());
    Tensor out = at::empty_like(dirs);
    AT_DISPATCH_FLOATING_TYPES(dirs.scalar_type(), "realsim_sh_fwd", [&] {
        realsim_cuda::sh_forward<scalar_t>((int)degree, dirs.data_ptr<scalar_t>(), coeffs.data_ptr<scalar_t>(),
                                           (int)dirs.size(0), (int)dirs.size(1), (int)coeffs.size(1),
                                           out.data_ptr<scalar_t>(), stream());
    });
    check_launch("sh_fwd");
    return out;
}

std::tuple<Tensor, Tensor> sh_bwd(int64_t degree, const Tensor& dirs, const Tensor& coeffs, const Tensor& v_colors) {
    check_sh_inputs(degree, dirs, coeffs);
    check_float(v_colors, dirs, "v_colors");
    TORCH_CHECK(v_colors.sizes() == dirs.sizes(), "v_colors must be [C,N,3] like dirs, got ", v_colors.sizes());
    const c10::cuda::CUDAGuard guard(dirs.device());
    Tensor v_coeffs = at::zeros_like(coeffs), v_dirs = at::empty_like(dirs);
    AT_DISPATCH_FLOATING_TYPES(dirs.scalar_type(), "realsim_sh_bwd", [&] {
        realsim_cuda::sh_backward<scalar_t>((int)degree, dirs.data_ptr<scalar_t>(), coeffs.data_ptr<scalar_t>(),
                                            v_colors.data_ptr<scalar_t>(), (int)dirs.size(0), (int)dirs.size(1),
                                            (int)coeffs.size(1), v_coeffs.data_ptr<scalar_t>(),
                                            v_dirs.data_ptr<scalar_t>(), stream());
    });
    check_launch("sh_bwd");
    return {v_coeffs, v_dirs};
}

// Scaffold-GS anchor prefilter on CUDA: anchors [M,3], radii [M], viewmat [4,4] float32 CUDA; K [3,3] float32 CPU.
Tensor anchor_prefilter(const Tensor& anchors, const Tensor& radii, const Tensor& viewmat, const Tensor& K,
                        int64_t width, int64_t height, double near_plane, double pad) {
    check_cuda(anchors, "anchors");
    TORCH_CHECK(anchors.scalar_type() == at::kFloat && anchors.dim() == 2 && anchors.size(1) == 3,
                "anchors must be float32 [M,3]");
    check_float(radii, anchors, "radii");
    check_float(viewmat, anchors, "viewmat");
    TORCH_CHECK(radii.numel() == anchors.size(0) && viewmat.numel() == 16, "radii must be [M], viewmat [4,4]");
    TORCH_CHECK(K.device().is_cpu() && K.scalar_type() == at::kFloat && K.numel() == 9 && K.is_contiguous(),
                "K must be a contiguous float32 CPU tensor [3,3]");
    const c10::cuda::CUDAGuard guard(anchors.device());
    const int64_t M = anchors.size(0);
    Tensor mask = at::empty({M}, anchors.options().dtype(at::kBool));
    realsim_cuda::anchor_prefilter(anchors.data_ptr<float>(), radii.data_ptr<float>(), M, viewmat.data_ptr<float>(),
                                   K.data_ptr<float>(), (int)width, (int)height, (float)near_plane, (float)pad,
                                   mask.data_ptr<bool>(), stream());
    check_launch("anchor_prefilter");
    return mask;
}

int64_t max_tile_size(bool f64, int64_t D) {
    TORCH_CHECK(D > 0, "channel count must be positive");
    return realsim_cuda::rasterize_max_tile(f64, padded_channels(D));
}

}  // namespace realsim

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "realsim CUDA Gaussian-splatting kernels (ops of render/csrc/ops.h) and the anchor prefilter";
    m.def("project_fwd", &realsim::project_fwd);
    m.def("project_bwd", &realsim::project_bwd);
    m.def("isect_tiles", &realsim::isect_tiles);
    m.def("rasterize_fwd", &realsim::rasterize_fwd);
    m.def("rasterize_bwd", &realsim::rasterize_bwd);
    m.def("sh_fwd", &realsim::sh_fwd, "spherical harmonics forward (see ops.h)");
    m.def("sh_bwd", &realsim::sh_bwd, "spherical harmonics backward (see ops.h)");
    m.def("anchor_prefilter", &realsim::anchor_prefilter);
    m.def("max_tile_size", &realsim::max_tile_size,
          "largest tile size the rasterizer kernels can launch here for (float64?, channels); 0 if none");
}
