// Convolution weight gradient as one GEMM whose depth is every output pixel of the batch:
//   dw[k][d] = sum over (n, p) of dy[n][k][p] * X(d, (n, p)),   d = (c, r, s)
// Both operands keep the pixels innermost in memory, but the micro-kernel wants them outermost, so
// each is gathered 32 pixels at a time with the forward's implicit im2col (conv_gather.h: dy as a
// 1x1 conv's input, x through its taps) and transposed into the micro-kernel's panels in cache: no
// im2col buffer, and no strided packing of a transposed operand. Pixel blocks are summed in batch
// order into dw, so every element has the same summation order whatever the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "conv_gather.h"
#include "gemm.h"
#include "parallel.h"

namespace nincc {
namespace cpu {
namespace conv_wgrad_detail {

using gemm_detail::ceil_div;
using gemm_detail::kDepthBlock;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;
using conv_gemm_detail::direct_view;
using conv_gemm_detail::InputView;
using conv_gemm_detail::phase_split_size;
using conv_gemm_detail::split_phases;
using conv_gemm_detail::TapColumns;
using conv_gemm_detail::TileGather;

// Pixels per depth block: whole gather tiles.
constexpr int kPixelBlock = kDepthBlock / kTileCols * kTileCols;
// A dw of at most this many floats is summed in groups of kGroupPixels pixels (a multiple of the
// depth block, so a group's blocks are the ungrouped sum's blocks).
constexpr std::int64_t kGroupedMaxFloats = 160 * 1024;
constexpr std::int64_t kGroupPixels = kPixelBlock * 32;

// dst[p * ld + r] = src[r * src_ld + p] for r < rows, p < kTileCols: a gathered block of `rows`
// rows of kTileCols pixels (or, src_ld apart, kTileCols pixels of `rows` planes read in place),
// transposed into `rows` entries of each of the kTileCols pixel rows of a panel. With AVX-512, 16 x 16 blocks are transposed in registers; dst may be written up to 16
// floats past each row's `rows` entries (the next row overwrites them; panels have slack).
#if defined(__AVX512F__)
// The shuffles through their masked forms with an explicit pass-through: GCC 12 warns that the
// plain ones read an uninitialised register (a false positive inside its own header).
template <int Imm>
inline __m512 shuffle_lanes(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_f32x4(a, static_cast<__mmask16>(0xFFFF), a, b, Imm);
}
inline __m512 unpack_lo(__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, static_cast<__mmask16>(0xFFFF), a, b); }
inline __m512 unpack_hi(__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, static_cast<__mmask16>(0xFFFF), a, b); }
inline __m512 unpack_lo_pairs(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, static_cast<__mmask8>(0xFF), x, _mm512_castps_pd(b)));
}
inline __m512 unpack_hi_pairs(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, static_cast<__mmask8>(0xFF), x, _mm512_castps_pd(b)));
}
#endif

inline void transpose_block(const float* src, int rows, float* dst, int ld, std::int64_t src_ld = kTileCols) {
#if defined(__AVX512F__)
  static_assert(kTileCols == 32, "two 16-pixel halves");
  for (int r0 = 0; r0 < rows; r0 += 16) {
    for (int h = 0; h < 2; ++h) {
      __m512 v[16];
      for (int i = 0; i < 16; ++i)
        v[i] = r0 + i < rows ? _mm512_loadu_ps(src + (r0 + i) * src_ld + 16 * h) : _mm512_setzero_ps();
      // 16 x 16 transpose: interleave pairs of rows, then pairs of pairs, then 128-bit lanes twice.
      __m512 t[16];
      for (int i = 0; i < 16; i += 2) {
        t[i] = unpack_lo(v[i], v[i + 1]);
        t[i + 1] = unpack_hi(v[i], v[i + 1]);
      }
      for (int i = 0; i < 16; i += 4) {
        v[i] = unpack_lo_pairs(t[i], t[i + 2]);
        v[i + 1] = unpack_hi_pairs(t[i], t[i + 2]);
        v[i + 2] = unpack_lo_pairs(t[i + 1], t[i + 3]);
        v[i + 3] = unpack_hi_pairs(t[i + 1], t[i + 3]);
      }
      for (int i = 0; i < 4; ++i) {
        t[i] = shuffle_lanes<0x88>(v[i], v[i + 4]);
        t[i + 4] = shuffle_lanes<0xDD>(v[i], v[i + 4]);
        t[i + 8] = shuffle_lanes<0x88>(v[i + 8], v[i + 12]);
        t[i + 12] = shuffle_lanes<0xDD>(v[i + 8], v[i + 12]);
      }
      for (int i = 0; i < 8; ++i) {
        v[i] = shuffle_lanes<0x88>(t[i], t[i + 8]);
        v[i + 8] = shuffle_lanes<0xDD>(t[i], t[i + 8]);
      }
      // v[p] now holds pixel 16h + p for rows r0..r0+15 (until 2026-12 this stored v[(p % 4) * 4 +
      // p / 4] as pixel p: both panels got the same pixel order, so dw was right, but a panel read
      // beside dy as it lies, conv_wgrad_1x1.h, was not). Stored in pixel order, so each store's
      // spill past `rows` lands on a row that is written after it.
      for (int px = 0; px < 16; ++px) _mm512_storeu_ps(dst + (16 * h + px) * ld + r0, v[px]);
    }
  }
#else
  for (int p = 0; p < kTileCols; ++p)
    for (int r = 0; r < rows; ++r) dst[p * ld + r] = src[r * src_ld + p];
#endif
}

// The panel rows of kTileCols pixels from batch pixel col0 (cols of them, the rest zero) of planes
// [first, first + rows) of images `image` floats apart: the planes transposed straight into dst where the
// pixels lie in one image, else gathered through `block` (kTileCols x kTileCols floats) first.
// conv_wgrad_1x1.h packs x's planes so, conv_wgrad_stem.h dy's.
inline void transpose_planes(const float* base, std::int64_t image, std::int64_t plane, int first, int rows, std::int64_t col0,
                             int cols, float* block, float* dst) {
  const std::int64_t n = col0 / plane, q = col0 % plane;
  if (cols == kTileCols && q + kTileCols <= plane) {
    transpose_block(base + n * image + static_cast<std::int64_t>(first) * plane + q, rows, dst, kTileCols, plane);
    return;
  }
  std::memset(block, 0, sizeof(float) * kTileCols * kTileCols);
  for (int r = 0; r < rows; ++r)
    for (int p = 0; p < cols; ++p) {
      const std::int64_t j = col0 + p;
      block[r * kTileCols + p] = base[(j / plane) * image + static_cast<std::int64_t>(first + r) * plane + j % plane];
    }
  transpose_block(block, kTileCols, dst, kTileCols);
}

// The shape that views dy as a 1x1 conv's input: out_channels planes at the output resolution.
inline Conv2dShape gradient_view(const Conv2dShape& s) {
  return Conv2dShape{s.batch, s.out_channels, s.out_h(), s.out_w(), 1, 1, 1, 1, 1, 0, 0};
}

// How dw is cut among tasks: column ranges (each gathers all of dy's rows again) of at least one
// tile, a few per thread, and when there are too few column tiles, row ranges as well (each gathers
// its columns of X again).
struct GradientSplit {
  int column_splits, row_splits;
};
inline GradientSplit split_gradient(int m, int patch, int threads) {
  if (threads <= 1) return {1, 1};
  const int want = threads * 4;
  const int columns = std::max(1, std::min(ceil_div(patch, kTileCols), want));
  int rows = 1;
  while (columns * rows < want && ceil_div(m, kTileRows) >= 4 * rows) rows *= 2;
  return {columns, rows};
}

// Floats rounded up to whole 64-byte lines, so scratch regions carved one after another stay aligned.
inline std::size_t whole_lines(std::size_t floats) { return (floats + 15) / 16 * 16; }

// One task of a weight gradient: the column tiles and row panels of dw it computes, over pixels
// [j_begin, j_end) of the batch, into out_dw (its group's partial, or dw itself).
struct GradientTask {
  gemm_detail::Slice tiles, panels;
  std::int64_t j_begin, j_end;
  float* out_dw;
};

// Runs task(GradientTask) over an m x patch dw summed over `pixels`, then sums the partials. A small dw
// over many pixels is summed in fixed pixel groups, each into its own partial dw, and the partials are
// added in group order: each task then reads its pixels of x and dy once (a 1x1 conv on a 56x56 plane
// is memory-bound otherwise), with a summation order that depends on the batch, not on the thread
// count. A larger dw is cut by split_gradient. Scratch in the calling thread: the partials.
template <class Task>
inline void for_each_gradient_task(int m, int patch, std::int64_t pixels, float* dw, Task&& task) {
  const int row_panels = ceil_div(m, kTileRows);
  const int col_tiles = ceil_div(patch, kTileCols);
  const int threads = threads_for(static_cast<std::int64_t>(m) * patch * pixels, gemm_detail::kParallelMinMacs);
  const std::int64_t dw_size = static_cast<std::int64_t>(m) * patch;
  const std::int64_t groups = dw_size <= kGroupedMaxFloats ? (pixels + kGroupPixels - 1) / kGroupPixels : 1;
  float* partials = groups > 1 ? thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(groups * dw_size)) : dw;
  const GradientSplit split = split_gradient(m, patch, groups > 1 ? 1 : threads);

  parallel_for_dynamic(groups * split.column_splits * split.row_splits, threads, [&](std::int64_t index) {
    const std::int64_t group = index / (split.column_splits * split.row_splits);
    const int part = static_cast<int>(index % (split.column_splits * split.row_splits));
    const gemm_detail::Slice tiles = gemm_detail::slice_of(col_tiles, split.column_splits, part / split.row_splits);
    const gemm_detail::Slice panels = gemm_detail::slice_of(row_panels, split.row_splits, part % split.row_splits);
    if (tiles.begin >= tiles.end || panels.begin >= panels.end) return;
    const std::int64_t j_begin = group * kGroupPixels, j_end = groups > 1 ? std::min(pixels, j_begin + kGroupPixels) : pixels;
    task(GradientTask{tiles, panels, j_begin, j_end, partials + group * dw_size});
  });
  if (groups <= 1) return;
  parallel_for_threads(dw_size, threads_for(groups * dw_size), [&](std::int64_t i) {
    float sum = partials[i];
    for (std::int64_t g = 1; g < groups; ++g) sum += partials[g * dw_size + i];
    dw[i] = sum;
  });
}

}  // namespace conv_wgrad_detail

// dw (out_channels x patch, overwritten) = sum over the batch of dy[n] (out_channels x out_plane)
// times the unfolded x[n] transposed. Parallel over column (and row) ranges of dw, and for a small
// dw over pixel groups as well; each task goes through its pixels in blocks, gathering and
// transposing its columns of X and its rows of dy per block. Scratch per thread: one block of A and
// B panels; in the calling thread, the partial dws and, for a strided conv, the phase-split x.
// `place`: where dy lies (im2col.h ConvGradientPlace: its channels of a concat's gradient, read in place).
inline void conv2d_backward_weights_view(const Conv2dShape& shape, const conv_gemm_detail::InputView& in, const float* dy, float* dw,
                                         const ConvGradientPlace& place = {});

inline void conv2d_backward_weights_gemm(const Conv2dShape& shape, const float* x, const float* dy, float* dw,
                                         const ConvGradientPlace& place = {}) {
  const std::int64_t pixels = static_cast<std::int64_t>(shape.batch) * shape.out_plane();
  if (pixels == 0) {
    std::memset(dw, 0, sizeof(float) * shape.out_channels * shape.patch_size());
    return;
  }
  conv2d_backward_weights_view(shape, conv_gemm_detail::gather_view(shape, x), dy, dw, place);
}

// The same from an input view already built (u8_input.h: the uint8 stem's bytes, read in place); pixels > 0.
inline void conv2d_backward_weights_view(const Conv2dShape& shape, const conv_gemm_detail::InputView& in, const float* dy, float* dw,
                                         const ConvGradientPlace& place) {
  using namespace conv_wgrad_detail;
  const int m = shape.out_channels, patch = shape.patch_size();
  const std::int64_t pixels = static_cast<std::int64_t>(shape.batch) * shape.out_plane();
  const TapColumns x_columns(shape, in);
  const Conv2dShape dy_shape = gradient_view(shape);
  const InputView dy_in = direct_view(dy_shape, dy, place);
  const TapColumns dy_columns(dy_shape, dy_in);

  for_each_gradient_task(m, patch, pixels, dw, [&](const GradientTask& task) {
    const gemm_detail::Slice tiles = task.tiles, panels = task.panels;
    const std::int64_t j_begin = task.j_begin, j_end = task.j_end;
    float* out_dw = task.out_dw;
    const int width = tiles.end - tiles.begin, height = panels.end - panels.begin;
    // Scratch: the gathered block (up to 32 rows x 32 pixels), this task's A panels and B panels of
    // one pixel block (an A panel is written up to 16 floats past its end: a line of slack each),
    // then the gather runs.
    const std::size_t a_panel = whole_lines(static_cast<std::size_t>(kTileRows) * kPixelBlock + 16);
    const std::size_t b_panel = static_cast<std::size_t>(kTileCols) * kPixelBlock;
    const std::size_t block_floats = kTileCols * kTileCols, a_floats = a_panel * height, b_floats = b_panel * width;
    const std::size_t runs_floats =
        (std::max(TileGather::scratch_bytes(shape), TileGather::scratch_bytes(dy_shape)) + sizeof(float) - 1) / sizeof(float);
    float* block = thread_scratch(ScratchSlot::kGemmPackedB, whole_lines(block_floats) + whole_lines(a_floats) +
                                                                 whole_lines(b_floats) + whole_lines(runs_floats));
    float* a_panels = block + whole_lines(block_floats);
    float* b_panels = a_panels + whole_lines(a_floats);
    void* runs = b_panels + whole_lines(b_floats);
    TileGather gather_x(shape, in, x_columns.data(), runs);
    TileGather gather_dy(dy_shape, dy_in, dy_columns.data(), runs);  // shares the runs: used one after the other

    for (std::int64_t j0 = j_begin; j0 < j_end; j0 += kPixelBlock) {
      const int depth = static_cast<int>(std::min<std::int64_t>(kPixelBlock, j_end - j0));
      const int depth_tiles = ceil_div(depth, kTileCols);
      for (int t = 0; t < depth_tiles; ++t) {
        const std::int64_t col0 = j0 + static_cast<std::int64_t>(t) * kTileCols;
        const int cols = static_cast<int>(std::min<std::int64_t>(kTileCols, j_end - col0));
        // A panels: dy rows k of these 32 pixels, transposed to pixel-major rows of kTileRows.
        gather_dy.prepare(col0, cols, 0, m);
        for (int p = panels.begin; p < panels.end; ++p) {
          const int rows = std::min(kTileRows, m - p * kTileRows);
          gather_dy.pack(p * kTileRows, rows, block);
          if (rows < kTileRows) std::memset(block + rows * kTileCols, 0, sizeof(float) * (kTileRows - rows) * kTileCols);
          transpose_block(block, kTileRows, a_panels + (p - panels.begin) * a_panel + t * kTileCols * kTileRows, kTileRows);
        }
        // B panels: X rows d of these 32 pixels, transposed to pixel-major rows of kTileCols.
        gather_x.prepare(col0, cols, tiles.begin * kTileCols, width * kTileCols);
        for (int q = tiles.begin; q < tiles.end; ++q) {
          const int rows = std::min(kTileCols, patch - q * kTileCols);
          gather_x.pack(q * kTileCols, rows, block);
          if (rows < kTileCols) std::memset(block + rows * kTileCols, 0, sizeof(float) * (kTileCols - rows) * kTileCols);
          transpose_block(block, kTileCols, b_panels + (q - tiles.begin) * b_panel + t * kTileCols * kTileCols, kTileCols);
        }
      }
      // The padding pixels of a last partial tile were gathered as zeros: the depth runs over whole tiles.
      const int padded_depth = depth_tiles * kTileCols;
      for (int q = tiles.begin; q < tiles.end; ++q) {
        const float* b_tile = b_panels + (q - tiles.begin) * b_panel;
        for (int p = panels.begin; p < panels.end; ++p) {
          const int row = p * kTileRows, col = q * kTileCols;
          const gemm_detail::TileOutput out{j0 > j_begin, true, nullptr, nullptr, false};
          gemm_detail::micro_kernel(padded_depth, a_panels + (p - panels.begin) * a_panel, b_tile,
                                    out_dw + static_cast<std::int64_t>(row) * patch + col, patch,
                                    std::min(kTileRows, m - row), std::min(kTileCols, patch - col), out);
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace nincc
