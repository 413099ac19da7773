// Tile intersection: count the tiles each projected Gaussian touches, emit one 64-bit key per (Gaussian, tile) =
// camera << (32 + tile_bits) | tile << 32 | float32 depth bits, radix-sort the keys (cub) so every tile's list is
// depth-ordered, and find where each tile's run starts.
#if defined(__CUDACC__)
#include <cub/device/device_radix_sort.cuh>
#endif
#include <cstring>

#include "cuda_common.cuh"

namespace realsim_cuda {

namespace {

// Tile rectangle [x0, x1) x [y0, y1) covered by the screen box of a projected Gaussian.
// (floor / ceil in the scalar type, then clamped; done in floating point so far-off boxes cannot overflow an int).
template <typename T>
RS_HD void tile_bbox(T u, T v, int rx, int ry, int tile_size, int tiles_w, int tiles_h, int& x0, int& y0, int& x1,
                     int& y1) {
    const T ts = static_cast<T>(tile_size);
    x0 = static_cast<int>(d_min(d_max(T(0), d_floor((u - rx) / ts)), T(tiles_w)));
    x1 = static_cast<int>(d_min(d_max(T(0), d_ceil((u + rx) / ts)), T(tiles_w)));
    y0 = static_cast<int>(d_min(d_max(T(0), d_floor((v - ry) / ts)), T(tiles_h)));
    y1 = static_cast<int>(d_min(d_max(T(0), d_ceil((v + ry) / ts)), T(tiles_h)));
}

RS_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t b;
    std::memcpy(&b, &f, sizeof(b));
    return b;
#endif
}

// Number of tiles touched by (camera, Gaussian) idx.
template <typename T>
RS_HD void isect_count_one(int64_t idx, const int32_t* __restrict__ radii, const T* __restrict__ means2d,
                           int tile_size, int tiles_w, int tiles_h, int32_t* __restrict__ tiles_per_gauss) {
    const int rx = radii[idx * 2], ry = radii[idx * 2 + 1];
    if (rx <= 0 || ry <= 0) {
        tiles_per_gauss[idx] = 0;
        return;
    }
    int x0, y0, x1, y1;
    tile_bbox(means2d[idx * 2], means2d[idx * 2 + 1], rx, ry, tile_size, tiles_w, tiles_h, x0, y0, x1, y1);
    tiles_per_gauss[idx] = (x1 - x0) * (y1 - y0);
}

// Keys and values of (camera, Gaussian) idx, written from its slot cum_tiles[idx - 1] on (row-major tile order).
template <typename T>
RS_HD void isect_emit_one(int64_t idx, const int32_t* __restrict__ radii, const T* __restrict__ means2d,
                          const T* __restrict__ depths, const int64_t* __restrict__ cum_tiles, int N, int tile_size,
                          int tiles_w, int tiles_h, int tile_bits, int64_t* __restrict__ keys,
                          int32_t* __restrict__ vals) {
    const int rx = radii[idx * 2], ry = radii[idx * 2 + 1];
    if (rx <= 0 || ry <= 0) return;
    int x0, y0, x1, y1;
    tile_bbox(means2d[idx * 2], means2d[idx * 2 + 1], rx, ry, tile_size, tiles_w, tiles_h, x0, y0, x1, y1);
    const uint64_t cam_key = static_cast<uint64_t>(idx / N) << (32 + tile_bits);
    // Depths of kept Gaussians are >= near_plane > 0, so their float32 bits sort like the values.
    const uint32_t dbits = float_bits(static_cast<float>(depths[idx]));
    int64_t cur = idx == 0 ? 0 : cum_tiles[idx - 1];
    for (int ty = y0; ty < y1; ++ty) {
        for (int tx = x0; tx < x1; ++tx) {
            const uint64_t tile = static_cast<uint64_t>(ty) * tiles_w + tx;
            keys[cur] = static_cast<int64_t>(cam_key | (tile << 32) | dbits);
            vals[cur] = static_cast<int32_t>(idx);
            ++cur;
        }
    }
}

// Flat (camera * n_tiles + tile) index of a key.
RS_HD int64_t key_tile(int64_t key, int n_tiles, int tile_bits) {
    const uint64_t k = static_cast<uint64_t>(key);
    const uint64_t cam = k >> (32 + tile_bits);
    const uint64_t tile = (k >> 32) & ((uint64_t(1) << tile_bits) - 1);
    return static_cast<int64_t>(cam * n_tiles + tile);
}

// Sorted position i in [0, n_isects]: every flat tile in (tile of i-1, tile of i] starts at i (-1 before the first
// intersection, n_tiles_total after the last).
RS_HD void isect_offsets_one(int64_t i, const int64_t* __restrict__ sorted_keys, int64_t n_isects, int n_tiles,
                             int tile_bits, int64_t n_tiles_total, int32_t* __restrict__ offsets) {
    const int64_t cur = i < n_isects ? key_tile(sorted_keys[i], n_tiles, tile_bits) : n_tiles_total;
    const int64_t prev = i > 0 ? key_tile(sorted_keys[i - 1], n_tiles, tile_bits) : -1;
    for (int64_t t = prev + 1; t <= cur && t < n_tiles_total; ++t) offsets[t] = static_cast<int32_t>(i);
}

#if defined(__CUDACC__)
template <typename T>
__global__ void isect_count_kernel(const int32_t* __restrict__ radii, const T* __restrict__ means2d, int64_t total,
                                   int tile_size, int tiles_w, int tiles_h, int32_t* __restrict__ tiles_per_gauss) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    isect_count_one(idx, radii, means2d, tile_size, tiles_w, tiles_h, tiles_per_gauss);
}

template <typename T>
__global__ void isect_emit_kernel(const int32_t* __restrict__ radii, const T* __restrict__ means2d,
                                  const T* __restrict__ depths, const int64_t* __restrict__ cum_tiles, int N,
                                  int64_t total, int tile_size, int tiles_w, int tiles_h, int tile_bits,
                                  int64_t* __restrict__ keys, int32_t* __restrict__ vals) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    isect_emit_one(idx, radii, means2d, depths, cum_tiles, N, tile_size, tiles_w, tiles_h, tile_bits, keys, vals);
}

__global__ void isect_offsets_kernel(const int64_t* __restrict__ sorted_keys, int64_t n_isects, int n_tiles,
                                     int tile_bits, int64_t n_tiles_total, int32_t* __restrict__ offsets) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i > n_isects) return;
    isect_offsets_one(i, sorted_keys, n_isects, n_tiles, tile_bits, n_tiles_total, offsets);
}
#endif  // __CUDACC__

}  // namespace

#if defined(__CUDACC__)
template <typename T>
void isect_count(const int32_t* radii, const T* means2d, int C, int N, int tile_size, int tiles_w, int tiles_h,
                 int32_t* tiles_per_gauss, cudaStream_t stream) {
    const int64_t total = static_cast<int64_t>(C) * N;
    if (total == 0) return;
    isect_count_kernel<T><<<div_up(total, 256), 256, 0, stream>>>(radii, means2d, total, tile_size, tiles_w, tiles_h,
                                                               tiles_per_gauss);
}

template <typename T>
void isect_emit(const int32_t* radii, const T* means2d, const T* depths, const int64_t* cum_tiles, int C, int N,
                int tile_size, int tiles_w, int tiles_h, int tile_bits, int64_t* keys, int32_t* vals,
                cudaStream_t stream) {
    const int64_t total = static_cast<int64_t>(C) * N;
    if (total == 0) return;
    isect_emit_kernel<T><<<div_up(total, 256), 256, 0, stream>>>(radii, means2d, depths, cum_tiles, N, total,
                                                                 tile_size, tiles_w, tiles_h, tile_bits, keys, vals);
}

void isect_sort(const int64_t* keys_in, const int32_t* vals_in, int64_t* keys_out, int32_t* vals_out, int64_t n,
                int end_bit, void* temp, size_t* temp_bytes, cudaStream_t stream) {
    // Keys are non-negative, so sorting them as unsigned gives the same order.
    cub::DeviceRadixSort::SortPairs(temp, *temp_bytes, reinterpret_cast<const uint64_t*>(keys_in),
                                    reinterpret_cast<uint64_t*>(keys_out), vals_in, vals_out, n, 0, end_bit, stream);
}

void isect_offsets(const int64_t* sorted_keys, int64_t n_isects, int C, int n_tiles, int tile_bits, int32_t* offsets,
                   cudaStream_t stream) {
    const int64_t n_tiles_total = static_cast<int64_t>(C) * n_tiles;
    if (n_tiles_total == 0) return;
    isect_offsets_kernel<<<div_up(n_isects + 1, 256), 256, 0, stream>>>(sorted_keys, n_isects, n_tiles, tile_bits,
                                                                       n_tiles_total, offsets);
}

#define RS_INSTANTIATE_ISECT(T)                                                                                     \
    template void isect_count<T>(const int32_t*, const T*, int, int, int, int, int, int32_t*, cudaStream_t);        \
    template void isect_emit<T>(const int32_t*, const T*, const T*, const int64_t*, int, int, int, int, int, int,  \
                                int64_t*, int32_t*, cudaStream_t);
RS_INSTANTIATE_ISECT(float)
RS_INSTANTIATE_ISECT(double)
#undef RS_INSTANTIATE_ISECT

#endif  // __CUDACC__

}  // namespace realsim_cuda
