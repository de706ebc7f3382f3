// The one header generated kernels include (docs/emu.md). It gives the device primitives one
// vocabulary with two definitions: CUDA's under nvcc (cuda.cuh) and the SIMT emulator's under
// g++ -DNINCC_EMU (emu/), so the same .cu runs on a GPU and, exactly as written, on the CPU.
//
// Kernels write CUDA's own built-ins where they are plain (threadIdx, blockIdx, blockDim,
// gridDim, __syncthreads(), __global__/__device__/__launch_bounds__), and nincc:: for the rest:
//   NINCC_KERNEL void name(params)         extern "C" kernel (cuModuleGetFunction finds it by name)
//   NINCC_EXPORT(name);                    after it: the emu library's launch descriptor
//   NINCC_LIBRARY("source hash");          once per library: the identity the runtime checks
//   NINCC_SHARED(T, name, n)               __shared__ T name[n] (bounds-checked under emu checks)
//   NINCC_SHARED_2D(T, name, rows, cols)   __shared__ T name[rows][cols]
//   NINCC_DYNAMIC_SHARED(T, name)          the launch's dynamic shared memory as T*
//   NINCC_UNROLL                           #pragma unroll
//   nincc::sync_threads()  thread_rank()  lane_id()  warp_id()  warp_lanes()
//   nincc::shfl(v, lane[, width])  shfl_xor(v, mask[, width])  shfl_up/shfl_down(v, delta[, width])
//   nincc::warp_ballot(p)  warp_any(p)  warp_all(p)  sync_warp()
//   nincc::warp_sum(v)  warp_max(v)  warp_reduce(v, op)
//   nincc::load_float4(p)  store_float4(p, v)  load_float2  store_float2  ldg(p)
//   nincc::to_tf32(x)  mma_tf32_m16n8k8(d, a, b, c)  nincc::m16n8k8::{a,b,c}_{row,col}(lane, reg)
//   nincc::ld(p)  st(p, v)  ffma(a, b, c)    plain access and FMA that a profiled emu launch counts
//   nincc::bf16  to_bf16(x)  to_bf16x2(a, b)  bf16_to_float(h)  mma_bf16_m16n8k16(d, a, b, c)
//   nincc::ldmatrix<N>(d, row)  ldmatrix_trans<N>(d, row)  nincc::m16n8k16::…, nincc::m8n8::…
//   nincc::cp_async_ca<B>(dst, src[, n])  cp_async_cg(dst, src[, n])  cp_async_commit()
//   cp_async_wait_group<N>()  cp_async_wait_all()
//   nincc::dropout_keeps(seed, index, p)  (the cpu kernels' dropout mask, bit for bit)
// Every warp collective is over all lanes of the warp (the lanes that exist, in a block's last,
// partial warp); the emulator reports a lane that exits or diverges instead.
#pragma once

#if defined(__CUDACC__)
#include "cuda.cuh"
#elif defined(NINCC_EMU)
#include "emu/device.h"
#include "emu/grid.h"
#pragma GCC visibility push(hidden)
#else
#error "nincc/device/primitives.cuh: compile with nvcc, or with g++ -DNINCC_EMU for the SIMT emulator"
#endif

namespace nincc {

struct Sum {
  template <class T>
  NINCC_DEVICE T operator()(T a, T b) const {
    return a + b;
  }
};
struct Max {
  template <class T>
  NINCC_DEVICE T operator()(T a, T b) const {
    return b > a ? b : a;
  }
};

// A reduction over the warp whose result every lane receives. It is written once, over the
// shuffle primitives, so the emulator combines values in exactly the order the GPU does: a full
// warp uses the xor butterfly (each step combines the same pair on both lanes, so with a
// commutative op every lane ends with bitwise the same value); a partial last warp folds the
// lanes that exist toward lane 0 and broadcasts.
template <class T, class Op>
NINCC_DEVICE T warp_reduce(T v, Op op) {
  const int lanes = int(warp_lanes());
  if (lanes == 32) {
    NINCC_UNROLL
    for (int m = 16; m > 0; m >>= 1) v = op(v, shfl_xor(v, m));
    return v;
  }
  const int lane = int(lane_id());
  NINCC_UNROLL
  for (int d = 16; d > 0; d >>= 1) {
    const T other = shfl_down(v, unsigned(d));
    if (lane + d < lanes) v = op(v, other);
  }
  return shfl(v, 0);
}

template <class T>
NINCC_DEVICE T warp_sum(T v) {
  return warp_reduce(v, Sum{});
}
template <class T>
NINCC_DEVICE T warp_max(T v) {
  return warp_reduce(v, Max{});
}

// Dropout's mask, bit for bit the cpu kernels' (runtime/include/nincc/cpu/dropout.h): element
// `index` of a layer drawing from `seed` is kept when the top 24 bits of a SplitMix64 counter hash,
// as u in [0, 1), are >= p. Plain integer code, so both definitions are this one.
NINCC_DEVICE unsigned long long mix64(unsigned long long z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
NINCC_DEVICE bool dropout_keeps(unsigned long long seed, unsigned long long index, float p) {
  const unsigned long long golden = 0x9E3779B97F4A7C15ull;
  const unsigned long long key = mix64(seed ^ golden);
  const float u = float(mix64(key + (index + 1) * golden) >> 40) * (1.0f / 16777216.0f);
  return u >= p;
}

}  // namespace nincc

#if defined(NINCC_EMU) && !defined(__CUDACC__)
#pragma GCC visibility pop
#endif
