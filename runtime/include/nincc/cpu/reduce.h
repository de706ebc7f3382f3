// Deterministic reductions of float data in double precision, shared by the kernels that sum over
// a batch (conv and linear bias gradients, batch-norm statistics, softmax normalisers).
#pragma once

#include <cstdint>

namespace nincc {
namespace cpu {

// Eight interleaved partial sums (element i goes to lane i % 8), combined in lane order: a fixed
// order, so the result is reproducible bit for bit, and independent lanes the compiler can keep in
// vector registers instead of one long chain of dependent additions.
constexpr int kReduceLanes = 8;

template <class Term>
inline double sum_in_double(std::int64_t count, Term term) {
  double lanes[kReduceLanes] = {};
  std::int64_t i = 0;
  for (; i + kReduceLanes <= count; i += kReduceLanes)
    for (int l = 0; l < kReduceLanes; ++l) lanes[l] += term(i + l);
  double total = 0.0;
  for (int l = 0; l < kReduceLanes; ++l) total += lanes[l];
  for (; i < count; ++i) total += term(i);
  return total;
}

// sum_i x[i]
inline double sum_of(const float* x, std::int64_t count) {
  return sum_in_double(count, [x](std::int64_t i) { return static_cast<double>(x[i]); });
}

// sum_i (x[i] - center)^2
inline double sum_of_squared_deviations(const float* x, std::int64_t count, double center) {
  return sum_in_double(count, [x, center](std::int64_t i) {
    const double d = x[i] - center;
    return d * d;
  });
}

// sum_i (x[i] - center) * y[i]
inline double sum_of_centered_products(const float* x, const float* y, std::int64_t count, double center) {
  return sum_in_double(count, [x, y, center](std::int64_t i) { return (x[i] - center) * static_cast<double>(y[i]); });
}

}  // namespace cpu
}  // namespace nincc
