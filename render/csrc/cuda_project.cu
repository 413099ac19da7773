// Projection of 3D Gaussians to screen-space ellipses (EWA) and its backward pass. One thread per (camera, Gaussian).
#include "cuda_common.cuh"

namespace realsim_cuda {

namespace {

constexpr int kProjectBlock = 256;  // threads per block of the projection kernels (a multiple of the warp size)

template <typename T>
struct Cam {
    M3<T> R;
    T t[3];
    T fx, fy, cx, cy;
};

template <typename T>
RS_HD Cam<T> load_cam(const T* viewmats, const T* Ks, int c) {
    Cam<T> cam;
    load_viewmat(viewmats + c * 16, cam.R, cam.t);
    const T* K = Ks + c * 9;
    cam.fx = K[0];
    cam.fy = K[4];
    cam.cx = K[2];
    cam.cy = K[5];
    return cam;
}

// Perspective Jacobian terms with the lateral position clamped to 1.3x the field of view (as gsplat and 3DGS do), so
// Gaussians far outside the image do not blow up. Returns u, v (x/z and y/z clamped) and whether each was clamped.
template <typename T>
RS_HD void clamp_xy(const Cam<T>& cam, int width, int height, T x, T y, T z, T& u, T& v,
                                         bool& clamped_x, bool& clamped_y) {
    const T tan_fovx = T(0.5) * width / cam.fx;
    const T tan_fovy = T(0.5) * height / cam.fy;
    const T lim_x_pos = (width - cam.cx) / cam.fx + T(0.3) * tan_fovx;
    const T lim_x_neg = cam.cx / cam.fx + T(0.3) * tan_fovx;
    const T lim_y_pos = (height - cam.cy) / cam.fy + T(0.3) * tan_fovy;
    const T lim_y_neg = cam.cy / cam.fy + T(0.3) * tan_fovy;
    const T xz = x / z, yz = y / z;
    clamped_x = xz < -lim_x_neg || xz > lim_x_pos;
    clamped_y = yz < -lim_y_neg || yz > lim_y_pos;
    u = d_min(d_max(xz, -lim_x_neg), lim_x_pos);
    v = d_min(d_max(yz, -lim_y_neg), lim_y_pos);
}

// World covariance R_q S S R_q^T of a Gaussian, plus the normalised quaternion and rotation it used.
template <typename T>
RS_HD M3<T> world_cov(const T* q4, const T* s3, T qn[4], M3<T>& Rq) {
    const T inv = T(1) / d_max(d_sqrt(q4[0] * q4[0] + q4[1] * q4[1] + q4[2] * q4[2] + q4[3] * q4[3]), T(1e-12));
    qn[0] = q4[0] * inv;
    qn[1] = q4[1] * inv;
    qn[2] = q4[2] * inv;
    qn[3] = q4[3] * inv;
    Rq = quat_to_rotmat(qn[0], qn[1], qn[2], qn[3]);
    M3<T> M;  // Rq * diag(s)
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) M.m[i][j] = Rq.m[i][j] * s3[j];
    return m3_mul(M, m3_transpose(M));
}

// Camera-space position p = R mu + t of Gaussian n.
template <typename T>
RS_HD void to_camera(const Cam<T>& cam, const T* mu, T p[3]) {
#pragma unroll
    for (int i = 0; i < 3; ++i) p[i] = cam.R.m[i][0] * mu[0] + cam.R.m[i][1] * mu[1] + cam.R.m[i][2] * mu[2] + cam.t[i];
}

// Forward of one (camera, Gaussian) pair idx = c * N + n.
template <typename T>
RS_HD void project_forward_one(int64_t idx, const T* __restrict__ means, const T* __restrict__ quats,
                               const T* __restrict__ scales, const T* __restrict__ opacities,
                               const T* __restrict__ viewmats, const T* __restrict__ Ks, int N, int width, int height,
                               T eps2d, T near_plane, T far_plane, bool antialiased, int32_t* __restrict__ radii,
                               T* __restrict__ means2d, T* __restrict__ depths, T* __restrict__ conics,
                               T* __restrict__ compensations) {
    const int c = static_cast<int>(idx / N);
    const int n = static_cast<int>(idx % N);
    radii[idx * 2] = 0;
    radii[idx * 2 + 1] = 0;
    compensations[idx] = T(1);
    // means2d / conics of culled entries are never read, but keep them finite and deterministic.
    means2d[idx * 2] = T(0);
    means2d[idx * 2 + 1] = T(0);
    conics[idx * 3] = T(0);
    conics[idx * 3 + 1] = T(0);
    conics[idx * 3 + 2] = T(0);

    const Cam<T> cam = load_cam(viewmats, Ks, c);
    T p[3];
    to_camera(cam, means + n * 3, p);
    depths[idx] = p[2];
    if (!(p[2] >= near_plane && p[2] <= far_plane)) return;

    T qn[4];
    M3<T> Rq;
    const M3<T> Sw = world_cov(quats + n * 4, scales + n * 3, qn, Rq);
    const M3<T> Sc = m3_mul(m3_mul(cam.R, Sw), m3_transpose(cam.R));

    T cu, cv;
    bool cxl, cyl;
    clamp_xy(cam, width, height, p[0], p[1], p[2], cu, cv, cxl, cyl);
    const T z = p[2];
    // J [2x3] = [[fx/z, 0, -fx u/z], [0, fy/z, -fy v/z]] with u, v the clamped x/z, y/z
    const T J[2][3] = {{cam.fx / z, T(0), -cam.fx * cu / z}, {T(0), cam.fy / z, -cam.fy * cv / z}};
    T JS[2][3];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) JS[i][j] = J[i][0] * Sc.m[0][j] + J[i][1] * Sc.m[1][j] + J[i][2] * Sc.m[2][j];
    T a = JS[0][0] * J[0][0] + JS[0][1] * J[0][1] + JS[0][2] * J[0][2];
    T b = JS[0][0] * J[1][0] + JS[0][1] * J[1][1] + JS[0][2] * J[1][2];
    T d = JS[1][0] * J[1][0] + JS[1][1] * J[1][1] + JS[1][2] * J[1][2];

    const T det_orig = a * d - b * b;
    a += eps2d;
    d += eps2d;
    const T det = a * d - b * b;
    if (!(det > T(0))) return;
    T comp = T(1);
    if (antialiased) {
        const T ratio = det_orig / det;
        comp = ratio > T(0) ? d_sqrt(ratio) : T(0);
        compensations[idx] = comp;
    }
    const T u = cam.fx * p[0] / z + cam.cx;
    const T v = cam.fy * p[1] / z + cam.cy;
    means2d[idx * 2] = u;
    means2d[idx * 2 + 1] = v;
    conics[idx * 3] = d / det;
    conics[idx * 3 + 1] = -b / det;
    conics[idx * 3 + 2] = a / det;

    // Opacity-aware extent: the box holds every pixel where alpha >= 1/255, so tiling never changes the image.
    const T op = opacities[n] * comp;
    if (!(op >= T(kAlphaMin))) return;
    const T extend = d_min(T(kExtendMax), d_sqrt(T(2) * d_log(d_max(op, T(kAlphaMin)) * T(255))));
    const T rx = d_ceil(extend * d_sqrt(d_max(a, T(0))));
    const T ry = d_ceil(extend * d_sqrt(d_max(d, T(0))));
    if (!(rx > T(0) && ry > T(0))) return;
    if (!(u + rx > T(0) && u - rx < T(width) && v + ry > T(0) && v - ry < T(height))) return;
    radii[idx * 2] = static_cast<int32_t>(rx);
    radii[idx * 2 + 1] = static_cast<int32_t>(ry);
}

// Backward of one (camera, Gaussian) pair; its contributions are added (atomically) to the Gaussian's gradients.
// v_view (when not null): this pair's share of d loss / d viewmat, rows 0-2 of the 4x4 (12 values, zero when culled),
// left to the caller to reduce over the camera's Gaussians.
template <typename T>
RS_HD void project_backward_one(int64_t idx, const T* __restrict__ means, const T* __restrict__ quats,
                                const T* __restrict__ scales, const T* __restrict__ viewmats, const T* __restrict__ Ks,
                                int N, int width, int height, T eps2d, bool antialiased,
                                const int32_t* __restrict__ radii, const T* __restrict__ conics,
                                const T* __restrict__ compensations, const T* __restrict__ v_means2d,
                                const T* __restrict__ v_depths, const T* __restrict__ v_conics,
                                const T* __restrict__ v_compensations, T* __restrict__ v_means,
                                T* __restrict__ v_quats, T* __restrict__ v_scales, T* v_view) {
    if (v_view != nullptr) {
#pragma unroll
        for (int k = 0; k < 12; ++k) v_view[k] = T(0);
    }
    if (radii[idx * 2] <= 0 || radii[idx * 2 + 1] <= 0) return;  // culled: no gradient
    const int c = static_cast<int>(idx / N);
    const int n = static_cast<int>(idx % N);
    const Cam<T> cam = load_cam(viewmats, Ks, c);
    T p[3];
    to_camera(cam, means + n * 3, p);

    T qn[4];
    M3<T> Rq;
    const T* s3 = scales + n * 3;
    const M3<T> Sw = world_cov(quats + n * 4, s3, qn, Rq);
    const M3<T> Sc = m3_mul(m3_mul(cam.R, Sw), m3_transpose(cam.R));
    T cu, cv;
    bool cxl, cyl;
    clamp_xy(cam, width, height, p[0], p[1], p[2], cu, cv, cxl, cyl);
    const T z = p[2];
    const T J[2][3] = {{cam.fx / z, T(0), -cam.fx * cu / z}, {T(0), cam.fy / z, -cam.fy * cv / z}};
    const T rz = T(1) / z, rz2 = rz * rz;

    // Conic (a, b, c) = B^-1 of the blurred covariance B. With G the symmetric gradient w.r.t. the conic matrix
    // ([[va, vb/2], [vb/2, vc]]), the gradient w.r.t. B is -conic G conic.
    const T ca = conics[idx * 3], cb = conics[idx * 3 + 1], cc = conics[idx * 3 + 2];
    const T ga = v_conics[idx * 3], gb = T(0.5) * v_conics[idx * 3 + 1], gd = v_conics[idx * 3 + 2];
    const T t00 = ca * ga + cb * gb, t01 = ca * gb + cb * gd;
    const T t10 = cb * ga + cc * gb, t11 = cb * gb + cc * gd;
    T vB00 = -(t00 * ca + t01 * cb);
    T vB01 = -(t00 * cb + t01 * cc);
    T vB11 = -(t10 * cb + t11 * cc);
    if (antialiased && v_compensations != nullptr) {
        // comp^2 = det(B - eps I) / det B = 1 - eps (tr B - eps) / det B
        //   => d comp / dB = 1/(2 comp) * (-eps / det B) * (I - (tr B - eps) B^-1)
        const T comp = compensations[idx];
        const T vc = v_compensations[idx];
        if (comp > T(0) && vc != T(0)) {
            const T det_b = T(1) / (ca * cc - cb * cb);  // det(B) = 1 / det(conic)
            const T tr_m = (cc + ca) * det_b - eps2d;    // tr B - eps (B's diagonal is (cc, ca) * det B)
            const T k = vc * T(0.5) / comp * (-eps2d / det_b);
            vB00 += k * (T(1) - tr_m * ca);
            vB01 += k * (-tr_m * cb);
            vB11 += k * (T(1) - tr_m * cc);
        }
    }
    // cov2d = J Sc J^T: v_Sc = J^T vB J, v_J = 2 vB J Sc.
    const T vB[2][2] = {{vB00, vB01}, {vB01, vB11}};
    T vBJ[2][3];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) vBJ[i][j] = vB[i][0] * J[0][j] + vB[i][1] * J[1][j];
    M3<T> vSc;
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) vSc.m[i][j] = J[0][i] * vBJ[0][j] + J[1][i] * vBJ[1][j];
    T vJ[2][3];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j)
            vJ[i][j] = T(2) * (vBJ[i][0] * Sc.m[0][j] + vBJ[i][1] * Sc.m[1][j] + vBJ[i][2] * Sc.m[2][j]);

    // Camera-space position gradient from means2d, depth and J.
    const T vu = v_means2d[idx * 2], vv = v_means2d[idx * 2 + 1];
    T vp[3];
    vp[0] = cam.fx * rz * vu;
    vp[1] = cam.fy * rz * vv;
    vp[2] = -cam.fx * p[0] * rz2 * vu - cam.fy * p[1] * rz2 * vv + v_depths[idx];
    // J00 = fx/z, J11 = fy/z, J02 = -fx u/z, J12 = -fy v/z (u = x/z unless clamped, then a constant limit).
    vp[2] += -cam.fx * rz2 * vJ[0][0] - cam.fy * rz2 * vJ[1][1];
    if (cxl) {
        vp[2] += cam.fx * cu * rz2 * vJ[0][2];
    } else {
        vp[0] += -cam.fx * rz2 * vJ[0][2];
        vp[2] += T(2) * cam.fx * p[0] * rz2 * rz * vJ[0][2];
    }
    if (cyl) {
        vp[2] += cam.fy * cv * rz2 * vJ[1][2];
    } else {
        vp[1] += -cam.fy * rz2 * vJ[1][2];
        vp[2] += T(2) * cam.fy * p[1] * rz2 * rz * vJ[1][2];
    }
    // p = R mu + t  =>  v_mu = R^T vp
    T* vm = v_means + n * 3;
#pragma unroll
    for (int j = 0; j < 3; ++j)
        rs_atomic_add(vm + j, cam.R.m[0][j] * vp[0] + cam.R.m[1][j] * vp[1] + cam.R.m[2][j] * vp[2]);
    if (v_view != nullptr) {
        // p = R mu + t: v_R = vp mu^T, v_t = vp; Sc = R Sw R^T (vSc symmetric): v_R += 2 vSc R Sw. Any R (not only
        // rotations), as the float64 gradcheck perturbs single entries.
        const M3<T> vRc = m3_mul(vSc, m3_mul(cam.R, Sw));
        const T* mu = means + n * 3;
#pragma unroll
        for (int i = 0; i < 3; ++i) {
#pragma unroll
            for (int j = 0; j < 3; ++j) v_view[i * 4 + j] = vp[i] * mu[j] + T(2) * vRc.m[i][j];
            v_view[i * 4 + 3] = vp[i];
        }
    }

    // Sc = R Sw R^T  =>  v_Sw = R^T vSc R;  Sw = M M^T with M = Rq diag(s)  =>  v_M = 2 v_Sw M.
    const M3<T> vSw = m3_mul(m3_mul(m3_transpose(cam.R), vSc), cam.R);
    M3<T> M;
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) M.m[i][j] = Rq.m[i][j] * s3[j];
    M3<T> vM = m3_mul(vSw, M);
    T vs[3] = {T(0), T(0), T(0)};
    M3<T> vR;
#pragma unroll
    for (int i = 0; i < 3; ++i)
#pragma unroll
        for (int j = 0; j < 3; ++j) {
            vM.m[i][j] *= T(2);
            vR.m[i][j] = vM.m[i][j] * s3[j];
            vs[j] += vM.m[i][j] * Rq.m[i][j];
        }
    T* vsc = v_scales + n * 3;
#pragma unroll
    for (int j = 0; j < 3; ++j) rs_atomic_add(vsc + j, vs[j]);

    // Gradient of the rotation of the unit quaternion (w, x, y, z), then through the normalisation q / |q|.
    const T qw = qn[0], qx = qn[1], qy = qn[2], qz = qn[3];
    const T(*g)[3] = vR.m;
    T vq[4];
    vq[0] = T(2) * (qx * (g[2][1] - g[1][2]) + qy * (g[0][2] - g[2][0]) + qz * (g[1][0] - g[0][1]));
    vq[1] = T(2) * (T(-2) * qx * (g[1][1] + g[2][2]) + qy * (g[1][0] + g[0][1]) + qz * (g[2][0] + g[0][2]) +
                    qw * (g[2][1] - g[1][2]));
    vq[2] = T(2) * (qx * (g[1][0] + g[0][1]) - T(2) * qy * (g[0][0] + g[2][2]) + qz * (g[2][1] + g[1][2]) +
                    qw * (g[0][2] - g[2][0]));
    vq[3] = T(2) * (qx * (g[2][0] + g[0][2]) + qy * (g[2][1] + g[1][2]) - T(2) * qz * (g[0][0] + g[1][1]) +
                    qw * (g[1][0] - g[0][1]));
    const T* q4 = quats + n * 4;
    const T inv = T(1) / d_max(d_sqrt(q4[0] * q4[0] + q4[1] * q4[1] + q4[2] * q4[2] + q4[3] * q4[3]), T(1e-12));
    const T dot = vq[0] * qn[0] + vq[1] * qn[1] + vq[2] * qn[2] + vq[3] * qn[3];
    T* vqo = v_quats + n * 4;
#pragma unroll
    for (int j = 0; j < 4; ++j) rs_atomic_add(vqo + j, (vq[j] - dot * qn[j]) * inv);
}

#if defined(__CUDACC__)
template <typename T>
__global__ void __launch_bounds__(kProjectBlock) project_forward_kernel(const T* __restrict__ means, const T* __restrict__ quats,
                                       const T* __restrict__ scales, const T* __restrict__ opacities,
                                       const T* __restrict__ viewmats, const T* __restrict__ Ks, int C, int N,
                                       int width, int height, T eps2d, T near_plane, T far_plane, bool antialiased,
                                       int32_t* __restrict__ radii, T* __restrict__ means2d, T* __restrict__ depths,
                                       T* __restrict__ conics, T* __restrict__ compensations) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= static_cast<int64_t>(C) * N) return;
    project_forward_one(idx, means, quats, scales, opacities, viewmats, Ks, N, width, height, eps2d, near_plane,
                        far_plane, antialiased, radii, means2d, depths, conics, compensations);
}
#endif  // __CUDACC__

#if defined(__CUDACC__) || defined(RS_CUDA_EMULATION)
// One thread per (camera, Gaussian). With v_viewmats, each warp sums its lanes' viewmat shares (warp_sum) and lane 0
// adds them with one atomic per entry; a warp that straddles two cameras (at most one per camera boundary) adds per
// lane. blockDim.x must be a multiple of 32 (kProjectBlock).
template <typename T>
__global__ void __launch_bounds__(kProjectBlock) project_backward_kernel(
                                        const T* __restrict__ means, const T* __restrict__ quats,
                                        const T* __restrict__ scales, const T* __restrict__ viewmats,
                                        const T* __restrict__ Ks, int C, int N, int width, int height, T eps2d,
                                        bool antialiased, const int32_t* __restrict__ radii,
                                        const T* __restrict__ conics, const T* __restrict__ compensations,
                                        const T* __restrict__ v_means2d, const T* __restrict__ v_depths,
                                        const T* __restrict__ v_conics, const T* __restrict__ v_compensations,
                                        T* __restrict__ v_means, T* __restrict__ v_quats, T* __restrict__ v_scales,
                                        T* __restrict__ v_viewmats) {
    const int64_t total = static_cast<int64_t>(C) * N;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (v_viewmats == nullptr) {
        if (idx >= total) return;
        project_backward_one<T>(idx, means, quats, scales, viewmats, Ks, N, width, height, eps2d, antialiased, radii,
                                conics, compensations, v_means2d, v_depths, v_conics, v_compensations, v_means,
                                v_quats, v_scales, nullptr);
        return;
    }
    const int lane = static_cast<int>(threadIdx.x % 32);
    const int64_t first = idx - lane;                        // the warp's first element
    if (first >= total) return;                              // the whole warp is past the end
    const int64_t last = d_min(first + 31, total - 1);       // its last valid element
    T vv[12];
    if (idx < total) {
        project_backward_one<T>(idx, means, quats, scales, viewmats, Ks, N, width, height, eps2d, antialiased, radii,
                                conics, compensations, v_means2d, v_depths, v_conics, v_compensations, v_means,
                                v_quats, v_scales, vv);
    } else {
#pragma unroll
        for (int k = 0; k < 12; ++k) vv[k] = T(0);
    }
    if (first / N == last / N) {  // one camera for the whole warp: reduce, then one atomic per entry
        T* out = v_viewmats + (first / N) * 16;
#pragma unroll
        for (int k = 0; k < 12; ++k) {
            const T sum = warp_sum(vv[k]);
            if (lane == 0) rs_atomic_add(out + k, sum);
        }
    } else if (idx < total) {
        T* out = v_viewmats + (idx / N) * 16;
#pragma unroll
        for (int k = 0; k < 12; ++k) rs_atomic_add(out + k, vv[k]);
    }
}
#endif  // __CUDACC__ || RS_CUDA_EMULATION

}  // namespace

#if defined(__CUDACC__)
template <typename T>
void project_forward(const T* means, const T* quats, const T* scales, const T* opacities, const T* viewmats,
                     const T* Ks, int C, int N, int width, int height, T eps2d, T near_plane, T far_plane,
                     bool antialiased, int32_t* radii, T* means2d, T* depths, T* conics, T* compensations,
                     cudaStream_t stream) {
    const int64_t total = static_cast<int64_t>(C) * N;
    if (total == 0) return;
    project_forward_kernel<T><<<div_up(total, kProjectBlock), kProjectBlock, 0, stream>>>(
        means, quats, scales, opacities, viewmats, Ks, C, N, width, height, eps2d, near_plane, far_plane, antialiased,
        radii, means2d, depths, conics, compensations);
}

template <typename T>
void project_backward(const T* means, const T* quats, const T* scales, const T* viewmats, const T* Ks, int C, int N,
                      int width, int height, T eps2d, bool antialiased, const int32_t* radii, const T* conics,
                      const T* compensations, const T* v_means2d, const T* v_depths, const T* v_conics,
                      const T* v_compensations, T* v_means, T* v_quats, T* v_scales, T* v_viewmats,
                      cudaStream_t stream) {
    const int64_t total = static_cast<int64_t>(C) * N;
    if (total == 0) return;
    project_backward_kernel<T><<<div_up(total, kProjectBlock), kProjectBlock, 0, stream>>>(
        means, quats, scales, viewmats, Ks, C, N, width, height, eps2d, antialiased, radii, conics, compensations,
        v_means2d, v_depths, v_conics, v_compensations, v_means, v_quats, v_scales, v_viewmats);
}

#define RS_INSTANTIATE_PROJECT(T)                                                                                    \
    template void project_forward<T>(const T*, const T*, const T*, const T*, const T*, const T*, int, int, int, int, \
                                     T, T, T, bool, int32_t*, T*, T*, T*, T*, cudaStream_t);                         \
    template void project_backward<T>(const T*, const T*, const T*, const T*, const T*, int, int, int, int, T, bool, \
                                      const int32_t*, const T*, const T*, const T*, const T*, const T*, const T*, T*, \
                                      T*, T*, T*, cudaStream_t);
RS_INSTANTIATE_PROJECT(float)
RS_INSTANTIATE_PROJECT(double)
#undef RS_INSTANTIATE_PROJECT

namespace {
thread_local char pending_error[320] = "";
}  // namespace

void set_launch_error(const char* message) { std::snprintf(pending_error, sizeof(pending_error), "%s", message); }

const char* last_error() {
    static thread_local char out[320];
    if (pending_error[0] != '\0') {
        std::snprintf(out, sizeof(out), "%s", pending_error);
        pending_error[0] = '\0';
        cudaGetLastError();  // nothing was launched; clear any stale state as well
        return out;
    }
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

#endif  // __CUDACC__

}  // namespace realsim_cuda
