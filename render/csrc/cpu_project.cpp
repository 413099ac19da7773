// C++ CPU projection of 3D Gaussians to screen-space ellipses (EWA) and its hand-derived backward pass.
// Forward: one task per (camera, Gaussian); backward: one task per Gaussian looping over cameras (no write conflicts).
#include "cpu_common.h"
#include "ops.h"
#include "ops_checks.h"

#include <vector>

namespace realsim {
namespace {

template <typename T>
struct Camera {
    Mat3<T> R;
    T t[3];
    T fx, fy, cx, cy;
    T lim_xn, lim_xp, lim_yn, lim_yp;  // clamp limits of x/z and y/z (1.3x the field of view)
};

template <typename T>
Camera<T> load_camera(const T* vm, const T* K, int64_t width, int64_t height) {
    Camera<T> cam;
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) cam.R.m[i][j] = vm[i * 4 + j];
        cam.t[i] = vm[i * 4 + 3];
    }
    cam.fx = K[0];
    cam.cx = K[2];
    cam.fy = K[4];
    cam.cy = K[5];
    const T tan_x = T(0.5) * T(width) / cam.fx, tan_y = T(0.5) * T(height) / cam.fy;
    cam.lim_xn = cam.cx / cam.fx + T(0.3) * tan_x;
    cam.lim_xp = (T(width) - cam.cx) / cam.fx + T(0.3) * tan_x;
    cam.lim_yn = cam.cy / cam.fy + T(0.3) * tan_y;
    cam.lim_yp = (T(height) - cam.cy) / cam.fy + T(0.3) * tan_y;
    return cam;
}

// Everything the forward computes for one (camera, Gaussian), kept so the backward can reuse it.
template <typename T>
struct Splat {
    T p[3];              // camera-space mean
    T qn[4], qnorm;      // normalised quaternion and the input's norm
    Mat3<T> Rq, M, Sc;   // rotation, R S, camera-space covariance
    T u, v;              // clamped x/z, y/z
    bool clx, cly;       // whether they were clamped
    T J[2][3];
    T a, b, d;           // cov2d before eps2d
};

template <typename T>
void compute_splat(const Camera<T>& cam, const T* mu, const T* q, const T* s, Splat<T>& sp) {
    for (int i = 0; i < 3; ++i)
        sp.p[i] = cam.R.m[i][0] * mu[0] + cam.R.m[i][1] * mu[1] + cam.R.m[i][2] * mu[2] + cam.t[i];
    sp.qnorm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    const T inv = T(1) / std::max(sp.qnorm, T(1e-12));
    for (int i = 0; i < 4; ++i) sp.qn[i] = q[i] * inv;
    const T w = sp.qn[0], x = sp.qn[1], y = sp.qn[2], z = sp.qn[3];
    const T R[3][3] = {{1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)},
                       {2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)},
                       {2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)}};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            sp.Rq.m[i][j] = R[i][j];
            sp.M.m[i][j] = R[i][j] * s[j];
        }
    const Mat3<T> Sw = mul(sp.M, transpose(sp.M));
    sp.Sc = mul(mul(cam.R, Sw), transpose(cam.R));
    const T zz = sp.p[2];
    const T xz = sp.p[0] / zz, yz = sp.p[1] / zz;
    sp.u = std::min(std::max(xz, -cam.lim_xn), cam.lim_xp);
    sp.v = std::min(std::max(yz, -cam.lim_yn), cam.lim_yp);
    sp.clx = xz < -cam.lim_xn || xz > cam.lim_xp;
    sp.cly = yz < -cam.lim_yn || yz > cam.lim_yp;
    sp.J[0][0] = cam.fx / zz;
    sp.J[0][1] = 0;
    sp.J[0][2] = -cam.fx * sp.u / zz;
    sp.J[1][0] = 0;
    sp.J[1][1] = cam.fy / zz;
    sp.J[1][2] = -cam.fy * sp.v / zz;
    T JS[2][3];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            JS[i][j] = sp.J[i][0] * sp.Sc.m[0][j] + sp.J[i][1] * sp.Sc.m[1][j] + sp.J[i][2] * sp.Sc.m[2][j];
    sp.a = JS[0][0] * sp.J[0][0] + JS[0][1] * sp.J[0][1] + JS[0][2] * sp.J[0][2];
    sp.b = JS[0][0] * sp.J[1][0] + JS[0][1] * sp.J[1][1] + JS[0][2] * sp.J[1][2];
    sp.d = JS[1][0] * sp.J[1][0] + JS[1][1] * sp.J[1][1] + JS[1][2] * sp.J[1][2];
}

template <typename T>
void project_fwd_kernel(const T* means, const T* quats, const T* scales, const T* opac, const T* viewmats, const T* Ks,
                        int64_t C, int64_t N, int64_t width, int64_t height, T eps2d, T near_plane, T far_plane,
                        bool antialiased, int32_t* radii, T* means2d, T* depths, T* conics, T* comps) {
    at::parallel_for(0, C * N, 2048, [&](int64_t begin, int64_t end) {
        for (int64_t idx = begin; idx < end; ++idx) {
            const int64_t c = idx / N, n = idx % N;
            const Camera<T> cam = load_camera(viewmats + c * 16, Ks + c * 9, width, height);
            radii[idx * 2] = radii[idx * 2 + 1] = 0;
            means2d[idx * 2] = means2d[idx * 2 + 1] = 0;
            conics[idx * 3] = conics[idx * 3 + 1] = conics[idx * 3 + 2] = 0;
            comps[idx] = 1;
            const T* mu = means + n * 3;
            T z = cam.R.m[2][0] * mu[0] + cam.R.m[2][1] * mu[1] + cam.R.m[2][2] * mu[2] + cam.t[2];
            depths[idx] = z;
            if (!(z >= near_plane && z <= far_plane)) continue;
            Splat<T> sp;
            compute_splat(cam, mu, quats + n * 4, scales + n * 3, sp);
            const T det_orig = sp.a * sp.d - sp.b * sp.b;
            const T a = sp.a + eps2d, d = sp.d + eps2d, b = sp.b;
            const T det = a * d - b * b;
            if (!(det > 0)) continue;
            T comp = 1;
            if (antialiased) {
                const T ratio = det_orig / det;
                comp = ratio > 0 ? std::sqrt(ratio) : T(0);
                comps[idx] = comp;
            }
            const T mx = cam.fx * sp.p[0] / z + cam.cx, my = cam.fy * sp.p[1] / z + cam.cy;
            means2d[idx * 2] = mx;
            means2d[idx * 2 + 1] = my;
            conics[idx * 3] = d / det;
            conics[idx * 3 + 1] = -b / det;
            conics[idx * 3 + 2] = a / det;
            const T o = opac[n] * comp;
            if (!(o >= T(kAlphaMin))) continue;
            const T extend = std::min(T(kExtendMax), std::sqrt(T(2) * std::log(o * T(255))));
            const T rx = std::ceil(extend * std::sqrt(a)), ry = std::ceil(extend * std::sqrt(d));
            if (!(rx > 0 && ry > 0)) continue;
            if (mx + rx <= 0 || mx - rx >= T(width) || my + ry <= 0 || my - ry >= T(height)) continue;
            radii[idx * 2] = static_cast<int32_t>(rx);
            radii[idx * 2 + 1] = static_cast<int32_t>(ry);
        }
    });
}

template <typename T>
void project_bwd_kernel(const T* means, const T* quats, const T* scales, const T* viewmats, const T* Ks, int64_t C,
                        int64_t N, int64_t width, int64_t height, T eps2d, bool antialiased, const int32_t* radii,
                        const T* conics, const T* comps, const T* v_means2d, const T* v_depths, const T* v_conics,
                        const T* v_comps, T* v_means, T* v_quats, T* v_scales, T* v_view) {
    // Fixed chunks of Gaussians, each with its own viewmat-gradient partial [C,12] (rows 0-2 of the 4x4), summed in
    // chunk order at the end: the result does not depend on the thread count.
    constexpr int64_t kChunk = 1024;
    const int64_t n_chunks = (N + kChunk - 1) / kChunk;
    std::vector<T> partial(v_view != nullptr ? static_cast<size_t>(n_chunks * C * 12) : 0, T(0));
    at::parallel_for(0, n_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
      for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
        T* acc = v_view != nullptr ? partial.data() + chunk * C * 12 : nullptr;
        for (int64_t n = chunk * kChunk; n < std::min(N, (chunk + 1) * kChunk); ++n) {
            T gm[3] = {0, 0, 0}, gq[4] = {0, 0, 0, 0}, gs[3] = {0, 0, 0};
            const T* mu = means + n * 3;
            const T* s = scales + n * 3;
            for (int64_t c = 0; c < C; ++c) {
                const int64_t idx = c * N + n;
                if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) continue;
                const Camera<T> cam = load_camera(viewmats + c * 16, Ks + c * 9, width, height);
                Splat<T> sp;
                compute_splat(cam, mu, quats + n * 4, s, sp);
                // conic = B^-1 with B = cov2d + eps2d I: v_B = -B^-1 G B^-1, G the symmetric gradient of the conic.
                const T ca = conics[idx * 3], cb = conics[idx * 3 + 1], cc = conics[idx * 3 + 2];
                const T ga = v_conics[idx * 3], gb = T(0.5) * v_conics[idx * 3 + 1], gc = v_conics[idx * 3 + 2];
                const T t00 = ca * ga + cb * gb, t01 = ca * gb + cb * gc;
                const T t10 = cb * ga + cc * gb, t11 = cb * gb + cc * gc;
                T vB00 = -(t00 * ca + t01 * cb), vB01 = -(t00 * cb + t01 * cc), vB11 = -(t10 * cb + t11 * cc);
                if (antialiased) {
                    // comp^2 = detO / detB, detO = det(B - eps I): d/dB = adj(B - eps I)/detB - detO/detB^2 adj(B)
                    const T comp = comps[idx], vc = v_comps[idx];
                    if (comp > 0 && vc != 0) {
                        const T a = sp.a + eps2d, d = sp.d + eps2d, b = sp.b;
                        const T detB = a * d - b * b, detO = sp.a * sp.d - sp.b * sp.b;
                        const T k = vc / (2 * comp);
                        const T r = detO / (detB * detB);
                        vB00 += k * (sp.d / detB - r * d);
                        vB11 += k * (sp.a / detB - r * a);
                        vB01 += k * (-b / detB + r * b);
                    }
                }
                const T vB[2][2] = {{vB00, vB01}, {vB01, vB11}};
                // cov2d = J Sc J^T: v_Sc = J^T vB J, v_J = 2 vB J Sc.
                T vBJ[2][3], JSc[2][3];
                for (int i = 0; i < 2; ++i)
                    for (int j = 0; j < 3; ++j) {
                        vBJ[i][j] = vB[i][0] * sp.J[0][j] + vB[i][1] * sp.J[1][j];
                        JSc[i][j] = sp.J[i][0] * sp.Sc.m[0][j] + sp.J[i][1] * sp.Sc.m[1][j] + sp.J[i][2] * sp.Sc.m[2][j];
                    }
                Mat3<T> vSc;
                for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 3; ++j) vSc.m[i][j] = sp.J[0][i] * vBJ[0][j] + sp.J[1][i] * vBJ[1][j];
                T vJ[2][3];
                for (int i = 0; i < 2; ++i)
                    for (int j = 0; j < 3; ++j) vJ[i][j] = 2 * (vB[i][0] * JSc[0][j] + vB[i][1] * JSc[1][j]);
                // Camera-space mean: from means2d, depth and J.
                const T x = sp.p[0], y = sp.p[1], z = sp.p[2];
                const T rz = T(1) / z, rz2 = rz * rz;
                const T vmx = v_means2d[idx * 2], vmy = v_means2d[idx * 2 + 1];
                T vp[3] = {cam.fx * rz * vmx, cam.fy * rz * vmy,
                           -cam.fx * x * rz2 * vmx - cam.fy * y * rz2 * vmy + v_depths[idx]};
                vp[2] += -cam.fx * rz2 * vJ[0][0] - cam.fy * rz2 * vJ[1][1];
                if (sp.clx) {
                    vp[2] += cam.fx * sp.u * rz2 * vJ[0][2];
                } else {
                    vp[0] += -cam.fx * rz2 * vJ[0][2];
                    vp[2] += 2 * cam.fx * x * rz2 * rz * vJ[0][2];
                }
                if (sp.cly) {
                    vp[2] += cam.fy * sp.v * rz2 * vJ[1][2];
                } else {
                    vp[1] += -cam.fy * rz2 * vJ[1][2];
                    vp[2] += 2 * cam.fy * y * rz2 * rz * vJ[1][2];
                }
                for (int j = 0; j < 3; ++j)
                    gm[j] += cam.R.m[0][j] * vp[0] + cam.R.m[1][j] * vp[1] + cam.R.m[2][j] * vp[2];
                if (acc != nullptr) {
                    // p = R mu + t: v_R += vp mu^T, v_t += vp; Sc = R Sw R^T (vSc symmetric): v_R += 2 vSc R Sw.
                    const Mat3<T> RSw = mul(cam.R, mul(sp.M, transpose(sp.M)));
                    const Mat3<T> vR = mul(vSc, RSw);
                    T* a = acc + c * 12;
                    for (int i = 0; i < 3; ++i) {
                        for (int j = 0; j < 3; ++j) a[i * 4 + j] += vp[i] * mu[j] + 2 * vR.m[i][j];
                        a[i * 4 + 3] += vp[i];
                    }
                }
                // World covariance: v_Sw = R^T v_Sc R; Sw = M M^T -> v_M = 2 v_Sw M; M = Rq S.
                const Mat3<T> vSw = mul(mul(transpose(cam.R), vSc), cam.R);
                const Mat3<T> vM = mul(vSw, sp.M);
                T V[3][3];  // gradient w.r.t. Rq
                for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 3; ++j) {
                        const T g = 2 * vM.m[i][j];
                        V[i][j] = g * s[j];
                        gs[j] += g * sp.Rq.m[i][j];
                    }
                const T w = sp.qn[0], qx = sp.qn[1], qy = sp.qn[2], qz = sp.qn[3];
                const T vw = 2 * (-qz * V[0][1] + qy * V[0][2] + qz * V[1][0] - qx * V[1][2] - qy * V[2][0] + qx * V[2][1]);
                const T vx = 2 * (qy * V[0][1] + qz * V[0][2] + qy * V[1][0] - 2 * qx * V[1][1] - w * V[1][2] +
                                  qz * V[2][0] + w * V[2][1] - 2 * qx * V[2][2]);
                const T vy = 2 * (-2 * qy * V[0][0] + qx * V[0][1] + w * V[0][2] + qx * V[1][0] + qz * V[1][2] -
                                  w * V[2][0] + qz * V[2][1] - 2 * qy * V[2][2]);
                const T vz = 2 * (-2 * qz * V[0][0] - w * V[0][1] + qx * V[0][2] + w * V[1][0] - 2 * qz * V[1][1] +
                                  qy * V[1][2] + qx * V[2][0] + qy * V[2][1]);
                const T vqn[4] = {vw, vx, vy, vz};
                const T dot = w * vw + qx * vx + qy * vy + qz * vz;
                const T inv = T(1) / std::max(sp.qnorm, T(1e-12));
                for (int i = 0; i < 4; ++i) gq[i] += (vqn[i] - sp.qn[i] * dot) * inv;
            }
            for (int j = 0; j < 3; ++j) {
                v_means[n * 3 + j] = gm[j];
                v_scales[n * 3 + j] = gs[j];
            }
            for (int j = 0; j < 4; ++j) v_quats[n * 4 + j] = gq[j];
        }
      }
    });
    if (v_view != nullptr) {
        for (int64_t chunk = 0; chunk < n_chunks; ++chunk)
            for (int64_t c = 0; c < C; ++c)
                for (int k = 0; k < 12; ++k) v_view[c * 16 + k] += partial[(chunk * C + c) * 12 + k];
    }
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> project_fwd(const Tensor& means, const Tensor& quats,
                                                               const Tensor& scales, const Tensor& opacities,
                                                               const Tensor& viewmats, const Tensor& Ks, int64_t width,
                                                               int64_t height, double eps2d, double near_plane,
                                                               double far_plane, bool antialiased) {
    for (auto& [t, name] : {std::pair{&means, "means"}, {&quats, "quats"}, {&scales, "scales"},
                            {&opacities, "opacities"}, {&viewmats, "viewmats"}, {&Ks, "Ks"}}) {
        check_cpu(*t, name);
        TORCH_CHECK(t->scalar_type() == means.scalar_type(), name, " must have the dtype of means");
    }
    check_project_inputs(means, quats, scales, &opacities, viewmats, Ks, width, height);
    check_planes(eps2d, near_plane, far_plane);
    const int64_t N = means.size(0), C = viewmats.size(0);
    auto opts = means.options();
    Tensor radii = at::zeros({C, N, 2}, opts.dtype(at::kInt));
    Tensor means2d = at::empty({C, N, 2}, opts), depths = at::empty({C, N}, opts);
    Tensor conics = at::empty({C, N, 3}, opts), comps = at::empty({C, N}, opts);
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_fwd", [&] {
        project_fwd_kernel<scalar_t>(means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(),
                                     scales.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                                     viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, width, height,
                                     scalar_t(eps2d), scalar_t(near_plane), scalar_t(far_plane), antialiased,
                                     radii.data_ptr<int32_t>(), means2d.data_ptr<scalar_t>(),
                                     depths.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                                     comps.data_ptr<scalar_t>());
    });
    return {radii, means2d, depths, conics, comps};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> project_bwd(const Tensor& means, const Tensor& quats, const Tensor& scales,
                                               const Tensor& viewmats, const Tensor& Ks, int64_t width, int64_t height,
                                               double eps2d, bool antialiased, const Tensor& radii,
                                               const Tensor& conics, const Tensor& compensations,
                                               const Tensor& v_means2d, const Tensor& v_depths,
                                               const Tensor& v_conics, const Tensor& v_compensations,
                                               bool viewmats_grad) {
    for (auto& [t, name] : {std::pair{&means, "means"}, {&quats, "quats"}, {&scales, "scales"},
                            {&viewmats, "viewmats"}, {&Ks, "Ks"}, {&conics, "conics"},
                            {&compensations, "compensations"}, {&v_means2d, "v_means2d"}, {&v_depths, "v_depths"},
                            {&v_conics, "v_conics"}, {&v_compensations, "v_compensations"}}) {
        check_cpu(*t, name);
        TORCH_CHECK(t->scalar_type() == means.scalar_type(), name, " must have the dtype of means");
    }
    check_cpu(radii, "radii");
    check_project_inputs(means, quats, scales, nullptr, viewmats, Ks, width, height);
    const int64_t N = means.size(0), C = viewmats.size(0);
    check_project_grads(radii, conics, compensations, v_means2d, v_depths, v_conics, v_compensations, C, N);
    Tensor v_means = at::zeros_like(means), v_quats = at::zeros_like(quats), v_scales = at::zeros_like(scales);
    Tensor v_viewmats = viewmats_grad ? at::zeros({C, 4, 4}, means.options()) : Tensor();
    AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "project_bwd", [&] {
        project_bwd_kernel<scalar_t>(
            means.data_ptr<scalar_t>(), quats.data_ptr<scalar_t>(), scales.data_ptr<scalar_t>(),
            viewmats.data_ptr<scalar_t>(), Ks.data_ptr<scalar_t>(), C, N, width, height, scalar_t(eps2d), antialiased,
            radii.data_ptr<int32_t>(), conics.data_ptr<scalar_t>(), compensations.data_ptr<scalar_t>(),
            v_means2d.data_ptr<scalar_t>(), v_depths.data_ptr<scalar_t>(), v_conics.data_ptr<scalar_t>(),
            v_compensations.data_ptr<scalar_t>(), v_means.data_ptr<scalar_t>(), v_quats.data_ptr<scalar_t>(),
            v_scales.data_ptr<scalar_t>(), viewmats_grad ? v_viewmats.data_ptr<scalar_t>() : nullptr);
    });
    return {v_means, v_quats, v_scales, v_viewmats};
}

}  // namespace realsim
