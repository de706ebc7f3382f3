// A training BN's batch statistics as shifted sums in double: one plane's in one pass (forward_sums), and the
// per-tile sums a conv's GEMM epilogue records while its output tile is in cache (ConvMoments, conv_gemm.h), which
// the BN forward combines (batchnorm.h) instead of reading its input x once more for them.
#pragma once

#include <algorithm>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "gemm_kernel.h"
#include "reduce.h"

namespace nincc {
namespace cpu {
namespace batchnorm_detail {

// A plane's sum (x - shift) and sum (x - shift)^2 in one pass over x, in double, element i in lane i % 8, the
// lanes combined in order, the tail after (reduce.h's order, with or without AVX-512: the same bits).
struct ForwardSums {
  double x, squares;
};
inline ForwardSums forward_sums(const float* __restrict x, std::int64_t count, double shift) {
  double x_lanes[kReduceLanes] = {}, square_lanes[kReduceLanes] = {};
  std::int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  static_assert(kReduceLanes == 8, "one __m512d of lanes");
  __m512d x_acc = _mm512_setzero_pd(), square_acc = _mm512_setzero_pd();
  const __m512d center = _mm512_set1_pd(shift);
  for (; i + kReduceLanes <= count; i += kReduceLanes) {
    const __m512d centered = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), center);
    x_acc = _mm512_add_pd(x_acc, centered);
    square_acc = _mm512_add_pd(square_acc, _mm512_mul_pd(centered, centered));  // no FMA: the scalar form's rounding
  }
  _mm512_storeu_pd(x_lanes, x_acc);
  _mm512_storeu_pd(square_lanes, square_acc);
#endif
  for (; i + kReduceLanes <= count; i += kReduceLanes)
    for (int l = 0; l < kReduceLanes; ++l) {
      const double centered = x[i + l] - shift;
      x_lanes[l] += centered;
      square_lanes[l] += centered * centered;
    }
  ForwardSums sums{0.0, 0.0};
  for (int l = 0; l < kReduceLanes; ++l) {
    sums.x += x_lanes[l];
    sums.squares += square_lanes[l];
  }
  for (; i < count; ++i) {
    const double centered = x[i] - shift;
    sums.x += centered;
    sums.squares += centered * centered;
  }
  return sums;
}

}  // namespace batchnorm_detail

// Pixels a tile of the conv GEMM covers (gemm_kernel.h kTileCols: 32 with AVX-512, 16 with AVX2, 8 with SSE). The
// compiler sizes the partials buffer for the narrowest (compiler/lower/ops.ts bnMomentFloats: kBnMomentMinTilePixels,
// which the generated call static_asserts), so one artifact's buffer fits any instruction set's tiles.
constexpr int kBnMomentTilePixels = gemm_detail::kTileCols;
constexpr int kBnMomentMinTilePixels = 8;
static_assert(kBnMomentTilePixels >= kBnMomentMinTilePixels, "the compiler sizes the partials for 8-pixel tiles");

// The partial statistics of a conv's output channels over its GEMM's pixel tiles (kBnMomentTilePixels columns of
// the batch's pixels each, images one after another): for channel c and tile q, three doubles: the tile's shift s
// (the channel's value at the tile's first pixel), Σ(y - s) and Σ(y - s)² over the tile's pixels. Each tile's
// sums are taken by the one task that finishes it, so their bits do not depend on the thread count.
struct ConvMoments {
  double* partials = nullptr;
  std::int64_t tiles = 0;  // ceil(batch * plane / kBnMomentTilePixels)
  static constexpr std::int64_t tiles_of(std::int64_t pixels) { return (pixels + kBnMomentTilePixels - 1) / kBnMomentTilePixels; }
  double* at(int c, std::int64_t q) const { return partials + (c * tiles + q) * 3; }
  // Over a buffer of the training program's arena (64-byte aligned, compiler/lower/memory.ts), float-typed there:
  // the conv writes it, the BN reads it (as const, whence the cast).
  static ConvMoments over(const float* buffer, std::int64_t pixels) {
    return {reinterpret_cast<double*>(const_cast<float*>(buffer)), tiles_of(pixels)};
  }
};

namespace batchnorm_detail {

// Records channel c's sums over tile q from its runs of contiguous output values (a tile straddling images or
// ending the batch has two or one), all around the tile's first value.
struct TileRun {
  const float* values;
  int count;
};
inline void record_tile_moments(const ConvMoments& m, int c, std::int64_t q, const TileRun* runs, int run_count) {
  const double shift = runs[0].values[0];
  double sum = 0.0, squares = 0.0;
  for (int r = 0; r < run_count; ++r) {
    const ForwardSums s = forward_sums(runs[r].values, runs[r].count, shift);
    sum += s.x;
    squares += s.squares;
  }
  double* out = m.at(c, q);
  out[0] = shift;
  out[1] = sum;
  out[2] = squares;
}

}  // namespace batchnorm_detail
}  // namespace cpu
}  // namespace nincc
