// Direct forward convolutions for inference (weights packed once by pack_conv_weights, read in
// place), where the implicit GEMM's gather (conv_gemm.h) is a large share of the time. A
// single-channel input, stride 1 (nin-fashion's first layer: 5x5 on one 28x28 plane): the GEMM
// gathers a depth-25 panel for every 32-pixel tile and finds its runs tap by tap, about as much work
// as the multiply-adds the panel feeds; here each task copies its output rows' input rows once into
// a zero-padded strip, and the micro-kernel loads every tap's 32 pixels straight from it (a constant
// offset per tap). A pointwise conv: a tile inside one image is already, channel by channel, 32
// consecutive floats of x, loaded in place. Both keep the GEMM's register tile, summing order and
// epilogue, so the bits are the GEMM's.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "conv_gemm.h"
#include "im2col.h"
#include "parallel.h"

namespace nincc {
namespace cpu {
namespace conv_direct_detail {

using conv_gemm_detail::kMaxDepthBlock;
using gemm_detail::ceil_div;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;

// A task's output rows of one image: rows [oh_begin, oh_end).
struct RowRange {
  int n, oh_begin, oh_end;
};

// Floats per strip row: every pixel tile of an output row plus the kernel's overhang, so a tile's
// vector loads never leave the row.
inline int strip_width(const Conv2dShape& s) { return ceil_div(s.out_w(), kTileCols) * kTileCols + s.kernel_w - 1; }

// strip[i][j] = x[n][0][oh_begin + i - pad_h][j - pad_w], zero outside the image, for the input rows
// output rows [oh_begin, oh_end) read.
inline void fill_strip(const Conv2dShape& s, const float* x, const RowRange& rows, float* strip) {
  const int width = strip_width(s), strip_rows = rows.oh_end - rows.oh_begin + s.kernel_h - 1;
  const float* image = x + static_cast<std::int64_t>(rows.n) * s.in_plane();
  for (int i = 0; i < strip_rows; ++i) {
    float* dst = strip + static_cast<std::int64_t>(i) * width;
    const int ih = rows.oh_begin + i - s.pad_h;
    std::fill(dst, dst + width, 0.f);
    if (ih < 0 || ih >= s.in_h) continue;
    const float* row = image + static_cast<std::int64_t>(ih) * s.in_w;
    std::copy(row, row + std::min(s.in_w, width - s.pad_w), dst + s.pad_w);
  }
}

}  // namespace conv_direct_detail

// Whether conv2d_forward_direct takes this conv: one input channel, stride 1, and a kernel whose
// taps fit one depth block of the packed weights (so every output is summed in the GEMM's order).
constexpr bool direct_conv_applies(const Conv2dShape& s) {
  return s.in_channels == 1 && s.stride_h == 1 && s.stride_w == 1 && s.patch_size() <= conv_direct_detail::kMaxDepthBlock;
}

// conv2d_forward_packed's contract (conv_gemm.h) for a conv direct_conv_applies to. Parallel over
// (image, block of output rows) tasks; each output element is computed by one task in tap order, so
// the bits do not depend on the thread count. Scratch: each task's strip, in its thread's scratch.
inline void conv2d_forward_direct(const Conv2dShape& s, const float* x, const float* packed_w, const float* bias, float* y,
                                  bool relu = false, const ConvOutput& o = {}) {
  using namespace conv_direct_detail;
  const int m = s.out_channels, taps = s.patch_size(), out_h = s.out_h(), out_w = s.out_w();
  if (m <= 0 || s.batch <= 0 || out_h <= 0 || out_w <= 0) return;
  const int width = strip_width(s), panels = ceil_div(m, kTileRows), col_tiles = ceil_div(out_w, kTileCols);
  int offsets[kMaxDepthBlock];  // tap (r, c) reads the strip r rows and c columns from its output pixel
  for (int t = 0; t < taps; ++t) offsets[t] = (t / s.kernel_w) * width + t % s.kernel_w;
  const std::int64_t macs = static_cast<std::int64_t>(m) * taps * s.batch * s.out_plane();
  const int threads = threads_for(macs, conv_gemm_detail::kForwardParallelMinMacs);
  // Row blocks per image: enough tasks for a few per thread even at batch 1.
  const int blocks = threads <= 1 ? 1 : std::min(out_h, ceil_div(conv_gemm_detail::kTasksPerThread * threads, s.batch));
  const std::int64_t skip = static_cast<std::int64_t>(o.channel_offset) * s.out_plane();
  const conv_gemm_detail::SegmentStore out{y + skip, o.channels_of(s), s.out_plane(), out_w, o.residual ? o.residual + skip : nullptr};
  parallel_for_dynamic(static_cast<std::int64_t>(s.batch) * blocks, threads, [&](std::int64_t task) {
    const int b = static_cast<int>(task % blocks);
    const RowRange rows{static_cast<int>(task / blocks), out_h * b / blocks, out_h * (b + 1) / blocks};
    if (rows.oh_begin >= rows.oh_end) return;
    float* strip = thread_scratch(ScratchSlot::kConvPhases,
                                  static_cast<std::size_t>(rows.oh_end - rows.oh_begin + s.kernel_h - 1) * width);
    fill_strip(s, x, rows, strip);
    for (int oh = rows.oh_begin; oh < rows.oh_end; ++oh)
      for (int q = 0; q < col_tiles; ++q) {
        const conv_gemm_detail::Segment seg{rows.n, oh, q * kTileCols, 0, std::min(kTileCols, out_w - q * kTileCols)};
        const float* at = strip + static_cast<std::int64_t>(oh - rows.oh_begin) * width + q * kTileCols;
        for (int p = 0; p < panels; ++p) {
          const int first_row = p * kTileRows, tile_rows = std::min(kTileRows, m - first_row);
          gemm_detail::TileAccumulators acc;
          gemm_detail::tile_product_rows_of(tile_rows, taps, conv_gemm_detail::weight_panel(packed_w, m, 0, taps, p),
                                            [&](int t) { return at + offsets[t]; }, acc);
          conv_gemm_detail::store_tile(out, acc, &seg, 1, first_row, tile_rows, false, true, bias ? bias + first_row : nullptr, relu);
        }
      }
  });
}

namespace conv_direct_detail {

// The share of the pixel tiles' lanes that hold pixels, for tiles cut per image (the pointwise
// direct conv) and across the batch (the implicit GEMM). Measured on one thread at batch 16
// (layer-ab): 28x28 planes (98% against 100%) ran 12% faster direct, 14x14 (88%) the same, 7x7
// (77%) 18% slower; at batch 1, where both cut the same tiles, direct ran 2-26% faster.
constexpr double tile_fill(std::int64_t pixels) {
  return static_cast<double>(pixels) / (static_cast<double>(ceil_div(pixels, kTileCols)) * kTileCols);
}
constexpr double kMinRelativeFill = 0.95;

// Past this many bytes of x (about L2) the pointwise direct conv prefetches each tile's x two tiles
// ahead. One thread, CPU time (bench/logs/i19l-pointwise-prefetch.out): nin-fashion's 32x28x28 1x1
// conv at batch 16 (x 1.6 MB) ran 0.89-0.95x; at batch 1 (x 100 KB, already in L2) the prefetches
// measured 0.97-1.09x, so small inputs go without.
constexpr std::int64_t kPrefetchAheadMinBytes = std::int64_t{1} << 20;

}  // namespace conv_direct_detail

// Whether conv2d_forward_pointwise_direct takes this conv: a 1x1 stride-1 unpadded conv (a GEMM
// over x as stored) whose channels fit one depth block of the packed weights, and whose per-image
// tiles waste few more lanes than the GEMM's batch-wide ones. (Its per-channel offsets into an image
// are ints.)
constexpr bool pointwise_direct_applies(const Conv2dShape& s) {
  using namespace conv_direct_detail;
  return s.is_pointwise() && s.patch_size() <= kMaxDepthBlock &&
         static_cast<std::int64_t>(s.in_channels) * s.in_plane() <= std::numeric_limits<int>::max() &&
         tile_fill(s.out_plane()) >= kMinRelativeFill * tile_fill(s.batch * s.out_plane());
}

namespace conv_direct_detail {

// One pixel tile of a pointwise conv (m output channels over `depth` rows of B, row c at b + offsets[c],
// kTileCols lanes of it readable), output channel panels [rows.begin, rows.end), stored at `seg` with
// bias and ReLU. A short last tile takes its registers of lanes before the narrow columns, then those
// (conv_gemm.h tail_split); `prefetch`: the first panel also prefetches each row's x two tiles ahead.
inline void pointwise_tile(const conv_gemm_detail::SegmentStore& out, const conv_gemm_detail::Segment& seg, int m, int depth,
                           const float* packed_w, const float* b, const int* offsets, gemm_detail::Slice rows, const float* bias,
                           bool relu, bool narrow_tails, bool prefetch) {
  auto b_row = [&](int c) { return b + offsets[c]; };
  const int cols = seg.count;
  const conv_gemm_detail::TailSplit tail = conv_gemm_detail::tail_split(cols, narrow_tails);
  if (tail.regs < conv_gemm_detail::kRegs) {
    const conv_gemm_detail::Segment wide{seg.n, 0, seg.ow0, 0, std::min(cols, tail.regs * conv_gemm_detail::kLanes)};
    for (int p = rows.begin; p < rows.end && tail.regs > 0; ++p) {
      const int first_row = p * kTileRows, tile_rows = std::min(kTileRows, m - first_row);
      gemm_detail::TileAccumulators acc;
      conv_gemm_detail::tile_product_regs(tail.regs, tile_rows, depth, conv_gemm_detail::weight_panel(packed_w, m, 0, depth, p), b_row, acc, nullptr);
      conv_gemm_detail::store_tile(out, acc, &wide, 1, first_row, tile_rows, false, true, bias ? bias + first_row : nullptr, relu);
    }
    if (tail.narrow > 0)
      conv_gemm_detail::multiply_narrow_columns(out, &seg, 1, tail.regs * conv_gemm_detail::kLanes, tail.narrow, packed_w, m, 0, depth,
                                                rows.begin, rows.end, b_row, false, true, bias, relu);
    return;
  }
  for (int p = rows.begin; p < rows.end; ++p) {
    const int first_row = p * kTileRows, tile_rows = std::min(kTileRows, m - first_row);
    gemm_detail::TileAccumulators acc;
    const float* panel_w = conv_gemm_detail::weight_panel(packed_w, m, 0, depth, p);
    if (prefetch && p == rows.begin) {
      gemm_detail::tile_product_rows_of(tile_rows, depth, panel_w, [&](int c) {
        const float* row = b + offsets[c];
        __builtin_prefetch(row + 2 * kTileCols);
        __builtin_prefetch(row + 2 * kTileCols + 16);
        return row;
      }, acc);
    } else {
      gemm_detail::tile_product_rows_of(tile_rows, depth, panel_w, b_row, acc);
    }
    conv_gemm_detail::store_tile(out, acc, &seg, 1, first_row, tile_rows, false, true, bias ? bias + first_row : nullptr, relu);
  }
}

// Where depth row c of a tile is: in an image of x (c x plane), and in a zero-padded panel (c x kTileCols).
struct TileRowOffsets {
  int in_place[kMaxDepthBlock], in_panel[kMaxDepthBlock];
  TileRowOffsets(int depth, std::int64_t plane) {
    for (int c = 0; c < depth; ++c) {
      in_place[c] = static_cast<int>(c * plane);
      in_panel[c] = c * kTileCols;
    }
  }
};

// The tile of `cols` pixels at p0 of an image `image` (depth x plane): in place, or, a partial tile whose
// loads would run past the image, copied into the thread's zero-padded panel. Returns B and its row offsets.
inline std::pair<const float*, const int*> tile_input(const float* image, std::int64_t plane, std::int64_t p0, int cols, int depth,
                                                      const TileRowOffsets& at) {
  const float* b = image + p0;
  if (cols == kTileCols) return {b, at.in_place};
  float* panel = thread_scratch(ScratchSlot::kGemmPackedB, static_cast<std::size_t>(depth) * kTileCols);
  for (int c = 0; c < depth; ++c) {
    std::copy(b + c * plane, b + c * plane + cols, panel + c * kTileCols);
    std::fill(panel + c * kTileCols + cols, panel + (c + 1) * kTileCols, 0.f);  // unstored lanes, kept free of denormals
  }
  return {panel, at.in_panel};
}

}  // namespace conv_direct_detail

// conv2d_forward_packed's contract for a conv pointwise_direct_applies to. A pixel tile inside one
// image is, channel by channel, kTileCols consecutive floats of x: the micro-kernel loads them in
// place (offset c x plane for input channel c) instead of gathering a panel; only an image's last,
// partial tile is copied into a zero-padded panel first (its loads would run past the image).
// Tasks are runs of tiles x slices of the channel panels (batch 1 on a 7x7 plane has 2 tiles), as
// in the GEMM; the same bits as the GEMM, for any thread count.
inline void conv2d_forward_pointwise_direct(const Conv2dShape& s, const float* x, const float* packed_w, const float* bias,
                                            float* y, bool relu = false, const ConvOutput& o = {}, bool narrow_tails = true) {
  using namespace conv_direct_detail;
  const int m = s.out_channels, depth = s.in_channels;
  const std::int64_t plane = s.out_plane();
  if (m <= 0 || s.batch <= 0 || plane <= 0) return;
  const int panels = ceil_div(m, kTileRows), image_tiles = ceil_div(plane, kTileCols);
  const std::int64_t tiles = static_cast<std::int64_t>(s.batch) * image_tiles;
  const TileRowOffsets offsets(depth, plane);
  const int threads = threads_for(static_cast<std::int64_t>(m) * depth * s.batch * plane, conv_gemm_detail::kForwardParallelMinMacs);
  const conv_gemm_detail::Split split = conv_gemm_detail::split_tasks(m, depth, s.batch * plane, threads);
  const std::int64_t skip = static_cast<std::int64_t>(o.channel_offset) * plane;
  const conv_gemm_detail::SegmentStore out{y + skip, o.channels_of(s), plane, s.out_w(), o.residual ? o.residual + skip : nullptr};
  const bool prefetch = static_cast<std::int64_t>(s.batch) * depth * plane * sizeof(float) > kPrefetchAheadMinBytes;
  parallel_for_dynamic(split.chunks * split.row_splits, threads, [&](std::int64_t task) {
    const gemm_detail::Slice rows = gemm_detail::slice_of(panels, split.row_splits, static_cast<int>(task % split.row_splits));
    const std::int64_t chunk = task / split.row_splits;
    const std::int64_t q_begin = tiles * chunk / split.chunks, q_end = tiles * (chunk + 1) / split.chunks;
    for (std::int64_t q = q_begin; q < q_end; ++q) {
      const int n = static_cast<int>(q / image_tiles);
      const std::int64_t p0 = (q % image_tiles) * kTileCols;
      const int cols = static_cast<int>(std::min<std::int64_t>(kTileCols, plane - p0));
      const auto [b, at] = tile_input(x + static_cast<std::int64_t>(n) * depth * plane, plane, p0, cols, depth, offsets);
      // One segment: lane l is pixel p0 + l of image n (store_tile reads it as row 0, column p0).
      const conv_gemm_detail::Segment seg{n, 0, static_cast<int>(p0), 0, cols};
      pointwise_tile(out, seg, m, depth, packed_w, b, at, rows, bias, relu, narrow_tails, prefetch);
    }
  });
}

}  // namespace cpu
}  // namespace nincc
