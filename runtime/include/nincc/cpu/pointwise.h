// Elementwise layers of Torch7's zoo and the residual merge: nn.Tanh, nn.Sigmoid, nn.Threshold (forward
// and backward) and the sum of two tensors (nn.CAddTable's forward; also how a fanned-out tensor's
// gradients are summed). Each element is computed alone, so the bits do not depend on the thread count.
#pragma once

#include <cmath>
#include <cstdint>

#include "parallel.h"

namespace nincc {
namespace cpu {

// y = tanh(x). y may alias x.
inline void tanh_forward(std::int64_t count, const float* x, float* y) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) y[i] = std::tanh(x[i]);
  });
}

// dx = dy * (1 - y^2), from the forward output y (Torch's Tanh_updateGradInput). dx may alias dy.
inline void tanh_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
  });
}

// y = 1 / (1 + exp(-x)). y may alias x.
inline void sigmoid_forward(std::int64_t count, const float* x, float* y) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) y[i] = 1.f / (1.f + std::exp(-x[i]));
  });
}

// dx = dy * y * (1 - y), from the forward output y (Torch's Sigmoid_updateGradInput). dx may alias dy.
inline void sigmoid_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) dx[i] = dy[i] * (1.f - y[i]) * y[i];
  });
}

// y = x > threshold ? x : value (Torch's Threshold; a NaN input gives value). y may alias x.
inline void threshold_forward(std::int64_t count, const float* x, float* y, float threshold, float value) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] > threshold ? x[i] : value;
  });
}

// dx = x > threshold ? dy : 0, from the forward input x (Torch's Threshold_updateGradInput). dx may alias dy.
inline void threshold_backward(std::int64_t count, const float* x, const float* dy, float* dx, float threshold) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) dx[i] = x[i] > threshold ? dy[i] : 0.f;
  });
}

// y = a + b, optionally through a ReLU (x > 0 ? x : 0). y may alias a or b.
inline void add_forward(std::int64_t count, const float* a, const float* b, float* y, bool relu) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    if (relu)
      for (std::int64_t i = begin; i < end; ++i) {
        const float v = a[i] + b[i];
        y[i] = v > 0.f ? v : 0.f;
      }
    else
      for (std::int64_t i = begin; i < end; ++i) y[i] = a[i] + b[i];
  });
}

}  // namespace cpu
}  // namespace nincc
