// An inference block's two 1x1 convs as one region in bands of each image's pixel tiles (issue #19;
// compiler/schedule/cpu-pointwise-pair-region.ts chooses it): a band's tiles run the first conv into a
// tile of the thread's scratch and the second from it, so the middle activations never leave the core
// and there is no barrier between the two convs. At batch 1 each of the threads takes a band (the two
// convs apart run serially there, under kForwardParallelMinMacs each); past it, one image a band.
// Each pixel's sums are the pointwise direct conv's (pointwise_tile), so y has the bits of
// conv2d_forward twice, at any thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv_direct.h"
#include "parallel.h"

namespace nincc {
namespace cpu {

namespace pointwise_pair_detail {

using conv_direct_detail::TileRowOffsets;
using gemm_detail::ceil_div;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;

// The pair's weights: the first conv C -> K, the second K -> K, both packed (pack_conv_weights), with biases.
struct PairWeights {
  const float *w1, *b1, *w2, *b2;
};

// y = relu(w2 relu(w1 x + b1) + b2) on pixels [begin, end) of image n, tile by tile from `begin`.
inline void pair_pixels(const Conv2dShape& first, const float* x, const PairWeights& w, float* y, int n, std::int64_t begin,
                        std::int64_t end, bool narrow_tails) {
  const int c = first.in_channels, k = first.out_channels;
  const std::int64_t plane = first.out_plane();
  const TileRowOffsets x_rows(c, plane), mid_rows(k, kTileCols);
  float* mid = thread_scratch(ScratchSlot::kConvPhases, static_cast<std::size_t>(k) * kTileCols);
  const conv_gemm_detail::SegmentStore to_mid{mid, k, kTileCols, kTileCols, nullptr}, to_y{y, k, plane, first.out_w(), nullptr};
  const gemm_detail::Slice panels{0, ceil_div(k, kTileRows)};
  const float* image = x + static_cast<std::int64_t>(n) * c * plane;
  for (std::int64_t p0 = begin; p0 < end; p0 += kTileCols) {
    const int cols = static_cast<int>(std::min<std::int64_t>(kTileCols, end - p0));
    const auto [b, at] = conv_direct_detail::tile_input(image, plane, p0, cols, c, x_rows);
    // The second conv reads all kTileCols lanes of a middle row: those past a short tile's stay zero.
    if (cols < kTileCols)
      for (int i = 0; i < k; ++i) std::fill(mid + i * kTileCols + cols, mid + (i + 1) * kTileCols, 0.f);
    conv_direct_detail::pointwise_tile(to_mid, conv_gemm_detail::Segment{0, 0, 0, 0, cols}, k, c, w.w1, b, at, panels, w.b1, true,
                                       narrow_tails, false);
    conv_direct_detail::pointwise_tile(to_y, conv_gemm_detail::Segment{n, 0, static_cast<int>(p0), 0, cols}, k, k, w.w2, mid,
                                       mid_rows.in_panel, panels, w.b2, true, narrow_tails, false);
  }
}

}  // namespace pointwise_pair_detail

// Whether the region takes the pair whose first conv is `first` (the second K -> K on the same plane): convs
// the pointwise direct conv takes at batch 1 (past it the region still cuts its tiles per image, the GEMM's
// bits), the second's depth within one depth block.
inline bool pointwise_pair_applies(const Conv2dShape& first) {
  Conv2dShape one_image = first;
  one_image.batch = 1;
  return pointwise_direct_applies(one_image) && first.out_channels <= conv_gemm_detail::kMaxDepthBlock;
}

// y = relu(w2 relu(w1 x + b1) + b2): first C -> K on the plane, the second K -> K, each with its ReLU.
inline void pointwise_pair_forward(const Conv2dShape& first, const float* x, const float* w1, const float* b1, const float* w2,
                                   const float* b2, float* y, bool narrow_tails = true) {
  using namespace pointwise_pair_detail;
  const PairWeights w{w1, b1, w2, b2};
  const int threads = max_threads(), images = first.batch;
  const std::int64_t plane = first.out_plane(), tiles = ceil_div(plane, kTileCols);
  const int bands = images == 1 ? static_cast<int>(std::min<std::int64_t>(threads, tiles)) : 1;
  // Band b of an image: an even share of its pixel tiles, so that only the last band has a short tile.
  const auto band_begin = [&](int b) { return std::min<std::int64_t>(plane, tiles * b / bands * kTileCols); };
  parallel_for_dynamic(static_cast<std::int64_t>(images) * bands, threads, [&](std::int64_t task) {
    const int n = static_cast<int>(task / bands), b = static_cast<int>(task % bands);
    pair_pixels(first, x, w, y, n, band_begin(b), band_begin(b + 1), narrow_tails);
  });
}

}  // namespace cpu
}  // namespace nincc
