// Minimal CUDA execution emulator for running realsim's kernels on the CPU in tests (no GPU here): every thread of a
// block is a std::thread, __syncthreads is a std::barrier, warp shuffles/votes exchange through a per-warp buffer with a
// 32-thread barrier, atomicAdd is std::atomic_ref. Blocks run one after another. Only what render/csrc/cuda_*.cu use.
// Include before the .cu files, with RS_CUDA_EMULATION defined.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>  // dim3, uint3, cudaStream_t (host headers only)

#ifndef __global__
#define __global__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#ifndef __forceinline__
#define __forceinline__ inline
#endif

using std::max;
using std::min;

namespace rs_emu {

struct Block {
    explicit Block(int n) : nthreads(n), bar(n), smem(nullptr) {
        const int warps = (n + 31) / 32;
        for (int w = 0; w < warps; ++w) warp_bars.emplace_back(std::make_unique<std::barrier<>>(std::min(32, n - 32 * w)));
        warp_buf.assign(static_cast<size_t>(warps) * 32, 0);
    }
    int nthreads;
    std::barrier<> bar;
    std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
    std::vector<uint64_t> warp_buf;  // one 8-byte slot per thread
    std::atomic<int> count[2] = {0, 0};
    unsigned char* smem;
};

inline thread_local uint3 tl_threadIdx, tl_blockIdx;
inline thread_local dim3 tl_blockDim, tl_gridDim;
inline thread_local Block* tl_block = nullptr;
inline thread_local int tl_tid = 0;
inline thread_local int tl_count_phase = 0;

inline void syncthreads() { tl_block->bar.arrive_and_wait(); }

inline int syncthreads_count(int pred) {
    const int slot = tl_count_phase++ & 1;
    Block& b = *tl_block;
    b.count[slot].fetch_add(pred ? 1 : 0);
    b.bar.arrive_and_wait();
    const int r = b.count[slot].load();
    b.bar.arrive_and_wait();
    if (tl_tid == 0) b.count[slot].store(0);
    return r;
}

// All lanes publish a value, then each reads lane src (its own value when src is out of range).
template <typename T>
inline T warp_exchange(T v, int src) {
    static_assert(sizeof(T) <= 8, "8-byte slots");
    Block& b = *tl_block;
    const int warp = tl_tid / 32, lane = tl_tid % 32;
    const int width = std::min(32, b.nthreads - 32 * warp);
    uint64_t* buf = b.warp_buf.data() + warp * 32;
    std::memcpy(&buf[lane], &v, sizeof(T));
    b.warp_bars[warp]->arrive_and_wait();
    T out = v;
    if (src >= 0 && src < width) std::memcpy(&out, &buf[src], sizeof(T));
    b.warp_bars[warp]->arrive_and_wait();
    return out;
}

// True if any lane of the calling warp passes pred.
inline bool warp_any(bool pred) {
    Block& b = *tl_block;
    const int warp = tl_tid / 32, lane = tl_tid % 32;
    const int width = std::min(32, b.nthreads - 32 * warp);
    uint64_t* buf = b.warp_buf.data() + warp * 32;
    buf[lane] = pred ? 1 : 0;
    b.warp_bars[warp]->arrive_and_wait();
    bool any = false;
    for (int l = 0; l < width; ++l) any = any || buf[l] != 0;
    b.warp_bars[warp]->arrive_and_wait();
    return any;
}

// Run kernel() for every thread of a grid x block launch with `smem_bytes` of dynamic shared memory per block.
inline void launch(dim3 grid, dim3 block, size_t smem_bytes, const std::function<void()>& kernel) {
    const int n = static_cast<int>(block.x * block.y * block.z);
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                Block b(n);
                std::vector<unsigned char> mem(smem_bytes + 64, 0xCD);  // garbage-filled, like real shared memory
                b.smem = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(mem.data()) + 15) & ~uintptr_t(15));
                std::vector<std::thread> threads;
                threads.reserve(n);
                for (int t = 0; t < n; ++t) {
                    threads.emplace_back([&, t] {
                        tl_block = &b;
                        tl_tid = t;
                        tl_count_phase = 0;
                        tl_threadIdx = uint3{static_cast<unsigned>(t % block.x),
                                             static_cast<unsigned>((t / block.x) % block.y),
                                             static_cast<unsigned>(t / (block.x * block.y))};
                        tl_blockIdx = uint3{bx, by, bz};
                        tl_blockDim = block;
                        tl_gridDim = grid;
                        kernel();
                    });
                }
                for (auto& th : threads) th.join();
            }
}

}  // namespace rs_emu

#define threadIdx (rs_emu::tl_threadIdx)
#define blockIdx (rs_emu::tl_blockIdx)
#define blockDim (rs_emu::tl_blockDim)
#define gridDim (rs_emu::tl_gridDim)
#define RS_DYNAMIC_SMEM(name) unsigned char* name = rs_emu::tl_block->smem

inline void __syncthreads() { rs_emu::syncthreads(); }
inline int __syncthreads_count(int pred) { return rs_emu::syncthreads_count(pred); }
template <typename T>
inline T __shfl_down_sync(unsigned, T v, int delta) {
    const int lane = rs_emu::tl_tid % 32;
    return rs_emu::warp_exchange(v, lane + delta < 32 ? lane + delta : -1);
}
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
    return rs_emu::warp_exchange(v, (rs_emu::tl_tid % 32) ^ mask);
}
inline bool __any_sync(unsigned, bool pred) { return rs_emu::warp_any(pred); }
template <typename T>
inline T atomicAdd(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v);
}
