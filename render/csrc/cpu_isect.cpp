// C++ CPU tile intersection with a per-tile depth sort (gsplat's isect_tiles + isect_offset_encode in one op; the CUDA
// counterpart is cuda_isect.cu). Gaussians are counted into (camera, tile) buckets by a counting sort over chunks of
// Gaussians (so each bucket keeps index order), then each tile is sorted by depth, ties by Gaussian index.
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_common.h"
#include "ops.h"
#include "ops_checks.h"

namespace realsim {
namespace {

template <typename T>
void isect_kernel(const T* means2d, const int32_t* radii, const T* depths, int64_t N, const TileGrid& g,
                  int32_t* tiles_per_gauss, std::vector<int64_t>& tile_start, std::vector<int32_t>& flat) {
    const int64_t CN = g.C * N, n_tiles = g.C * g.per_cam();
    at::parallel_for(0, CN, 4096, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            if (radii[i * 2] <= 0 || radii[i * 2 + 1] <= 0) {
                tiles_per_gauss[i] = 0;
                continue;
            }
            int64_t x0, x1, y0, y1;
            tile_range(means2d[i * 2], means2d[i * 2 + 1], radii[i * 2], radii[i * 2 + 1], g, x0, x1, y0, y1);
            tiles_per_gauss[i] = static_cast<int32_t>((x1 - x0) * (y1 - y0));
        }
    });
    // Counting sort by (camera, tile) over P contiguous chunks of Gaussians, each with its own histogram and cursors,
    // so Gaussians still enter each tile's bucket in index order.
    const int64_t P = CN < 16384 ? 1 : std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), 16));
    const int64_t chunk = (CN + P - 1) / P;
    std::vector<int64_t> count(P * n_tiles, 0);
    auto for_tiles = [&](int64_t i, auto&& f) {
        const int64_t c = i / N;
        int64_t x0, x1, y0, y1;
        tile_range(means2d[i * 2], means2d[i * 2 + 1], radii[i * 2], radii[i * 2 + 1], g, x0, x1, y0, y1);
        for (int64_t ty = y0; ty < y1; ++ty)
            for (int64_t tx = x0; tx < x1; ++tx) f(c * g.per_cam() + ty * g.tiles_w + tx);
    };
    at::parallel_for(0, P, 1, [&](int64_t pb, int64_t pe) {
        for (int64_t p = pb; p < pe; ++p) {
            int64_t* cnt = count.data() + p * n_tiles;
            for (int64_t i = p * chunk; i < std::min(CN, (p + 1) * chunk); ++i)
                if (tiles_per_gauss[i]) for_tiles(i, [&](int64_t t) { ++cnt[t]; });
        }
    });
    tile_start.assign(n_tiles + 1, 0);
    std::vector<int64_t> cursor(P * n_tiles);
    int64_t total = 0;
    for (int64_t t = 0; t < n_tiles; ++t) {
        tile_start[t] = total;
        for (int64_t p = 0; p < P; ++p) {
            cursor[p * n_tiles + t] = total;
            total += count[p * n_tiles + t];
        }
    }
    tile_start[n_tiles] = total;
    flat.resize(total);
    at::parallel_for(0, P, 1, [&](int64_t pb, int64_t pe) {
        for (int64_t p = pb; p < pe; ++p) {
            int64_t* cur = cursor.data() + p * n_tiles;
            for (int64_t i = p * chunk; i < std::min(CN, (p + 1) * chunk); ++i)
                if (tiles_per_gauss[i]) for_tiles(i, [&](int64_t t) { flat[cur[t]++] = int32_t(i); });
        }
    });
    // Per-tile depth sort, ties by Gaussian index. The depth is read through the flat index of a contiguous [C,N] array.
    // float32 depths sort as one uint64 key (order-preserving depth bits, then the index); float64 as pairs.
    dynamic_for(n_tiles, tile_start[n_tiles], [&](int64_t t) {
        const int64_t s = tile_start[t], e = tile_start[t + 1];
        if (e - s < 2) return;
        if constexpr (std::is_same_v<T, float>) {
            thread_local std::vector<uint64_t> keys;
            keys.resize(e - s);
            for (int64_t k = s; k < e; ++k) {
                uint32_t bits;
                std::memcpy(&bits, &depths[flat[k]], 4);
                bits ^= (bits & 0x80000000u) ? 0xFFFFFFFFu : 0x80000000u;  // IEEE order as unsigned order
                keys[k - s] = (uint64_t(bits) << 32) | uint32_t(flat[k]);
            }
            std::sort(keys.begin(), keys.end());
            for (int64_t k = s; k < e; ++k) flat[k] = int32_t(uint32_t(keys[k - s]));
        } else {
            std::vector<std::pair<T, int32_t>> keyed(e - s);
            for (int64_t k = s; k < e; ++k) keyed[k - s] = {depths[flat[k]], flat[k]};
            std::sort(keyed.begin(), keyed.end());
            for (int64_t k = s; k < e; ++k) flat[k] = keyed[k - s].second;
        }
    });
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor> isect_tiles(const Tensor& means2d, const Tensor& radii, const Tensor& depths,
                                                       int64_t tile_size, int64_t tiles_w, int64_t tiles_h) {
    check_cpu(means2d, "means2d");
    check_cpu(radii, "radii");
    check_cpu(depths, "depths");
    TORCH_CHECK(depths.scalar_type() == means2d.scalar_type(), "depths must have the dtype of means2d");
    check_isect_inputs(means2d, radii, depths, tile_size, tiles_w, tiles_h);
    const int64_t C = means2d.size(0), N = means2d.size(1);
    TileGrid g = make_grid(means2d, tiles_w * tile_size, tiles_h * tile_size, tile_size);
    g.tiles_w = tiles_w;
    g.tiles_h = tiles_h;
    Tensor tiles_per_gauss = at::empty({C, N}, radii.options());
    std::vector<int64_t> tile_start;
    std::vector<int32_t> flat;
    AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "isect_tiles", [&] {
        isect_kernel<scalar_t>(means2d.data_ptr<scalar_t>(), radii.data_ptr<int32_t>(), depths.data_ptr<scalar_t>(), N,
                               g, tiles_per_gauss.data_ptr<int32_t>(), tile_start, flat);
    });
    const int64_t n_isects = static_cast<int64_t>(flat.size()), n_tiles = C * g.per_cam();
    TORCH_CHECK(n_isects < (int64_t(1) << 31), "too many tile intersections for int32 indices");
    Tensor flatten_ids = at::empty({n_isects}, radii.options());
    Tensor isect_ids = at::empty({n_isects}, radii.options().dtype(at::kLong));
    Tensor offsets = at::empty({C, tiles_h, tiles_w}, radii.options());
    if (n_isects) std::memcpy(flatten_ids.data_ptr<int32_t>(), flat.data(), sizeof(int32_t) * n_isects);
    int32_t* off = offsets.data_ptr<int32_t>();
    for (int64_t t = 0; t < n_tiles; ++t) off[t] = static_cast<int32_t>(tile_start[t]);
    int64_t tile_bits = 1;
    while ((int64_t(1) << tile_bits) <= g.per_cam()) ++tile_bits;
    int64_t* ids = isect_ids.data_ptr<int64_t>();
    Tensor depth32 = depths.to(at::kFloat).contiguous();
    const float* dz = depth32.data_ptr<float>();
    at::parallel_for(0, n_tiles, n_isects < 65536 ? n_tiles : 64, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
            const int64_t cam = t / g.per_cam(), tid = t % g.per_cam();
            for (int64_t k = tile_start[t]; k < tile_start[t + 1]; ++k) {
                uint32_t bits;
                std::memcpy(&bits, &dz[flat[k]], 4);
                ids[k] = (cam << (32 + tile_bits)) | (tid << 32) | int64_t(bits);
            }
        }
    });
    return {tiles_per_gauss, isect_ids, flatten_ids, offsets};
}

}  // namespace realsim
