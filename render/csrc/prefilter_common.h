// Exact sphere-versus-frustum test shared by the C++ CPU and the CUDA anchor prefilter (render/prefilter.py holds the
// torch reference of the same geometry). The frustum is the convex region {z >= near, u in [-pad, W+pad],
// v in [-pad, H+pad]} of an OpenCV pinhole camera (unbounded in depth). A sphere meets it iff the Euclidean distance from
// its centre to the region is <= its radius; that distance is exact here (faces, edges and corners), not the usual
// conservative plane test, so anchors next to a frustum edge are not kept needlessly.
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define RS_PF_HD __host__ __device__ __forceinline__
#else
#define RS_PF_HD inline
#endif

namespace realsim_prefilter {

struct Frustum {
    // Side limits as slopes: x/z in [ax0, ax1], y/z in [ay0, ay1]; near plane z = zn.
    float ax0, ax1, ay0, ay1, zn;
};

RS_PF_HD Frustum make_frustum(const float* K, int width, int height, float near_plane, float pad) {
    Frustum f;
    const float fx = K[0], cx = K[2], fy = K[4], cy = K[5];
    f.ax0 = (-pad - cx) / fx;
    f.ax1 = (width + pad - cx) / fx;
    f.ay0 = (-pad - cy) / fy;
    f.ay1 = (height + pad - cy) / fy;
    f.zn = near_plane;
    return f;
}

// Squared distance from p to the segment / ray starting at a with direction d (t in [0, tmax]; tmax < 0 means a ray).
RS_PF_HD float dist2_to_edge(const float p[3], const float a[3], const float d[3], float tmax) {
    const float w0 = p[0] - a[0], w1 = p[1] - a[1], w2 = p[2] - a[2];
    const float dd = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
    float t = (w0 * d[0] + w1 * d[1] + w2 * d[2]) / dd;
    t = t < 0.f ? 0.f : t;
    if (tmax >= 0.f && t > tmax) t = tmax;
    const float e0 = w0 - t * d[0], e1 = w1 - t * d[1], e2 = w2 - t * d[2];
    return e0 * e0 + e1 * e1 + e2 * e2;
}

// Signed inside-distances of p to the 5 planes (>= 0 inside): near, x-left, x-right, y-top, y-bottom; unit normals n[5].
RS_PF_HD void planes(const Frustum& f, float n[5][3], float off[5]) {
    // near: z - zn >= 0
    n[0][0] = 0.f; n[0][1] = 0.f; n[0][2] = 1.f; off[0] = -f.zn;
    // x - ax0 z >= 0 ; -x + ax1 z >= 0 ; y - ay0 z >= 0 ; -y + ay1 z >= 0 (planes through the camera centre)
    const float s0 = 1.f / sqrtf(1.f + f.ax0 * f.ax0), s1 = 1.f / sqrtf(1.f + f.ax1 * f.ax1);
    const float s2 = 1.f / sqrtf(1.f + f.ay0 * f.ay0), s3 = 1.f / sqrtf(1.f + f.ay1 * f.ay1);
    n[1][0] = s0;  n[1][1] = 0.f; n[1][2] = -f.ax0 * s0; off[1] = 0.f;
    n[2][0] = -s1; n[2][1] = 0.f; n[2][2] = f.ax1 * s1;  off[2] = 0.f;
    n[3][0] = 0.f; n[3][1] = s2;  n[3][2] = -f.ay0 * s2; off[3] = 0.f;
    n[4][0] = 0.f; n[4][1] = -s3; n[4][2] = f.ay1 * s3;  off[4] = 0.f;
}

// True iff the sphere (centre p in camera coordinates, radius r >= 0) meets the frustum.
RS_PF_HD bool sphere_meets_frustum(const Frustum& f, const float p[3], float r) {
    // Non-finite centres (NaN/inf) never meet the frustum; x - x == 0 is false exactly for them.
    if (!(p[0] - p[0] == 0.f && p[1] - p[1] == 0.f && p[2] - p[2] == 0.f)) return false;
    float n[5][3], off[5], s[5];
    planes(f, n, off);
    bool inside = true;
    float worst = 0.f;  // most negative signed distance: a lower bound of the true distance
    for (int i = 0; i < 5; ++i) {
        s[i] = n[i][0] * p[0] + n[i][1] * p[1] + n[i][2] * p[2] + off[i];
        if (s[i] < 0.f) {
            inside = false;
            worst = fminf(worst, s[i]);
        }
    }
    if (inside) return true;
    if (-worst > r) return false;  // even the nearest supporting plane is farther than r
    const float r2 = r * r;
    // Faces: the projection onto plane i is the nearest point when it satisfies the other four constraints.
    const float tol = 1e-6f * (1.f + fabsf(p[0]) + fabsf(p[1]) + fabsf(p[2]));
    for (int i = 0; i < 5; ++i) {
        if (s[i] >= 0.f) continue;
        const float q[3] = {p[0] - s[i] * n[i][0], p[1] - s[i] * n[i][1], p[2] - s[i] * n[i][2]};
        bool ok = true;
        for (int j = 0; j < 5 && ok; ++j) {
            if (j == i) continue;
            ok = n[j][0] * q[0] + n[j][1] * q[1] + n[j][2] * q[2] + off[j] >= -tol;
        }
        if (ok) return s[i] * s[i] <= r2;  // the nearest boundary point lies in this face
    }
    // Edges: 4 near-rectangle edges (segments) and 4 lateral rays from the near corners along the corner directions.
    const float xs[2] = {f.ax0, f.ax1}, ys[2] = {f.ay0, f.ay1};
    float best = INFINITY;
    for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) {
            const float corner[3] = {xs[a] * f.zn, ys[b] * f.zn, f.zn};
            const float dir[3] = {xs[a], ys[b], 1.f};
            best = fminf(best, dist2_to_edge(p, corner, dir, -1.f));
        }
        // horizontal near edges (y fixed) and vertical near edges (x fixed)
        const float hy[3] = {f.ax0 * f.zn, ys[a] * f.zn, f.zn};
        const float hd[3] = {(f.ax1 - f.ax0) * f.zn, 0.f, 0.f};
        best = fminf(best, dist2_to_edge(p, hy, hd, 1.f));
        const float vx[3] = {xs[a] * f.zn, f.ay0 * f.zn, f.zn};
        const float vd[3] = {0.f, (f.ay1 - f.ay0) * f.zn, 0.f};
        best = fminf(best, dist2_to_edge(p, vx, vd, 1.f));
    }
    return best <= r2;
}

// Camera coordinates R p + t of a world point under a row-major 4x4 world-to-camera matrix.
RS_PF_HD void to_camera(const float* vm, const float* w, float p[3]) {
    for (int i = 0; i < 3; ++i) p[i] = vm[i * 4] * w[0] + vm[i * 4 + 1] * w[1] + vm[i * 4 + 2] * w[2] + vm[i * 4 + 3];
}

}  // namespace realsim_prefilter
