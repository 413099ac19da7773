// C++ CPU spherical harmonics (degrees 0-3, gsplat's / 3DGS's real basis) toward per-camera view directions, and the
// hand-derived backward: one task per Gaussian, looping over cameras, so the coefficient gradient has no write races.
#include "cpu_common.h"
#include "ops.h"

namespace realsim {
namespace {

constexpr double kC0 = 0.28209479177387814, kC1 = 0.4886025119029199;
constexpr double kC2[5] = {1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
                           0.5462742152960396};
constexpr double kC3[7] = {-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
                           -0.4570457994644658, 1.445305721320277, -0.5900435899266435};

// Basis values b[k] at unit direction (x, y, z); with db (16 x 3) also their derivatives d b[k] / d(x, y, z).
template <typename T>
inline void sh_basis(int degree, T x, T y, T z, T* b, T (*db)[3]) {
    b[0] = T(kC0);
    if (db) db[0][0] = db[0][1] = db[0][2] = T(0);
    if (degree < 1) return;
    b[1] = -T(kC1) * y, b[2] = T(kC1) * z, b[3] = -T(kC1) * x;
    if (db) {
        for (int k = 1; k < 4; ++k) db[k][0] = db[k][1] = db[k][2] = T(0);
        db[1][1] = -T(kC1), db[2][2] = T(kC1), db[3][0] = -T(kC1);
    }
    if (degree < 2) return;
    const T xx = x * x, yy = y * y, zz = z * z, xy = x * y, yz = y * z, xz = x * z;
    b[4] = T(kC2[0]) * xy;
    b[5] = T(kC2[1]) * yz;
    b[6] = T(kC2[2]) * (2 * zz - xx - yy);
    b[7] = T(kC2[3]) * xz;
    b[8] = T(kC2[4]) * (xx - yy);
    if (db) {
        const T d2[5][3] = {{y, x, 0}, {0, z, y}, {-2 * x, -2 * y, 4 * z}, {z, 0, x}, {2 * x, -2 * y, 0}};
        for (int k = 0; k < 5; ++k)
            for (int a = 0; a < 3; ++a) db[4 + k][a] = T(kC2[k]) * d2[k][a];
    }
    if (degree < 3) return;
    b[9] = T(kC3[0]) * y * (3 * xx - yy);
    b[10] = T(kC3[1]) * xy * z;
    b[11] = T(kC3[2]) * y * (4 * zz - xx - yy);
    b[12] = T(kC3[3]) * z * (2 * zz - 3 * xx - 3 * yy);
    b[13] = T(kC3[4]) * x * (4 * zz - xx - yy);
    b[14] = T(kC3[5]) * z * (xx - yy);
    b[15] = T(kC3[6]) * x * (xx - 3 * yy);
    if (db) {
        const T d3[7][3] = {{6 * xy, 3 * xx - 3 * yy, 0},
                            {yz, xz, xy},
                            {-2 * xy, 4 * zz - xx - 3 * yy, 8 * yz},
                            {-6 * xz, -6 * yz, 6 * zz - 3 * xx - 3 * yy},
                            {4 * zz - 3 * xx - yy, -2 * xy, 8 * xz},
                            {2 * xz, -2 * yz, xx - yy},
                            {3 * xx - 3 * yy, -6 * xy, 0}};
        for (int k = 0; k < 7; ++k)
            for (int a = 0; a < 3; ++a) db[9 + k][a] = T(kC3[k]) * d3[k][a];
    }
}

// Unit direction and 1 / max(|d|, 1e-12) (F.normalize's rule).
template <typename T>
inline T unit(const T* d, T* n) {
    const T inv = T(1) / std::max(std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]), T(1e-12));
    for (int a = 0; a < 3; ++a) n[a] = d[a] * inv;
    return inv;
}

void check_sh(int64_t degree, const Tensor& dirs, const Tensor& coeffs) {
    TORCH_CHECK(degree >= 0 && degree <= 3, "sh degree must be 0..3");
    check_cpu(dirs, "dirs");
    check_cpu(coeffs, "coeffs");
    TORCH_CHECK(dirs.dim() == 3 && dirs.size(2) == 3, "dirs must be [C,N,3]");
    TORCH_CHECK(coeffs.dim() == 3 && coeffs.size(0) == dirs.size(1) && coeffs.size(2) == 3 &&
                    coeffs.size(1) >= (degree + 1) * (degree + 1),
                "coeffs must be [N,K>=(degree+1)^2,3]");
    TORCH_CHECK(coeffs.scalar_type() == dirs.scalar_type(), "coeffs must have the dtype of dirs");
}

}  // namespace

Tensor sh_fwd(int64_t degree, const Tensor& dirs, const Tensor& coeffs) {
    check_sh(degree, dirs, coeffs);
    const int64_t C = dirs.size(0), N = dirs.size(1), K = coeffs.size(1), nb = (degree + 1) * (degree + 1);
    Tensor out = at::empty({C, N, 3}, dirs.options());
    AT_DISPATCH_FLOATING_TYPES(dirs.scalar_type(), "sh_fwd", [&] {
        const scalar_t *d = dirs.data_ptr<scalar_t>(), *co = coeffs.data_ptr<scalar_t>();
        scalar_t* o = out.data_ptr<scalar_t>();
        at::parallel_for(0, C * N, 2048, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                scalar_t n[3], b[16];
                unit(d + i * 3, n);
                sh_basis<scalar_t>(int(degree), n[0], n[1], n[2], b, nullptr);
                const scalar_t* c = co + (i % N) * K * 3;
                for (int ch = 0; ch < 3; ++ch) {
                    scalar_t acc = 0;
                    for (int64_t k = 0; k < nb; ++k) acc += b[k] * c[k * 3 + ch];
                    o[i * 3 + ch] = acc;
                }
            }
        });
    });
    return out;
}

std::tuple<Tensor, Tensor> sh_bwd(int64_t degree, const Tensor& dirs, const Tensor& coeffs, const Tensor& v_colors) {
    check_sh(degree, dirs, coeffs);
    check_cpu(v_colors, "v_colors");
    TORCH_CHECK(v_colors.sizes() == dirs.sizes() && v_colors.scalar_type() == dirs.scalar_type(),
                "v_colors must be [C,N,3] of the dtype of dirs");
    const int64_t C = dirs.size(0), N = dirs.size(1), K = coeffs.size(1), nb = (degree + 1) * (degree + 1);
    Tensor v_coeffs = at::zeros_like(coeffs), v_dirs = at::empty_like(dirs);
    AT_DISPATCH_FLOATING_TYPES(dirs.scalar_type(), "sh_bwd", [&] {
        const scalar_t *d = dirs.data_ptr<scalar_t>(), *co = coeffs.data_ptr<scalar_t>();
        const scalar_t* vc = v_colors.data_ptr<scalar_t>();
        scalar_t *vco = v_coeffs.data_ptr<scalar_t>(), *vd = v_dirs.data_ptr<scalar_t>();
        at::parallel_for(0, N, 1024, [&](int64_t begin, int64_t end) {
            for (int64_t g = begin; g < end; ++g) {
                const scalar_t* c = co + g * K * 3;
                scalar_t* gc = vco + g * K * 3;
                for (int64_t cam = 0; cam < C; ++cam) {
                    const int64_t i = cam * N + g;
                    scalar_t n[3], b[16], db[16][3];
                    const scalar_t inv = unit(d + i * 3, n);
                    sh_basis<scalar_t>(int(degree), n[0], n[1], n[2], b, db);
                    const scalar_t* v = vc + i * 3;
                    scalar_t vn[3] = {0, 0, 0};
                    for (int64_t k = 0; k < nb; ++k) {
                        scalar_t vb = 0;
                        for (int ch = 0; ch < 3; ++ch) {
                            gc[k * 3 + ch] += b[k] * v[ch];
                            vb += c[k * 3 + ch] * v[ch];
                        }
                        for (int a = 0; a < 3; ++a) vn[a] += vb * db[k][a];
                    }
                    // through n = d / |d|: (vn - n (n . vn)) / |d|; below the 1e-12 floor n = d * 1e12 is linear.
                    const scalar_t norm = std::sqrt(d[i * 3] * d[i * 3] + d[i * 3 + 1] * d[i * 3 + 1] +
                                                    d[i * 3 + 2] * d[i * 3 + 2]);
                    const scalar_t dot = norm > scalar_t(1e-12) ? n[0] * vn[0] + n[1] * vn[1] + n[2] * vn[2] : 0;
                    for (int a = 0; a < 3; ++a) vd[i * 3 + a] = (vn[a] - n[a] * dot) * inv;
                }
            }
        });
    });
    return {v_coeffs, v_dirs};
}

}  // namespace realsim
