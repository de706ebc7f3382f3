// The implicit im2col of the convolution GEMMs (conv_gemm.h): the input values a tile of output
// pixels needs for a block of depth rows d = (c, r, s), gathered from the NCHW input straight into
// the micro-kernel's column panel. A tile is kTileCols consecutive output pixels of the batch-wide
// pixel order (n, oh, ow); it is cut into segments of one image and output row, and for each kernel
// tap the segments' in-image pixels become runs of lanes that read consecutive input elements, so
// each panel row is a few masked vector loads (AVX-512) or scalar copies (elsewhere).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gemm_kernel.h"
#include "im2col.h"
#include "parallel.h"

namespace nincc {
namespace cpu {
namespace conv_gemm_detail {

using gemm_detail::kTileCols;
static_assert(kTileCols <= 32, "tile lanes are kept in a 32-bit mask");

// A run of a tile's lanes [lane, lane + count) that are consecutive output pixels of one image and
// one output row: image n, output row oh, output columns ow0, ow0 + 1, ...
struct Segment {
  int n, oh, ow0, lane, count;
};

// The tile's pixels [col0, col0 + cols) of the batch-wide pixel order cut into segments; returns how many.
inline int cut_into_rows(const Conv2dShape& s, std::int64_t col0, int cols, Segment* out) {
  const std::int64_t plane = s.out_plane();
  const int ow_count = s.out_w();
  int count = 0;
  for (int lane = 0; lane < cols;) {
    const std::int64_t j = col0 + lane;
    const int n = static_cast<int>(j / plane);
    const int p = static_cast<int>(j - n * plane);
    const int oh = p / ow_count, ow = p - oh * ow_count;
    const int run = std::min(ow_count - ow, cols - lane);
    out[count++] = Segment{n, oh, ow, lane, run};
    lane += run;
  }
  return count;
}

inline std::uint32_t lane_mask(int begin, int end) {
  if (end <= begin) return 0;
  const std::uint32_t upto = end >= 32 ? 0xFFFFFFFFu : (1u << end) - 1u;
  return upto & ~((1u << begin) - 1u);
}

// Lanes (bits) that read plane[offset + lane * step] of every channel plane.
struct GatherRun {
  std::int64_t offset;
  std::uint32_t lanes;
};

// Where the gather reads the input: element (n, c, ih, iw = ow * stride_w - pad_w + s) is at
// base[n * image + c * plane + ih * row + column(s) + ow * step]. Stride-1 convs read x itself
// (column(s) = s - pad_w, step 1). A strided conv reads a copy of x with each row split into its
// stride_w phases (split_phases), where the columns one tap reads are again consecutive, so every
// gather is a plain (masked) vector load instead of a strided gather.
// The uint8 stem (u8_input.h) reads its N×H×W×C bytes in place instead: `bytes` is set, plane is 1
// (channels are interleaved), a column is `pixel` = C bytes, and each byte becomes a float through its
// channel's 256-entry table as it is gathered, so no float copy of the images is ever written.
struct InputView {
  const float* base;
  std::int64_t image, plane, row;
  int phase_width;  // 0: x itself; else the length of one phase of a split row
  const std::uint8_t* bytes = nullptr;  // uint8 NHWC images (base unused)
  const float* tables = nullptr;        // with bytes: 256 values per channel
  int pixel = 1;                        // elements from one input column to the next
  std::int64_t column(const Conv2dShape& s, int tap_s) const {
    const int shift = tap_s - s.pad_w;  // input column of output column 0
    if (phase_width == 0) return static_cast<std::int64_t>(shift) * pixel;
    const int phase = ((shift % s.stride_w) + s.stride_w) % s.stride_w;
    const int first = (shift - phase) / s.stride_w;  // floor(shift / stride)
    return static_cast<std::int64_t>(phase) * phase_width + first;
  }
  int step(const Conv2dShape& s) const { return phase_width == 0 ? s.stride_w * pixel : 1; }
};

// The view of uint8 NHWC images with per-channel value tables (u8_input.h).
inline InputView byte_view(const Conv2dShape& s, const std::uint8_t* bytes, const float* tables) {
  const std::int64_t row = static_cast<std::int64_t>(s.in_w) * s.in_channels;
  return {nullptr, s.in_h * row, 1, row, 0, bytes, tables, s.in_channels};
}

inline InputView direct_view(const Conv2dShape& s, const float* x) {
  return {x, static_cast<std::int64_t>(s.in_channels) * s.in_plane(), s.in_plane(), s.in_w, 0};
}

// The same for x's channels within a wider tensor (a conv's gradient read in a concat's, ConvGradientPlace):
// images place.total planes apart, from plane place.offset.
inline InputView direct_view(const Conv2dShape& s, const float* x, const ConvGradientPlace& place) {
  const int total = place.total > 0 ? place.total : s.in_channels;
  return {x + place.offset * s.in_plane(), static_cast<std::int64_t>(total) * s.in_plane(), s.in_plane(), s.in_w, 0};
}

// The phase-split copy of x for a strided conv: row ih of channel c of image n becomes stride_w
// runs of phase_width floats, run ph holding columns ph, ph + stride_w, ... (zero past the end).
inline std::int64_t phase_split_size(const Conv2dShape& s) {
  const std::int64_t width = (s.in_w + s.stride_w - 1) / s.stride_w;
  return static_cast<std::int64_t>(s.batch) * s.in_channels * s.in_h * s.stride_w * width;
}

inline InputView split_phases(const Conv2dShape& s, const float* x, float* copy) {
  const int width = (s.in_w + s.stride_w - 1) / s.stride_w;
  const std::int64_t row = static_cast<std::int64_t>(s.stride_w) * width;
  const std::int64_t rows = static_cast<std::int64_t>(s.batch) * s.in_channels * s.in_h;
  parallel_for(rows, rows * row, [&](std::int64_t r) {
    const float* src = x + r * s.in_w;
    float* dst = copy + r * row;
    for (int ph = 0; ph < s.stride_w; ++ph) {
      const int inside = (s.in_w - ph + s.stride_w - 1) / s.stride_w;  // columns ph + j*stride < in_w
      float* out = dst + ph * width;
      for (int j = 0; j < inside; ++j) out[j] = src[j * s.stride_w + ph];
      for (int j = inside; j < width; ++j) out[j] = 0.f;
    }
  });
  return {copy, s.in_channels * s.in_h * row, s.in_h * row, row, width};
}

// The view the gather reads x through: x itself (stride 1) or its phase-split copy in the calling
// thread's scratch (strided).
inline InputView gather_view(const Conv2dShape& s, const float* x) {
  return s.stride_w == 1 ? direct_view(s, x)
                         : split_phases(s, x, thread_scratch(ScratchSlot::kConvPhases, static_cast<std::size_t>(phase_split_size(s))));
}

// The per-tap-column constants of the gather, computed once per call: which output columns read
// inside the image, and where in a row of `in` output column 0 reads.
struct TapColumn {
  conv_detail::ValidRange valid_ow;
  std::int64_t column;
};

// The TapColumn of every kernel column of a conv; kernels up to 16 wide need no allocation.
class TapColumns {
 public:
  TapColumns(const Conv2dShape& s, const InputView& in) {
    if (s.kernel_w > kInline) heap_.resize(s.kernel_w);
    TapColumn* out = s.kernel_w > kInline ? heap_.data() : inline_;
    for (int tap_s = 0; tap_s < s.kernel_w; ++tap_s)
      out[tap_s] = {conv_detail::valid_outputs(s.in_w, s.out_w(), s.stride_w, s.pad_w, tap_s), in.column(s, tap_s)};
  }
  const TapColumn* data() const { return heap_.empty() ? inline_ : heap_.data(); }

 private:
  static constexpr int kInline = 16;
  TapColumn inline_[kInline];
  std::vector<TapColumn> heap_;
};

// For kernel tap (r, s): the runs of the tile's lanes that read inside the image (the rest are padding,
// zeros), as offsets from channel c's plane of image 0 in `in`.
inline int tap_runs(const Conv2dShape& s, const InputView& in, const Segment* segments, int segment_count, int r,
                    const TapColumn& tap_column, GatherRun* out) {
  const conv_detail::ValidRange valid_ow = tap_column.valid_ow;
  const std::int64_t column = tap_column.column;
  const int step = in.step(s);
  int count = 0;
  for (int g = 0; g < segment_count; ++g) {
    const Segment& seg = segments[g];
    const int ih = seg.oh * s.stride_h - s.pad_h + r;
    if (ih < 0 || ih >= s.in_h) continue;
    const int first = std::max(seg.ow0, valid_ow.first), last = std::min(seg.ow0 + seg.count, valid_ow.last);
    const std::uint32_t lanes = lane_mask(seg.lane + first - seg.ow0, seg.lane + last - seg.ow0);
    if (lanes == 0) continue;
    // Lane l is output column ow0 + l - lane.
    const std::int64_t offset =
        seg.n * in.image + ih * in.row + column + static_cast<std::int64_t>(seg.ow0 - seg.lane) * step;
    // Where the input rows are as wide as the output rows (stride 1, "same" padding: 1x1 convs, 3x3
    // pad 1), the next output row's lanes continue the same input run: one run, so one masked load
    // per register for the whole tile instead of one per output row (a 32-pixel tile of a 7x7 plane
    // is up to 6 rows). Lane l reads offset + l * step either way: the panel is the same.
    if (count > 0 && out[count - 1].offset == offset) {
      out[count - 1].lanes |= lanes;
      continue;
    }
    out[count++] = GatherRun{offset, lanes};
  }
  return count;
}

// dst[0:kTileCols] = plane[run.offset + lane * stride] on each run's lanes, zero elsewhere (stride is
// 1 except for a strided conv read without its phase split).
inline void gather_row(const float* plane, const GatherRun* runs, int run_count, int stride, float* dst) {
#if defined(__AVX512F__)
  static_assert(kTileCols == 32, "the AVX-512 gather fills two 16-lane registers");
  __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
  if (stride == 1) {
    for (int i = 0; i < run_count; ++i) {
      const float* src = plane + runs[i].offset;
      // Each channel plane is its own stream, too many for the hardware prefetchers: fetch the
      // lines the tile after next will read.
      _mm_prefetch(reinterpret_cast<const char*>(src + 2 * kTileCols), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(src + 2 * kTileCols + 16), _MM_HINT_T0);
      const __mmask16 mlo = static_cast<__mmask16>(runs[i].lanes), mhi = static_cast<__mmask16>(runs[i].lanes >> 16);
      if (mlo) lo = _mm512_mask_loadu_ps(lo, mlo, src);
      if (mhi) hi = _mm512_mask_loadu_ps(hi, mhi, src + 16);
    }
  } else {
    const __m512i step = _mm512_set1_epi32(stride);
    const __m512i idx_lo = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), step);
    const __m512i idx_hi = _mm512_add_epi32(idx_lo, _mm512_set1_epi32(16 * stride));
    for (int i = 0; i < run_count; ++i) {
      const float* src = plane + runs[i].offset;
      const __mmask16 mlo = static_cast<__mmask16>(runs[i].lanes), mhi = static_cast<__mmask16>(runs[i].lanes >> 16);
      if (mlo) lo = _mm512_mask_i32gather_ps(lo, mlo, idx_lo, src, 4);
      if (mhi) hi = _mm512_mask_i32gather_ps(hi, mhi, idx_hi, src, 4);
    }
  }
  _mm512_storeu_ps(dst, lo);
  _mm512_storeu_ps(dst + 16, hi);
#else
  for (int l = 0; l < kTileCols; ++l) dst[l] = 0.f;
  for (int i = 0; i < run_count; ++i) {
    const float* src = plane + runs[i].offset;
    for (std::uint32_t lanes = runs[i].lanes; lanes != 0; lanes &= lanes - 1) {
      const int l = __builtin_ctz(lanes);
      dst[l] = src[static_cast<std::int64_t>(l) * stride];
    }
  }
#endif
}

// gather_row of uint8 bytes: dst[l] = value[plane[run.offset + l * stride]] on each run's lanes, zero
// elsewhere (padding is zero after normalisation too). `readable`: the bytes from `plane` to the end of
// the images. With AVX-512, each 16 lanes are two gathers: the bytes' 4-byte words (masked per run), then
// the table at their low bytes; a run whose word would reach past the end (the batch's last 3 bytes) is
// gathered lane by lane instead.
inline void gather_row_bytes(const std::uint8_t* plane, std::int64_t readable, const float* value, const GatherRun* runs,
                             int run_count, int stride, float* dst) {
#if defined(__AVX512F__)
  static_assert(kTileCols == 32, "the AVX-512 byte gather fills two 16-lane registers");
  bool words_fit = true;
  for (int i = 0; i < run_count; ++i)
    words_fit = words_fit && runs[i].offset + static_cast<std::int64_t>(31 - __builtin_clz(runs[i].lanes)) * stride + 4 <= readable;
  if (words_fit) {
    const __m512i step = _mm512_set1_epi32(stride);
    const __m512i idx_lo = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), step);
    const __m512i idx_hi = _mm512_add_epi32(idx_lo, _mm512_set1_epi32(16 * stride));
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    __mmask16 all_lo = 0, all_hi = 0;
    for (int i = 0; i < run_count; ++i) {
      const std::uint8_t* src = plane + runs[i].offset;
      const __mmask16 mlo = static_cast<__mmask16>(runs[i].lanes), mhi = static_cast<__mmask16>(runs[i].lanes >> 16);
      if (mlo) lo = _mm512_mask_i32gather_epi32(lo, mlo, idx_lo, src, 1);
      if (mhi) hi = _mm512_mask_i32gather_epi32(hi, mhi, idx_hi, src, 1);
      all_lo = static_cast<__mmask16>(all_lo | mlo);
      all_hi = static_cast<__mmask16>(all_hi | mhi);
    }
    const __m512i low_byte = _mm512_set1_epi32(0xFF);
    lo = _mm512_and_si512(lo, low_byte);
    hi = _mm512_and_si512(hi, low_byte);
    _mm512_storeu_ps(dst, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), all_lo, lo, value, 4));
    _mm512_storeu_ps(dst + 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), all_hi, hi, value, 4));
    return;
  }
#else
  (void)readable;
#endif
  for (int l = 0; l < kTileCols; ++l) dst[l] = 0.f;
  for (int i = 0; i < run_count; ++i) {
    const std::uint8_t* src = plane + runs[i].offset;
    for (std::uint32_t lanes = runs[i].lanes; lanes != 0; lanes &= lanes - 1) {
      const int l = __builtin_ctz(lanes);
      dst[l] = value[src[static_cast<std::int64_t>(l) * stride]];
    }
  }
}

// The gather of one task: the current tile's segments and the gather runs of its taps.
struct TileGather {
  const Conv2dShape& s;
  InputView in;
  const TapColumn* tap_columns;  // per kernel column s
  GatherRun* runs;               // scratch: taps x kTileCols
  int* run_counts;               // scratch: taps
  Segment segments[kTileCols];
  int segment_count = 0;

  // Scratch bytes for runs and run_counts.
  static std::size_t scratch_bytes(const Conv2dShape& s) {
    const int taps = s.kernel_h * s.kernel_w;
    return sizeof(GatherRun) * taps * kTileCols + sizeof(int) * taps;
  }
  TileGather(const Conv2dShape& shape, const InputView& view, const TapColumn* columns, void* scratch)
      : s(shape), in(view), tap_columns(columns), runs(static_cast<GatherRun*>(scratch)),
        run_counts(reinterpret_cast<int*>(runs + shape.kernel_h * shape.kernel_w * kTileCols)) {}

  // Cuts the tile of columns [col0, col0 + cols) into segments and finds the gather runs of the taps
  // that depth rows [k0, k0 + depth) use (all of them when `depth` covers every tap).
  void prepare(std::int64_t col0, int cols, int k0, int depth) {
    segment_count = cut_into_rows(s, col0, cols, segments);
    const int taps = s.kernel_h * s.kernel_w;
    const int first_tap = k0 % taps, tap_span = std::min(taps, depth);
    for (int t = 0; t < tap_span; ++t) {
      const int tap = (first_tap + t) % taps;
      run_counts[tap] = tap_runs(s, in, segments, segment_count, tap / s.kernel_w, tap_columns[tap % s.kernel_w],
                                 runs + tap * kTileCols);
    }
  }

  // Packs depth rows [k0, k0 + depth) of the prepared tile into panel (depth x kTileCols).
  void pack(int k0, int depth, float* panel) const {
    const int taps = s.kernel_h * s.kernel_w;
    int tap = k0 % taps;
    if (in.bytes) {
      const int c0 = k0 / taps;
      const std::uint8_t* plane = in.bytes + c0 * in.plane;
      std::int64_t readable = s.batch * in.image - c0 * in.plane;
      const float* value = in.tables + c0 * 256;
      const int step = in.step(s);
      for (int row = 0; row < depth; ++row) {
        gather_row_bytes(plane, readable, value, runs + tap * kTileCols, run_counts[tap], step, panel + row * kTileCols);
        if (++tap == taps) {
          tap = 0;
          plane += in.plane;
          readable -= in.plane;
          value += 256;
        }
      }
      return;
    }
    const float* plane = in.base + (k0 / taps) * in.plane;
    const int step = in.step(s);
    for (int row = 0; row < depth; ++row) {
      gather_row(plane, runs + tap * kTileCols, run_counts[tap], step, panel + row * kTileCols);
      if (++tap == taps) {
        tap = 0;
        plane += in.plane;
      }
    }
  }
};

}  // namespace conv_gemm_detail
}  // namespace cpu
}  // namespace nincc
