// Max and average pooling over NCHW planes, Torch7 SpatialMaxPooling / SpatialAveragePooling in
// floor mode: forward and backward. Padding is -inf for max pooling and zeros counted in the
// divisor for average pooling (count_include_pad, Torch7's default).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "parallel.h"

namespace nincc {
namespace cpu {

// Torch requires pad <= kernel/2, so every window overlaps the image; the kernels below still
// give -inf (max) or 0 (average) for a window that lies wholly in the padding.
struct Pool2dShape {
  int batch, channels, in_h, in_w;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;

  constexpr int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }  // floor mode
  constexpr int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  constexpr std::int64_t in_plane() const { return static_cast<std::int64_t>(in_h) * in_w; }
  constexpr std::int64_t out_plane() const { return static_cast<std::int64_t>(out_h()) * out_w(); }
  constexpr std::int64_t planes() const { return static_cast<std::int64_t>(batch) * channels; }
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

// y = max over each window. `argmax` (same size as y, may be null) receives the index of the
// chosen input within its plane, ih*in_w + iw (0-based; Torch stores it 1-based).
inline void maxpool_forward(const Pool2dShape& shape, const float* x, float* y, std::int32_t* argmax) {
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    const float* plane = x + p * shape.in_plane();
    std::int64_t out = p * shape.out_plane();
    for (int oh = 0; oh < shape.out_h(); ++oh)
      for (int ow = 0; ow < shape.out_w(); ++ow, ++out) {
        std::int32_t index;
        pool_detail::window_max(shape, plane, pool_detail::window_at(shape, oh, ow), &y[out], &index);
        if (argmax) argmax[out] = index;
      }
  });
}

// dx = dy routed to each window's argmax, summed where windows overlap (dx is overwritten).
// Each plane is one thread's, in output order, so the sums are deterministic.
inline void maxpool_backward(const Pool2dShape& shape, const float* dy, const std::int32_t* argmax, float* dx) {
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    float* dx_plane = dx + p * shape.in_plane();
    std::memset(dx_plane, 0, sizeof(float) * shape.in_plane());
    const std::int64_t out0 = p * shape.out_plane();
    for (std::int64_t o = 0; o < shape.out_plane(); ++o)
      if (argmax[out0 + o] >= 0) dx_plane[argmax[out0 + o]] += dy[out0 + o];
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

// y = (sum of the window's in-image values) / (kernel_h * kernel_w). In floor mode every window
// ends inside the padded image, so Torch's count_include_pad divisor is always the full kernel.
inline void avgpool_forward(const Pool2dShape& shape, const float* x, float* y) {
  const float divisor = static_cast<float>(shape.kernel_h * shape.kernel_w);
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    const float* plane = x + p * shape.in_plane();
    std::int64_t out = p * shape.out_plane();
    for (int oh = 0; oh < shape.out_h(); ++oh)
      for (int ow = 0; ow < shape.out_w(); ++ow, ++out) {
        const auto win = pool_detail::window_at(shape, oh, ow);
        float sum = 0.f;
        for (int ih = win.h0; ih < win.h1; ++ih)
          for (int iw = win.w0; iw < win.w1; ++iw) sum += plane[static_cast<std::int64_t>(ih) * shape.in_w + iw];
        y[out] = sum / divisor;
      }
  });
}

// dx[i] = sum over the windows containing i of dy / (kernel_h * kernel_w). Overwrites dx.
inline void avgpool_backward(const Pool2dShape& shape, const float* dy, float* dx) {
  const float divisor = static_cast<float>(shape.kernel_h * shape.kernel_w);
  parallel_for_threads(shape.planes(), pool_detail::plane_threads(shape), [&](std::int64_t p) {
    float* dx_plane = dx + p * shape.in_plane();
    std::memset(dx_plane, 0, sizeof(float) * shape.in_plane());
    std::int64_t out = p * shape.out_plane();
    for (int oh = 0; oh < shape.out_h(); ++oh)
      for (int ow = 0; ow < shape.out_w(); ++ow, ++out) {
        const auto win = pool_detail::window_at(shape, oh, ow);
        const float share = dy[out] / divisor;
        for (int ih = win.h0; ih < win.h1; ++ih)
          for (int iw = win.w0; iw < win.w1; ++iw) dx_plane[static_cast<std::int64_t>(ih) * shape.in_w + iw] += share;
      }
  });
}

}  // namespace cpu
}  // namespace nincc
