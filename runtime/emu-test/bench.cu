// Kernels that measure the emulator's costs (bench.cc): a thread's start and exit, a block
// barrier, a warp shuffle. Each does almost no arithmetic, so the time is the emulator's own.
#include "nincc/device/primitives.cuh"

// One store per thread and no collectives: the cost of starting and finishing a fiber.
NINCC_KERNEL void fill_index(float* out) {
  out[blockIdx.x * blockDim.x + threadIdx.x] = float(threadIdx.x);
}
NINCC_EXPORT(fill_index);

// `rounds` block barriers per thread.
NINCC_KERNEL void barrier_rounds(int rounds, float* out) {
  float v = float(threadIdx.x);
  for (int r = 0; r < rounds; ++r) {
    v = v * 0.5f + 1.0f;
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
NINCC_EXPORT(barrier_rounds);

// `rounds` warp shuffles per thread.
NINCC_KERNEL void shuffle_rounds(int rounds, float* out) {
  float v = float(threadIdx.x);
  for (int r = 0; r < rounds; ++r) v = 0.5f * (v + nincc::shfl_xor(v, 1 + r % 31));
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
NINCC_EXPORT(shuffle_rounds);

NINCC_LIBRARY("emu-test");
