// What the CPU micro-benchmarks in bench/cpu/*.cc share: deterministic test values and a median.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace nincc_bench {

// n values in [-scale/2, scale/2), the same on every run (a multiplicative hash of the index).
inline std::vector<float> values(std::size_t n, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 2654435761u) % 1000) / 1000.f - scale / 2;
  return v;
}

// The upper median (v[size/2] of the sorted values).
inline double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace nincc_bench
