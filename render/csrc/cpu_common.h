// Helpers shared by realsim's C++ CPU kernels: constants of the algorithm (mirror render/ref.py), a dynamic work loop on
// torch's own thread pool (so torch.set_num_threads governs it and no second OpenMP runtime spins), small 3x3 algebra.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace realsim {

constexpr double kAlphaMin = 1.0 / 255.0;  // contributions below this alpha are skipped
constexpr double kAlphaMax = 0.999;        // alpha is clamped to this
constexpr double kTMin = 1e-4;             // a pixel stops before its transmittance would reach this
constexpr double kExtendMax = 3.33;        // screen extent cap in standard deviations

// Runs fn(i) for i in [0, n) on torch's thread pool, handing out indices one at a time (tiles differ a lot in cost).
// Small jobs (work below ~8k items, e.g. tile intersections) run inline: waking threads would cost more.
template <typename F>
void dynamic_for(int64_t n, int64_t work, F&& fn) {
    if (n <= 0) return;
    const int64_t workers = work < 8192 ? 1 : std::min<int64_t>(at::get_num_threads(), n);
    if (workers <= 1) {
        for (int64_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::atomic<int64_t> next{0};
    at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
        for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    });
}

template <typename T>
struct Mat3 {
    T m[3][3];
};

template <typename T>
inline Mat3<T> mul(const Mat3<T>& a, const Mat3<T>& b) {
    Mat3<T> r;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) r.m[i][j] = a.m[i][0] * b.m[0][j] + a.m[i][1] * b.m[1][j] + a.m[i][2] * b.m[2][j];
    return r;
}

template <typename T>
inline Mat3<T> transpose(const Mat3<T>& a) {
    Mat3<T> r;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) r.m[i][j] = a.m[j][i];
    return r;
}

// Tile grid of C cameras' images (shared by the tile intersection, cpu_isect.cpp, and the rasterizer, cpu_rasterize.cpp).
constexpr int64_t kMaxTile = 32;

struct TileGrid {
    int64_t C, tiles_w, tiles_h, tile_size, width, height;
    int64_t per_cam() const { return tiles_w * tiles_h; }
};

template <typename T>
inline void tile_range(T mx, T my, int32_t rx, int32_t ry, const TileGrid& g, int64_t& x0, int64_t& x1, int64_t& y0,
                       int64_t& y1) {
    const T ts = T(g.tile_size);
    x0 = std::min<int64_t>(std::max<int64_t>(0, static_cast<int64_t>(std::floor((mx - rx) / ts))), g.tiles_w);
    x1 = std::min<int64_t>(std::max<int64_t>(0, static_cast<int64_t>(std::ceil((mx + rx) / ts))), g.tiles_w);
    y0 = std::min<int64_t>(std::max<int64_t>(0, static_cast<int64_t>(std::floor((my - ry) / ts))), g.tiles_h);
    y1 = std::min<int64_t>(std::max<int64_t>(0, static_cast<int64_t>(std::ceil((my + ry) / ts))), g.tiles_h);
}

inline TileGrid make_grid(const at::Tensor& means2d, int64_t width, int64_t height, int64_t tile_size) {
    TORCH_CHECK(tile_size > 0 && tile_size <= kMaxTile && width > 0 && height > 0, "bad image or tile size (tile_size <= 32)");
    TileGrid g;
    g.C = means2d.size(0);
    g.tile_size = tile_size;
    g.width = width;
    g.height = height;
    g.tiles_w = (width + tile_size - 1) / tile_size;
    g.tiles_h = (height + tile_size - 1) / tile_size;
    return g;
}

inline void check_cpu(const at::Tensor& t, const char* name) {
    TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
    TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

}  // namespace realsim
