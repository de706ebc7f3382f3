// Thread coordinates and warp collectives against CUDA's documented semantics: every thread records what each shuffle,
// vote and reduction returned to it, and the test compares with values derived from the CUDA
// programming guide (test_kernels.cc), for full warps and for a block's partial last warp.
#include "nincc/device/primitives.cuh"

constexpr int kWarpResults = 12;

NINCC_KERNEL void warp_semantics(int* __restrict__ out, double* __restrict__ wide) {
  const int lane = int(nincc::lane_id()), rank = int(nincc::thread_rank());
  int* o = out + rank * kWarpResults;
  o[0] = nincc::shfl(lane * 10, 5);         // lane 5's value
  o[1] = nincc::shfl(lane * 10, 3, 8);      // lane 3 of the caller's 8-lane segment
  o[2] = nincc::shfl_xor(lane, 1);
  o[3] = nincc::shfl_xor(lane, 8, 8);       // crosses its 8-lane segment: only downward works
  o[4] = nincc::shfl_up(lane, 1u);
  o[5] = nincc::shfl_up(lane, 2u, 8);
  o[6] = nincc::shfl_down(lane, 1u);
  o[7] = nincc::shfl_down(lane, 3u, 16);
  o[8] = int(nincc::warp_ballot(lane % 3 == 0));
  o[9] = nincc::warp_any(lane == 7);
  o[10] = nincc::warp_all(rank < 56);
  o[11] = nincc::warp_sum(lane + 1);
  wide[rank] = nincc::shfl_xor(rank * 0.5, 16);  // an 8-byte value
}
NINCC_EXPORT(warp_semantics);

// tf32 tensor cores: C = A·B (row-major; M a multiple of 16, N of 8, K of 8), one 16×8 tile of C
// per warp. The fragment layouts are written here from the PTX ISA's figures, not taken from
// fragments.h, so this kernel checks the emulator's maps against a second transcription.
NINCC_KERNEL void mma_tf32_gemm(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                                int m, int n, int k) {
  const int lane = int(nincc::lane_id()), group = lane / 4, t = lane % 4;
  const int tiles_n = n / 8;
  const int tile = int(blockIdx.x * (blockDim.x / 32) + nincc::warp_id());
  if (tile >= m / 16 * tiles_n) return;  // a whole warp leaves together, before any collective
  const int row = tile / tiles_n * 16 + group, col = tile % tiles_n * 8 + group;
  const int out_col = tile % tiles_n * 8 + 2 * t;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < k; k0 += 8) {
    const uint32_t af[4] = {nincc::to_tf32(a[size_t(row) * k + k0 + t]), nincc::to_tf32(a[size_t(row + 8) * k + k0 + t]),
                            nincc::to_tf32(a[size_t(row) * k + k0 + t + 4]),
                            nincc::to_tf32(a[size_t(row + 8) * k + k0 + t + 4])};
    const uint32_t bf[2] = {nincc::to_tf32(b[size_t(k0 + t) * n + col]), nincc::to_tf32(b[size_t(k0 + t + 4) * n + col])};
    nincc::mma_tf32_m16n8k8(acc, af, bf, acc);
  }
  c[size_t(row) * n + out_col] = acc[0];
  c[size_t(row) * n + out_col + 1] = acc[1];
  c[size_t(row + 8) * n + out_col] = acc[2];
  c[size_t(row + 8) * n + out_col + 1] = acc[3];
}
NINCC_EXPORT(mma_tf32_gemm);

// A warp's 32 tf32 roundings, for the rounding test: out[i] = to_tf32(in[i]).
NINCC_KERNEL void round_tf32(const float* __restrict__ in, unsigned* __restrict__ out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = nincc::to_tf32(in[i]);
}
NINCC_EXPORT(round_tf32);

// Every thread of a 3-D grid of 3-D blocks writes its coordinates at its global linear index:
// blockIdx, threadIdx, gridDim, blockDim and the rank CUDA forms warps by.
NINCC_KERNEL void grid_coordinates(int* __restrict__ out) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  int* o = out + 10 * (size_t(block) * threads + nincc::thread_rank());
  const int values[10] = {int(blockIdx.x),  int(blockIdx.y),  int(blockIdx.z),  int(threadIdx.x),
                          int(threadIdx.y), int(threadIdx.z), int(gridDim.x * gridDim.y * gridDim.z),
                          int(threads),     int(nincc::warp_id()), int(nincc::lane_id())};
  for (int i = 0; i < 10; ++i) o[i] = values[i];
}
NINCC_EXPORT(grid_coordinates);
