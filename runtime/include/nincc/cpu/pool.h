// Max and average pooling over NCHW planes, Torch7 SpatialMaxPooling / SpatialAveragePooling in
// floor or ceil mode: forward and backward. Padding is -inf for max pooling and zeros counted in the
// divisor for average pooling (count_include_pad, Torch7's default). A pool ending a concat's branch in
// training writes its planes of the concat's output, and its backward reads them there (PoolOutput).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "parallel.h"
#include "simd.h"

namespace nincc {
namespace cpu {

// Torch requires pad <= kernel/2, so every window overlaps the image; the kernels below still
// give -inf (max) or 0 (average) for a window that lies wholly in the padding.
struct Pool2dShape {
  int batch, channels, in_h, in_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
  bool ceil_mode = false;  // Torch's :ceil(): windows may run past the padded image's far edge

  // THNN's output size: floor or ceil of the window count, then, when padded on either side, less the
  // last window if it would start past the image and its near padding.
  constexpr int out_size(int in, int kernel, int stride, int pad) const {
    const int span = in + 2 * pad - kernel;  // >= 0: the front end checks it
    if (!ceil_mode) return span / stride + 1;
    const int size = (span + stride - 1) / stride + 1;
    return (pad_h > 0 || pad_w > 0) && (size - 1) * stride >= in + pad ? size - 1 : size;
  }
  constexpr int out_h() const { return out_size(in_h, kernel_h, stride_h, pad_h); }
  constexpr int out_w() const { return out_size(in_w, kernel_w, stride_w, pad_w); }
  constexpr std::int64_t in_plane() const { return static_cast<std::int64_t>(in_h) * in_w; }
  constexpr std::int64_t out_plane() const { return static_cast<std::int64_t>(out_h()) * out_w(); }
  constexpr std::int64_t planes() const { return static_cast<std::int64_t>(batch) * channels; }
};

// Where a pool's output y lies (and, backward, its gradient dy): channels offset… of a total-channel NCHW
// tensor, the concat's output that a branch ending in this pool writes in place; total 0 means the pool's own
// channels. x, dx and argmax keep the pool's own layout.
struct PoolOutput {
  int total = 0;
  int offset = 0;
  // The plane of y (or dy) that input plane p = n * channels + c pools into.
  constexpr std::int64_t plane(const Pool2dShape& s, std::int64_t p) const {
    return total > 0 ? (p / s.channels) * total + offset + p % s.channels : p;
  }
};

namespace pool_detail {

// The part of output pixel (oh, ow)'s window that lies inside the image: rows [h0, h1), cols [w0, w1).
struct Window {
  int h0, h1, w0, w1;
};
inline Window window_at(const Pool2dShape& s, int oh, int ow) {
  const int hs = oh * s.stride_h - s.pad_h, ws = ow * s.stride_w - s.pad_w;
  return {std::max(hs, 0), std::min(hs + s.kernel_h, s.in_h), std::max(ws, 0), std::min(ws + s.kernel_w, s.in_w)};
}

// Average pooling's divisor (count_include_pad): the window clipped to the padded image, as THNN counts
// it. In floor mode every window ends inside the padded image, so it is the full kernel; a ceil-mode
// window past the far padding counts only what lies inside.
inline float window_divisor(const Pool2dShape& s, int oh, int ow) {
  const int hs = oh * s.stride_h - s.pad_h, ws = ow * s.stride_w - s.pad_w;
  return static_cast<float>((std::min(hs + s.kernel_h, s.in_h + s.pad_h) - hs) * (std::min(ws + s.kernel_w, s.in_w + s.pad_w) - ws));
}

// The window's maximum and its index in the plane (ih*in_w + iw). Scans in window order (row by
// row) and moves only on a strictly greater value, so ties go to the first maximum; a NaN always
// wins, as in Torch (val > max || isnan(val)). An empty window gives -inf and index -1.
inline void window_max(const Pool2dShape& s, const float* plane, const Window& win, float* best_value,
                       std::int32_t* best_index) {
  float best = -std::numeric_limits<float>::infinity();
  std::int32_t index = -1;
  for (int ih = win.h0; ih < win.h1; ++ih)
    for (int iw = win.w0; iw < win.w1; ++iw) {
      const float v = plane[static_cast<std::int64_t>(ih) * s.in_w + iw];
      if (index < 0 || v > best || v != v) {
        best = v;
        index = ih * s.in_w + iw;
      }
    }
  *best_value = best;
  *best_index = index;
}

inline int plane_threads(const Pool2dShape& s) {
  return threads_for(s.planes() * std::max(s.in_plane(), s.out_plane() * s.kernel_h * s.kernel_w));
}

}  // namespace pool_detail

namespace pool_detail {

// Torch's running-max rule, v > best || isnan(v): a NaN wins and stays. As a reduction its result
// is the window's maximum, or NaN when the window holds one, whatever the order.
inline float max_rule(float best, float v) { return (v > best || v != v) ? v : best; }

#if defined(__AVX512F__)
// The first n of 16 lanes (n clamped to [0, 16]): the mask of a row's last, partial group.
inline __mmask16 first_lanes(std::int64_t n) { return static_cast<__mmask16>(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1); }

// max_rule lane by lane.
inline __m512 max_rule(__m512 best, __m512 v) {
  const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(take, best, v);
}

// The window steps and row loads of the max forms below. kPlain: each step a plain max, v > best ? v : best
// (vmaxps with v first), which is max_rule's result wherever the window holds no NaN, beside a sum of every
// row loaded, which is NaN where one was (or where +inf met -inf: then the rule runs for nothing).
template <bool kPlain>
struct MaxSteps {
  __m512 loaded_sum = _mm512_setzero_ps();
  static __m512 step(__m512 best, __m512 v) { return kPlain ? simd::Isa::max(v, best) : max_rule(best, v); }
  __m512 load(__mmask16 lanes, const float* at) {
    const __m512 v = _mm512_maskz_loadu_ps(lanes, at);
    if (kPlain) loaded_sum = _mm512_add_ps(loaded_sum, v);
    return v;
  }
  bool saw_nan() const { return kPlain && _mm512_cmp_ps_mask(loaded_sum, loaded_sum, _CMP_UNORD_Q) != 0; }
};

// out[o] = the rule over rows[2o], rows[2o + 1], rows[2o + 2] (in that order, as the scalar loop),
// for o < count, 16 outputs at a time: the even and odd columns split out of two loads by permutes
// (stride-2 windows defeat the compiler's vectoriser), the last group masked. Loads are masked to
// rows[0, 2 * count + 1), the windows' span, so nothing past it is read. kPlain: a plain max each step
// (MaxSteps), right where `rows` holds no NaN.
template <bool kPlain = false>
void windows_3_stride_2(const float* rows, float* out, int count) {
  const auto step = MaxSteps<kPlain>::step;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const int span = 2 * count + 1;
  for (int o = 0; o < count; o += 16) {
    const int at = 2 * o;
    const float* w = rows + at;
    const __m512 a = _mm512_maskz_loadu_ps(first_lanes(span - at), w), b = _mm512_maskz_loadu_ps(first_lanes(span - at - 16), w + 16);
    const __m512 c = _mm512_maskz_loadu_ps(first_lanes(span - at - 2), w + 2), d = _mm512_maskz_loadu_ps(first_lanes(span - at - 18), w + 18);
    const __m512 best = step(step(_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b)), _mm512_permutex2var_ps(c, even, d));
    _mm512_mask_storeu_ps(out + o, first_lanes(count - o), best);
  }
}
#endif

#if defined(__AVX512F__)
// plane_max for a plane at most 32 columns wide with at most 16 outputs a row (nin-fashion's 28x28
// and 14x14 pools): the window's in-image rows are reduced column by column into two registers, and
// each of the KW taps of the 16 outputs is permuted out of them (-inf where it falls in the padding).
// The two-pass form stores that row and loads it back at offsets the store cannot forward to, a
// stall per load that was most of its time on such planes. kNarrow: the plane is at most 16 columns
// wide (a 14x14 pool), so one register holds a row and the taps are one-source permutes: half the
// loads and row maxima, the same bits (bench/logs/i19j-maxpool-narrow-layer-ab.out: 0.81x the time).
// kPlain: MaxSteps' plain max; returns whether the plane held a NaN (then y is not yet right: the caller
// takes the plane again with the rule). The rule's two compares and blend a step were 40% of the plane's time (bench/logs/i19F-maxpool-plain.out).
template <int KW, int SW, bool kNarrow = false, bool kPlain = false>
bool plane_max_in_registers(const Pool2dShape& s, const float* plane, float* y) {
  const int ow_count = s.out_w(), width = s.in_w;
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i tap_column[KW];  // image column that tap t of output column o reads: SW * o + t - pad_w
  __mmask16 tap_inside[KW];
  for (int t = 0; t < KW; ++t) {
    tap_column[t] = _mm512_add_epi32(_mm512_mullo_epi32(lane, _mm512_set1_epi32(SW)), _mm512_set1_epi32(t - s.pad_w));
    tap_inside[t] = _mm512_cmpge_epi32_mask(tap_column[t], _mm512_setzero_si512()) &
                    _mm512_cmplt_epi32_mask(tap_column[t], _mm512_set1_epi32(width));
  }
  const __mmask16 lo_lanes = first_lanes(width), hi_lanes = first_lanes(width - 16), out_lanes = first_lanes(ow_count);
  MaxSteps<kPlain> steps;
  const auto step = MaxSteps<kPlain>::step;
  const auto load = [&](__mmask16 lanes, const float* at) { return steps.load(lanes, at); };
  for (int oh = 0; oh < s.out_h(); ++oh) {
    const int h0 = std::max(oh * s.stride_h - s.pad_h, 0), h1 = std::min(oh * s.stride_h - s.pad_h + s.kernel_h, s.in_h);
    __m512 lo = lowest, hi = lowest;  // a window wholly in the padding: -inf
    if (h0 < h1) {
      const float* row = plane + static_cast<std::int64_t>(h0) * width;
      lo = load(lo_lanes, row);
      if (!kNarrow) hi = load(hi_lanes, row + 16);
      for (int ih = h0 + 1; ih < h1; ++ih) {
        row += width;
        lo = step(lo, load(lo_lanes, row));
        if (!kNarrow) hi = step(hi, load(hi_lanes, row + 16));
      }
    }
    // Tap t of the 16 outputs, -inf where it falls in the padding.
    const auto tap = [&](int t) {
      return kNarrow ? _mm512_mask_permutexvar_ps(lowest, tap_inside[t], tap_column[t], lo)
                     : _mm512_mask_blend_ps(tap_inside[t], lowest, _mm512_permutex2var_ps(lo, tap_column[t], hi));
    };
    __m512 best = tap(0);
#pragma GCC unroll 8
    for (int t = 1; t < KW; ++t) best = step(best, tap(t));
    _mm512_mask_storeu_ps(y + static_cast<std::int64_t>(oh) * ow_count, out_lanes, best);
  }
  return steps.saw_nan();
}
#endif

// y (out_h x out_w) = max of each window of one plane, in two vectorisable passes per output row:
// `rows` = the rule over the window's in-image rows, column by column, with -inf for the padding
// columns, then each output = the rule over kernel_w entries of `rows` (stride KW/SW compile-time
// constants for the common windows, so the compiler unrolls them; 0 means use the shape's). kPlain
// (AVX-512; NIN's 56-wide planes): MaxSteps' plain max; returns whether the plane held a NaN (then y is not yet
// right: the caller takes the plane again with the rule). `prefetch_rows` (off: the poolRowPrefetch ablation):
// each output row prefetches the stride_h rows kAheadRows below its window, past the plane into the next
// one (planes are contiguous; a prefetch past the tensor does not fault). Without them a plane past the
// caches streamed at about 4 GB/s here, its masked loads apparently not followed by the hardware
// prefetcher: NIN's 96x56x56 pool at batch 16, one thread, 4.87 -> 1.15 ms with the plain max (bench/RESULTS.md, i19G).
constexpr int kAheadRows = 32;
template <int KW, int SW, bool kPlain = false>
bool plane_max_two_pass(const Pool2dShape& s, const float* plane, float* y, float* rows, bool prefetch_rows = true) {
  const int kw = KW ? KW : s.kernel_w, sw = SW ? SW : s.stride_w;
  const int ow_count = s.out_w();
  const int span = (ow_count - 1) * sw + kw;  // padded columns the windows cover
  const float lowest = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < span; ++j) rows[j] = lowest;
  float* inner = rows + s.pad_w;  // inner[iw] is image column iw
  const int width = std::min(s.in_w, span - s.pad_w);
#if defined(__AVX512F__)
  MaxSteps<kPlain> steps;
  const auto step = MaxSteps<kPlain>::step;
  const auto load = [&](__mmask16 lanes, const float* at) { return steps.load(lanes, at); };
#endif
  for (int oh = 0; oh < s.out_h(); ++oh) {
    const int h0 = std::max(oh * s.stride_h - s.pad_h, 0), h1 = std::min(oh * s.stride_h - s.pad_h + s.kernel_h, s.in_h);
    if (h0 >= h1) {
      for (int iw = 0; iw < width; ++iw) inner[iw] = lowest;
    } else {
      const float* first = plane + static_cast<std::int64_t>(h0) * s.in_w;
      if (prefetch_rows) {
        // As an integer: the address may lie past the tensor, where a pointer may not point.
        const std::uintptr_t ahead = reinterpret_cast<std::uintptr_t>(plane) + (static_cast<std::uintptr_t>(h1) + kAheadRows) * s.in_w * sizeof(float);
        const std::uintptr_t bytes = static_cast<std::uintptr_t>(s.stride_h) * s.in_w * sizeof(float);
        for (std::uintptr_t at = 0; at < bytes; at += 64) __builtin_prefetch(reinterpret_cast<const void*>(ahead + at));
      }
#if defined(__AVX512F__)
      // 16 columns at a time down the window's rows, the last group masked (NIN's planes are 56, 28
      // and 14 wide: the compiler's scalar remainder loop would be most of the work).
      for (int iw = 0; iw < width; iw += 16) {
        const __mmask16 m = first_lanes(width - iw);
        __m512 best = load(m, first + iw);
        for (int ih = h0 + 1; ih < h1; ++ih) best = step(best, load(m, plane + static_cast<std::int64_t>(ih) * s.in_w + iw));
        _mm512_mask_storeu_ps(inner + iw, m, best);
      }
#else
      for (int iw = 0; iw < width; ++iw) inner[iw] = first[iw];
      for (int ih = h0 + 1; ih < h1; ++ih) {
        const float* row = plane + static_cast<std::int64_t>(ih) * s.in_w;
        for (int iw = 0; iw < width; ++iw) inner[iw] = max_rule(inner[iw], row[iw]);
      }
#endif
    }
    float* out = y + static_cast<std::int64_t>(oh) * ow_count;
#if defined(__AVX512F__)
    if constexpr (KW == 3 && SW == 2) {
      windows_3_stride_2<kPlain>(rows, out, ow_count);
      continue;
    }
#endif
    for (int ow = 0; ow < ow_count; ++ow) {
      const float* w = rows + ow * sw;
      float best = w[0];
      for (int k = 1; k < kw; ++k) best = max_rule(best, w[k]);
      out[ow] = best;
    }
  }
#if defined(__AVX512F__)
  return steps.saw_nan();
#else
  return false;  // without AVX-512 every step took the rule
#endif
}

// y (out_h x out_w) = max of each window of one plane: in registers where the plane is narrow enough,
// else in two passes (plane_max_two_pass). kPlain: a plain max first, and the rule only where the plane
// holds a NaN; `prefetch_rows`: plane_max_two_pass'.
template <int KW, int SW, bool kPlain = false>
void plane_max(const Pool2dShape& s, const float* plane, float* y, float* rows, bool prefetch_rows) {
#if defined(__AVX512F__)
  if constexpr (KW > 0 && SW > 0) {
    if (s.in_w <= 32 && s.out_w() <= 16) {
      if (s.in_w <= 16) {
        if (!kPlain || plane_max_in_registers<KW, SW, true, true>(s, plane, y)) plane_max_in_registers<KW, SW, true>(s, plane, y);
      } else if (!kPlain || plane_max_in_registers<KW, SW, false, true>(s, plane, y)) {
        plane_max_in_registers<KW, SW>(s, plane, y);
      }
      return;
    }
  }
#endif
  if (!kPlain || plane_max_two_pass<KW, SW, kPlain>(s, plane, y, rows, prefetch_rows)) plane_max_two_pass<KW, SW>(s, plane, y, rows, prefetch_rows);
}

// The index Torch's scan of the window (row by row, ties to the first, a NaN to the last NaN)
// picks, given the window's value from plane_max: the first element equal to it, or the last NaN.
// A row compares into a bit mask without branches (where the maximum sits is random, so a
// per-element early exit mispredicts once per window): one masked vector compare with AVX-512.
inline std::int32_t window_argmax(const Pool2dShape& s, const float* plane, const Window& win, float value) {
  const int width = win.w1 - win.w0;
#if defined(__AVX512F__)
  if (value == value && width <= 16) {  // one masked vector compare per row
    const __mmask16 valid = static_cast<__mmask16>((1u << width) - 1u);
    const __m512 target = _mm512_set1_ps(value);
    for (int ih = win.h0; ih < win.h1; ++ih) {
      const float* row = plane + static_cast<std::int64_t>(ih) * s.in_w + win.w0;
      const __mmask16 equal = _mm512_mask_cmp_ps_mask(valid, _mm512_maskz_loadu_ps(valid, row), target, _CMP_EQ_OQ);
      if (equal != 0) return ih * s.in_w + win.w0 + __builtin_ctz(equal);
    }
    return -1;
  }
#endif
  if (value == value && width <= 64) {
    for (int ih = win.h0; ih < win.h1; ++ih) {
      const float* row = plane + static_cast<std::int64_t>(ih) * s.in_w + win.w0;
      std::uint64_t equal = 0;
      for (int iw = 0; iw < width; ++iw) equal |= static_cast<std::uint64_t>(row[iw] == value) << iw;
      if (equal != 0) return ih * s.in_w + win.w0 + __builtin_ctzll(equal);
    }
    return -1;
  }
  std::int32_t found = -1;
  for (int ih = win.h0; ih < win.h1; ++ih)
    for (int iw = win.w0; iw < win.w1; ++iw) {
      const float v = plane[static_cast<std::int64_t>(ih) * s.in_w + iw];
      if (value != value) {
        if (v != v) found = ih * s.in_w + iw;
      } else if (v == value) {
        return ih * s.in_w + iw;
      }
    }
  return found;
}

#if defined(__AVX512F__)
// window_argmax for one output row, 16 outputs at a time: the window's rows are the same for the whole
// row, and each tap, in the window's scan order, is gathered for 16 outputs and compared with their
// maxima; a lane keeps the first tap equal to its maximum, or, where the maximum is NaN, the last
// NaN tap. The same indices as window_argmax without its data-dependent branch per output (the row
// of the maximum is random, so the scalar early exit mispredicted about once per window: ~10x the
// cost of the max itself on NIN's pools). Padding taps (outside the image) are never gathered.
inline void row_argmax(const Pool2dShape& s, const float* plane, int oh, const float* y_row, std::int32_t* index_row) {
  const int hs = oh * s.stride_h - s.pad_h;
  const int h0 = std::max(hs, 0), h1 = std::min(hs + s.kernel_h, s.in_h);
  const int ow_count = s.out_w();
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i in_w = _mm512_set1_epi32(s.in_w);
  for (int ow0 = 0; ow0 < ow_count; ow0 += 16) {
    const __mmask16 outputs = first_lanes(ow_count - ow0);
    const __m512 target = _mm512_maskz_loadu_ps(outputs, y_row + ow0);
    const __mmask16 nan_target = _mm512_cmp_ps_mask(target, target, _CMP_UNORD_Q) & outputs;
    // First tap column of each output: (ow0 + lane) * stride_w - pad_w.
    const __m512i column0 = _mm512_sub_epi32(_mm512_mullo_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(ow0)), _mm512_set1_epi32(s.stride_w)),
                                             _mm512_set1_epi32(s.pad_w));
    __m512i index = _mm512_set1_epi32(-1);
    __mmask16 open = outputs & static_cast<__mmask16>(~nan_target);  // still looking for the first equal tap
    for (int ih = h0; ih < h1; ++ih) {
      const __m512i row_start = _mm512_set1_epi32(ih * s.in_w);
      for (int t = 0; t < s.kernel_w; ++t) {
        const __m512i column = _mm512_add_epi32(column0, _mm512_set1_epi32(t));
        const __mmask16 inside = _mm512_mask_cmpge_epi32_mask(outputs, column, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(column, in_w);
        const __m512i at = _mm512_add_epi32(row_start, column);
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inside, at, plane, 4);
        const __mmask16 equal = _mm512_mask_cmp_ps_mask(inside & open, v, target, _CMP_EQ_OQ);
        const __mmask16 nan_tap = _mm512_mask_cmp_ps_mask(inside & nan_target, v, v, _CMP_UNORD_Q);
        index = _mm512_mask_mov_epi32(index, equal | nan_tap, at);
        open &= static_cast<__mmask16>(~equal);
      }
    }
    _mm512_mask_storeu_epi32(index_row + ow0, outputs, index);
  }
}
#endif

}  // namespace pool_detail

// y = max over each window. `argmax` (same size as y, may be null) receives the index of the
// chosen input within its plane, ih*in_w + iw (0-based; Torch stores it 1-based). `o`: y's place (PoolOutput).
// `plain_max` (the ablation cpuPlainMaxPool turns it off): the planes of the common windows (3/2, 2/2, 3/1) take a
// plain max and the NaN rule only where they hold a NaN (plane_max_in_registers' and plane_max_two_pass' kPlain); the
// same bits either way. `prefetch_rows` (off: the poolRowPrefetch ablation): plane_max_two_pass'; the same bits.
inline void maxpool_forward(const Pool2dShape& shape, const float* x, float* y, std::int32_t* argmax,
                            const PoolOutput& o = {}, bool plain_max = true, bool prefetch_rows = true) {
  using namespace pool_detail;
  auto plane_fn = &plane_max<0, 0>;
  if (shape.kernel_w == 3 && shape.stride_w == 2) plane_fn = plain_max ? &plane_max<3, 2, true> : &plane_max<3, 2>;
  else if (shape.kernel_w == 2 && shape.stride_w == 2) plane_fn = plain_max ? &plane_max<2, 2, true> : &plane_max<2, 2>;
  else if (shape.kernel_w == 3 && shape.stride_w == 1) plane_fn = plain_max ? &plane_max<3, 1, true> : &plane_max<3, 1>;
  const int span = (shape.out_w() - 1) * shape.stride_w + shape.kernel_w;
  const std::int64_t planes = shape.planes();
  const int threads = plane_threads(shape);
  const std::int64_t blocks = threads <= 1 ? 1 : std::min<std::int64_t>(planes, 4 * threads);
  parallel_for_dynamic(blocks, threads, [&](std::int64_t b) {
    float* rows = thread_scratch(ScratchSlot::kPoolRows, static_cast<std::size_t>(span) + shape.pad_w + shape.in_w);
    for (std::int64_t p = planes * b / blocks; p < planes * (b + 1) / blocks; ++p) {
      const float* plane = x + p * shape.in_plane();
      float* out = y + o.plane(shape, p) * shape.out_plane();
      plane_fn(shape, plane, out, rows, prefetch_rows);
      if (!argmax) continue;
      std::int32_t* index = argmax + p * shape.out_plane();
#if defined(__AVX512F__)
      for (int oh = 0; oh < shape.out_h(); ++oh)
        row_argmax(shape, plane, oh, out + oh * shape.out_w(), index + oh * shape.out_w());
#else
      for (int oh = 0; oh < shape.out_h(); ++oh)
        for (int ow = 0; ow < shape.out_w(); ++ow, ++index, ++out)
          *index = window_argmax(shape, plane, window_at(shape, oh, ow), *out);
#endif
    }
  });
}

// dx = dy routed to each window's argmax, summed where windows overlap (dx is overwritten).
// Each plane is one thread's, in output order, so the sums are deterministic. `out`: dy's place (PoolOutput).
inline void maxpool_backward(const Pool2dShape& shape, const float* dy, const std::int32_t* argmax, float* dx,
                             const PoolOutput& out = {}) {
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    float* dx_plane = dx + p * shape.in_plane();
    std::memset(dx_plane, 0, sizeof(float) * shape.in_plane());
    const std::int64_t out0 = p * shape.out_plane();
    const float* dy_plane = dy + out.plane(shape, p) * shape.out_plane();
    for (std::int64_t o = 0; o < shape.out_plane(); ++o)
      if (argmax[out0 + o] >= 0) dx_plane[argmax[out0 + o]] += dy_plane[o];
  });
}

// maxpool_backward without stored indices: finds each argmax again from the forward's input x
// (same tie rule), trading a re-scan of x for not keeping an int32 buffer per pooling layer.
inline void maxpool_backward_from_input(const Pool2dShape& shape, const float* x, const float* dy, float* dx) {
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    const float* plane = x + p * shape.in_plane();
    float* dx_plane = dx + p * shape.in_plane();
    std::memset(dx_plane, 0, sizeof(float) * shape.in_plane());
    std::int64_t out = p * shape.out_plane();
    for (int oh = 0; oh < shape.out_h(); ++oh)
      for (int ow = 0; ow < shape.out_w(); ++ow, ++out) {
        float value;
        std::int32_t index;
        pool_detail::window_max(shape, plane, pool_detail::window_at(shape, oh, ow), &value, &index);
        if (index >= 0) dx_plane[index] += dy[out];
      }
  });
}

// y = (sum of the window's in-image values) / (its window_divisor: kernel_h * kernel_w in floor mode).
// `o`: y's place (PoolOutput).
inline void avgpool_forward(const Pool2dShape& shape, const float* x, float* y, const PoolOutput& o = {}) {
#if defined(__AVX512F__)
  const float divisor = static_cast<float>(shape.kernel_h * shape.kernel_w);
  // A global average (NIN's 7x7 over its last planes): each plane summed 16 lanes at a time, the last
  // group masked, then across the lanes, instead of one dependent scalar add per pixel.
  if (shape.out_plane() == 1 && shape.pad_h == 0 && shape.pad_w == 0 && shape.kernel_h == shape.in_h && shape.kernel_w == shape.in_w) {
    const std::int64_t n = shape.in_plane();
    parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
      const float* plane = x + p * n;
      __m512 sum = _mm512_setzero_ps();
      for (std::int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = pool_detail::first_lanes(n - i);
        sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(m, plane + i));
      }
      y[o.plane(shape, p)] = _mm512_reduce_add_ps(sum) / divisor;
    });
    return;
  }
#endif
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    const float* plane = x + p * shape.in_plane();
    std::int64_t out = o.plane(shape, p) * shape.out_plane();
    for (int oh = 0; oh < shape.out_h(); ++oh)
      for (int ow = 0; ow < shape.out_w(); ++ow, ++out) {
        const auto win = pool_detail::window_at(shape, oh, ow);
        float sum = 0.f;
        for (int ih = win.h0; ih < win.h1; ++ih)
          for (int iw = win.w0; iw < win.w1; ++iw) sum += plane[static_cast<std::int64_t>(ih) * shape.in_w + iw];
        y[out] = sum / pool_detail::window_divisor(shape, oh, ow);
      }
  });
}

// dx[i] = sum over the windows containing i of dy / that window's divisor. Overwrites dx. `o`: dy's place (PoolOutput).
inline void avgpool_backward(const Pool2dShape& shape, const float* dy, float* dx, const PoolOutput& o = {}) {
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    float* dx_plane = dx + p * shape.in_plane();
    std::memset(dx_plane, 0, sizeof(float) * shape.in_plane());
    std::int64_t out = o.plane(shape, p) * shape.out_plane();
    for (int oh = 0; oh < shape.out_h(); ++oh)
      for (int ow = 0; ow < shape.out_w(); ++ow, ++out) {
        const auto win = pool_detail::window_at(shape, oh, ow);
        const float share = dy[out] / pool_detail::window_divisor(shape, oh, ow);
        for (int ih = win.h0; ih < win.h1; ++ih)
          for (int iw = win.w0; iw < win.w1; ++iw) dx_plane[static_cast<std::int64_t>(ih) * shape.in_w + iw] += share;
      }
  });
}

}  // namespace cpu
}  // namespace nincc
