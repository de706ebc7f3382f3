// The bf16 instructions as kernels: cvt.rn.bf16{,x2}.f32 over a list of inputs, a bf16 mma GEMM whose
// fragments are written here from the PTX ISA's tables (not from fragments_m16n8k16.h, so the test
// checks the maps against a second transcription), an ldmatrix gather, and an ldmatrix + mma loop fed
// by a two-stage cp.async pipeline. test_bf16.cc checks them; the same file compiles under nvcc.
#include "nincc/device/primitives.cuh"

NINCC_KERNEL void round_bf16(const float* __restrict__ in, unsigned short* __restrict__ one,
                             unsigned* __restrict__ pair, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  one[i] = nincc::to_bf16(in[i]).bits;
  pair[i] = nincc::to_bf16x2(in[i], in[n - 1 - i]);  // in[i] high, in[n-1-i] low
}
NINCC_EXPORT(round_bf16);

// C = A·B, A m×k and B k×n row-major bf16 bits, one 16×8 tile of C per warp.
// PTX ISA, mma.m16n8k16 .bf16 (groupID = lane >> 2, threadID_in_group = lane % 4):
//   a_i: row = groupID (i in {0,1,4,5}) or groupID + 8 (i in {2,3,6,7}); col = 2·tig + (i & 1) (+8 for i >= 4)
//   b_i: row = 2·tig + (i & 1) (+8 for i >= 2); col = groupID
//   c_i: row = groupID (i < 2) or groupID + 8; col = 2·tig + (i & 1)
NINCC_KERNEL void mma_bf16_gemm(const unsigned short* __restrict__ a, const unsigned short* __restrict__ b,
                                float* __restrict__ c, int m, int n, int k) {
  const int lane = int(nincc::lane_id()), group = lane >> 2, tig = lane % 4;
  const int tiles_n = n / 8;
  const int tile = int(blockIdx.x * (blockDim.x / 32) + nincc::warp_id());
  if (tile >= m / 16 * tiles_n) return;  // whole warps leave together
  const int row0 = tile / tiles_n * 16, col0 = tile % tiles_n * 8;
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int k0 = 0; k0 < k; k0 += 16) {
    unsigned short ae[8], be[4];
    for (int i = 0; i < 8; ++i) {
      const int r = row0 + group + ((i == 2 || i == 3 || i == 6 || i == 7) ? 8 : 0);
      const int col = k0 + 2 * tig + (i & 1) + (i >= 4 ? 8 : 0);
      ae[i] = a[size_t(r) * k + col];
    }
    for (int i = 0; i < 4; ++i) be[i] = b[size_t(k0 + 2 * tig + (i & 1) + (i >= 2 ? 8 : 0)) * n + col0 + group];
    const uint32_t af[4] = {ae[0] | uint32_t(ae[1]) << 16, ae[2] | uint32_t(ae[3]) << 16,
                            ae[4] | uint32_t(ae[5]) << 16, ae[6] | uint32_t(ae[7]) << 16};
    const uint32_t bf[2] = {be[0] | uint32_t(be[1]) << 16, be[2] | uint32_t(be[3]) << 16};
    nincc::mma_bf16_m16n8k16(acc, af, bf, acc);
  }
  for (int i = 0; i < 4; ++i) c[size_t(row0 + group + (i >= 2 ? 8 : 0)) * n + col0 + 2 * tig + (i & 1)] = acc[i];
}
NINCC_EXPORT(mma_bf16_gemm);

// One warp gathers four 8×8 b16 matrices of an 8×32 shared tile with ldmatrix (x1, x2, x4, each
// plain and .trans) and writes each lane's registers: out[((variant·32 + lane)·4 + j] (unused: 0).
NINCC_KERNEL void ldmatrix_gather(const unsigned short* __restrict__ in, unsigned* __restrict__ out) {
  NINCC_SHARED_2D(unsigned short, tile, 8, 32);  // matrix j = columns 8j..8j+7
  const int lane = int(nincc::lane_id());
  for (int e = lane; e < 8 * 32; e += 32) tile[e / 32][e % 32] = in[e];
  __syncthreads();
  const void* row = &tile[lane % 8][8 * (lane / 8)];  // lane l: row l % 8 of matrix l / 8
  uint32_t r1[1], r2[2], r4[4];
  unsigned* o = out + lane * 4;
  nincc::ldmatrix(r1, row);
  o[0] = r1[0], o[1] = o[2] = o[3] = 0;
  o += 128;
  nincc::ldmatrix_trans(r1, row);
  o[0] = r1[0], o[1] = o[2] = o[3] = 0;
  o += 128;
  nincc::ldmatrix(r2, row);
  o[0] = r2[0], o[1] = r2[1], o[2] = o[3] = 0;
  o += 128;
  nincc::ldmatrix_trans(r2, row);
  o[0] = r2[0], o[1] = r2[1], o[2] = o[3] = 0;
  o += 128;
  nincc::ldmatrix(r4, row);
  for (int j = 0; j < 4; ++j) o[j] = r4[j];
  o += 128;
  nincc::ldmatrix_trans(r4, row);
  for (int j = 0; j < 4; ++j) o[j] = r4[j];
}
NINCC_EXPORT(ldmatrix_gather);

// C (16×8 fp32) = A (16×k bf16, row-major) · B (k×8 bf16, row-major = k-major) with one warp: a
// two-stage cp.async pipeline stages 16×16 A and 16×8 B tiles; ldmatrix.x4 gives A's fragment,
// ldmatrix.x2.trans B's. A's shared rows are padded to 48 bytes so the eight rows of each 8×8 matrix
// fall on distinct banks. The profile test counts this kernel by hand (test_profile.cc).
constexpr int kStrideA = 24;  // bf16 per shared row of A: 16 + 8 padding
NINCC_KERNEL void __launch_bounds__(32)
    ldmatrix_mma_loop(const unsigned short* __restrict__ a, const unsigned short* __restrict__ b,
                      float* __restrict__ c, int k) {
  NINCC_SHARED(unsigned short, as, 2 * 16 * kStrideA);
  NINCC_SHARED(unsigned short, bs, 2 * 16 * 8);
  const int lane = int(nincc::lane_id()), group = lane >> 2, tig = lane % 4;
  const int steps = k / 16;
  auto stage = [&](int step, int buffer) {  // lane copies 16 bytes of A (row lane/2) and of B (row lane)
    nincc::cp_async_cg(&as[buffer * 16 * kStrideA + (lane / 2) * kStrideA + (lane % 2) * 8],
                       &a[size_t(lane / 2) * k + step * 16 + (lane % 2) * 8]);
    if (lane < 16) nincc::cp_async_cg(&bs[buffer * 128 + lane * 8], &b[size_t(step * 16 + lane) * 8]);
  };
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  stage(0, 0);
  nincc::cp_async_commit();
  for (int s = 0; s < steps; ++s) {
    if (s + 1 < steps) stage(s + 1, (s + 1) % 2);
    nincc::cp_async_commit();
    nincc::cp_async_wait_group<1>();  // step s has landed; step s + 1 may still be in flight
    __syncthreads();                  // and every lane's part of it
    const int buffer = s % 2;
    uint32_t af[4], bf[2];
    // Matrices of A: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
    nincc::ldmatrix(af, &as[buffer * 16 * kStrideA + ((lane / 8) % 2 * 8 + lane % 8) * kStrideA + lane / 16 * 8]);
    nincc::ldmatrix_trans(bf, &bs[buffer * 128 + (lane % 16) * 8]);
    nincc::mma_bf16_m16n8k16(acc, af, bf, acc);
    __syncthreads();  // before the next stage overwrites this buffer
  }
  nincc::store_float2(&c[group * 8 + 2 * tig], make_float2(acc[0], acc[1]));
  nincc::store_float2(&c[(group + 8) * 8 + 2 * tig], make_float2(acc[2], acc[3]));
}
NINCC_EXPORT(ldmatrix_mma_loop);

// Reads a cp.async destination before waiting for it (the bug the emulator's poison exposes), and
// copies with src-size < 16 (the zero fill): out[lane] = the first word of the destination then.
NINCC_KERNEL void cp_async_read_early(const float* __restrict__ in, float* __restrict__ out, int src_bytes) {
  NINCC_SHARED(float, buffer, 32 * 4);
  const int lane = int(nincc::lane_id());
  for (int j = 0; j < 4; ++j) buffer[lane * 4 + j] = 0.0f;  // a stale value the early read must not see
  nincc::cp_async_ca<16>(&buffer[lane * 4], &in[lane * 4], src_bytes);
  nincc::cp_async_commit();
  out[lane] = buffer[lane * 4];  // before the wait: poison
  nincc::cp_async_wait_group<0>();
  for (int j = 0; j < 4; ++j) out[32 + lane * 4 + j] = buffer[lane * 4 + j];
}
NINCC_EXPORT(cp_async_read_early);

NINCC_KERNEL void cp_async_never_waited(const float* __restrict__ in, float* __restrict__ out) {
  NINCC_SHARED(float, buffer, 32);
  const int lane = int(nincc::lane_id());
  nincc::cp_async_ca<4>(&buffer[lane], &in[lane]);
  nincc::cp_async_commit();
  out[lane] = 0.0f;
}
NINCC_EXPORT(cp_async_never_waited);

NINCC_KERNEL void ldmatrix_misaligned(unsigned* __restrict__ out) {
  NINCC_SHARED(unsigned short, tile, 8 * 16);
  const int lane = int(nincc::lane_id());
  for (int e = lane; e < 8 * 16; e += 32) tile[e] = 0;
  __syncthreads();
  uint32_t r[1];
  nincc::ldmatrix(r, &tile[(lane % 8) * 8 + (lane == 3 ? 4 : 0)]);  // lane 3's row starts 8 bytes in
  out[lane] = r[0];
}
NINCC_EXPORT(ldmatrix_misaligned);

NINCC_KERNEL void ldmatrix_out_of_bounds(unsigned* __restrict__ out) {
  NINCC_SHARED(unsigned short, tile, 8 * 8);
  const int lane = int(nincc::lane_id());
  for (int e = lane; e < 64; e += 32) tile[e] = 0;
  __syncthreads();
  uint32_t r[1];
  const unsigned short* base = tile;
  nincc::ldmatrix(r, base + (lane % 8 + (lane % 8 == 7 ? 1 : 0)) * 8);  // lane 7's row is past the end
  out[lane] = r[0];
}
NINCC_EXPORT(ldmatrix_out_of_bounds);
