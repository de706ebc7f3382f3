// Weight gradient of a 1x1, stride-1, unpadded convolution with dy read in place:
//   dw[k][c] = sum over pixels j of dy[k][j] * x[c][j]
// conv_wgrad.h's GEMM with half its packing gone. There, both operands are gathered 32 pixels at a
// time and transposed into panels; here x's planes are transposed straight into the B panels (no
// gather copy), and dy is not packed at all: the micro-kernel broadcasts its 12 values of a pixel
// from 12 rows of dy as they lie, a 32-pixel run at a time (a run never crosses an image). The
// pixel blocks, groups and tasks are conv_wgrad.h's, and every accumulator adds the same products in
// the same order, so dw is bitwise that of conv_wgrad.h for any thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "conv_wgrad.h"

namespace nincc {
namespace cpu {
namespace wgrad_1x1_detail {

using gemm_detail::ceil_div;
using gemm_detail::Isa;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;
using gemm_detail::TileAccumulators;

// A stretch of one pixel block that lies in one image: `count` pixels from dy_run (dy's first
// channel of this tile at these pixels; channel i is plane floats further) whose B rows start at
// panel row `depth`.
struct PixelRun {
  const float* dy_run;
  int depth, count;
};

// A stretch of a pixel block that the micro-kernel reads as it lies: `count` values from each of its
// kTileRows rows (where row i's pixels start), whose B rows start at panel row `depth`. The 1x1 gradient
// points them at dy's channels, the stem's at X's taps in its padded copy.
struct RunRows {
  const float* rows[kTileRows];
  int depth, count;
};

// Does nothing between pixels of run_rows_product.
struct NoWorkBetweenPixels {
  void operator()() {}
};

// run_rows_product calls its between_pixels() after every kPixelsBetween-th pixel of a run. On NIN's
// 96-channel 56x56 gradient every 1, 2 or 4 pixels measured alike and every 8 or 16 lost most of the
// gain; every pixel cost the short runs of 28x28 to 7x7 planes more (bench/logs/i19A-wgrad-1x1-spread-prefetch.out).
constexpr int kPixelsBetween = 4;

// acc = sum over the runs, in pixel order, of their rows x the B panel: the same multiply-adds as
// gemm_detail::tile_product over a packed A. between_pixels() runs after every kPixelsBetween-th pixel
// of a run (the 1x1 gradient's prefetches of the next pixel block, spread through the product).
template <class BetweenPixels = NoWorkBetweenPixels>
inline void run_rows_product(const RunRows* runs, int run_count, const float* __restrict packed_b, TileAccumulators& acc,
                             BetweenPixels&& between_pixels = {}) {
  constexpr int kRegs = simd::kGemmRegsPerRow;
  constexpr int kLanes = Isa::kLanes;
#pragma GCC unroll 16
  for (int i = 0; i < kTileRows; ++i)
#pragma GCC unroll 4
    for (int r = 0; r < kRegs; ++r) acc.r[i][r] = Isa::zero();
  for (int u = 0; u < run_count; ++u) {
    const float* a_rows[kTileRows];
    for (int i = 0; i < kTileRows; ++i) a_rows[i] = runs[u].rows[i];
    const float* b = packed_b + static_cast<std::int64_t>(runs[u].depth) * kTileCols;
    for (int p = 0; p < runs[u].count; ++p) {
      Isa::Reg bv[kRegs];
#pragma GCC unroll 4
      for (int r = 0; r < kRegs; ++r) bv[r] = Isa::load(b + p * kTileCols + r * kLanes);
#pragma GCC unroll 16
      for (int i = 0; i < kTileRows; ++i) {
        const Isa::Reg a = Isa::broadcast(a_rows[i] + p);
#pragma GCC unroll 4
        for (int r = 0; r < kRegs; ++r) acc.r[i][r] = Isa::fma(a, bv[r], acc.r[i][r]);
      }
      if (p % kPixelsBetween == kPixelsBetween - 1) between_pixels();
    }
  }
}

// Walks the 64-byte lines of the next pixel block's rows (every dy channel, then every x channel,
// run by run) a few at a time. The block touches 2 x 96 rows of a 56x56 plane 3 lines each, more
// streams than the hardware prefetchers follow: fetched while the current block computes, they
// arrive before they are needed instead of one latency each.
struct NextBlockLines {
  const PixelRun* runs;
  int run_count, dy_rows, x_rows;
  const float* const* x_runs;  // x's first channel at each run's pixels
  std::int64_t plane;
  int run = 0, row = 0, line = 0;
  // spread(): the lines owed after kPixelsBetween more pixels of a product of `depth` pixels that owes
  // `lines_per_product` (a running remainder), so the prefetches interleave with the multiply-adds
  // instead of issuing in one burst before them. perf showed the burst's last prefetches stalling for
  // 30% of the 96-channel 56x56 gradient's cycles (the line fill buffers full, the multiply-adds waiting).
  int lines_per_product = 0, depth = 1, owed = 0;
  void spread() {
    for (owed += kPixelsBetween * lines_per_product; owed >= depth; owed -= depth) fetch(1);
  }
  void fetch(int count) {
    for (; count > 0 && run < run_count; --count) {
      const float* base = row < dy_rows ? runs[run].dy_run + row * plane : x_runs[run] + (row - dy_rows) * plane;
      __builtin_prefetch(base + line * 16, 0, 2);
      if (++line * 16 >= runs[run].count) {
        line = 0;
        if (++row >= dy_rows + x_rows) row = 0, ++run;
      }
    }
  }
};

// c[0:rows, 0:cols] = (accumulate ? c + acc : acc), as gemm_detail::micro_kernel writes a tile.
inline void store_tile(const TileAccumulators& acc, float* c, std::int64_t ldc, int rows, int cols, bool accumulate) {
  alignas(64) float tile[kTileRows][kTileCols];
  for (int i = 0; i < kTileRows; ++i)
    for (int r = 0; r < simd::kGemmRegsPerRow; ++r) Isa::store(&tile[i][r * Isa::kLanes], acc.r[i][r]);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i][j] : tile[i][j];
}

}  // namespace wgrad_1x1_detail

// Pixels per tile of the rule below: a multiple of every instruction set's kTileCols (32, 16, 8), so the
// choice is the same whichever one the library is built for.
constexpr int kWholeTilePixels = 32;
static_assert(kWholeTilePixels % gemm_detail::kTileCols == 0, "a whole-tile plane is whole micro-kernel tiles");

// Whether conv2d_backward_weights_1x1 computes this shape's dw (conv.h chooses it over the GEMM;
// compiler/schedule/cpu-train-wgrad-1x1.ts mirrors it for report.txt, static_asserted equal in the
// generated code): a 1x1, stride-1, unpadded conv, whose x planes are the B operand as they lie, with
// planes of whole tiles (no tile crosses an image: 56x56 = 98 x 32) and a dw small enough to be summed in
// pixel groups. Measured at batch 16, one thread, against the GEMM (bench/logs/i19o-wgrad-1x1.out): NIN's
// 96 on 56x56 in 0.88-0.90 of its time; 256 on 28x28 (a tile in 24.5 crosses images), 384 on 14x14 and
// 1024 on 7x7 (short runs; dw past kGroupedMaxFloats) in 1.03-1.43, so they keep the GEMM.
constexpr bool wgrad_1x1_applies(const Conv2dShape& s) {
  return s.is_pointwise() && s.out_plane() % kWholeTilePixels == 0 &&
         static_cast<std::int64_t>(s.out_channels) * s.in_channels <= conv_wgrad_detail::kGroupedMaxFloats;
}

// dw (out_channels x in_channels, overwritten) of a shape wgrad_1x1_applies to; `place`: where dy
// lies (its channels of a concat's gradient, read in place). Scratch as conv_wgrad.h's.
// SpreadPrefetches false: the next block's prefetches in one burst before each tile product
// (compiler/ablations.ts cpuWgradSpreadPrefetch); the same bits either way.
template <bool kSpreadPrefetches = true>
inline void conv2d_backward_weights_1x1(const Conv2dShape& shape, const float* x, const float* dy, float* dw,
                                        const ConvGradientPlace& place = {}) {
  using namespace conv_wgrad_detail;
  using namespace wgrad_1x1_detail;
  const int m = shape.out_channels, patch = shape.in_channels;
  const std::int64_t plane = shape.out_plane();
  const std::int64_t pixels = static_cast<std::int64_t>(shape.batch) * plane;
  const std::int64_t dw_size = static_cast<std::int64_t>(m) * patch;
  if (pixels == 0) {
    std::memset(dw, 0, sizeof(float) * dw_size);
    return;
  }
  const std::int64_t dy_image = static_cast<std::int64_t>(place.total > 0 ? place.total : m) * plane;
  const float* dy0 = dy + place.offset * plane;
  const std::int64_t x_image = static_cast<std::int64_t>(patch) * plane;

  // conv_wgrad.h's tasks, groups and pixel blocks (see there).
  for_each_gradient_task(m, patch, pixels, dw, [&](const GradientTask& task) {
    const gemm_detail::Slice tiles = task.tiles, panels = task.panels;
    const std::int64_t j_begin = task.j_begin, j_end = task.j_end;
    float* out_dw = task.out_dw;
    const int width = tiles.end - tiles.begin;
    // Scratch: one gather block (a tile that crosses images or ends short), then this task's B panels.
    const std::size_t block_floats = kTileCols * kTileCols, b_panel = static_cast<std::size_t>(kTileCols) * kPixelBlock;
    float* block = thread_scratch(ScratchSlot::kGemmPackedB, whole_lines(block_floats) + whole_lines(b_panel * width));
    float* b_panels = block + whole_lines(block_floats);
    // The block's pixels as runs within one image, a tile's pixels in one run or (where the tile
    // crosses into the next image) two: dy's and x's first channel at each.
    constexpr int kMaxRuns = 2 * (kPixelBlock / kTileCols);
    const auto block_runs = [&](std::int64_t j0, PixelRun* runs, const float** x_runs) {
      const int depth = static_cast<int>(std::min<std::int64_t>(kPixelBlock, j_end - j0));
      int count = 0;
      for (std::int64_t col0 = j0; col0 < j0 + depth; col0 += kTileCols)
        for (std::int64_t at = col0, end = std::min(col0 + kTileCols, j0 + depth); at < end;) {
          const std::int64_t image = at / plane, offset = at % plane;
          const int pixels_here = static_cast<int>(std::min(end - at, plane - offset));
          x_runs[count] = x + image * x_image + offset;
          runs[count++] = PixelRun{dy0 + image * dy_image + offset, static_cast<int>(at - j0), pixels_here};
          at += pixels_here;
        }
      return count;
    };
    PixelRun runs[kMaxRuns], next_runs[kMaxRuns];
    const float* x_runs[kMaxRuns];
    const float* next_x_runs[kMaxRuns];

    for (std::int64_t j0 = j_begin; j0 < j_end; j0 += kPixelBlock) {
      const int depth = static_cast<int>(std::min<std::int64_t>(kPixelBlock, j_end - j0));
      const int run_count = block_runs(j0, runs, x_runs);
      NextBlockLines next{next_runs, j0 + kPixelBlock < j_end ? block_runs(j0 + kPixelBlock, next_runs, next_x_runs) : 0, m, patch,
                          next_x_runs, plane};
      const int tile_products = (tiles.end - tiles.begin) * (panels.end - panels.begin);
      const int lines_per_product = ((m + patch) * (kPixelBlock / 16) + tile_products - 1) / tile_products;
      next.lines_per_product = lines_per_product, next.depth = depth;
      for (int t = 0; t * kTileCols < depth; ++t) {
        const std::int64_t col0 = j0 + static_cast<std::int64_t>(t) * kTileCols;
        const int cols = static_cast<int>(std::min<std::int64_t>(kTileCols, j_end - col0));
        // B panels: x's planes of these 32 pixels transposed, in place when they lie in one image.
        for (int tq = tiles.begin; tq < tiles.end; ++tq)
          transpose_planes(x, x_image, plane, tq * kTileCols, std::min(kTileCols, patch - tq * kTileCols), col0, cols, block,
                           b_panels + (tq - tiles.begin) * b_panel + t * kTileCols * kTileCols);
      }
      for (int tq = tiles.begin; tq < tiles.end; ++tq) {
        const float* b_tile = b_panels + (tq - tiles.begin) * b_panel;
        for (int p = panels.begin; p < panels.end; ++p) {
          const int row = p * kTileRows, col = tq * kTileCols;
          const int rows = std::min(kTileRows, m - row);
          // The runs of panel p: dy's channels `row` onwards; rows past `rows` repeat the last real one
          // (their results are dropped).
          RunRows panel_runs[kMaxRuns];
          for (int u = 0; u < run_count; ++u) {
            for (int i = 0; i < kTileRows; ++i) panel_runs[u].rows[i] = runs[u].dy_run + (row + std::min(i, rows - 1)) * plane;
            panel_runs[u].depth = runs[u].depth, panel_runs[u].count = runs[u].count;
          }
          TileAccumulators acc;
          if (kSpreadPrefetches) {
            run_rows_product(panel_runs, run_count, b_tile, acc, [&next] { next.spread(); });
          } else {
            next.fetch(lines_per_product);
            run_rows_product(panel_runs, run_count, b_tile, acc);
          }
          store_tile(acc, out_dw + static_cast<std::int64_t>(row) * patch + col, patch, rows, std::min(kTileCols, patch - col), j0 > j_begin);
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace nincc
