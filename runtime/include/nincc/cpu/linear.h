// Fully connected layer, Torch7 nn.Linear: y = x * W^T + b with W stored out x in.
// Forward, backward-data and backward-weights, each one GEMM.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "gemm.h"
#include "parallel.h"
#include "reduce.h"

namespace nincc {
namespace cpu {

struct LinearShape {
  int batch, in_features, out_features;
};

namespace linear_detail {

// Below this batch a GEMM would spend its time packing w (out x in floats) for a handful of rows:
// each output is then a dot product of an x row with a w row, read once.
constexpr int kDotProductMaxBatch = 4;

// y[n][j] for every n of a small batch and j in [j0, j1): sixteen running partial sums per dot
// product, combined in a fixed order (the bits do not depend on how j is split among threads).
inline void dot_products(const LinearShape& s, const float* x, const float* w, const float* bias, float* y, bool relu,
                         std::int64_t j0, std::int64_t j1) {
  constexpr int kLanes = 16;
  for (std::int64_t j = j0; j < j1; ++j) {
    const float* wj = w + j * s.in_features;
    for (int n = 0; n < s.batch; ++n) {
      const float* xn = x + static_cast<std::int64_t>(n) * s.in_features;
      float lanes[kLanes] = {};
      int i = 0;
      for (; i + kLanes <= s.in_features; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += xn[i + l] * wj[i + l];
      for (int l = 0; i < s.in_features; ++i, ++l) lanes[l] += xn[i] * wj[i];
      for (int width = kLanes / 2; width > 0; width /= 2)
        for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
      float v = lanes[0] + (bias ? bias[j] : 0.f);
      if (relu) v = v > 0.f ? v : 0.f;
      y[static_cast<std::int64_t>(n) * s.out_features + j] = v;
    }
  }
}

}  // namespace linear_detail

// y (batch x out) = x (batch x in) * w^T + bias, optional fused ReLU. bias may be null.
// A GEMM, or for a batch of at most kDotProductMaxBatch images one dot product per output.
inline void linear_forward(const LinearShape& shape, const float* x, const float* w, const float* bias, float* y,
                           bool relu = false) {
  if (shape.batch <= linear_detail::kDotProductMaxBatch) {
    const std::int64_t work = static_cast<std::int64_t>(shape.batch) * shape.in_features * shape.out_features;
    const int threads = threads_for(work, gemm_detail::kParallelMinMacs / 4);
    const std::int64_t blocks = threads <= 1 ? 1 : std::min<std::int64_t>(shape.out_features, 8 * threads);
    parallel_for_dynamic(blocks, threads, [&](std::int64_t b) {
      linear_detail::dot_products(shape, x, w, bias, y, relu, shape.out_features * b / blocks,
                                  shape.out_features * (b + 1) / blocks);
    });
    return;
  }
  gemm(Transpose::kNo, Transpose::kYes, shape.batch, shape.out_features, shape.in_features, x, shape.in_features, w,
       shape.in_features, y, shape.out_features, false, GemmEpilogue{nullptr, bias, relu});
}

// dx (batch x in) = dy (batch x out) * w. Overwrites dx.
inline void linear_backward_data(const LinearShape& shape, const float* dy, const float* w, float* dx) {
  gemm(Transpose::kNo, Transpose::kNo, shape.batch, shape.in_features, shape.out_features, dy, shape.out_features, w,
       shape.in_features, dx, shape.in_features);
}

// dw (out x in) = dy^T * x, db[j] = sum over the batch of dy[.][j] (in double, batch order).
// Both overwritten; db may be null.
inline void linear_backward_weights(const LinearShape& shape, const float* x, const float* dy, float* dw,
                                    float* db) {
  gemm(Transpose::kYes, Transpose::kNo, shape.out_features, shape.in_features, shape.batch, dy, shape.out_features,
       x, shape.in_features, dw, shape.in_features);
  if (db == nullptr) return;
  for (int j = 0; j < shape.out_features; ++j) {
    double sum = 0.0;
    for (int n = 0; n < shape.batch; ++n) sum += dy[static_cast<std::int64_t>(n) * shape.out_features + j];
    db[j] = static_cast<float>(sum);
  }
}

}  // namespace cpu
}  // namespace nincc
