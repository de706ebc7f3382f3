// Float64 reference convolution and pooling, written straight from the definitions (Torch7
// semantics) with no blocking or unfolding, to check the float32 kernels against.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "nincc/cpu/im2col.h"  // Conv2dShape: shape data only, no kernel code
#include "nincc/cpu/pool.h"    // Pool2dShape

namespace kernels_test {

using nincc::cpu::Conv2dShape;
using nincc::cpu::Pool2dShape;

inline std::size_t conv_x_size(const Conv2dShape& s) { return std::size_t(s.batch) * s.in_channels * s.in_h * s.in_w; }
inline std::size_t conv_w_size(const Conv2dShape& s) {
  return std::size_t(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w;
}
inline std::size_t conv_y_size(const Conv2dShape& s) { return std::size_t(s.batch) * s.out_channels * s.out_plane(); }

// The input pixel under kernel tap (r, q) of output (oh, ow), or false if it is padding.
inline bool conv_tap(const Conv2dShape& s, int oh, int ow, int r, int q, int* ih, int* iw) {
  *ih = oh * s.stride_h - s.pad_h + r;
  *iw = ow * s.stride_w - s.pad_w + q;
  return *ih >= 0 && *ih < s.in_h && *iw >= 0 && *iw < s.in_w;
}

inline std::vector<double> ref_conv_forward(const Conv2dShape& s, const std::vector<double>& x,
                                            const std::vector<double>& w, const std::vector<double>* bias, bool relu) {
  std::vector<double> y(conv_y_size(s));
  const int oh_n = s.out_h(), ow_n = s.out_w();
  std::size_t at = 0;
  for (int n = 0; n < s.batch; ++n)
    for (int k = 0; k < s.out_channels; ++k)
      for (int oh = 0; oh < oh_n; ++oh)
        for (int ow = 0; ow < ow_n; ++ow) {
          double acc = bias ? (*bias)[k] : 0.0;
          for (int c = 0; c < s.in_channels; ++c)
            for (int r = 0; r < s.kernel_h; ++r)
              for (int q = 0; q < s.kernel_w; ++q) {
                int ih, iw;
                if (!conv_tap(s, oh, ow, r, q, &ih, &iw)) continue;
                acc += x[((std::size_t(n) * s.in_channels + c) * s.in_h + ih) * s.in_w + iw] *
                       w[((std::size_t(k) * s.in_channels + c) * s.kernel_h + r) * s.kernel_w + q];
              }
          y[at++] = relu ? std::max(acc, 0.0) : acc;
        }
  return y;
}

struct ConvGradients {
  std::vector<double> dx, dw, db;
};

// Every product x*w in the forward sum sends dy back to both factors.
inline ConvGradients ref_conv_backward(const Conv2dShape& s, const std::vector<double>& x,
                                       const std::vector<double>& w, const std::vector<double>& dy) {
  ConvGradients g{std::vector<double>(x.size()), std::vector<double>(w.size()), std::vector<double>(s.out_channels)};
  const int oh_n = s.out_h(), ow_n = s.out_w();
  std::size_t at = 0;
  for (int n = 0; n < s.batch; ++n)
    for (int k = 0; k < s.out_channels; ++k)
      for (int oh = 0; oh < oh_n; ++oh)
        for (int ow = 0; ow < ow_n; ++ow) {
          const double d = dy[at++];
          g.db[k] += d;
          for (int c = 0; c < s.in_channels; ++c)
            for (int r = 0; r < s.kernel_h; ++r)
              for (int q = 0; q < s.kernel_w; ++q) {
                int ih, iw;
                if (!conv_tap(s, oh, ow, r, q, &ih, &iw)) continue;
                const std::size_t xi = ((std::size_t(n) * s.in_channels + c) * s.in_h + ih) * s.in_w + iw;
                const std::size_t wi = ((std::size_t(k) * s.in_channels + c) * s.kernel_h + r) * s.kernel_w + q;
                g.dx[xi] += w[wi] * d;
                g.dw[wi] += x[xi] * d;
              }
        }
  return g;
}

inline std::size_t pool_x_size(const Pool2dShape& s) { return std::size_t(s.planes()) * s.in_h * s.in_w; }
inline std::size_t pool_y_size(const Pool2dShape& s) { return std::size_t(s.planes()) * s.out_plane(); }

struct MaxPoolResult {
  std::vector<double> y;
  std::vector<int> argmax;  // index within the plane, -1 for a window with no image pixel
};

// Two passes per window: the largest in-image value, then the first in-image position (row by
// row) that holds it. Padding never takes part, which is what "padding is -inf" amounts to.
inline MaxPoolResult ref_maxpool_forward(const Pool2dShape& s, const std::vector<double>& x) {
  MaxPoolResult out{std::vector<double>(pool_y_size(s)), std::vector<int>(pool_y_size(s))};
  std::size_t at = 0;
  for (std::int64_t p = 0; p < s.planes(); ++p)
    for (int oh = 0; oh < s.out_h(); ++oh)
      for (int ow = 0; ow < s.out_w(); ++ow, ++at) {
        double best = -std::numeric_limits<double>::infinity();
        for (int r = 0; r < s.kernel_h; ++r)
          for (int q = 0; q < s.kernel_w; ++q) {
            const int ih = oh * s.stride_h - s.pad_h + r, iw = ow * s.stride_w - s.pad_w + q;
            if (ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w)
              best = std::max(best, x[p * s.in_plane() + ih * s.in_w + iw]);
          }
        int found = -1;
        for (int r = 0; r < s.kernel_h && found < 0; ++r)
          for (int q = 0; q < s.kernel_w && found < 0; ++q) {
            const int ih = oh * s.stride_h - s.pad_h + r, iw = ow * s.stride_w - s.pad_w + q;
            if (ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w && x[p * s.in_plane() + ih * s.in_w + iw] == best)
              found = ih * s.in_w + iw;
          }
        out.y[at] = best;
        out.argmax[at] = found;
      }
  return out;
}

inline std::vector<double> ref_maxpool_backward(const Pool2dShape& s, const std::vector<int>& argmax,
                                                const std::vector<double>& dy) {
  std::vector<double> dx(pool_x_size(s));
  for (std::size_t o = 0; o < dy.size(); ++o) {
    const std::size_t plane = o / s.out_plane();
    if (argmax[o] >= 0) dx[plane * s.in_plane() + argmax[o]] += dy[o];
  }
  return dx;
}

// The padded window, padding reading as zero, divided by the full kernel area.
inline std::vector<double> ref_avgpool_forward(const Pool2dShape& s, const std::vector<double>& x) {
  std::vector<double> y(pool_y_size(s));
  std::size_t at = 0;
  for (std::int64_t p = 0; p < s.planes(); ++p)
    for (int oh = 0; oh < s.out_h(); ++oh)
      for (int ow = 0; ow < s.out_w(); ++ow) {
        double sum = 0.0;
        for (int r = 0; r < s.kernel_h; ++r)
          for (int q = 0; q < s.kernel_w; ++q) {
            const int ih = oh * s.stride_h - s.pad_h + r, iw = ow * s.stride_w - s.pad_w + q;
            sum += (ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w) ? x[p * s.in_plane() + ih * s.in_w + iw] : 0.0;
          }
        y[at++] = sum / (s.kernel_h * s.kernel_w);
      }
  return y;
}

inline std::vector<double> ref_avgpool_backward(const Pool2dShape& s, const std::vector<double>& dy) {
  std::vector<double> dx(pool_x_size(s));
  std::size_t at = 0;
  for (std::int64_t p = 0; p < s.planes(); ++p)
    for (int oh = 0; oh < s.out_h(); ++oh)
      for (int ow = 0; ow < s.out_w(); ++ow, ++at)
        for (int r = 0; r < s.kernel_h; ++r)
          for (int q = 0; q < s.kernel_w; ++q) {
            const int ih = oh * s.stride_h - s.pad_h + r, iw = ow * s.stride_w - s.pad_w + q;
            if (ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w)
              dx[p * s.in_plane() + ih * s.in_w + iw] += dy[at] / (s.kernel_h * s.kernel_w);
          }
  return dx;
}

}  // namespace kernels_test
