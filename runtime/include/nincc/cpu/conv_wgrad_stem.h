// Weight gradient of a strided conv with few input channels (NIN's 11x11/4 stem, 3 -> 96), computed
// transposed, with the unfolded input unpacked:
//   dw^T[d][k] = sum over pixels j of X(d, j) * dy[k][j],   d = (c, r, s)
// conv_wgrad.h gathers and transposes all patch_size() rows of X (363 for the stem) for every 32
// pixels, against only out_channels rows of dy: here X is the micro-kernel's broadcast operand, read
// as it lies from a zero-padded, phase-split copy of x (where tap d of an output row's pixels is one
// contiguous run), and only dy is transposed into panels. The pixel blocks, groups and tasks are
// conv_wgrad.h's (over dw^T, the same size), and every accumulator adds the same products in the same
// pixel order, so dw equals conv_wgrad.h's bit for bit, for any thread count (the GEMM's zero padding
// pixels of a last partial tile add +0 products, which only a -0 sum would notice).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "conv_wgrad.h"
#include "conv_wgrad_1x1.h"

namespace nincc {
namespace cpu {
namespace wgrad_stem_detail {

using gemm_detail::Isa;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;
using gemm_detail::TileAccumulators;

// The zero-padded, phase-split copy of x: padded row ih' (0 <= ih' < in_h + 2 pad_h) of channel c of
// image n is stride_w phases of `phase_width` floats, phase ph holding padded columns ph, ph +
// stride_w, ... So output pixel ow of tap (c, r, s) reads element ow + s / stride_w of phase s %
// stride_w of padded row oh * stride_h + r: the pixels of one output row are consecutive for every tap.
struct PaddedPhases {
  int padded_h, phase_width;
  std::int64_t row, image;  // floats per padded row (all phases), per image
  static PaddedPhases of(const Conv2dShape& s) {
    const int padded_h = s.in_h + 2 * s.pad_h, padded_w = s.in_w + 2 * s.pad_w;
    const int phase_width = (padded_w + s.stride_w - 1) / s.stride_w;
    const std::int64_t row = static_cast<std::int64_t>(s.stride_w) * phase_width;
    return {padded_h, phase_width, row, row * padded_h * s.in_channels};
  }
  // Where tap d = (c, r, s) of output pixel (0, 0) of image 0 lies.
  std::int64_t tap_offset(const Conv2dShape& s, int d) const {
    const int taps = s.kernel_h * s.kernel_w;
    const int c = d / taps, r = (d % taps) / s.kernel_w, col = d % s.kernel_w;
    return (static_cast<std::int64_t>(c) * padded_h + r) * row + static_cast<std::int64_t>(col % s.stride_w) * phase_width +
           col / s.stride_w;
  }
};

inline void fill_padded_phases(const Conv2dShape& s, const PaddedPhases& p, const float* x, float* copy) {
  const std::int64_t rows = static_cast<std::int64_t>(s.batch) * s.in_channels * p.padded_h;
  parallel_for(rows, rows * p.row, [&](std::int64_t index) {
    const std::int64_t plane = index / p.padded_h;  // n * in_channels + c
    const int ih = static_cast<int>(index % p.padded_h) - s.pad_h;
    float* dst = copy + index * p.row;
    if (ih < 0 || ih >= s.in_h) {
      std::memset(dst, 0, sizeof(float) * p.row);
      return;
    }
    const float* src = x + plane * s.in_plane() + static_cast<std::int64_t>(ih) * s.in_w;
    for (int ph = 0; ph < s.stride_w; ++ph)
      for (int j = 0; j < p.phase_width; ++j) {
        const int iw = ph + j * s.stride_w - s.pad_w;
        dst[ph * p.phase_width + j] = iw >= 0 && iw < s.in_w ? src[iw] : 0.f;
      }
  });
}

// A stretch of a pixel block in one image and output row: `count` pixels whose X elements start at
// `x_offset` past a tap's offset, and whose B rows start at panel row `depth`.
struct RowRun {
  std::int64_t x_offset;
  int depth, count;
};

// wgrad_1x1_detail::store_tile, with a whole-width tile's rows stored as vectors (the same sums: c + acc
// per element). A scalar store was 7% of the stem's time.
inline void store_tile(const TileAccumulators& acc, float* c, std::int64_t ldc, int rows, int cols, bool accumulate) {
  if (cols < kTileCols) return wgrad_1x1_detail::store_tile(acc, c, ldc, rows, cols, accumulate);
  constexpr int kLanes = Isa::kLanes;
  for (int i = 0; i < rows; ++i)
#pragma GCC unroll 4
    for (int r = 0; r < simd::kGemmRegsPerRow; ++r) {
      float* dst = c + i * ldc + r * kLanes;
      Isa::store(dst, accumulate ? Isa::add(Isa::load(dst), acc.r[i][r]) : acc.r[i][r]);
    }
}

}  // namespace wgrad_stem_detail

// At most this many input channels: the stem's few channels, where X's rows (patch_size()) outnumber
// dy's (out_channels) and so dominate conv_wgrad.h's packing.
constexpr int kWgradStemMaxChannels = 4;

// Whether conv2d_backward_weights_stem computes this shape's dw (conv.h chooses it over the GEMM): a
// strided conv of at most kWgradStemMaxChannels input channels whose dw is summed in pixel groups.
constexpr bool wgrad_stem_applies(const Conv2dShape& s) {
  return (s.stride_h > 1 || s.stride_w > 1) && !s.is_pointwise() && s.in_channels <= kWgradStemMaxChannels &&
         static_cast<std::int64_t>(s.out_channels) * s.patch_size() <= conv_wgrad_detail::kGroupedMaxFloats;
}

// dw (out_channels x patch, overwritten) of a shape wgrad_stem_applies to, dy (batch x out_channels x
// out plane) as it lies. Scratch in the calling thread: the padded phases (kConvPhases), dw^T
// (kConvPackedWeights) and the group partials (kConvColumns); per task, the B panels (kGemmPackedB).
inline void conv2d_backward_weights_stem(const Conv2dShape& shape, const float* x, const float* dy, float* dw) {
  using namespace conv_wgrad_detail;
  using namespace wgrad_stem_detail;
  const int m = shape.out_channels, patch = shape.patch_size();
  const std::int64_t plane = shape.out_plane();
  const std::int64_t pixels = static_cast<std::int64_t>(shape.batch) * plane;
  if (pixels == 0) {
    std::memset(dw, 0, sizeof(float) * m * patch);
    return;
  }
  const PaddedPhases phases = PaddedPhases::of(shape);
  float* copy = thread_scratch(ScratchSlot::kConvPhases, static_cast<std::size_t>(phases.image * shape.batch));
  fill_padded_phases(shape, phases, x, copy);
  std::vector<std::int64_t> tap_offsets(patch);
  for (int d = 0; d < patch; ++d) tap_offsets[d] = phases.tap_offset(shape, d);
  float* dw_t = thread_scratch(ScratchSlot::kConvPackedWeights, static_cast<std::size_t>(m) * patch);
  const int ow_count = shape.out_w();
  const std::int64_t dy_image = static_cast<std::int64_t>(m) * plane;

  // conv_wgrad.h's tasks, groups and pixel blocks over dw^T (patch rows of taps, m columns of channels).
  for_each_gradient_task(patch, m, pixels, dw_t, [&](const GradientTask& task) {
    const gemm_detail::Slice tiles = task.tiles, panels = task.panels;
    const std::int64_t j_begin = task.j_begin, j_end = task.j_end;
    const int width = tiles.end - tiles.begin;
    const std::size_t block_floats = kTileCols * kTileCols, b_panel = static_cast<std::size_t>(kTileCols) * kPixelBlock;
    float* block = thread_scratch(ScratchSlot::kGemmPackedB, whole_lines(block_floats) + whole_lines(b_panel * width));
    float* b_panels = block + whole_lines(block_floats);
    RowRun runs[kPixelBlock];
    wgrad_1x1_detail::RunRows tap_runs[kPixelBlock];

    for (std::int64_t j0 = j_begin; j0 < j_end; j0 += kPixelBlock) {
      const int depth = static_cast<int>(std::min<std::int64_t>(kPixelBlock, j_end - j0));
      // The block's pixels cut at image and output-row ends.
      int run_count = 0;
      for (std::int64_t at = j0; at < j0 + depth;) {
        const std::int64_t n = at / plane, q = at % plane;
        const int oh = static_cast<int>(q / ow_count), ow = static_cast<int>(q % ow_count);
        const int count = static_cast<int>(std::min<std::int64_t>(ow_count - ow, j0 + depth - at));
        runs[run_count++] = RowRun{n * phases.image + static_cast<std::int64_t>(oh) * shape.stride_h * phases.row + ow,
                                   static_cast<int>(at - j0), count};
        at += count;
      }
      // B panels: dy's channels of this task's tiles at each 32 pixels, transposed to pixel-major rows.
      for (int t = 0; t * kTileCols < depth; ++t) {
        const std::int64_t col0 = j0 + static_cast<std::int64_t>(t) * kTileCols;
        const int cols = static_cast<int>(std::min<std::int64_t>(kTileCols, j0 + depth - col0));
        for (int tq = tiles.begin; tq < tiles.end; ++tq)
          transpose_planes(dy, dy_image, plane, tq * kTileCols, std::min(kTileCols, m - tq * kTileCols), col0, cols, block,
                           b_panels + (tq - tiles.begin) * b_panel + t * kTileCols * kTileCols);
      }
      for (int tq = tiles.begin; tq < tiles.end; ++tq) {
        const float* b_tile = b_panels + (tq - tiles.begin) * b_panel;
        for (int p = panels.begin; p < panels.end; ++p) {
          const int row = p * kTileRows, col = tq * kTileCols;
          const int rows = std::min(kTileRows, patch - row);
          // Rows past the last tap repeat it (their results are dropped).
          const float* tap_rows[kTileRows];
          for (int i = 0; i < kTileRows; ++i) tap_rows[i] = copy + tap_offsets[row + std::min(i, rows - 1)];
          // X's 12 taps as they lie at each run: the broadcast operand, with dy's panel as B (a product is
          // the same either way round).
          for (int u = 0; u < run_count; ++u) {
            for (int i = 0; i < kTileRows; ++i) tap_runs[u].rows[i] = tap_rows[i] + runs[u].x_offset;
            tap_runs[u].depth = runs[u].depth, tap_runs[u].count = runs[u].count;
          }
          TileAccumulators acc;
          wgrad_1x1_detail::run_rows_product(tap_runs, run_count, b_tile, acc);
          store_tile(acc, task.out_dw + static_cast<std::int64_t>(row) * m + col, m, rows, std::min(kTileCols, m - col), j0 > j_begin);
        }
      }
    }
  });
  for (int k = 0; k < m; ++k)
    for (int d = 0; d < patch; ++d) dw[static_cast<std::int64_t>(k) * patch + d] = dw_t[static_cast<std::int64_t>(d) * m + k];
}

}  // namespace cpu
}  // namespace nincc
