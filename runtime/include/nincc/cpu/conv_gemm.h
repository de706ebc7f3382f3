// Convolution forward as one implicit GEMM over the whole batch, NCHW in and out:
//   y[n][k][p] = bias[k] + sum_d W[k][d] * X(d, (n, p)),   d = (c, r, s),  p = (oh, ow)
// A = the weights, packed once into the micro-kernel's row panels (pack_conv_weights: at fold time
// for inference, once per call in training); B = the unfolded input, gathered tile by tile straight
// from x into the micro-kernel's column panel (conv_gather.h: no im2col buffer, no second packing
// pass). The GEMM's columns run over every image of the batch, so a 7x7 layer at batch 16 is one
// GEMM of 784 columns rather than 16 of 49, each a quarter empty; a tile that straddles two images
// or output rows is gathered and stored in segments (masked loads and stores on AVX-512).
// (A pixel-major variant, C^T = X^T W^T with 12-pixel tiles that waste fewer lanes on 7x7 planes,
// was measured slower on NIN at batch 1 and 16: it gathers 32/12 times as often per multiply-add.)
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv_gather.h"
#include "gemm.h"
#include "im2col.h"
#include "parallel.h"

namespace nincc {
namespace cpu {

// Weight panels are padded to a multiple of this many rows (every instruction set's kTileRows
// divides it), so the size the compiler allocates for packed weights does not depend on the ISA.
constexpr int kConvPackRowMultiple = 12;
static_assert(kConvPackRowMultiple % gemm_detail::kTileRows == 0, "packed weight rows must cover whole panels");

// Weights already packed by pack_conv_weights, as a type, so the conv2d_forward overloads cannot mix them up.
struct PackedConvWeights {
  const float* data;
};

// Floats needed by pack_conv_weights for out_channels x patch weights.
constexpr std::int64_t packed_conv_weights_size(int out_channels, int patch) {
  return static_cast<std::int64_t>((out_channels + kConvPackRowMultiple - 1) / kConvPackRowMultiple) *
         kConvPackRowMultiple * patch;
}

namespace conv_gemm_detail {

using gemm_detail::ceil_div;
using gemm_detail::Isa;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;
constexpr int kLanes = Isa::kLanes;
constexpr int kRegs = simd::kGemmRegsPerRow;

// The depth blocks of a conv GEMM: as even as possible and at most the GEMM's depth block (so the
// B and A panels share L1), so that a depth of 256 is two blocks of 128, not 192 + 64 (a short
// block spends its time on C).
constexpr int kMaxDepthBlock = gemm_detail::kDepthBlock;
inline int depth_block(int k) {
  const int blocks = (k + kMaxDepthBlock - 1) / kMaxDepthBlock;
  return (k + blocks - 1) / blocks;
}

// Depth block [k0, k0 + depth) of row panel `panel` in packed weights: block-major (blocks of
// depth_block(k)), then panel-major, each panel depth x kTileRows (as gemm's pack_a_panel writes).
inline const float* weight_panel(const float* packed, int m, int k0, int depth, int panel) {
  const std::int64_t padded = static_cast<std::int64_t>(ceil_div(m, kTileRows)) * kTileRows;
  return packed + k0 * padded + static_cast<std::int64_t>(panel) * kTileRows * depth;
}

// Where the tiles go: y, batch x m channels x plane pixels.
struct SegmentStore {
  float* y;
  int m;                 // channels per image of y (the conv's output channels, or a concat's)
  std::int64_t plane;    // output pixels per channel
  int ow_count;
  const float* residual = nullptr;  // added in the epilogue, laid out as y
};

// Prefetches (for writing) the first tile's lines of rows [row0, row0 + rows) of its first segment:
// output rows are a plane apart, a pattern the hardware prefetchers miss, so ask for the lines
// while the product runs instead of stalling on them in store_tile.
inline void prefetch_tile_output(const SegmentStore& out, const Segment& seg, int row0, int rows) {
  const float* first = out.y + (static_cast<std::int64_t>(seg.n) * out.m + row0) * out.plane +
                       static_cast<std::int64_t>(seg.oh) * out.ow_count + seg.ow0;
  for (int i = 0; i < rows; ++i) {
    __builtin_prefetch(first + i * out.plane, 1);
    __builtin_prefetch(first + i * out.plane + 16, 1);
  }
}

// A tile's lanes in one image: lane l of row i lies at base + i * plane + l. Segments of one image are
// contiguous in y (output rows follow each other), so a span's lanes are one run.
struct TileSpan {
  float* base;
  std::uint32_t lanes;
};
inline int tile_spans(const SegmentStore& out, const Segment* segments, int segment_count, int row0, TileSpan* spans) {
  int span_count = 0;
  for (int g = 0; g < segment_count; ++g) {
    const Segment& seg = segments[g];
    if (span_count > 0 && g > 0 && segments[g - 1].n == seg.n) {
      spans[span_count - 1].lanes |= lane_mask(seg.lane, seg.lane + seg.count);
      continue;
    }
    const std::int64_t p = static_cast<std::int64_t>(seg.oh) * out.ow_count + seg.ow0;
    spans[span_count++] = TileSpan{out.y + (static_cast<std::int64_t>(seg.n) * out.m + row0) * out.plane + p - seg.lane,
                                   lane_mask(seg.lane, seg.lane + seg.count)};
  }
  return span_count;
}

// Records the BN statistics of a finished tile q's rows (channels row0..), read back from y while in cache.
inline void record_tile_moments(const SegmentStore& out, const ConvMoments& moments, std::int64_t q, const Segment* segments,
                                int segment_count, int row0, int rows) {
  TileSpan spans[kTileCols];
  const int span_count = tile_spans(out, segments, segment_count, row0, spans);
  batchnorm_detail::TileRun runs[kTileCols];
  for (int i = 0; i < rows; ++i) {
    for (int t = 0; t < span_count; ++t) {
      const int first = __builtin_ctz(spans[t].lanes), last = 32 - __builtin_clz(spans[t].lanes);
      runs[t] = {spans[t].base + static_cast<std::int64_t>(i) * out.plane + first, last - first};
    }
    batchnorm_detail::record_tile_moments(moments, row0 + i, q, runs, span_count);
  }
}

// Where a finished tile's BN statistics go (ConvMoments): rows row0.. of pixel tile q; none when moments is null.
struct TileMomentsAt {
  const ConvMoments* moments = nullptr;
  std::int64_t q = 0;
};

// Stores acc rows [0, rows) of the tile at output channels row0.. into y, segment by segment.
// Inlined, so that the accumulators go from registers to y without a round trip through the stack.
// With `stats`, a finished tile's BN sums too: the common tile's from the registers it stores (per row, the
// 32 values less the first, summed and squared in float, a few ulps of the tile's spread, then kept as
// doubles), any other's read back from y in double (record_tile_moments).
__attribute__((always_inline)) inline void store_tile(const SegmentStore& out, const gemm_detail::TileAccumulators& acc, const Segment* segments,
                       int segment_count, int row0, int rows, bool accumulate, bool finish, const float* bias,
                       bool relu, TileMomentsAt stats = {}) {
  TileSpan spans[kTileCols];
  const int span_count = tile_spans(out, segments, segment_count, row0, spans);
#if defined(__AVX512F__)
  const __m512 zero = _mm512_setzero_ps();
  if (span_count == 1 && spans[0].lanes == 0xFFFFFFFFu && rows == kTileRows) {
    // The common tile: all 32 lanes in one image, all rows. Unmasked, unrolled.
    float* base = spans[0].base;
    static_assert(kRegs == 2, "a row's 32 values are two registers");
#pragma GCC unroll 16
    for (int i = 0; i < kTileRows; ++i) {
      const __m512 b = finish && bias ? _mm512_set1_ps(bias[i]) : zero;
      __m512 stored[kRegs];
#pragma GCC unroll 2
      for (int r = 0; r < kRegs; ++r) {
        float* dst = base + i * out.plane + 16 * r;
        __m512 v = acc.r[i][r];
        if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(dst));
        if (finish) {
          if (bias) v = _mm512_add_ps(v, b);
          if (out.residual) v = _mm512_add_ps(v, _mm512_loadu_ps(out.residual + (dst - out.y)));
          if (relu) v = _mm512_mask_max_ps(zero, static_cast<__mmask16>(0xFFFF), v, zero);
        }
        _mm512_storeu_ps(dst, v);
        stored[r] = v;
      }
      if (finish && stats.moments) {
        const float shift = _mm512_cvtss_f32(stored[0]);
        const __m512 s = _mm512_set1_ps(shift);
        const __m512 d0 = _mm512_sub_ps(stored[0], s), d1 = _mm512_sub_ps(stored[1], s);
        double* to = stats.moments->at(row0 + i, stats.q);
        to[0] = shift;
        to[1] = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1));
        to[2] = _mm512_reduce_add_ps(_mm512_fmadd_ps(d0, d0, _mm512_mul_ps(d1, d1)));
      }
    }
    return;
  }
  for (int i = 0; i < rows; ++i) {
    const __m512 b = finish && bias ? _mm512_set1_ps(bias[i]) : zero;
    for (int t = 0; t < span_count; ++t) {
      float* dst = spans[t].base + i * out.plane;
#pragma GCC unroll 2
      for (int r = 0; r < kRegs; ++r) {
        const __mmask16 mask = static_cast<__mmask16>(spans[t].lanes >> (16 * r));
        if (!mask) continue;
        __m512 v = acc.r[i][r];
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst + 16 * r));
        if (finish) {
          if (bias) v = _mm512_add_ps(v, b);
          if (out.residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out.residual + (dst + 16 * r - out.y)));
          if (relu) v = _mm512_mask_max_ps(zero, static_cast<__mmask16>(0xFFFF), v, zero);
        }
        _mm512_mask_storeu_ps(dst + 16 * r, mask, v);
      }
    }
  }
  if (finish && stats.moments) record_tile_moments(out, *stats.moments, stats.q, segments, segment_count, row0, rows);
#else
  alignas(64) float tile[kTileRows][kTileCols];
  for (int i = 0; i < kTileRows; ++i)
    for (int r = 0; r < kRegs; ++r) Isa::store(&tile[i][r * kLanes], acc.r[i][r]);
  for (int i = 0; i < rows; ++i)
    for (int t = 0; t < span_count; ++t) {
      float* dst = spans[t].base + i * out.plane;
      for (std::uint32_t lanes = spans[t].lanes; lanes != 0; lanes &= lanes - 1) {
        const int l = __builtin_ctz(lanes);
        float v = accumulate ? dst[l] + tile[i][l] : tile[i][l];
        if (finish) {
          if (bias) v += bias[i];
          if (out.residual) v += out.residual[dst + l - out.y];
          if (relu) v = v > 0.f ? v : 0.f;
        }
        dst[l] = v;
      }
    }
  if (finish && stats.moments) record_tile_moments(out, *stats.moments, stats.q, segments, segment_count, row0, rows);
#endif
}

// How a pixel tile of `cols` columns is multiplied (the narrowTails ablation, compiler/ablations.ts, turns
// this off: every tile multiplies all kRegs registers). Whole registers of lanes up to the last one the
// columns reach, except that a last register holding at most kNarrowMaxCols columns is left to
// narrow_product_of: at batch 1, NIN's 14x14 plane (196 = 6 x 32 + 4) multiplies 4 narrow columns in
// its last tile, not 32 lanes; its 28x28 (784 = 24 x 32 + 16) one register, not two; its 7x7 (49 =
// 32 + 17) one register and one narrow column, not two registers.
struct TailSplit {
  int regs;    // registers of lanes multiplied by the micro-kernel
  int narrow;  // columns after them, multiplied by narrow_product_of
};
inline TailSplit tail_split(int cols, bool narrow_tails) {
  if (!narrow_tails || cols >= kTileCols) return {kRegs, 0};
  const int full = cols / kLanes, rest = cols % kLanes;
  if (rest == 0) return {full, 0};
  if (rest <= gemm_detail::kNarrowMaxCols) return {full, rest};
  return {full + 1, 0};
}

// The segments of a tile cut to its lanes [0, lanes); returns how many are left.
inline int segments_before_lane(const Segment* segments, int count, int lanes, Segment* out) {
  int kept = 0;
  for (int g = 0; g < count && segments[g].lane < lanes; ++g) {
    out[kept] = segments[g];
    out[kept++].count = std::min(segments[g].count, lanes - segments[g].lane);
  }
  return kept;
}

// acc (kRegs registers a row) times the tile's first `regs` registers of packed B (rows of kTileCols
// floats at b_row(p)), for regs < kRegs; the registers past them zeroed (store_tile masks them off).
template <class BRow>
__attribute__((always_inline)) inline void tile_product_regs(int regs, int rows, int depth, const float* packed_a, BRow b_row,
                                                             gemm_detail::TileAccumulators& acc, const float* next_a) {
  static_assert(kRegs == 2, "a tile is one or two registers of lanes wide");
  if (regs == 1) {
    gemm_detail::tile_product_rows_of<1>(rows, depth, packed_a, b_row, acc, next_a);
#pragma GCC unroll 16
    for (int i = 0; i < kTileRows; ++i) acc.r[i][1] = Isa::zero();
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < kTileRows; ++i)
      for (int r = 0; r < kRegs; ++r) acc.r[i][r] = Isa::zero();
  }
}

#if defined(__AVX512F__)
template <int Cols, int Group, class BRow>
inline void narrow_panels(const SegmentStore& out, float* const* columns, const float* packed_w, int m, int k0,
                          int depth, int p_begin, int p_end, BRow b_row, bool accumulate, bool finish, const float* bias,
                          bool relu) {
  for (int p = p_begin; p < p_end; p += Group) {
    __m512 acc[Group][Cols];
    gemm_detail::narrow_product_of<Cols, Group>(depth, weight_panel(packed_w, m, k0, depth, p),
                                                static_cast<std::int64_t>(kTileRows) * depth, b_row, acc);
    for (int g = 0; g < Group; ++g) {
      const int first_row = (p + g) * kTileRows, rows = std::min(kTileRows, m - first_row);
      alignas(64) float lanes[Cols][16];
      for (int j = 0; j < Cols; ++j) _mm512_store_ps(lanes[j], acc[g][j]);
      for (int j = 0; j < Cols; ++j)
        for (int i = 0; i < rows; ++i) {
          // store_tile's arithmetic, lane by lane: the same bits.
          float* dst = columns[j] + static_cast<std::int64_t>(first_row + i) * out.plane;
          float v = lanes[j][i];
          if (accumulate) v = v + *dst;
          if (finish) {
            if (bias) v = v + bias[first_row + i];
            if (out.residual) v = v + out.residual[dst - out.y];
            v = relu ? (v > 0.f ? v : 0.f) : v;
          }
          *dst = v;
        }
    }
  }
}

template <int Cols, class BRow>
inline void narrow_columns_of(const SegmentStore& out, float* const* columns, const float* packed_w, int m, int k0,
                              int depth, int p_begin, int p_end, BRow b_row, bool accumulate, bool finish,
                              const float* bias, bool relu) {
  constexpr int kGroup = gemm_detail::kNarrowGroup<Cols>;
  const int grouped = p_begin + (p_end - p_begin) / kGroup * kGroup;
  narrow_panels<Cols, kGroup>(out, columns, packed_w, m, k0, depth, p_begin, grouped, b_row, accumulate, finish, bias, relu);
  narrow_panels<Cols, 1>(out, columns, packed_w, m, k0, depth, grouped, p_end, b_row, accumulate, finish, bias, relu);
}
#endif

// Columns [first, first + count) of a tile (count <= kNarrowMaxCols; B's depth row p at b_row(p)) times
// the row panels [p_begin, p_end) of depth block [k0, k0 + depth), stored into y with store_tile's
// epilogue. `bias` is the conv's (row 0's).
template <class BRow>
inline void multiply_narrow_columns(const SegmentStore& out, const Segment* segments, int segment_count, int first, int count,
                                    const float* packed_w, int m, int k0, int depth, int p_begin, int p_end, BRow b_row,
                                    bool accumulate, bool finish, const float* bias, bool relu) {
#if defined(__AVX512F__)
  float* columns[gemm_detail::kNarrowMaxCols];  // each column's output at channel 0
  for (int j = 0; j < count; ++j) {
    const int lane = first + j;
    const Segment* seg = segments;
    while (seg + 1 < segments + segment_count && seg[1].lane <= lane) ++seg;
    columns[j] = out.y + static_cast<std::int64_t>(seg->n) * out.m * out.plane +
                 static_cast<std::int64_t>(seg->oh) * out.ow_count + seg->ow0 + (lane - seg->lane);
  }
  auto from = [&](int p) { return b_row(p) + first; };
  switch (count) {
    case 1: return narrow_columns_of<1>(out, columns, packed_w, m, k0, depth, p_begin, p_end, from, accumulate, finish, bias, relu);
    case 2: return narrow_columns_of<2>(out, columns, packed_w, m, k0, depth, p_begin, p_end, from, accumulate, finish, bias, relu);
    case 3: return narrow_columns_of<3>(out, columns, packed_w, m, k0, depth, p_begin, p_end, from, accumulate, finish, bias, relu);
    default: static_assert(gemm_detail::kNarrowMaxCols == 4, "a case for each narrow width");
      return narrow_columns_of<4>(out, columns, packed_w, m, k0, depth, p_begin, p_end, from, accumulate, finish, bias, relu);
  }
#else
  (void)out, (void)segments, (void)segment_count, (void)first, (void)count, (void)packed_w, (void)m, (void)k0, (void)depth;
  (void)p_begin, (void)p_end, (void)b_row, (void)accumulate, (void)finish, (void)bias, (void)relu;
#endif
}

// Convs of fewer multiply-adds than this run on the calling thread: the GEMM's 1 Mi, which leaves 7
// of nin-fashion's 9 convs serial at batch 1. A parallel call costs its caller 0.08-0.6 us more than a
// serial one (bench/logs/cpu-pool-fork-join.out), but 128 Ki (every nin-fashion conv parallel) measured
// slower at 2 threads on the loaded 2-core VM, B/A 0.72-0.98 per small conv (a worker that claims a
// task late holds up the call: bench/logs/cpu-layer-ab-parallel-threshold.out); on free cores it is
// unmeasured.
constexpr std::int64_t kForwardParallelMinMacs = std::int64_t{1} << 20;

// A task's pixel tiles: their gathered panels of one depth block stay in L2 (kChunkTiles x 24 KiB)
// while each weight panel sweeps them from L1.
constexpr int kChunkTiles = 16;
constexpr int kTasksPerThread = 4;
// Weights up to this size stay in L2 while a task goes tile by tile through the whole depth.
constexpr std::int64_t kSmallWeightsBytes = 512 * 1024;
// ... unless the whole depth is one block and the output is past this size (an L2): going tile by
// tile then gains nothing (one gather and one store per tile in either order) and each tile writes
// all m output rows, a line pair apart a plane apart, from memory (a write-allocate each); BLIS's
// order writes 12 rows at a time, kChunkTiles tiles long. Measured at 1 thread, batch 16 (thread-CPU
// medians, 3 rounds): NIN's 1x1 96->96 on 56x56 (19 MB out) forward 11.8-12.4 -> 9.0-9.2 ms and
// backward-data 11.7-12.4 -> 8.9-9.0 ms, ResNet-50's 1x1 64->256 on 56x56 forward 25.9-26.7 ->
// 15.1-16.2 ms, the same bits (bench/logs/i19m-train-conv-gemm-order.out). NIN's 11x11 stem (two
// depth blocks) ran 7% slower chunked (30.6 -> 32.8, 31.8 -> 34.0 ms), so a deeper conv keeps the
// tile order (bench/logs/i19m-pointwise-chunk-order.out).
constexpr std::int64_t kOutputPastL2Bytes = std::int64_t{2} << 20;
inline bool chunked_order_pays(int m, int k, std::int64_t columns) {
  return k <= kMaxDepthBlock && static_cast<std::int64_t>(m) * columns * static_cast<std::int64_t>(sizeof(float)) > kOutputPastL2Bytes;
}

// The longest sweep of pixel tiles per weight panel whose every tile prefetches the next panel (forward_tasks).
constexpr int kSpreadPrefetchMaxTiles = 8;

// How a conv GEMM is cut into tasks: pixel chunks x channel splits.
struct Split {
  std::int64_t chunks;  // of the pixel tiles
  int row_splits;       // of the channel panels
};

// Each pixel chunk streams every weight of its channels once (from L3 or memory: packed weights are
// megabytes), each channel split gathers its pixels once more. So a team needs
// threads * kTasksPerThread tasks (a few per thread, for balance on a busy machine), made as the
// cheaper mix of the two: channel splits when the weights outweigh the pixels (batch 1, 7x7 planes:
// 14 MB of weights against 49 pixels), pixel chunks otherwise. Chunks hold at most kChunkTiles
// tiles. m channels, `columns` pixels, depth k.
inline Split split_tasks(int m, int k, std::int64_t columns, int threads) {
  const int row_panels = ceil_div(m, kTileRows);
  const std::int64_t col_tiles = (columns + kTileCols - 1) / kTileCols;
  const std::int64_t min_chunks = (col_tiles + kChunkTiles - 1) / kChunkTiles;
  if (threads <= 1) return {min_chunks, 1};
  const std::int64_t want = threads * kTasksPerThread;
  const double weight_floats = static_cast<double>(m) * k, gather_floats = 2.0 * k * columns;  // a gather costs ~2 reads
  Split best{std::max(min_chunks, std::min(col_tiles, want)), 1};
  double best_cost = best.chunks * weight_floats + gather_floats;
  for (int rs = 2; rs <= row_panels / 2; rs *= 2) {
    const std::int64_t chunks = std::max(min_chunks, std::min(col_tiles, (want + rs - 1) / rs));
    const double cost = chunks * weight_floats + rs * gather_floats;
    if (chunks * rs >= std::min<std::int64_t>(want, best.chunks * best.row_splits) && cost < best_cost) {
      best = {chunks, rs};
      best_cost = cost;
    }
  }
  return best;
}

// A task's scratch, in its thread's scratch memory: the gathered panels of up to kChunkTiles tiles
// of one depth block, each tile's segments, and the gather runs of every tap.
struct TaskScratch {
  float* panels;
  Segment (*segments)[kTileCols];
  int* segment_counts;
  void* runs;
  static constexpr std::size_t kPanelFloats = static_cast<std::size_t>(kMaxDepthBlock) * kTileCols;
  explicit TaskScratch(const Conv2dShape& s) {
    const std::size_t panel_floats = kPanelFloats * kChunkTiles;
    const std::size_t segment_floats = (sizeof(Segment) * kTileCols * kChunkTiles + sizeof(int) * kChunkTiles + 3) / 4;
    const std::size_t run_floats = (TileGather::scratch_bytes(s) + sizeof(float) - 1) / sizeof(float);
    auto lines = [](std::size_t floats) { return (floats + 15) / 16 * 16; };
    panels = thread_scratch(ScratchSlot::kGemmPackedB, panel_floats + lines(segment_floats) + lines(run_floats) + 16);
    segments = reinterpret_cast<Segment (*)[kTileCols]>(panels + panel_floats);
    segment_counts = reinterpret_cast<int*>(segments + kChunkTiles);
    runs = panels + panel_floats + lines(segment_floats);
  }
  float* panel(int t) const { return panels + t * kPanelFloats; }
};

// Whether a pointwise conv's tiles can be read from x in place, not gathered (forward_tasks): at batch 1 a pixel tile
// is, channel by channel, kTileCols consecutive floats of x's one image, and a short last tile's registers and narrow
// columns (tail_split) read its own columns only when its width past its whole registers is at most kNarrowMaxCols (NIN's
// 7x7, 14x14 and 28x28 planes: 49 = 32 + 16 + 1, 196 = 6 x 32 + 4, 784 = 24 x 32 + 16). Batches past 1 keep the
// gather, whose panels stay in L2 while a chunk's tiles are swept. Off in_place (the inPlacePointwise ablation): never.
inline bool reads_in_place(const Conv2dShape& s, const InputView& in, bool narrow_tiles, bool in_place) {
  if (!in_place || !narrow_tiles || s.batch != 1 || !s.is_pointwise() || in.bytes || in.phase_width != 0 || in.pixel != 1) return false;
  const std::int64_t last = s.out_plane() - (s.out_plane() - 1) / kTileCols * kTileCols;
  return last == kTileCols || last % kLanes <= gemm_detail::kNarrowMaxCols;
}

// Depth rows of a pixel tile read from x in place: a plane apart.
struct StridedRows {
  const float* first;
  std::int64_t stride;
  const float* operator()(int d) const { return first + d * stride; }
};

// C[channels][pixels] = W X, tiles of kTileRows channels x kTileCols pixels.
inline void forward_tasks(const Conv2dShape& shape, const InputView& in, const TapColumn* columns_of_tap,
                          const float* packed_w, const float* bias, float* y, bool relu, const ConvOutput& o, bool narrow_tails,
                          bool in_place_pointwise, bool spread_weight_prefetch) {
  const int m = shape.out_channels, k = shape.patch_size();
  const std::int64_t columns = static_cast<std::int64_t>(shape.batch) * shape.out_plane();
  const int row_panels = ceil_div(m, kTileRows);
  const std::int64_t col_tiles = (columns + kTileCols - 1) / kTileCols;
  const int threads = threads_for(static_cast<std::int64_t>(m) * columns * k, kForwardParallelMinMacs);
  const Split split = split_tasks(m, k, columns, threads);
  const std::int64_t skip = static_cast<std::int64_t>(o.channel_offset) * shape.out_plane();
  const SegmentStore out{y + skip, o.channels_of(shape), shape.out_plane(), shape.out_w(), o.residual ? o.residual + skip : nullptr};
  const bool tile_by_tile = static_cast<std::int64_t>(m) * k * sizeof(float) <= kSmallWeightsBytes && !chunked_order_pays(m, k, columns);
  const int block = depth_block(k);

  parallel_for_dynamic(split.chunks * split.row_splits, threads, [&](std::int64_t task) {
    const gemm_detail::Slice rows = gemm_detail::slice_of(row_panels, split.row_splits, static_cast<int>(task % split.row_splits));
    const std::int64_t chunk = task / split.row_splits;
    const std::int64_t q_begin = col_tiles * chunk / split.chunks, q_end = col_tiles * (chunk + 1) / split.chunks;
    if (rows.begin >= rows.end || q_begin >= q_end) return;
    const TaskScratch scratch(shape);
    TileGather gather(shape, in, columns_of_tap, scratch.runs);
    auto tile_columns = [&](std::int64_t q) { return static_cast<int>(std::min<std::int64_t>(kTileCols, columns - q * kTileCols)); };
    // Tile t (pixel tile q)'s depth block [k0, k0 + depth) times row panel p, stored into y: its registers of lanes
    // before the narrow columns (tail_split), which narrow() multiplies over all the task's panels. The last block records
    // the tile's BN statistics when the conv takes them (o.bn_moments); such a conv keeps whole tiles (no narrow
    // columns), since the statistics take a tile's values in one store.
    const bool narrow_tiles = narrow_tails && !o.bn_moments.partials;
    // In place only where the gather would copy the same tiles once per channel split: NIN's 1024- and 384-channel 1x1s
    // at batch 1 on 2 threads (8 and 2 splits of x's 0.2 and 0.3 MB).
    const bool in_place = split.row_splits > 1 && reads_in_place(shape, in, narrow_tiles, in_place_pointwise);
    // Pixel tile q's depth rows from k0 in x. A gathered panel's rows keep their constant stride (a run-time one cost
    // NIN's 1024-channel 1x1 2.8% at 1 thread, bench/logs/i19B-in-place-pointwise-layers.out).
    auto rows_in_place = [&](std::int64_t q, int k0) { return StridedRows{in.base + k0 * in.plane + q * kTileCols, in.plane}; };
    auto multiply = [&](int t, std::int64_t q, int p, int k0, int depth, const float* next) {
      const int first_row = p * kTileRows, tile_rows = std::min(kTileRows, m - first_row);
      const TailSplit tail = tail_split(tile_columns(q), narrow_tiles);
      if (tail.regs == 0) return;
      prefetch_tile_output(out, scratch.segments[t][0], first_row, tile_rows);
      gemm_detail::TileAccumulators acc;
      const float* w = weight_panel(packed_w, m, k0, depth, p);
      const Segment* segments = scratch.segments[t];
      int segment_count = scratch.segment_counts[t];
      Segment kept[kTileCols];
      const float* panel = scratch.panel(t);
      if (tail.regs == kRegs && in_place) {
        gemm_detail::tile_product_rows_of(tile_rows, depth, w, rows_in_place(q, k0), acc, next);
      } else if (tail.regs == kRegs) {
        gemm_detail::tile_product_rows(tile_rows, depth, w, panel, acc, next);
      } else {
        if (in_place) tile_product_regs(tail.regs, tile_rows, depth, w, rows_in_place(q, k0), acc, next);
        else tile_product_regs(tail.regs, tile_rows, depth, w, [panel](int d) { return panel + d * kTileCols; }, acc, next);
        segment_count = segments_before_lane(segments, segment_count, tail.regs * kLanes, kept);
        segments = kept;
      }
      store_tile(out, acc, segments, segment_count, first_row, tile_rows, k0 > 0, k0 + depth == k, bias ? bias + first_row : nullptr, relu,
                 TileMomentsAt{o.bn_moments.partials ? &o.bn_moments : nullptr, q});
    };
    auto narrow = [&](int t, std::int64_t q, int k0, int depth, const gemm_detail::Slice& panels) {
      const TailSplit tail = tail_split(tile_columns(q), narrow_tiles);
      if (tail.narrow == 0) return;
      const float* panel = scratch.panel(t);
      if (in_place)
        multiply_narrow_columns(out, scratch.segments[t], scratch.segment_counts[t], tail.regs * kLanes, tail.narrow, packed_w, m, k0,
                                depth, panels.begin, panels.end, rows_in_place(q, k0), k0 > 0, k0 + depth == k, bias, relu);
      else
        multiply_narrow_columns(out, scratch.segments[t], scratch.segment_counts[t], tail.regs * kLanes, tail.narrow, packed_w, m, k0,
                                depth, panels.begin, panels.end, [panel](int d) { return panel + d * kTileCols; }, k0 > 0,
                                k0 + depth == k, bias, relu);
    };
    auto gather_tile = [&](int t, std::int64_t q, int k0, int depth, int prepare_depth) {
      gather.prepare(q * kTileCols, tile_columns(q), k0, prepare_depth);
      std::copy(gather.segments, gather.segments + gather.segment_count, scratch.segments[t]);
      scratch.segment_counts[t] = gather.segment_count;
      if (!in_place) gather.pack(k0, depth, scratch.panel(t));
    };
    if (tile_by_tile) {
      // Tile by tile through the whole depth: the tile's gather runs are found once, and its column
      // of C stays in cache between depth blocks; the weights stay in L2 throughout.
      for (std::int64_t q = q_begin; q < q_end; ++q) {
        gather.prepare(q * kTileCols, tile_columns(q), 0, k);
        std::copy(gather.segments, gather.segments + gather.segment_count, scratch.segments[0]);
        scratch.segment_counts[0] = gather.segment_count;
        for (int k0 = 0; k0 < k; k0 += block) {
          const int depth = std::min(block, k - k0);
          if (!in_place) gather.pack(k0, depth, scratch.panel(0));
          for (int p = rows.begin; p < rows.end; ++p)
            multiply(0, q, p, k0, depth, p + 1 < rows.end ? weight_panel(packed_w, m, k0, depth, p + 1) : nullptr);
          narrow(0, q, k0, depth, rows);
        }
      }
      return;
    }
    // Big weights (or chunked_order_pays), BLIS's order: per depth block, the chunk's tiles are gathered once (L2), then each
    // weight panel is read once from memory and swept over them from L1. In a short sweep (at most
    // kSpreadPrefetchMaxTiles tiles: at batch 1, 2 on 7x7 planes, 7 on 14x14) every tile's product prefetches the next
    // panel (a line a depth step; after the first tile's they hit), so its lines, from memory, are asked for a whole
    // sweep ahead, not only during the last tile's product. Measured at batch 1, cold caches: NIN's 1x1 384 on 14x14
    // 0.93x (1 thread) and 0.97x (2), 1024 on 7x7 0.97-0.99x (bench/logs/i19E-spread-weight-prefetch.out). A longer sweep
    // (batch 16's chunks of up to 16 tiles: there it measured 1.01x) leaves it to the last tile, as do all with
    // `spread_weight_prefetch` off (the spreadWeightPrefetch ablation).
    const int tiles = static_cast<int>(q_end - q_begin);
    const bool spread = spread_weight_prefetch && tiles <= kSpreadPrefetchMaxTiles;
    for (int k0 = 0; k0 < k; k0 += block) {
      const int depth = std::min(block, k - k0);
      for (int t = 0; t < tiles; ++t) gather_tile(t, q_begin + t, k0, depth, depth);
      for (int p = rows.begin; p < rows.end; ++p) {
        const float* next = p + 1 < rows.end ? weight_panel(packed_w, m, k0, depth, p + 1) : nullptr;
        for (int t = 0; t < tiles; ++t) multiply(t, q_begin + t, p, k0, depth, spread || t + 1 == tiles ? next : nullptr);
      }
      for (int t = 0; t < tiles; ++t) narrow(t, q_begin + t, k0, depth, rows);
    }
  });
}

// Packs the rows x depth matrix `a` into weight panels (the layout weight_panel reads).
inline void pack_weight_panels(int rows, int depth_total, const gemm_detail::MatrixView& a, float* packed) {
  const int block = depth_block(depth_total);
  const int panels = ceil_div(rows, kTileRows), blocks = ceil_div(depth_total, block);
  parallel_for(static_cast<std::int64_t>(panels) * blocks, static_cast<std::int64_t>(rows) * depth_total, [&](std::int64_t t) {
    const int panel = static_cast<int>(t % panels), k0 = static_cast<int>(t / panels) * block;
    const int depth = std::min(block, depth_total - k0);
    gemm_detail::pack_a_panel(a, panel * kTileRows, std::min(kTileRows, rows - panel * kTileRows), k0, depth,
                              const_cast<float*>(weight_panel(packed, rows, k0, depth, panel)));
  });
}

}  // namespace conv_gemm_detail

// Packs w (out_channels x patch, row-major: Torch's out x in x kh x kw) for conv2d_forward_packed.
// `packed` holds packed_conv_weights_size(out_channels, patch) floats.
inline void pack_conv_weights(const Conv2dShape& shape, const float* w, float* packed) {
  const int patch = shape.patch_size();
  conv_gemm_detail::pack_weight_panels(shape.out_channels, patch, gemm_detail::MatrixView{w, patch, 1}, packed);
}

// The same weights transposed (patch x out_channels), packed for the backward-data GEMM
// W^T dy, which runs as conv2d_forward_packed of transposed_gemm_shape. Same size.
inline void pack_conv_weights_transposed(const Conv2dShape& shape, const float* w, float* packed) {
  const int patch = shape.patch_size();
  conv_gemm_detail::pack_weight_panels(patch, shape.out_channels, gemm_detail::MatrixView{w, 1, patch}, packed);
}

// columns (batch x patch x out_plane) = W^T dy as a conv: a 1x1 conv over dy (out_channels input
// channels at the output resolution) with patch output channels.
inline Conv2dShape transposed_gemm_shape(const Conv2dShape& s) {
  return Conv2dShape{s.batch, s.out_channels, s.out_h(), s.out_w(), s.patch_size(), 1, 1, 1, 1, 0, 0};
}

// The same from an input view already built (u8_input.h: the uint8 stem's bytes, read in place).
inline void conv2d_forward_view(const Conv2dShape& shape, const conv_gemm_detail::InputView& in, const float* packed_w,
                                const float* bias, float* y, bool relu = false, const ConvOutput& o = {}, bool narrow_tails = true,
                                bool in_place_pointwise = true, bool spread_weight_prefetch = true) {
  using namespace conv_gemm_detail;
  const TapColumns columns(shape, in);
  forward_tasks(shape, in, columns.data(), packed_w, bias, y, relu, o, narrow_tails, in_place_pointwise, spread_weight_prefetch);
}

// y = conv(x, W) + bias (+ residual), optional ReLU, with W packed by pack_conv_weights for this
// shape, y placed as `o` says (im2col.h ConvOutput). Same contract as conv2d_forward (conv.h).
// Parallel over tasks of (channel panels x pixel tiles) of the
// batch-wide GEMM, handed out dynamically; every output element is summed in depth order by one
// task, so the bits do not depend on the thread count. Scratch: per thread, the gathered panel and
// its runs; for a strided conv, a phase-split copy of x. `narrow_tails` false (the narrowTails
// ablation): a pixel tile short of kTileCols columns multiplies all its lanes (tail_split); the same bits.
// `in_place_pointwise` false (the inPlacePointwise ablation): a pointwise conv at batch 1 gathers its tiles as any
// other conv does, not read from x in place (reads_in_place); the same bits. `spread_weight_prefetch` false (the
// spreadWeightPrefetch ablation): with big weights, only a sweep's last tile prefetches the next weight panel (forward_tasks);
// the same bits.
inline void conv2d_forward_packed(const Conv2dShape& shape, const float* x, const float* packed_w, const float* bias,
                                  float* y, bool relu = false, const ConvOutput& o = {}, bool narrow_tails = true,
                                  bool in_place_pointwise = true, bool spread_weight_prefetch = true) {
  using namespace conv_gemm_detail;
  const std::int64_t pixels = static_cast<std::int64_t>(shape.batch) * shape.out_plane();
  if (shape.out_channels <= 0 || pixels <= 0) return;
  conv2d_forward_view(shape, gather_view(shape, x), packed_w, bias, y, relu, o, narrow_tails, in_place_pointwise,
                      spread_weight_prefetch);
}

}  // namespace cpu
}  // namespace nincc
