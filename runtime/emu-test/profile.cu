// Micro-kernels whose profile counters can be worked out by hand (test_profile.cc does, in its
// comments): a coalesced copy, a strided copy, a misaligned copy, a shared-memory transpose without and with padding
// (bank conflicts), and a 16×16-tiled sgemm. Every memory access and FMA goes through the counting
// primitives (ld, st, ffma); bench/gpu/ncu.sh measures the same kernels on a GPU.
#include "nincc/device/primitives.cuh"

// out[i] = in[i], one float per thread.
NINCC_KERNEL void copy_coalesced(const float* __restrict__ in, float* __restrict__ out) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  nincc::st(&out[i], nincc::ld(&in[i]));
}
NINCC_EXPORT(copy_coalesced);

// out[i] = in[i·stride]: a warp's loads spread over 32·stride floats.
NINCC_KERNEL void copy_strided(const float* __restrict__ in, float* __restrict__ out, int stride) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  nincc::st(&out[i], nincc::ld(&in[size_t(i) * stride]));
}
NINCC_EXPORT(copy_strided);

// out[i] = in[i + offset]: with an offset of one float a warp's 128 bytes start 4 bytes into a
// sector and straddle five (misaligned: one sector more than the bytes need).
NINCC_KERNEL void copy_offset(const float* __restrict__ in, float* __restrict__ out, int offset) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  nincc::st(&out[i], nincc::ld(&in[i + offset]));
}
NINCC_EXPORT(copy_offset);

// out[2i] = i, then out[2i+1] = i, a warp of 32 per block: each store instruction spreads its 128 bytes over the
// block's 256 (8 sectors), and the second writes the same 8 sectors again (the profile's distinct stored sectors of
// a block count them once).
NINCC_KERNEL void store_even_then_odd(float* __restrict__ out) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  nincc::st(&out[2 * i], float(i));
  nincc::st(&out[2 * i + 1], float(i));
}
NINCC_EXPORT(store_even_then_odd);

// out[i] = in[i-1] + in[i] + in[i+1] (missing neighbours left out): each block reads a one-float halo
// on either side, which the neighbouring blocks read too (the profile's halo_x split).
NINCC_KERNEL void stencil3(const float* __restrict__ in, float* __restrict__ out, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  float sum = nincc::ld(&in[i]);
  if (i > 0) sum += nincc::ld(&in[i - 1]);
  if (i + 1 < n) sum += nincc::ld(&in[i + 1]);
  nincc::st(&out[i], sum);
}
NINCC_EXPORT(stencil3);

// out = inᵀ for an n×n matrix (n a multiple of 32): 32×32 tiles, blocks of 32×8 threads, four rows
// per thread. Cols = 32: a warp reading a tile column hits one bank 32 times; Cols = 33 staggers it.
template <int Cols>
NINCC_DEVICE void transpose_tile(const float* __restrict__ in, float* __restrict__ out, int n) {
  NINCC_SHARED_2D(float, tile, 32, Cols);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int x = blockIdx.x * 32 + tx, y = blockIdx.y * 32 + ty;
  NINCC_UNROLL
  for (int j = 0; j < 32; j += 8) nincc::st(&tile[ty + j][tx], nincc::ld(&in[size_t(y + j) * n + x]));
  __syncthreads();
  const int ox = blockIdx.y * 32 + tx, oy = blockIdx.x * 32 + ty;
  NINCC_UNROLL
  for (int j = 0; j < 32; j += 8) nincc::st(&out[size_t(oy + j) * n + ox], nincc::ld(&tile[tx][ty + j]));
}
NINCC_KERNEL void transpose_unpadded(const float* __restrict__ in, float* __restrict__ out, int n) {
  transpose_tile<32>(in, out, n);
}
NINCC_EXPORT(transpose_unpadded);
NINCC_KERNEL void transpose_padded(const float* __restrict__ in, float* __restrict__ out, int n) {
  transpose_tile<33>(in, out, n);
}
NINCC_EXPORT(transpose_padded);

// C = A·B (row-major, m, n, k multiples of 16), one output per thread of a 16×16 block.
NINCC_KERNEL void __launch_bounds__(256)
    sgemm_tiled16(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, int m, int n,
                  int k) {
  NINCC_SHARED_2D(float, as, 16, 16);
  NINCC_SHARED_2D(float, bs, 16, 16);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += 16) {
    nincc::st(&as[ty][tx], nincc::ld(&a[size_t(row) * k + k0 + tx]));
    nincc::st(&bs[ty][tx], nincc::ld(&b[size_t(k0 + ty) * n + col]));
    __syncthreads();
    for (int kk = 0; kk < 16; ++kk) acc = nincc::ffma(nincc::ld(&as[ty][kk]), nincc::ld(&bs[kk][tx]), acc);
    __syncthreads();
  }
  nincc::st(&c[size_t(row) * n + col], acc);
  (void)m;
}
NINCC_EXPORT(sgemm_tiled16);
