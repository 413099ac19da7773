// C++ CPU front-to-back rasterization and its backward pass (the tile intersection it reads is cpu_isect.cpp).
// Tiles are processed in parallel on torch's thread pool. Inside a tile the loop is Gaussian-outer / pixel-inner over the
// Gaussian's box clipped to the tile, with per-pixel state (transmittance in double) kept in small local arrays. The
// backward writes one gradient row per intersection (no races, deterministic) and sums them per Gaussian afterwards.
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_common.h"
#include "ops.h"
#include "ops_checks.h"

namespace realsim {
namespace {

// Four doubles / floats as one value (GCC/Clang vector extensions: AVX2 registers under -march=x86-64-v3, SSE
// otherwise). The blend loops run branch-free over chunks of kLanes pixels of a row.
using v4d = double __attribute__((vector_size(32)));
using v4l = int64_t __attribute__((vector_size(32)));
using v4f = float __attribute__((vector_size(16)));
using v4i = int32_t __attribute__((vector_size(16)));
constexpr int kLanes = 4;

inline v4d load4(const double* p) {
    v4d v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store4(double* p, v4d v) { std::memcpy(p, &v, sizeof v); }
inline double hsum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// exp for float lanes: Cephes-style polynomial (max relative error 8e-8 on [-87, 0], checked against double exp),
// inputs clamped to [-87, 0]; floor through truncation (exact for these magnitudes).
inline v4f fast_exp4(v4f x) {
    const v4f lo = v4f{} - 87.0f, zero = v4f{};
    x = x < lo ? lo : x;
    x = x > zero ? zero : x;
    const v4f y0 = x * 1.44269504088896341f + 0.5f;
    v4i ti = __builtin_convertvector(y0, v4i);
    ti += __builtin_convertvector(ti, v4f) > y0;  // -1 where truncation rounded up
    const v4f fx = __builtin_convertvector(ti, v4f);
    v4f r = x - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    const v4f z = r * r;
    v4f y = v4f{} + 1.9875691500E-4f;
    y = y * r + 1.3981999507E-3f;
    y = y * r + 8.3334519073E-3f;
    y = y * r + 4.1665795894E-2f;
    y = y * r + 1.6666665459E-1f;
    y = y * r + 5.0000001201E-1f;
    y = y * z + r + 1.0f;
    const v4i bits = (ti + 127) << 23;
    v4f scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

// alpha (0 where the pixel is skipped: sigma < 0, alpha < 1/255, or lane >= rem) and exp(-sigma) of the four pixels
// x, x+1, x+2, x+3 of row dy. Shared by forward and backward so both see bit-identical alphas.
inline void alpha4(float mx, float dy, float ca, float cb, float cc, float o, int64_t x, int64_t rem, v4d& alpha,
                   v4d& vis) {
    const v4f lane = {0.0f, 1.0f, 2.0f, 3.0f};
    const v4f dx = mx - ((float(x) + 0.5f) + lane);
    const v4f sigma = 0.5f * (ca * dx * dx + cc * dy * dy) + cb * dx * dy;
    const v4f v = fast_exp4(-sigma);
    v4f a = o * v;
    const v4f amax = v4f{} + float(kAlphaMax), zero = v4f{};
    a = a < amax ? a : amax;
    a = sigma >= 0.0f ? a : zero;
    a = a >= float(kAlphaMin) ? a : zero;
    a = lane < float(rem) ? a : zero;
    alpha = __builtin_convertvector(a, v4d);
    vis = __builtin_convertvector(v, v4d);
}
// float64 (tests, gradcheck): the same formula per lane with std::exp.
inline void alpha4(double mx, double dy, double ca, double cb, double cc, double o, int64_t x, int64_t rem,
                   v4d& alpha, v4d& vis) {
    for (int l = 0; l < kLanes; ++l) {
        const double dx = mx - (double(x + l) + 0.5);
        const double sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy;
        const double v = std::exp(-sigma);
        double a = std::min(kAlphaMax, o * v);
        a = (sigma >= 0.0 && a >= kAlphaMin && l < rem) ? a : 0.0;
        alpha[l] = a;
        vis[l] = v;
    }
}

// One intersection prepared for a tile: the Gaussian's parameters, its pixel box clipped to the tile, and the ellipse
// chord constants so each row only visits the pixels where alpha >= 1/255 can hold (widened to whole pixels plus a
// margin; the exact alpha test in row_alphas still decides every pixel).
template <typename T>
struct TileSplat {
    T mx, my, ca, cb, cc, o;
    int32_t gi;
    int32_t px0, px1, py0, py1;  // inclusive pixel box within the tile; empty when px0 > px1
    double shift, k1, k2;        // chord of row dy: centre mx - 0.5 + shift*dy, half-width^2 = k2 + k1*dy^2
};

// Gathers flatten_ids[s, e) of a tile into TileSplats (independent loads, so cache misses overlap).
template <typename T>
void gather_tile(const T* means2d, const T* conics, const T* opac, const int32_t* radii, const int32_t* flat, int64_t s,
                 int64_t e, int64_t tx0, int64_t ty0, int64_t tx1, int64_t ty1, std::vector<TileSplat<T>>& out) {
    out.resize(e - s);
    for (int64_t i = s; i < e; ++i) {
        TileSplat<T>& t = out[i - s];
        const int64_t gi = flat[i];
        t.gi = int32_t(gi);
        t.mx = means2d[gi * 2];
        t.my = means2d[gi * 2 + 1];
        t.ca = conics[gi * 3];
        t.cb = conics[gi * 3 + 1];
        t.cc = conics[gi * 3 + 2];
        t.o = opac[gi];
        const double rx = radii[gi * 2], ry = radii[gi * 2 + 1], mx = t.mx, my = t.my;
        t.px0 = int32_t(std::max<double>(double(tx0), std::ceil(mx - rx - 0.5)));
        t.px1 = int32_t(std::min<double>(double(tx1 - 1), std::floor(mx + rx - 0.5)));
        t.py0 = int32_t(std::max<double>(double(ty0), std::ceil(my - ry - 0.5)));
        t.py1 = int32_t(std::min<double>(double(ty1 - 1), std::floor(my + ry - 0.5)));
        const double a = t.ca, b = t.cb, c = t.cc;
        const double smax = std::log(255.0 * double(t.o)) + 1e-3;  // alpha >= 1/255 needs sigma <= ln(255 o)
        t.shift = b / a;
        t.k1 = (b * b - a * c) / (a * a);
        t.k2 = 2.0 * smax / a;
    }
}

// Pixel columns [x0, x1] of row py that the chord of t covers (false if none).
template <typename T>
inline bool chord(const TileSplat<T>& t, T dy, int64_t& x0, int64_t& x1) {
    const double ddy = dy, h2 = t.k2 + t.k1 * ddy * ddy;
    if (h2 < 0) return false;
    const double half = std::sqrt(h2), pc = double(t.mx) - 0.5 + t.shift * ddy;
    x0 = std::max<int64_t>(t.px0, int64_t(std::max(std::floor(pc - half), double(t.px0))));
    x1 = std::min<int64_t>(t.px1, int64_t(std::min(std::ceil(pc + half), double(t.px1))));
    return x0 <= x1;
}

// Calls f(std::integral_constant<int, D>) for the common channel counts (loops unroll), else with 0 (runtime D).
template <typename F>
void with_channels(int64_t D, F&& f) {
    switch (D) {
        case 1: f(std::integral_constant<int, 1>{}); break;
        case 3: f(std::integral_constant<int, 3>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        default: f(std::integral_constant<int, 0>{});
    }
}

template <typename T, int DC>
void rasterize_fwd_kernel(const T* means2d, const T* conics, const T* colors, const T* opac, const T* bgs,
                          const int32_t* radii, const int32_t* offsets, const int32_t* flat, int64_t n_isects,
                          int64_t D_in, const TileGrid& g, T* out_colors, T* out_alphas, int32_t* last_ids) {
    const int64_t D = DC > 0 ? DC : D_in;
    const int64_t n_tiles = g.C * g.per_cam(), ts = g.tile_size, W = g.width, H = g.height;
    dynamic_for(n_tiles, n_isects + g.C * W * H / 32, [&](int64_t tile) {
        const int64_t c = tile / g.per_cam(), tyx = tile % g.per_cam();
        const int64_t tx0 = (tyx % g.tiles_w) * ts, ty0 = (tyx / g.tiles_w) * ts;
        const int64_t tx1 = std::min(tx0 + ts, W), ty1 = std::min(ty0 + ts, H);
        const int64_t tw = tx1 - tx0, npix = tw * (ty1 - ty0), np = npix + kLanes;
        // Per-pixel state in planes of np (npix plus one chunk of padding). Tr < 0 marks a finished pixel (|Tr| is its
        // final transmittance); last holds the flatten index of the last blended Gaussian (exact in double).
        thread_local std::vector<double> Tr_v, acc_v, last_v, col_v;
        Tr_v.assign(np, 1.0);
        acc_v.assign(np * D, 0.0);
        last_v.assign(np, -1.0);
        col_v.resize(D);
        double* Tr = Tr_v.data();
        double* acc = acc_v.data();
        double* last = last_v.data();
        double* colv = col_v.data();
        int64_t alive = npix;
        const int64_t s = offsets[tile], e = tile + 1 < n_tiles ? offsets[tile + 1] : n_isects;
        thread_local std::vector<TileSplat<T>> splats_v;
        gather_tile(means2d, conics, opac, radii, flat, s, e, tx0, ty0, tx1, ty1, splats_v);
        for (int64_t i = s; i < e && alive > 0; ++i) {
            const TileSplat<T>& sp = splats_v[i - s];
            if (sp.px0 > sp.px1 || sp.py0 > sp.py1) continue;
            const T mx = sp.mx, my = sp.my, ca = sp.ca, cb = sp.cb, cc = sp.cc, o = sp.o;
            for (int64_t ch = 0; ch < D; ++ch) colv[ch] = double(colors[int64_t(sp.gi) * D + ch]);
            const v4d di = v4d{} + double(i);
            for (int64_t py = sp.py0; py <= sp.py1; ++py) {
                const T dy = my - (T(py) + T(0.5));
                int64_t x0, x1;
                if (!chord(sp, dy, x0, x1)) continue;
                const int64_t krow = (py - ty0) * tw - tx0 + x0, n = x1 - x0 + 1;
                v4l stops = v4l{};
                // Branch-free over chunks of kLanes pixels; lanes past the row see alpha 0 and write back what they read.
                for (int64_t j0 = 0; j0 < n; j0 += kLanes) {
                    double* tr = Tr + krow + j0;
                    double* ls = last + krow + j0;
                    double* ac = acc + krow + j0;
                    v4d a, vis;
                    alpha4(mx, dy, ca, cb, cc, o, x0 + j0, n - j0, a, vis);
                    const v4d t = load4(tr);
                    const v4d nt = t * (1.0 - a);
                    const v4l live = (a > 0.0) & (t > 0.0), low = nt <= kTMin;
                    const v4l stop = live & low, upd = live & ~low;
                    const v4d w = upd ? a * t : v4d{};
                    for (int64_t ch = 0; ch < D; ++ch) store4(ac + ch * np, load4(ac + ch * np) + w * colv[ch]);
                    store4(tr, stop ? -t : (upd ? nt : t));
                    store4(ls, upd ? di : load4(ls));
                    stops -= stop;  // comparisons give -1 for true
                }
                alive -= stops[0] + stops[1] + stops[2] + stops[3];
            }
        }
        const T* bg = bgs ? bgs + c * D : nullptr;
        for (int64_t py = ty0; py < ty1; ++py)
            for (int64_t px = tx0; px < tx1; ++px) {
                const int64_t k = (py - ty0) * tw + (px - tx0), pix = (c * H + py) * W + px;
                const double tf = std::abs(Tr[k]);
                for (int64_t ch = 0; ch < D; ++ch)
                    out_colors[pix * D + ch] = T(acc[ch * np + k] + (bg ? tf * double(bg[ch]) : 0.0));
                out_alphas[pix] = T(1.0 - tf);
                last_ids[pix] = int32_t(last[k]);
            }
    });
}

// Gradient row layout per intersection: mean2d x, y; conic a, b, c; opacity; |mean2d| x, y; colours [D].
constexpr int64_t kRowFixed = 8;

template <typename T, int DC>
void rasterize_bwd_kernel(const T* means2d, const T* conics, const T* colors, const T* opac, const T* bgs,
                          const int32_t* radii, const int32_t* offsets, const int32_t* flat, int64_t n_isects,
                          int64_t D_in, const TileGrid& g, const T* alphas, const int32_t* last_ids, const T* v_colors,
                          const T* v_alphas, T* rows) {
    const int64_t D = DC > 0 ? DC : D_in;
    const int64_t n_tiles = g.C * g.per_cam(), ts = g.tile_size, W = g.width, H = g.height;
    const int64_t R = kRowFixed + D;
    dynamic_for(n_tiles, n_isects + g.C * W * H / 32, [&](int64_t tile) {
        const int64_t c = tile / g.per_cam(), tyx = tile % g.per_cam();
        const int64_t tx0 = (tyx % g.tiles_w) * ts, ty0 = (tyx / g.tiles_w) * ts;
        const int64_t tx1 = std::min(tx0 + ts, W), ty1 = std::min(ty0 + ts, H);
        const int64_t tw = tx1 - tx0, npix = tw * (ty1 - ty0), np = npix + kLanes;
        const int64_t s = offsets[tile], e = tile + 1 < n_tiles ? offsets[tile + 1] : n_isects;
        if (e <= s) return;
        std::fill(rows + s * R, rows + e * R, T(0));  // rows of intersections that add nothing stay zero
        // Per-pixel state in planes of np (padded by one chunk, see the forward); colour lanes per Gaussian.
        thread_local std::vector<double> Tcur_v, Tfin_v, buf_v, vC_v, vA_v, last_v, col_v, lcol_v;
        Tcur_v.assign(np, 1.0);
        Tfin_v.assign(np, 1.0);
        vA_v.assign(np, 0.0);
        last_v.assign(np, -1.0);
        buf_v.assign(np * D, 0.0);
        vC_v.assign(np * D, 0.0);
        col_v.resize(D);
        lcol_v.resize(D * kLanes);
        double *Tcur = Tcur_v.data(), *Tfin = Tfin_v.data(), *buf = buf_v.data(), *vC = vC_v.data();
        double *vA = vA_v.data(), *last = last_v.data(), *colv = col_v.data(), *lcol = lcol_v.data();
        const T* bg = bgs ? bgs + c * D : nullptr;
        int32_t max_last = -1;
        for (int64_t py = ty0; py < ty1; ++py)
            for (int64_t px = tx0; px < tx1; ++px) {
                const int64_t k = (py - ty0) * tw + (px - tx0), pix = (c * H + py) * W + px;
                Tfin[k] = Tcur[k] = 1.0 - double(alphas[pix]);
                last[k] = double(last_ids[pix]);
                max_last = std::max(max_last, last_ids[pix]);
                double bgdot = 0;
                for (int64_t ch = 0; ch < D; ++ch) {
                    vC[ch * np + k] = double(v_colors[pix * D + ch]);
                    if (bg) bgdot += double(bg[ch]) * vC[ch * np + k];
                }
                // alpha-dependent terms that only involve T_final: d(alpha_out) and the background's share.
                vA[k] = double(v_alphas[pix]) - bgdot;
            }
        const int64_t e_used = std::min<int64_t>(e, int64_t(max_last) + 1);
        thread_local std::vector<TileSplat<T>> splats_v;
        if (e_used > s) gather_tile(means2d, conics, opac, radii, flat, s, e_used, tx0, ty0, tx1, ty1, splats_v);
        const v4d lane_off = {0.0, 1.0, 2.0, 3.0};
        for (int64_t i = e_used - 1; i >= s; --i) {
            const TileSplat<T>& sp = splats_v[i - s];
            T* row = rows + i * R;
            if (sp.px0 > sp.px1 || sp.py0 > sp.py1) continue;
            const T mx = sp.mx, my = sp.my, ca = sp.ca, cb = sp.cb, cc = sp.cc, o = sp.o;
            const double dca = ca, dcb = cb, dcc = cc, dO = o;
            const v4d di = v4d{} + double(i);
            for (int64_t ch = 0; ch < D; ++ch) colv[ch] = double(colors[int64_t(sp.gi) * D + ch]);
            std::fill(lcol, lcol + D * kLanes, 0.0);
            v4d g_mx{}, g_my{}, g_a{}, g_b{}, g_c{}, g_o{}, abs_x{}, abs_y{};
            for (int64_t py = sp.py0; py <= sp.py1; ++py) {
                const T dy = my - (T(py) + T(0.5));
                int64_t x0, x1;
                if (!chord(sp, dy, x0, x1)) continue;
                const int64_t krow = (py - ty0) * tw - tx0 + x0, n = x1 - x0 + 1;
                const double ddy = dy;
                for (int64_t j0 = 0; j0 < n; j0 += kLanes) {
                    const int64_t k0 = krow + j0;
                    v4d a, vis;
                    alpha4(mx, dy, ca, cb, cc, o, x0 + j0, n - j0, a, vis);
                    const v4l m = (a > 0.0) & (di <= load4(last + k0));
                    const v4d ra = 1.0 / (1.0 - a);
                    const v4d tc = load4(Tcur + k0);
                    const v4d Tk = tc * ra;  // transmittance in front of this Gaussian
                    store4(Tcur + k0, m ? Tk : tc);
                    const v4d w = m ? a * Tk : v4d{};
                    v4d v_alpha = load4(Tfin + k0) * ra * load4(vA + k0);
                    for (int64_t ch = 0; ch < D; ++ch) {
                        const v4d vcc = load4(vC + ch * np + k0), b = load4(buf + ch * np + k0);
                        store4(lcol + ch * kLanes, load4(lcol + ch * kLanes) + w * vcc);
                        v_alpha += (colv[ch] * Tk - b * ra) * vcc;
                        store4(buf + ch * np + k0, b + w * colv[ch]);
                    }
                    v_alpha = m ? v_alpha : v4d{};
                    const v4d ovis = dO * vis;
                    const v4l unclamped = ovis <= kAlphaMax;
                    const v4d v_sigma = unclamped ? -ovis * v_alpha : v4d{};
                    const v4d ddx = (double(mx) - (double(x0 + j0) + 0.5)) - lane_off;
                    g_a += 0.5 * ddx * ddx * v_sigma;
                    g_b += ddx * ddy * v_sigma;
                    g_c += 0.5 * ddy * ddy * v_sigma;
                    const v4d gx = v_sigma * (dca * ddx + dcb * ddy);
                    const v4d gy = v_sigma * (dcb * ddx + dcc * ddy);
                    g_mx += gx;
                    g_my += gy;
                    abs_x += gx < 0.0 ? -gx : gx;
                    abs_y += gy < 0.0 ? -gy : gy;
                    g_o += unclamped ? vis * v_alpha : v4d{};
                }
            }
            row[0] = T(hsum(g_mx)), row[1] = T(hsum(g_my)), row[2] = T(hsum(g_a)), row[3] = T(hsum(g_b));
            row[4] = T(hsum(g_c)), row[5] = T(hsum(g_o)), row[6] = T(hsum(abs_x)), row[7] = T(hsum(abs_y));
            for (int64_t ch = 0; ch < D; ++ch) row[kRowFixed + ch] = T(hsum(load4(lcol + ch * kLanes)));
        }
    });
}

}  // namespace

static void check_raster_inputs(const Tensor& means2d, const Tensor& conics, const Tensor& colors,
                                const Tensor& opacities, const std::optional<Tensor>& backgrounds, const Tensor& radii,
                                const Tensor& offsets, const Tensor& flat, int64_t width, int64_t height,
                                int64_t tile_size) {
    check_raster_inputs_shapes(means2d, conics, colors, opacities, backgrounds, radii, width, height, tile_size, offsets,
                               flat);
    for (auto& [t, name] : {std::pair{&means2d, "means2d"}, {&conics, "conics"}, {&colors, "colors"},
                            {&opacities, "opacities"}}) {
        check_cpu(*t, name);
        TORCH_CHECK(t->scalar_type() == means2d.scalar_type(), name, " must have the dtype of means2d");
    }
    TORCH_CHECK(colors.dim() == 3 && colors.size(0) == means2d.size(0) && colors.size(1) == means2d.size(1),
                "colors must be [C,N,D]");
    if (backgrounds) {
        check_cpu(*backgrounds, "backgrounds");
        TORCH_CHECK(backgrounds->scalar_type() == means2d.scalar_type(), "backgrounds must have the dtype of means2d");
        TORCH_CHECK(backgrounds->numel() == colors.size(0) * colors.size(2), "backgrounds must be [C,D]");
    }
    check_cpu(radii, "radii");
    check_cpu(offsets, "isect_offsets");
    check_cpu(flat, "flatten_ids");
}

std::tuple<Tensor, Tensor, Tensor> rasterize_fwd(const Tensor& means2d, const Tensor& conics, const Tensor& colors,
                                                 const Tensor& opacities, const std::optional<Tensor>& backgrounds,
                                                 const Tensor& radii, int64_t width, int64_t height,
                                                 int64_t tile_size, const Tensor& isect_offsets,
                                                 const Tensor& flatten_ids) {
    check_raster_inputs(means2d, conics, colors, opacities, backgrounds, radii, isect_offsets, flatten_ids, width,
                        height, tile_size);
    const TileGrid g = make_grid(means2d, width, height, tile_size);
    TORCH_CHECK(isect_offsets.numel() == g.C * g.per_cam(), "isect_offsets must be [C,tiles_h,tiles_w]");
    const int64_t D = colors.size(2);
    auto opts = means2d.options();
    Tensor rc = at::empty({g.C, height, width, D}, opts), ra = at::empty({g.C, height, width, 1}, opts);
    Tensor last = at::empty({g.C, height, width}, radii.options());
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "rasterize_fwd", [&] {
        with_channels(D, [&](auto dc) {
        rasterize_fwd_kernel<scalar_t, decltype(dc)::value>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                                       colors.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(),
                                       backgrounds ? backgrounds->data_ptr<scalar_t>() : nullptr,
                                       radii.data_ptr<int32_t>(), isect_offsets.data_ptr<int32_t>(),
                                       flatten_ids.data_ptr<int32_t>(), flatten_ids.numel(), D, g,
                                       rc.data_ptr<scalar_t>(), ra.data_ptr<scalar_t>(), last.data_ptr<int32_t>());
        });
    });
    return {rc, ra, last};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> rasterize_bwd(
    const Tensor& means2d, const Tensor& conics, const Tensor& colors, const Tensor& opacities,
    const std::optional<Tensor>& backgrounds, const Tensor& radii, int64_t width, int64_t height, int64_t tile_size,
    const Tensor& isect_offsets, const Tensor& flatten_ids, const Tensor& render_alphas, const Tensor& last_ids,
    const Tensor& v_render_colors, const Tensor& v_render_alphas, bool absgrad) {
    check_raster_inputs(means2d, conics, colors, opacities, backgrounds, radii, isect_offsets, flatten_ids, width,
                        height, tile_size);
    check_raster_grads(render_alphas, last_ids, v_render_colors, v_render_alphas, colors.size(0), height, width,
                       colors.size(2));
    for (auto& [t, name] : {std::pair{&render_alphas, "render_alphas"}, {&v_render_colors, "v_render_colors"},
                            {&v_render_alphas, "v_render_alphas"}}) {
        check_cpu(*t, name);
        TORCH_CHECK(t->scalar_type() == means2d.scalar_type(), name, " must have the dtype of means2d");
    }
    check_cpu(last_ids, "last_ids");
    const TileGrid g = make_grid(means2d, width, height, tile_size);
    const int64_t D = colors.size(2), N = means2d.size(1), n_isects = flatten_ids.numel();
    Tensor v_means2d = at::zeros_like(means2d), v_conics = at::zeros_like(conics);
    Tensor v_colors = at::zeros_like(colors), v_opac = at::zeros_like(opacities);
    Tensor v_abs = absgrad ? at::zeros_like(means2d) : Tensor();
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "rasterize_bwd", [&] {
        const int64_t R = kRowFixed + D;
        // Every row is written by its tile's task (zeros where an intersection adds nothing): no serial zero-fill.
        std::unique_ptr<scalar_t[]> rows_buf(new scalar_t[static_cast<size_t>(std::max<int64_t>(n_isects * R, 1))]);
        scalar_t* rows = rows_buf.get();
        with_channels(D, [&](auto dc) {
        rasterize_bwd_kernel<scalar_t, decltype(dc)::value>(
            means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(), colors.data_ptr<scalar_t>(),
            opacities.data_ptr<scalar_t>(), backgrounds ? backgrounds->data_ptr<scalar_t>() : nullptr,
            radii.data_ptr<int32_t>(), isect_offsets.data_ptr<int32_t>(), flatten_ids.data_ptr<int32_t>(), n_isects,
            D, g, render_alphas.data_ptr<scalar_t>(), last_ids.data_ptr<int32_t>(), v_render_colors.data_ptr<scalar_t>(),
            v_render_alphas.data_ptr<scalar_t>(), rows);
        });
        // Sum the per-intersection rows into their Gaussians: each worker owns a range of Gaussian ids and adds their
        // rows in intersection order, so every sum is the serial one, bit for bit, whatever the thread count.
        const int32_t* flat = flatten_ids.data_ptr<int32_t>();
        scalar_t *vm = v_means2d.data_ptr<scalar_t>(), *vc = v_conics.data_ptr<scalar_t>();
        scalar_t *vcol = v_colors.data_ptr<scalar_t>(), *vo = v_opac.data_ptr<scalar_t>();
        scalar_t* va = absgrad ? v_abs.data_ptr<scalar_t>() : nullptr;
        const int64_t n_ids = g.C * N;
        const int64_t workers = n_isects < 65536 ? 1 : std::min<int64_t>(at::get_num_threads(), n_ids);
        at::parallel_for(0, workers, 1, [&](int64_t w0, int64_t w1) {
            for (int64_t w = w0; w < w1; ++w) {
                const int64_t lo = n_ids * w / workers, hi = n_ids * (w + 1) / workers;
                for (int64_t i = 0; i < n_isects; ++i) {
                    const int64_t gi = flat[i];
                    if (gi < lo || gi >= hi) continue;
                    const scalar_t* r = rows + i * R;
                    vm[gi * 2] += r[0];
                    vm[gi * 2 + 1] += r[1];
                    vc[gi * 3] += r[2];
                    vc[gi * 3 + 1] += r[3];
                    vc[gi * 3 + 2] += r[4];
                    vo[gi] += r[5];
                    if (va) {
                        va[gi * 2] += r[6];
                        va[gi * 2 + 1] += r[7];
                    }
                    for (int64_t ch = 0; ch < D; ++ch) vcol[gi * D + ch] += r[kRowFixed + ch];
                }
            }
        });
    });
    return {v_means2d, v_conics, v_colors, v_opac, v_abs};
}

}  // namespace realsim
