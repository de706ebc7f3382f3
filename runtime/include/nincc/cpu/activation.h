// Elementwise and per-row activations: ReLU, softmax and log-softmax (Torch7 nn.ReLU, nn.SoftMax,
// nn.LogSoftMax over the last dimension of a rows x classes matrix), forward and backward.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "parallel.h"
#include "reduce.h"

namespace nincc {
namespace cpu {

// y = max(0, x), written as x > 0 ? x : 0 like Torch's threshold (so NaN becomes 0). y may alias x.
inline void relu_forward(std::int64_t count, const float* x, float* y) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
  });
}

// dx = dy where the forward output y is positive, else 0. Uses y rather than x so an in-place
// ReLU (y over x) can still be differentiated. dx may alias dy.
inline void relu_backward(std::int64_t count, const float* y, const float* dy, float* dx) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      const float g = dy[i];  // loaded unconditionally, so the loop vectorizes as a blend
      dx[i] = y[i] > 0.f ? g : 0.f;
    }
  });
}

namespace softmax_detail {

// A row costs about 8 element-operations per class (max, exp, log, write).
inline int row_threads(int rows, int classes) {
  return rows > 1 ? threads_for(static_cast<std::int64_t>(rows) * classes * 8) : 1;
}

// max of a row, then log(sum(exp(x - max))) in double: the stable log-normaliser.
inline float log_normalizer(const float* x, int classes, float* row_max) {
  float m = -INFINITY;
  for (int j = 0; j < classes; ++j) m = std::max(m, x[j]);
  const double sum = sum_in_double(classes, [x, m](std::int64_t j) { return std::exp(static_cast<double>(x[j]) - m); });
  *row_max = m;
  return static_cast<float>(std::log(sum));
}

}  // namespace softmax_detail

// y[r][j] = x[r][j] - max_r - log(sum_j exp(x[r][j] - max_r)). y may alias x.
inline void log_softmax_forward(int rows, int classes, const float* x, float* y) {
  parallel_for_threads(rows, softmax_detail::row_threads(rows, classes), [&](std::int64_t r) {
    const float* xr = x + static_cast<std::int64_t>(r) * classes;
    float* yr = y + static_cast<std::int64_t>(r) * classes;
    float m;
    const float log_sum = softmax_detail::log_normalizer(xr, classes, &m);
    for (int j = 0; j < classes; ++j) yr[j] = xr[j] - m - log_sum;
  });
}

// dx[r][j] = dy[r][j] - exp(y[r][j]) * sum_j dy[r][j], from the forward output y. dx may alias dy.
inline void log_softmax_backward(int rows, int classes, const float* y, const float* dy, float* dx) {
  parallel_for_threads(rows, softmax_detail::row_threads(rows, classes), [&](std::int64_t r) {
    const std::int64_t base = static_cast<std::int64_t>(r) * classes;
    const float dy_sum = static_cast<float>(sum_of(dy + base, classes));
    for (int j = 0; j < classes; ++j) dx[base + j] = dy[base + j] - std::exp(y[base + j]) * dy_sum;
  });
}

// y[r][j] = exp(x[r][j] - max_r) / sum_j exp(x[r][j] - max_r). y may alias x.
inline void softmax_forward(int rows, int classes, const float* x, float* y) {
  parallel_for_threads(rows, softmax_detail::row_threads(rows, classes), [&](std::int64_t r) {
    const float* xr = x + static_cast<std::int64_t>(r) * classes;
    float* yr = y + static_cast<std::int64_t>(r) * classes;
    float m;
    const float log_sum = softmax_detail::log_normalizer(xr, classes, &m);
    for (int j = 0; j < classes; ++j) yr[j] = std::exp(xr[j] - m - log_sum);
  });
}

// dx[r][j] = y[r][j] * (dy[r][j] - sum_j dy[r][j] * y[r][j]), from the forward output y.
inline void softmax_backward(int rows, int classes, const float* y, const float* dy, float* dx) {
  parallel_for_threads(rows, softmax_detail::row_threads(rows, classes), [&](std::int64_t r) {
    const std::int64_t base = static_cast<std::int64_t>(r) * classes;
    const float dot = static_cast<float>(sum_in_double(
        classes, [&](std::int64_t j) { return static_cast<double>(dy[base + j]) * y[base + j]; }));
    for (int j = 0; j < classes; ++j) dx[base + j] = y[base + j] * (dy[base + j] - dot);
  });
}

}  // namespace cpu
}  // namespace nincc
