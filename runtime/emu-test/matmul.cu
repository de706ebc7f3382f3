// Two shared-memory matrix multiplies, C = A·B (row-major, M×K by K×N, any sizes), as test and
// benchmark kernels for the device primitives: one output per thread with 16×16 tiles, and a
// 64×64 block tile with 4×4 outputs per thread read from shared memory as float4.
//   emu:  g++ -std=c++17 -O2 -DNINCC_EMU -I runtime/include -x c++ -c matmul.cu
//   cuda: nvcc -std=c++17 -arch=sm_80 -I runtime/include -c matmul.cu
#include "nincc/device/primitives.cuh"

constexpr int kTile = 16;

NINCC_KERNEL void __launch_bounds__(256)
    matmul_tiled16(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, int m, int n,
                   int k) {
  // The +1 column keeps a warp's column reads of `bs` on distinct banks.
  NINCC_SHARED_2D(float, as, kTile, kTile + 1);
  NINCC_SHARED_2D(float, bs, kTile, kTile + 1);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty, col = blockIdx.x * kTile + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kTile) {
    as[ty][tx] = row < m && k0 + tx < k ? a[size_t(row) * k + k0 + tx] : 0.0f;
    bs[ty][tx] = k0 + ty < k && col < n ? b[size_t(k0 + ty) * n + col] : 0.0f;
    __syncthreads();
    NINCC_UNROLL
    for (int kk = 0; kk < kTile; ++kk) acc += as[ty][kk] * bs[kk][tx];
    __syncthreads();  // before the next iteration overwrites the tiles others still read
  }
  if (row < m && col < n) c[size_t(row) * n + col] = acc;
}
NINCC_EXPORT(matmul_tiled16);

constexpr int kBlockM = 64, kBlockN = 64, kBlockK = 16;
constexpr int kPad = 4;  // keeps rows 16-byte aligned for float4 and staggers the banks

// 16×16 threads; thread (tx, ty) owns rows ty·4.. and columns tx·4.. of the block's 64×64 tile.
NINCC_KERNEL void __launch_bounds__(256)
    matmul_64x64(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, int m, int n,
                 int k) {
  // k-major tiles: as[kk][i] = A[row0 + i][k0 + kk], so a thread's four rows are one float4.
  NINCC_SHARED_2D(float, as, kBlockK, kBlockM + kPad);
  NINCC_SHARED_2D(float, bs, kBlockK, kBlockN + kPad);
  const int tx = threadIdx.x, ty = threadIdx.y, t = ty * 16 + tx;
  const int row0 = blockIdx.y * kBlockM, col0 = blockIdx.x * kBlockN;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < k; k0 += kBlockK) {
    for (int e = t; e < kBlockM * kBlockK; e += 256) {
      const int i = e / kBlockK, kk = e % kBlockK;  // neighbouring threads read neighbouring k of a row
      const int r = row0 + i, kc = k0 + kk;
      as[kk][i] = r < m && kc < k ? a[size_t(r) * k + kc] : 0.0f;
    }
    for (int e = t; e < kBlockK * kBlockN; e += 256) {
      const int kk = e / kBlockN, j = e % kBlockN;
      const int kc = k0 + kk, cc = col0 + j;
      bs[kk][j] = kc < k && cc < n ? b[size_t(kc) * n + cc] : 0.0f;
    }
    __syncthreads();
    NINCC_UNROLL
    for (int kk = 0; kk < kBlockK; ++kk) {
      const float4 av = nincc::load_float4(&as[kk][ty * 4]);
      const float4 bv = nincc::load_float4(&bs[kk][tx * 4]);
      const float ar[4] = {av.x, av.y, av.z, av.w}, br[4] = {bv.x, bv.y, bv.z, bv.w};
      NINCC_UNROLL
      for (int i = 0; i < 4; ++i) {
        NINCC_UNROLL
        for (int j = 0; j < 4; ++j) acc[i][j] += ar[i] * br[j];
      }
    }
    __syncthreads();
  }
  NINCC_UNROLL
  for (int i = 0; i < 4; ++i) {
    NINCC_UNROLL
    for (int j = 0; j < 4; ++j) {
      const int r = row0 + ty * 4 + i, cc = col0 + tx * 4 + j;
      if (r < m && cc < n) c[size_t(r) * n + cc] = acc[i][j];
    }
  }
}
NINCC_EXPORT(matmul_64x64);
