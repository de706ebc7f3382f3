// Warp collectives and tensor-core fragments under the emulator: each shuffle, vote and reduction
// against CUDA's documented semantics (full and partial warps), tf32 rounding against an
// independent rounding by frexp/round, and the m16n8k8 product against a plain matrix product.
#include <cmath>
#include <string>

#include "check.h"
#include "kernels.h"

namespace emu_test {
namespace {

constexpr int kUndefined = -1;  // the emulator's poison for a read of a lane that does not exist

void check_warp_block(dim3 block, bool reverse_threads) {
  const int threads = int(block.x * block.y * block.z);
  Buffer<int> out(size_t(threads) * kWarpResults);
  Buffer<double> wide{size_t(threads)};
  nincc::emu::LaunchOptions options;
  options.reverse_threads = reverse_threads;
  nincc::emu::launch("warp_semantics", dim3(1), block, 0, options, &warp_semantics, out.data(), wide.data());
  for (int rank = 0; rank < threads; ++rank) {
    const int lane = rank % 32, lanes = std::min(32, threads - rank / 32 * 32);
    auto exists = [&](int l) { return l < lanes; };
    const int* o = &out[size_t(rank) * kWarpResults];
    // From the CUDA programming guide: a source outside the caller's `width`-segment is replaced
    // by the caller's own value (shfl_up below the segment, shfl_down and xor past its end).
    const int want[kWarpResults] = {
        exists(5) ? 50 : kUndefined,
        (lane / 8 * 8 + 3) * 10,
        exists(lane ^ 1) ? lane ^ 1 : kUndefined,
        (lane & 8) ? lane - 8 : lane,
        lane >= 1 ? lane - 1 : lane,
        lane % 8 >= 2 ? lane - 2 : lane,
        lane + 1 < 32 ? (exists(lane + 1) ? lane + 1 : kUndefined) : lane,
        lane % 16 + 3 < 16 ? (exists(lane + 3) ? lane + 3 : kUndefined) : lane,
        [&] {
          unsigned bits = 0;
          for (int l = 0; l < lanes; ++l)
            if (l % 3 == 0) bits |= 1u << l;
          return int(bits);
        }(),
        exists(7) ? 1 : 0,
        (rank / 32 * 32 + lanes - 1) < 56 ? 1 : 0,
        lanes * (lanes + 1) / 2,
    };
    for (int j = 0; j < kWarpResults; ++j)
      CHECK_MSG(o[j] == want[j], std::to_string(threads) + " threads, thread " + std::to_string(rank) + ", result " +
                                     std::to_string(j) + ": got " + std::to_string(o[j]) + ", want " +
                                     std::to_string(want[j]));
    const int partner = lane ^ 16;
    if (exists(partner))
      CHECK(wide[rank] == (rank ^ 16) * 0.5);
    else
      CHECK(std::isnan(wide[rank]));  // poison: all-ones bytes
  }
}

// An independent rounding to tf32 (11 significant bits, half away from zero) by frexp and
// std::round, for normal numbers; the kernel rounds with bit arithmetic.
float tf32_reference(float x) {
  int e;
  const double mantissa = std::frexp(double(x), &e);  // x = mantissa·2^e, 0.5 <= |mantissa| < 1
  return float(std::ldexp(std::round(std::ldexp(mantissa, 11)), e - 11));
}

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
std::string hex(uint32_t u) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", u);
  return text;
}
float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

}  // namespace

void test_coordinates() {
  // A 3-D grid of 3-D blocks (24 threads: one partial warp) in every block order: each thread
  // runs exactly once and sees its own coordinates.
  const dim3 grid(3, 2, 2), block(4, 2, 3);
  const int blocks = 12, threads = 24;
  for (int order = 0; order < 4; ++order) {
    nincc::emu::LaunchOptions options;
    options.order = order == 1 ? nincc::emu::BlockOrder::reverse : order == 2 ? nincc::emu::BlockOrder::shuffled
                                                                              : nincc::emu::BlockOrder::forward;
    options.workers = order == 3 ? 2 : 1;
    Buffer<int> out(size_t(blocks) * threads * 10);
    nincc::emu::launch("grid_coordinates", grid, block, 0, options, &grid_coordinates, out.data());
    bool ok = true;
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < threads; ++t) {
        const int* o = &out[(size_t(b) * threads + t) * 10];
        const int want[10] = {b % 3, b / 3 % 2, b / 6, t % 4, t / 4 % 2, t / 8, blocks, threads, t / 32, t % 32};
        for (int i = 0; i < 10; ++i) ok = ok && o[i] == want[i];
      }
    CHECK_MSG(ok, "grid_coordinates in order " + std::to_string(order));
  }
}

void test_warp_semantics() {
  for (bool reverse : {false, true}) {
    check_warp_block(dim3(64), reverse);       // two full warps
    check_warp_block(dim3(48), reverse);       // a full warp and a partial one of 16 lanes
    check_warp_block(dim3(4, 4, 3), reverse);  // 3-D: warps are formed in x, then y, then z
  }
}

void test_tf32() {
  // Rounding: hand-derived cases (ties, overflow, NaN, a subnormal) and random normals.
  const uint32_t cases[][2] = {
      {0x3f800000u, 0x3f800000u},  // 1
      {0x3f801000u, 0x3f802000u},  // 1 + 2^-11: a tie, away from zero
      {0xbf801000u, 0xbf802000u},  // the same, negative
      {0x3f800fffu, 0x3f800000u},  // just below the tie
      {0x3f803000u, 0x3f804000u},  // 1 + 3·2^-11: a tie, away from zero (not to even)
      {0x7f7fffffu, 0x7f800000u},  // the largest float rounds up to infinity
      {0x7f800000u, 0x7f800000u},  // infinity
      {0x7fc00001u, 0x7fffffffu},  // NaN: the canonical NaN
      {0x00001fffu, 0x00002000u},  // a subnormal rounds at the same bit as a normal
      {0x80000000u, 0x80000000u},  // -0
  };
  constexpr int kCases = sizeof cases / sizeof cases[0], kRandom = 1000;
  Buffer<float> in(kCases + kRandom);
  Buffer<unsigned> out(kCases + kRandom);
  Rng rng(5);
  for (int i = 0; i < kCases; ++i) in[i] = float_of(cases[i][0]);
  for (int i = 0; i < kRandom; ++i) in[kCases + i] = rng.uniform() * std::ldexp(1.0f, int(rng.next() % 60) - 30);
  const int n = kCases + kRandom;
  nincc::emu::launch("round_tf32", dim3((n + 127) / 128), dim3(128), 0, &round_tf32, in.data(), out.data(), n);
  for (int i = 0; i < kCases; ++i)
    CHECK_MSG(out[i] == cases[i][1], "to_tf32 of " + hex(cases[i][0]) + " gave " + hex(out[i]) + ", want " + hex(cases[i][1]));
  int bad = 0;
  for (int i = kCases; i < n; ++i)
    if (out[i] != bits_of(tf32_reference(in[i])) && bad++ < 3)
      report_failure(__FILE__, __LINE__, "to_tf32(" + std::to_string(in[i]) + ") disagrees with frexp rounding");
  ++g_checks;

  // The m16n8k8 product: every tile's k-steps accumulate in k order from zero, and tf32 products
  // are exact, so a plain loop over rounded operands gives the same bits.
  const int m = 48, nn = 24, k = 40;
  Buffer<float> a(size_t(m) * k), b(size_t(k) * nn), c(size_t(m) * nn);
  for (size_t i = 0; i < a.size(); ++i) a[i] = rng.uniform();
  for (size_t i = 0; i < b.size(); ++i) b[i] = rng.uniform();
  const int tiles = m / 16 * (nn / 8), warps_per_block = 4;
  nincc::emu::launch("mma_tf32_gemm", dim3((tiles + warps_per_block - 1) / warps_per_block), dim3(32 * warps_per_block),
                     0, &mma_tf32_gemm, a.data(), b.data(), c.data(), m, nn, k);
  bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < nn; ++j) {
      float want = 0.0f;
      double exact = 0.0;
      for (int q = 0; q < k; ++q) {
        const float ra = tf32_reference(a[size_t(i) * k + q]), rb = tf32_reference(b[size_t(q) * nn + j]);
        want += ra * rb;
        exact += double(a[size_t(i) * k + q]) * b[size_t(q) * nn + j];
      }
      const float got = c[size_t(i) * nn + j];
      if ((bits_of(got) != bits_of(want) || std::fabs(got - exact) > 5e-2) && bad++ < 3)
        report_failure(__FILE__, __LINE__,
                       "mma C[" + std::to_string(i) + "][" + std::to_string(j) + "] = " + std::to_string(got) +
                           ", plain tf32 product " + std::to_string(want) + ", float64 " + std::to_string(exact));
    }
  ++g_checks;
}

}  // namespace emu_test
