// Fully connected layer, Torch7 nn.Linear: y = x * W^T + b with W stored out x in.
// Forward, backward-data and backward-weights, each one GEMM.
#pragma once

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

// y (batch x out) = x (batch x in) * w^T + bias, optional fused ReLU. bias may be null.
inline void linear_forward(const LinearShape& shape, const float* x, const float* w, const float* bias, float* y,
                           bool relu = false) {
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
