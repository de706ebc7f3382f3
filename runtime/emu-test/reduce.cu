// A deterministic two-kernel sum (the shape of the BN statistics epilogues, docs/design.md §5):
// per-block partials with warp shuffles and shared memory, then one block that reduces the
// partials in a fixed order. No atomics, so any block order gives bitwise the same sum.
#include "nincc/device/primitives.cuh"

// The block's total, returned on thread 0: each warp reduces with shuffles, lane 0 of each warp
// stores its total in `warp_totals`, and warp 0 reduces those.
template <class Shared>
NINCC_DEVICE float block_sum(float s, Shared& warp_totals) {
  const int threads = int(blockDim.x * blockDim.y * blockDim.z);
  const int warps = (threads + 31) / 32;
  s = nincc::warp_sum(s);
  if (nincc::lane_id() == 0) warp_totals[nincc::warp_id()] = s;
  __syncthreads();
  float total = 0.0f;
  if (nincc::warp_id() == 0) {
    const int lane = int(nincc::lane_id());
    total = nincc::warp_sum(lane < warps ? warp_totals[lane] : 0.0f);
  }
  return total;
}

// partials[b] = sum of x[b·chunk, min(n, (b+1)·chunk)). chunk must be a multiple of 4 and x
// 16-byte aligned: each thread reads float4s, then the tail one float at a time.
NINCC_KERNEL void block_partial_sums(const float* __restrict__ x, int n, int chunk, float* __restrict__ partials) {
  NINCC_SHARED(float, warp_totals, 32);
  const int threads = int(blockDim.x * blockDim.y * blockDim.z), t = int(nincc::thread_rank());
  const int begin = int(blockIdx.x) * chunk, end = min(n, begin + chunk);
  const int vector_end = begin + (end - begin) / 4 * 4;
  float s = 0.0f;
  for (int i = begin + 4 * t; i < vector_end; i += 4 * threads) {
    const float4 v = nincc::load_float4(x + i);
    s += (v.x + v.y) + (v.z + v.w);
  }
  for (int i = vector_end + t; i < end; i += threads) s += x[i];
  const float total = block_sum(s, warp_totals);
  if (t == 0) partials[blockIdx.x] = total;
}
NINCC_EXPORT(block_partial_sums);

// out[0] = the sum of partials[0..count), by one block.
NINCC_KERNEL void sum_partials(const float* __restrict__ partials, int count, float* __restrict__ out) {
  NINCC_SHARED(float, warp_totals, 32);
  const int threads = int(blockDim.x), t = int(threadIdx.x);
  float s = 0.0f;
  for (int i = t; i < count; i += threads) s += partials[i];
  const float total = block_sum(s, warp_totals);
  if (t == 0) out[0] = total;
}
NINCC_EXPORT(sum_partials);
