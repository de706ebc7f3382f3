// Kernels with deliberate bugs, each of which the emulator must report with kernel, block and
// thread (test_faults.cc asserts the messages). They compile under nvcc too: the bugs are in
// behaviour, not in syntax.
#include "nincc/device/primitives.cuh"

// Thread 5 skips the barrier the others wait at.
NINCC_KERNEL void early_exit_then_sync(float* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] += 1.0f;
}
NINCC_EXPORT(early_exit_then_sync);

// Lane 3 leaves before a shuffle the rest of its warp performs.
NINCC_KERNEL void exit_before_shuffle(float* out) {
  const float v = float(threadIdx.x);
  if (nincc::lane_id() == 3) return;
  out[threadIdx.x] = nincc::shfl_xor(v, 1);
}
NINCC_EXPORT(exit_before_shuffle);

// Half a warp shuffles while the other half waits at the block barrier: a deadlock.
NINCC_KERNEL void barrier_or_shuffle(float* out) {
  float v = float(threadIdx.x);
  if (nincc::lane_id() < 16)
    v = nincc::shfl_xor(v, 1);
  else
    __syncthreads();
  out[threadIdx.x] = v;
}
NINCC_EXPORT(barrier_or_shuffle);

// Odd and even threads wait at two different __syncthreads (an error in checks builds).
NINCC_KERNEL void two_barrier_sites(float* out) {
  if (threadIdx.x % 2)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1.0f;
}
NINCC_EXPORT(two_barrier_sites);

// With 64 threads, thread 63 writes tile[64].
NINCC_KERNEL void shared_index_oob(float* out) {
  NINCC_SHARED(float, tile, 64);
  tile[threadIdx.x + 1] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x];
}
NINCC_EXPORT(shared_index_oob);

// With 64 threads, thread 63 writes grid[7][8].
NINCC_KERNEL void shared_2d_oob(float* out) {
  NINCC_SHARED_2D(float, grid, 8, 8);
  grid[threadIdx.x / 8][threadIdx.x % 8 + threadIdx.x / 63] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = grid[threadIdx.x / 8][threadIdx.x % 8];
}
NINCC_EXPORT(shared_2d_oob);

// A float4 that starts inside `small` (6 floats) and runs past its end.
NINCC_KERNEL void shared_float4_overrun(float* out) {
  NINCC_SHARED(float, small, 6);
  if (threadIdx.x < 6) small[threadIdx.x] = 1.0f;
  __syncthreads();
  const float4 v = nincc::load_float4(&small[4]);
  out[threadIdx.x] = v.x;
}
NINCC_EXPORT(shared_float4_overrun);

// A float4 load from an address that is not 16-byte aligned.
NINCC_KERNEL void misaligned_float4(const float* x, float* out) {
  const float4 v = nincc::load_float4(x + 1);
  out[threadIdx.x] = v.x;
}
NINCC_EXPORT(misaligned_float4);

// No barrier between writing the tile and reading a neighbour's entry: the read sees poisoned
// (NaN) shared memory, the same in every thread order, instead of a plausible stale value.
NINCC_KERNEL void missing_barrier(float* out) {
  NINCC_SHARED(float, tile, 64);
  tile[threadIdx.x] = float(threadIdx.x);
  out[threadIdx.x] = tile[(threadIdx.x + 1) % 64];
}
NINCC_EXPORT(missing_barrier);

// An A operand that was not rounded to tf32 (an error in checks builds).
NINCC_KERNEL void mma_unrounded(float* out) {
  const uint32_t a[4] = {0x3f800001u, 0u, 0u, 0u}, b[2] = {0u, 0u};
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  nincc::mma_tf32_m16n8k8(d, a, b, d);
  out[threadIdx.x] = d[0];
}
NINCC_EXPORT(mma_unrounded);
