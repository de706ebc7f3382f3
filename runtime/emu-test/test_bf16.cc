// The bf16 instructions under the emulator against their definitions: cvt.rn.bf16{,x2}.f32 bit-exact
// on hand-derived edge cases (ties, subnormals, overflow, NaN, infinities) and against an independent
// nearest-even rounding; mma.m16n8k16 and ldmatrix through fragment maps transcribed a second time
// from the PTX ISA (bf16_ops.cu); cp.async's poison, zero fill and never-waited fault.
#include <cmath>
#include <string>

#include "check.h"
#include "kernels.h"

namespace emu_test {
namespace {

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
float bf16_value(unsigned short b) { return from_bits(uint32_t(b) << 16); }
std::string hex(uint32_t u) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%x", u);
  return text;
}

// Nearest-even by comparing distances in double to the two bf16 values around x (finite x whose
// rounding stays finite): independent of the kernel's add-and-shift.
unsigned short bf16_reference(float x) {
  const uint32_t u = bits(x);
  const unsigned short down = uint16_t(u >> 16), up = uint16_t(down + 1);  // toward zero, away from zero
  const double d_down = std::fabs(double(x) - double(bf16_value(down)));
  const double d_up = std::fabs(double(bf16_value(up)) - double(x));
  if (d_down != d_up) return d_down < d_up ? down : up;
  return (down & 1) ? up : down;
}

void test_rounding() {
  const uint32_t cases[][2] = {
      {0x3f800000u, 0x3f80u},  // 1
      {0x3f808000u, 0x3f80u},  // 1 + 2^-8: a tie, to the even 0x3f80
      {0x3f818000u, 0x3f82u},  // a tie, to the even 0x3f82 (up)
      {0xbf818000u, 0xbf82u},  // the same, negative
      {0x3f808001u, 0x3f81u},  // just above the tie
      {0x3f807fffu, 0x3f80u},  // just below the tie
      {0x7f7f7fffu, 0x7f7fu},  // below the largest bf16's upper tie: stays finite
      {0x7f7f8000u, 0x7f80u},  // that tie rounds to even: infinity
      {0x7f7fffffu, 0x7f80u},  // the largest float: infinity
      {0xff7fffffu, 0xff80u},  // and negative
      {0x7f800000u, 0x7f80u},  // +infinity
      {0xff800000u, 0xff80u},  // -infinity
      {0x7fc00000u, 0x7fffu},  // quiet NaN: the canonical NaN
      {0xffc00001u, 0x7fffu},  // negative NaN with a payload
      {0x7f800001u, 0x7fffu},  // a signalling NaN whose payload would round away (not to infinity)
      {0x00008000u, 0x0000u},  // subnormal tie to the even 0
      {0x00018000u, 0x0002u},  // subnormal tie to the even 2
      {0x0000ffffu, 0x0001u},  // subnormal above the tie
      {0x007fffffu, 0x0080u},  // the largest subnormal rounds up to the smallest normal
      {0x80000000u, 0x8000u},  // -0
      {0x00000000u, 0x0000u},  // +0
  };
  constexpr int kCases = sizeof cases / sizeof cases[0], kRandom = 2000;
  const int n = kCases + kRandom;
  Buffer<float> in{size_t(n)};
  Buffer<unsigned short> one{size_t(n)};
  Buffer<unsigned> pair{size_t(n)};
  Rng rng(11);
  for (int i = 0; i < kCases; ++i) in[i] = from_bits(cases[i][0]);
  for (int i = kCases; i < n; ++i) {  // every exponent, normal and subnormal, and ties on purpose
    uint32_t u = uint32_t(rng.next()) & 0xff7fffffu;
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;
    in[i] = from_bits(u);
  }
  nincc::emu::launch("round_bf16", dim3((n + 127) / 128), dim3(128), 0, &round_bf16, in.data(), one.data(),
                     pair.data(), n);
  for (int i = 0; i < kCases; ++i)
    CHECK_MSG(one[i] == cases[i][1], "to_bf16(" + hex(cases[i][0]) + ") gave " + hex(one[i]) + ", want " +
                                         hex(cases[i][1]));
  int bad = 0;
  for (int i = kCases; i < n; ++i)
    if (one[i] != bf16_reference(in[i]) && bad++ < 3)
      report_failure(__FILE__, __LINE__, "to_bf16(" + hex(bits(in[i])) + ") = " + hex(one[i]) +
                                             " disagrees with nearest-even " + hex(bf16_reference(in[i])));
  ++g_checks;
  bad = 0;
  for (int i = 0; i < n; ++i)  // cvt.rn.bf16x2.f32 d, a, b: a high, b low
    if (pair[i] != ((uint32_t(one[i]) << 16) | one[n - 1 - i]) && bad++ < 3)
      report_failure(__FILE__, __LINE__, "to_bf16x2 packs " + hex(pair[i]) + " at " + std::to_string(i));
  ++g_checks;
}

// The emulator's mma order, restated: from 0, each 16-step k block in order, fma per k.
float mma_reference(const unsigned short* a, const unsigned short* b, int i, int j, int n, int k) {
  float acc = 0.0f;
  for (int kk = 0; kk < k; ++kk) acc = std::fma(bf16_value(a[size_t(i) * k + kk]), bf16_value(b[size_t(kk) * n + j]), acc);
  return acc;
}

void random_bf16(Buffer<unsigned short>& x, Rng& rng) {
  for (size_t i = 0; i < x.size(); ++i) x[i] = uint16_t(bits(rng.uniform()) >> 16);
}

void test_mma() {
  const int m = 32, n = 16, k = 48;
  Rng rng(12);
  Buffer<unsigned short> a(size_t(m) * k), b(size_t(k) * n);
  random_bf16(a, rng);
  random_bf16(b, rng);
  Buffer<float> c(size_t(m) * n);
  const int tiles = m / 16 * (n / 8);
  nincc::emu::launch("mma_bf16_gemm", dim3((tiles + 1) / 2), dim3(64), 0, &mma_bf16_gemm, a.data(), b.data(), c.data(),
                     m, n, k);
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      if (bits(c[size_t(i) * n + j]) != bits(mma_reference(a.data(), b.data(), i, j, n, k)) && bad++ < 3)
        report_failure(__FILE__, __LINE__, "mma_bf16_gemm C[" + std::to_string(i) + "][" + std::to_string(j) +
                                               "] = " + std::to_string(c[size_t(i) * n + j]));
  ++g_checks;

  // The same product through cp.async, ldmatrix.x4 and ldmatrix.x2.trans.
  const int kk = 64;
  Buffer<unsigned short> a2(size_t(16) * kk), b2(size_t(kk) * 8);
  random_bf16(a2, rng);
  random_bf16(b2, rng);
  Buffer<float> c2(16 * 8);
  nincc::emu::launch("ldmatrix_mma_loop", dim3(1), dim3(32), 0, &ldmatrix_mma_loop, a2.data(), b2.data(), c2.data(), kk);
  bad = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j)
      if (bits(c2[size_t(i) * 8 + j]) != bits(mma_reference(a2.data(), b2.data(), i, j, 8, kk)) && bad++ < 3)
        report_failure(__FILE__, __LINE__, "ldmatrix_mma_loop C[" + std::to_string(i) + "][" + std::to_string(j) +
                                               "] = " + std::to_string(c2[size_t(i) * 8 + j]));
  ++g_checks;
}

// PTX ISA, ldmatrix: thread l receives, of matrix j, row l/4 and columns 2(l%4), 2(l%4)+1 (with
// .trans: column l/4 and rows 2(l%4), 2(l%4)+1), lower column (row) in the low half.
void test_ldmatrix() {
  Buffer<unsigned short> in(8 * 32);
  for (int e = 0; e < 8 * 32; ++e) in[size_t(e)] = uint16_t(e);
  Buffer<unsigned> out(6 * 128);
  nincc::emu::launch("ldmatrix_gather", dim3(1), dim3(32), 0, &ldmatrix_gather, in.data(), out.data());
  const int counts[6] = {1, 1, 2, 2, 4, 4};
  for (int v = 0; v < 6; ++v) {
    const bool trans = v % 2 == 1;
    for (int lane = 0; lane < 32; ++lane)
      for (int j = 0; j < 4; ++j) {
        uint32_t want = 0;
        if (j < counts[v])
          for (int h = 0; h < 2; ++h) {
            const int row = trans ? 2 * (lane % 4) + h : lane / 4, col = trans ? lane / 4 : 2 * (lane % 4) + h;
            want |= uint32_t(row * 32 + 8 * j + col) << (16 * h);
          }
        const uint32_t got = out[size_t(v) * 128 + lane * 4 + j];
        CHECK_MSG(got == want, "ldmatrix x" + std::to_string(counts[v]) + (trans ? ".trans" : "") + " lane " +
                                   std::to_string(lane) + " reg " + std::to_string(j) + ": got " + hex(got) +
                                   ", want " + hex(want));
      }
  }
  Buffer<unsigned> sink(32);
  EXPECT_FAULT(nincc::emu::launch("ldmatrix_misaligned", dim3(1), dim3(32), 0, &ldmatrix_misaligned, sink.data()),
               "kernel `ldmatrix_misaligned`", "lane 3's row address", "not 16-byte aligned", "bf16_ops.cu:");
  EXPECT_FAULT(nincc::emu::launch("ldmatrix_out_of_bounds", dim3(1), dim3(32), 0, &ldmatrix_out_of_bounds, sink.data()),
               "kernel `ldmatrix_out_of_bounds`", "lane 7's row address", "not inside one shared-memory declaration");
}

void test_cp_async() {
  Buffer<float> in(32 * 4), out(32 + 32 * 4);
  for (int i = 0; i < 32 * 4; ++i) in[size_t(i)] = float(i + 1);
  for (int src_bytes : {16, 8, 0}) {
    nincc::emu::launch("cp_async_read_early", dim3(1), dim3(32), 0, &cp_async_read_early, in.data(), out.data(),
                       src_bytes);
    bool poisoned = true, landed = true;
    for (int lane = 0; lane < 32; ++lane) {
      poisoned = poisoned && std::isnan(out[size_t(lane)]);
      for (int j = 0; j < 4; ++j)
        landed = landed && out[size_t(32 + lane * 4 + j)] == (4 * j < src_bytes ? float(lane * 4 + j + 1) : 0.0f);
    }
    CHECK_MSG(poisoned, "a read before cp.async.wait_group must see the poison (src-size " + std::to_string(src_bytes) + ")");
    CHECK_MSG(landed, "cp.async landed wrong data or zero fill (src-size " + std::to_string(src_bytes) + ")");
  }
  EXPECT_FAULT(nincc::emu::launch("cp_async_never_waited", dim3(1), dim3(32), 0, &cp_async_never_waited, in.data(),
                                  out.data()),
               "kernel `cp_async_never_waited`", "1 cp.async copies it never waited for");
  EXPECT_FAULT(nincc::emu::launch("cp_async_read_early", dim3(1), dim3(32), 0, &cp_async_read_early, in.data(),
                                  out.data(), 20),
               "cp.async.ca", "src-size 20 is outside 0..16");
}

}  // namespace

void test_bf16() {
  test_rounding();
  test_mma();
  test_ldmatrix();
  test_cp_async();
}

}  // namespace emu_test
