// Dropout, Torch7 nn.Dropout (v2, the default): during training each element is zeroed with
// probability p and the kept ones are scaled by 1/(1-p); at inference it is the identity.
// The mask is never stored: it is a pure function of (seed, element index), recomputed by the
// backward pass, so forward and backward agree as long as they are given the same seed.
#pragma once

#include <cstdint>
#include <cstring>

#include "parallel.h"

namespace nincc {
namespace cpu {

namespace dropout_detail {

// SplitMix64's finaliser: a bijection of 64-bit words that scatters every input bit.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kGoldenGamma = 0x9E3779B97F4A7C15ull;  // SplitMix64's stream increment

}  // namespace dropout_detail

// A counter-based generator: the seed is mixed into a stream key, and element i draws the
// (i+1)-th output of SplitMix64 started at that key, computed directly from i. Stateless, so each
// element's draw is independent of the thread count, of how the loop is split and of the
// tensor's length; nearby seeds (step, step + 1) give unrelated keys.
inline std::uint64_t dropout_hash(std::uint64_t seed, std::uint64_t index) {
  using namespace dropout_detail;
  const std::uint64_t key = mix64(seed ^ kGoldenGamma);
  return mix64(key + (index + 1) * kGoldenGamma);
}

// Whether element `index` survives: a uniform u in [0, 1) from the hash's top 24 bits, kept if
// u >= p (so P(keep) = 1 - p, to within 2^-24).
inline bool dropout_keeps(std::uint64_t seed, std::uint64_t index, float p) {
  const float u = static_cast<float>(dropout_hash(seed, index) >> 40) * (1.0f / 16777216.0f);
  return u >= p;
}

// Training: y = keep ? x / (1 - p) : 0. Inference (training = false): y = x. y may alias x.
inline void dropout_forward(std::int64_t count, const float* x, float* y, float p, std::uint64_t seed,
                            bool training = true) {
  if (!training || p <= 0.f) {
    if (y != x) std::memmove(y, x, sizeof(float) * count);
    return;
  }
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;  // p = 1 drops everything
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i)
      y[i] = dropout_keeps(seed, static_cast<std::uint64_t>(i), p) ? x[i] * scale : 0.f;
  });
}

// dx = keep ? dy / (1 - p) : 0, with the mask the forward pass drew from the same seed.
inline void dropout_backward(std::int64_t count, const float* dy, float* dx, float p, std::uint64_t seed,
                             bool training = true) {
  dropout_forward(count, dy, dx, p, seed, training);
}

}  // namespace cpu
}  // namespace nincc
