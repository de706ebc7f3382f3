// Cross-map local response normalisation, Torch7 nn.SpatialCrossMapLRN(size, alpha, beta, k) over NCHW:
// scale[c] = k + alpha/size * sum of x[j]^2 over the channels j of c's window, y[c] = x[c] * scale[c]^-beta,
// and its exact gradient. The window of channel c is [c - (size-1)/2, c + size/2] clipped to the channels
// (cunn's pre/post pad; Torch's Lua version agrees for the odd sizes it supports).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "parallel.h"

namespace nincc {
namespace cpu {

struct LrnShape {
  int batch, channels;
  std::int64_t plane;  // H * W
  int size;
  float alpha, beta, k;

  constexpr int before() const { return (size - 1) / 2; }  // channels in the window below c
  constexpr int after() const { return size - 1 - before(); }
};

namespace lrn_detail {
// One task per image and a block of pixels: every output sums its own window in channel order, so
// the bits do not depend on how the pixels are split among threads.
constexpr std::int64_t kPixelBlock = 256;
template <class Body>
inline void for_pixel_blocks(const LrnShape& s, Body&& body) {
  const std::int64_t blocks = (s.plane + kPixelBlock - 1) / kPixelBlock;
  parallel_for(static_cast<std::int64_t>(s.batch) * blocks, static_cast<std::int64_t>(s.batch) * s.channels * s.plane * s.size, [&](std::int64_t t) {
    const std::int64_t n = t / blocks, p0 = (t % blocks) * kPixelBlock;
    body(n, p0, std::min(p0 + kPixelBlock, s.plane));
  });
}
}  // namespace lrn_detail

// y and scale (kept for the backward; may be null at inference) from x.
inline void lrn_forward(const LrnShape& s, const float* x, float* y, float* scale) {
  const float ratio = s.alpha / static_cast<float>(s.size);
  lrn_detail::for_pixel_blocks(s, [&](std::int64_t n, std::int64_t p0, std::int64_t p1) {
    const std::int64_t image = n * s.channels * s.plane;
    for (int c = 0; c < s.channels; ++c) {
      const int j0 = std::max(c - s.before(), 0), j1 = std::min(c + s.after(), s.channels - 1);
      for (std::int64_t p = p0; p < p1; ++p) {
        float sum = 0.f;
        for (int j = j0; j <= j1; ++j) {
          const float v = x[image + j * s.plane + p];
          sum += v * v;
        }
        const std::int64_t at = image + c * s.plane + p;
        const float sc = s.k + ratio * sum;
        if (scale) scale[at] = sc;
        y[at] = x[at] * std::pow(sc, -s.beta);
      }
    }
  });
}

// dx[c] = dy[c] * scale[c]^-beta - 2*alpha*beta/size * x[c] * sum over the channels j whose window holds c
// of dy[j] * y[j] / scale[j].
inline void lrn_backward(const LrnShape& s, const float* x, const float* y, const float* scale, const float* dy, float* dx) {
  const float ratio = 2.f * s.alpha * s.beta / static_cast<float>(s.size);
  lrn_detail::for_pixel_blocks(s, [&](std::int64_t n, std::int64_t p0, std::int64_t p1) {
    const std::int64_t image = n * s.channels * s.plane;
    for (int c = 0; c < s.channels; ++c) {
      // j's window [j - before, j + after] holds c when c - after <= j <= c + before.
      const int j0 = std::max(c - s.after(), 0), j1 = std::min(c + s.before(), s.channels - 1);
      for (std::int64_t p = p0; p < p1; ++p) {
        float sum = 0.f;
        for (int j = j0; j <= j1; ++j) {
          const std::int64_t at = image + j * s.plane + p;
          sum += dy[at] * y[at] / scale[at];
        }
        const std::int64_t at = image + c * s.plane + p;
        dx[at] = dy[at] * std::pow(scale[at], -s.beta) - ratio * x[at] * sum;
      }
    }
  });
}

}  // namespace cpu
}  // namespace nincc
