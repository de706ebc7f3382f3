// The emulator's bf16 instructions: cvt.rn.bf16{,x2}.f32, mma.sync.m16n8k16 with bf16 operands and
// ldmatrix.m8n8 — exact definitions, run as warp collectives on the block runner (docs/emu.md,
// "Numerics", says what a GPU may do differently and which tolerance a comparison must use).
// Included by device.h inside its hidden-visibility region.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../fragments_m16n8k16.h"
#include "block.h"

namespace nincc {

// cvt.rn.bf16.f32: round to nearest, ties to even, on the bit pattern (bf16 keeps fp32's exponent
// range, so subnormals round at the same bit and the largest floats round up to infinity). A NaN
// becomes the canonical NaN 0x7fff, as cuda_bf16.hpp's host definition of __float2bfloat16_rn.
inline bf16 to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{0x7fffu};
  return bf16{uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}
// cvt.rn.bf16x2.f32 d, a, b: `a` in the upper half, `b` in the lower (PTX's operand order).
inline uint32_t to_bf16x2(float a, float b) { return pack_bf16(to_bf16(b), to_bf16(a)); }
inline float bf16_to_float(bf16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

namespace emu {
inline float bf16_half(uint32_t pair, int half) { return bf16_to_float(half ? high_bf16(pair) : low_bf16(pair)); }
}  // namespace emu

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 as a warp collective. NVIDIA leaves the
// order of the sum open; the emulator's is: starting from C, for k = 0..15 in order,
// acc = fma(a_k, b_k, acc) in fp32 — the product exact, one rounding per step.
inline void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::BlockRunner& r = emu::runner();
  if (r.warp_lanes() != 32)
    r.fail("mma.m16n8k16 (%s:%d) needs a full warp; this warp has %u lanes", file, line, r.warp_lanes());
  uint32_t words[emu::kExchangeWords];
  std::memcpy(words, a, 4 * sizeof(uint32_t));
  std::memcpy(words + 4, b, 2 * sizeof(uint32_t));
  std::memcpy(words + 6, c, 4 * sizeof(float));
  const emu::ExchangeSlot slot = r.exchange(emu::WarpOp::mma_bf16, words, emu::kExchangeWords, file, line);
  const int lane = int(r.lane());
  if (lane == 0 && r.profile()) ++r.profile()->counters.mma_bf16_m16n8k16;
  float out[4];
  for (int i = 0; i < 4; ++i) {
    const int row = m16n8k16::c_row(lane, i), col = m16n8k16::c_col(lane, i);
    float acc;
    std::memcpy(&acc, &words[6 + i], sizeof acc);
    for (int k = 0; k < 16; ++k) {
      const float av = emu::bf16_half(slot[m16n8k16::a_lane(row, k)][m16n8k16::a_reg(row, k)], m16n8k16::half_of(k));
      const float bv =
          emu::bf16_half(slot[m16n8k16::b_lane(k, col)][4 + m16n8k16::b_reg(k, col)], m16n8k16::half_of(k));
      acc = std::fma(av, bv, acc);
    }
    out[i] = acc;
  }
  std::memcpy(d, out, sizeof out);  // d may alias c
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16 as a warp collective: lanes 0..8N-1 give
// row addresses, which must be 16-byte aligned and lie, all 16 bytes, inside one shared-memory
// declaration (a GPU faults or reads another array); every lane receives its fragment of each matrix.
template <int N, bool Trans>
inline void ldmatrix_any(uint32_t (&d)[N], const void* row, const char* file, int line) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  emu::BlockRunner& r = emu::runner();
  const char* name = Trans ? "ldmatrix.trans" : "ldmatrix";
  if (r.warp_lanes() != 32)
    r.fail("%s (%s:%d) needs a full warp; this warp has %u lanes", name, file, line, r.warp_lanes());
  const unsigned lane = r.lane();
  if (lane < 8u * N) {
    if (reinterpret_cast<uintptr_t>(row) % 16 != 0)
      r.fail("%s (%s:%d): lane %u's row address %p is not 16-byte aligned", name, file, line, lane, row);
    if (!r.shared().contains(row) || !r.shared().inside_one_allocation(row, 16))
      r.fail("%s (%s:%d): the 16 bytes at lane %u's row address %p are not inside one shared-memory declaration",
             name, file, line, lane, row);
    if (emu::Profile* profile = r.profile())
      profile->record(emu::Space::shared_load, file, line, r.rank(), row, 16);
  }
  uint32_t words[2] = {0, 0};
  std::memcpy(words, &row, sizeof row);
  const emu::ExchangeSlot slot = r.exchange(emu::WarpOp::ldmatrix, words, 2, file, line);
  for (int j = 0; j < N; ++j) {
    uint16_t halves[2];
    for (int half = 0; half < 2; ++half) {
      const int rr = m8n8::row_of(int(lane), half, Trans), cc = m8n8::col_of(int(lane), half, Trans);
      const unsigned char* base;
      std::memcpy(&base, slot[m8n8::address_lane(j, rr)], sizeof base);
      std::memcpy(&halves[half], base + 2 * cc, sizeof(uint16_t));
    }
    d[j] = uint32_t(halves[0]) | (uint32_t(halves[1]) << 16);
  }
}
template <int N>
inline void ldmatrix(uint32_t (&d)[N], const void* row, const char* file = __builtin_FILE(),
                     int line = __builtin_LINE()) {
  ldmatrix_any<N, false>(d, row, file, line);
}
template <int N>
inline void ldmatrix_trans(uint32_t (&d)[N], const void* row, const char* file = __builtin_FILE(),
                           int line = __builtin_LINE()) {
  ldmatrix_any<N, true>(d, row, file, line);
}

}  // namespace nincc
