// Zero padding of NCHW planes, Torch7 nn.SpatialZeroPadding(pad_l, pad_r, pad_t, pad_b): a border of
// zeros (a negative pad crops), forward and backward (the output gradient cropped back to the input).
#pragma once

#include <cstdint>

#include "parallel.h"

namespace nincc {
namespace cpu {

struct ZeroPadShape {
  int batch, channels, in_h, in_w, out_h, out_w;
  int top, left;  // where input row 0 / column 0 lands in the output (negative: cropped)
};

// y[h][w] = x[h - top][w - left] where that is inside x, else 0.
inline void zeropad_forward(const ZeroPadShape& s, const float* x, float* y) {
  const std::int64_t planes = static_cast<std::int64_t>(s.batch) * s.channels;
  parallel_for(planes, planes * s.out_h * s.out_w, [&](std::int64_t p) {
    const float* in = x + p * s.in_h * s.in_w;
    float* out = y + p * s.out_h * s.out_w;
    for (int h = 0; h < s.out_h; ++h)
      for (int w = 0; w < s.out_w; ++w) {
        const int ih = h - s.top, iw = w - s.left;
        out[h * s.out_w + w] = ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w ? in[ih * s.in_w + iw] : 0.f;
      }
  });
}

// dx[h][w] = dy[h + top][w + left] where that is inside y (a cropped input gets 0).
inline void zeropad_backward(const ZeroPadShape& s, const float* dy, float* dx) {
  const std::int64_t planes = static_cast<std::int64_t>(s.batch) * s.channels;
  parallel_for(planes, planes * s.in_h * s.in_w, [&](std::int64_t p) {
    const float* g = dy + p * s.out_h * s.out_w;
    float* d = dx + p * s.in_h * s.in_w;
    for (int h = 0; h < s.in_h; ++h)
      for (int w = 0; w < s.in_w; ++w) {
        const int oh = h + s.top, ow = w + s.left;
        d[h * s.in_w + w] = oh >= 0 && oh < s.out_h && ow >= 0 && ow < s.out_w ? g[oh * s.out_w + ow] : 0.f;
      }
  });
}

}  // namespace cpu
}  // namespace nincc
