// Batch normalisation, Torch7 (Spatial)BatchNormalization over NCHW (or N x C with plane 1):
// training and inference forward, training backward, and folding into a preceding convolution.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "bn_moments.h"
#include "parallel.h"
#include "reduce.h"

namespace nincc {
namespace cpu {

// x is batch x channels x plane (plane = H*W; 1 for nn.BatchNormalization on N x C).
struct BatchNormShape {
  int batch, channels;
  std::int64_t plane;
  constexpr std::int64_t per_channel() const { return batch * plane; }
  constexpr std::int64_t size() const { return per_channel() * channels; }
};

// Where BN's output y lies (and, backward, its gradient and the BN+ReLU's y): channels offset… of a
// total-channel NCHW tensor, a concat's output that a branch ending in this BN writes in place; total 0
// means BN's own channels. x, dx and a residual keep BN's own layout.
struct BatchNormOutput {
  int total = 0;
  int offset = 0;
  constexpr std::int64_t base(const BatchNormShape& shape, int n, int c) const {
    return (static_cast<std::int64_t>(n) * (total > 0 ? total : shape.channels) + offset + c) * shape.plane;
  }
};

// eps and momentum are doubles, as Torch passes them (a float 1e-3 is not the double 1e-3).
constexpr double kTorchBatchNormMomentum = 0.1;

namespace batchnorm_detail {

inline int channel_threads(const BatchNormShape& shape) {
  return shape.channels > 1 ? threads_for(shape.size()) : 1;
}

// A double split into two floats, hi + lo, so that (x - hi) - lo centres a float x almost as
// exactly as the double would: x - hi is exact when x is near hi, and lo restores the bits that
// rounding the mean to float lost (which matter when the mean is large next to the spread).
struct SplitFloat {
  float hi, lo;
  explicit SplitFloat(double v) : hi(static_cast<float>(v)), lo(static_cast<float>(v - hi)) {}
};

// y = (x - center) * scale + shift on every element of channel c, then optionally ReLU.
inline void normalize_channel(const BatchNormShape& shape, int c, const float* x, SplitFloat center, float scale,
                              float shift, bool relu, float* y, const float* residual = nullptr,
                              BatchNormOutput out = {}) {
  for (int n = 0; n < shape.batch; ++n) {
    const std::int64_t base = (static_cast<std::int64_t>(n) * shape.channels + c) * shape.plane;
    float* y_plane = y + out.base(shape, n, c);
    for (std::int64_t i = 0; i < shape.plane; ++i) {
      float v = ((x[base + i] - center.hi) - center.lo) * scale + shift;
      if (residual) v += residual[base + i];
      y_plane[i] = relu ? (v > 0.f ? v : 0.f) : v;
    }
  }
}

// The three sums of a plane the backward needs, sum (x - shift), sum dy and sum (x - shift) * dy, in one
// pass over x and dy instead of three, each exactly as reduce.h's sum_in_double takes it (element i in
// lane i % 8, lanes combined in order, the tail after), so the bits are those of the three passes; with
// relu_y, dy = dy_in masked by relu_y > 0, stored into dy_out on the way (the ReLU's backward).
struct BackwardSums {
  double x, dy, dot;
};
template <bool Relu>
inline BackwardSums backward_sums(const float* __restrict x, const float* __restrict dy_in, const float* __restrict relu_y,
                                  float* __restrict dy_out, std::int64_t count, double shift) {
  double x_lanes[kReduceLanes] = {}, dy_lanes[kReduceLanes] = {}, dot_lanes[kReduceLanes] = {};
  auto gradient = [&](std::int64_t i) {
    if constexpr (!Relu) return dy_in[i];
    const float g = relu_y[i] > 0.f ? dy_in[i] : 0.f;
    dy_out[i] = g;
    return g;
  };
  std::int64_t i = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  // The lanes are one register each (the compiler keeps the scalar form below scalar: ~5 cycles an element).
  static_assert(kReduceLanes == 8, "one __m512d of lanes");
  __m512d x_acc = _mm512_setzero_pd(), dy_acc = _mm512_setzero_pd(), dot_acc = _mm512_setzero_pd();
  const __m512d center = _mm512_set1_pd(shift);
  for (; i + kReduceLanes <= count; i += kReduceLanes) {
    const __m512d centered = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), center);
    __m256 g = _mm256_loadu_ps(dy_in + i);
    if constexpr (Relu) {
      g = _mm256_maskz_mov_ps(_mm256_cmp_ps_mask(_mm256_loadu_ps(relu_y + i), _mm256_setzero_ps(), _CMP_GT_OQ), g);
      _mm256_storeu_ps(dy_out + i, g);
    }
    const __m512d wide = _mm512_cvtps_pd(g);
    x_acc = _mm512_add_pd(x_acc, centered);
    dy_acc = _mm512_add_pd(dy_acc, wide);
    dot_acc = _mm512_add_pd(dot_acc, _mm512_mul_pd(centered, wide));
  }
  _mm512_storeu_pd(x_lanes, x_acc);
  _mm512_storeu_pd(dy_lanes, dy_acc);
  _mm512_storeu_pd(dot_lanes, dot_acc);
#endif
  for (; i + kReduceLanes <= count; i += kReduceLanes)
    for (int l = 0; l < kReduceLanes; ++l) {
      const double centered = x[i + l] - shift, g = gradient(i + l);
      x_lanes[l] += centered;
      dy_lanes[l] += g;
      dot_lanes[l] += centered * g;
    }
  BackwardSums sums{0.0, 0.0, 0.0};
  for (int l = 0; l < kReduceLanes; ++l) {
    sums.x += x_lanes[l];
    sums.dy += dy_lanes[l];
    sums.dot += dot_lanes[l];
  }
  for (; i < count; ++i) {
    const double centered = x[i] - shift, g = gradient(i);
    sums.x += centered;
    sums.dy += g;
    sums.dot += centered * g;
  }
  return sums;
}

// Channel c's batch mean and sum of squared deviations from it. OnePass: one pass of forward_sums around a
// value of the channel (its first), corrected to the mean in double: sum (x - m)^2 = sum (x - s)^2 - n (m - s)^2,
// whose cancellation costs (m - s)^2 / var of double's 53 bits, a few bits when s is one of the channel's values.
// Otherwise two passes (the mean, then the squares around it), one more read of x.
struct ChannelMoments {
  double mean, squares;
};
template <bool OnePass>
inline ChannelMoments channel_moments(const BatchNormShape& shape, const float* x, std::int64_t c) {
  const std::int64_t count = shape.per_channel();
  auto plane_of = [&](int n) { return x + (static_cast<std::int64_t>(n) * shape.channels + c) * shape.plane; };
  if constexpr (OnePass) {
    const double shift = plane_of(0)[0];
    double centered = 0.0, squares = 0.0;
    for (int n = 0; n < shape.batch; ++n) {
      const ForwardSums sums = forward_sums(plane_of(n), shape.plane, shift);
      centered += sums.x;
      squares += sums.squares;
    }
    const double offset = centered / count;  // mean - shift
    return {shift + offset, std::max(0.0, squares - offset * centered)};
  } else {
    double sum = 0.0;
    for (int n = 0; n < shape.batch; ++n) sum += sum_of(plane_of(n), shape.plane);
    const double mean = sum / count;
    double squares = 0.0;
    for (int n = 0; n < shape.batch; ++n) squares += sum_of_squared_deviations(plane_of(n), shape.plane, mean);
    return {mean, squares};
  }
}

// The same from the producing conv's per-tile sums (ConvMoments, recorded by its GEMM epilogue), with no read of
// x: each tile's sums moved, in double, to the shift of the channel's first tile, s: Σ(y - s) = Σ(y - t) +
// n (t - s) and Σ(y - s)² = Σ(y - t)² + 2 (t - s) Σ(y - t) + n (t - s)², summed in tile order (the same bits on
// any thread count), then corrected to the mean as the one pass is.
inline ChannelMoments channel_moments_from_conv(const BatchNormShape& shape, const ConvMoments& m, int c) {
  const std::int64_t count = shape.per_channel(), pixels = shape.batch * shape.plane;
  const double shift = m.at(c, 0)[0];
  double centered = 0.0, squares = 0.0;
  for (std::int64_t q = 0; q < m.tiles; ++q) {
    const double* t = m.at(c, q);
    const double n = static_cast<double>(std::min<std::int64_t>(kBnMomentTilePixels, pixels - q * kBnMomentTilePixels));
    const double d = t[0] - shift;
    centered += t[1] + n * d;
    squares += t[2] + 2.0 * d * t[1] + n * d * d;
  }
  const double offset = centered / count;
  return {shift + offset, std::max(0.0, squares - offset * centered)};
}

}  // namespace batchnorm_detail

// Training forward. Per channel: mean and biased variance of x over batch and plane (in double, around a
// value of the channel, so large means do not cancel: channel_moments), then y = (x - mean) * invstd * gamma + beta with
// invstd = 1/sqrt(var + eps). Saves mean and invstd for the backward pass and updates
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * count / (count - 1)
// (the unbiased variance, as Torch does). gamma/beta may be null (no affine: 1 and 0). With a
// single value per channel the unbiased variance would be 0/0; it is taken as 0 there instead.
// y may alias x when no backward pass follows (it needs x). Optional fused ReLU on y, and before it an
// optional `residual` (laid out as x) added: a residual block's add when this BN closes a branch. `out`:
// y's place in a concat's output (BatchNormOutput).
// OnePassStats false: the statistics' two passes over x (compiler/ablations.ts cpuBnOnePassStats). `from_conv`: the
// statistics from the per-tile sums x's conv recorded as it stored x (ConvMoments; ablation cpuBnStatsInConv), x
// then read once, to normalise it.
template <bool OnePassStats = true>
inline void batchnorm_forward_train(const BatchNormShape& shape, const float* x, const float* gamma,
                                    const float* beta, float* y, float* save_mean, float* save_invstd,
                                    float* running_mean, float* running_var, double eps,
                                    double momentum = kTorchBatchNormMomentum, bool relu = false,
                                    const float* residual = nullptr, BatchNormOutput out = {},
                                    const ConvMoments& from_conv = {}) {
  const std::int64_t count = shape.per_channel();
  parallel_for_threads(shape.channels, batchnorm_detail::channel_threads(shape), [&](std::int64_t c) {
    const auto [mean, squares] = from_conv.partials ? batchnorm_detail::channel_moments_from_conv(shape, from_conv, static_cast<int>(c))
                                                    : batchnorm_detail::channel_moments<OnePassStats>(shape, x, c);
    const double biased_var = squares / count;
    const double unbiased_var = count > 1 ? squares / (count - 1) : 0.0;
    const float invstd = static_cast<float>(1.0 / std::sqrt(biased_var + eps));
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = invstd;
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased_var);
    const float g = gamma ? gamma[c] : 1.f;
    const float b = beta ? beta[c] : 0.f;
    batchnorm_detail::normalize_channel(shape, c, x, batchnorm_detail::SplitFloat(mean), invstd * g, b, relu, y, residual, out);
  });
}

// Inference forward: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta, optional ReLU.
inline void batchnorm_forward_eval(const BatchNormShape& shape, const float* x, const float* gamma,
                                   const float* beta, const float* running_mean, const float* running_var,
                                   float* y, double eps, bool relu = false) {
  parallel_for_threads(shape.channels, batchnorm_detail::channel_threads(shape), [&](std::int64_t c) {
    const float invstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
    const float g = gamma ? gamma[c] : 1.f;
    const float b = beta ? beta[c] : 0.f;
    batchnorm_detail::normalize_channel(shape, c, x, batchnorm_detail::SplitFloat(running_mean[c]), invstd * g, b,
                                        relu, y);
  });
}

// batchnorm_backward with the gradient of plane (n, c) from `dy_plane_of(n, c, dx_plane)`, which returns it and, with
// relu_y, may first write it into dx's plane, dx_plane (bn_pool_backward.h scatters the max pool's gradient there, in
// cache). Without relu_y it is asked again for the last loop, with dx_plane null, and must return the same plane.
template <class DyPlaneOf>
inline void batchnorm_backward_from(const BatchNormShape& shape, const float* x, const float* gamma,
                                    const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                                    float* dbeta, const float* relu_y, BatchNormOutput out, DyPlaneOf dy_plane_of) {
  const std::int64_t count = shape.per_channel();
  parallel_for_threads(shape.channels, batchnorm_detail::channel_threads(shape), [&](std::int64_t c) {
    const double shift = save_mean[c];
    double x_sum = 0.0, dy_sum = 0.0, shifted_dot = 0.0;  // sums of (x - shift), dy, (x - shift) * dy
    for (int n = 0; n < shape.batch; ++n) {
      const std::int64_t base = (static_cast<std::int64_t>(n) * shape.channels + c) * shape.plane;
      const std::int64_t at = out.base(shape, n, static_cast<int>(c));  // relu_y's plane
      const float* dy_in = dy_plane_of(n, static_cast<int>(c), dx + base);
      const batchnorm_detail::BackwardSums sums =
          relu_y ? batchnorm_detail::backward_sums<true>(x + base, dy_in, relu_y + at, dx + base, shape.plane, shift)
                 : batchnorm_detail::backward_sums<false>(x + base, dy_in, nullptr, dx + base, shape.plane, shift);
      x_sum += sums.x;
      dy_sum += sums.dy;
      shifted_dot += sums.dot;
    }
    const double mean_offset = x_sum / count;  // exact batch mean - saved mean
    const double centered_dot = shifted_dot - mean_offset * dy_sum;
    const float invstd = save_invstd[c];
    if (dgamma) dgamma[c] = static_cast<float>(centered_dot * invstd);
    if (dbeta) dbeta[c] = static_cast<float>(dy_sum);
    const float dy_mean = static_cast<float>(dy_sum / count);
    const float x_coeff = static_cast<float>(centered_dot * invstd * invstd / count);
    const float out_scale = invstd * (gamma ? gamma[c] : 1.f);
    const batchnorm_detail::SplitFloat mean(shift + mean_offset);
    for (int n = 0; n < shape.batch; ++n) {
      const std::int64_t base = (static_cast<std::int64_t>(n) * shape.channels + c) * shape.plane;
      // The gradient the last loop reads: with relu_y, the masked gradient, which lives in dx until this loop
      // overwrites it; otherwise the source's plane.
      const float* dy = relu_y ? dx + base : dy_plane_of(n, static_cast<int>(c), nullptr);
      for (std::int64_t i = 0; i < shape.plane; ++i) {
        const float centered = (x[base + i] - mean.hi) - mean.lo;
        dx[base + i] = (dy[i] - dy_mean - centered * x_coeff) * out_scale;
      }
    }
  });
}

// Training backward, from the forward's input x and its saved mean/invstd (Torch's formula):
//   dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean((x - mean) * dy)) * invstd * gamma
//   dgamma = sum((x - mean) * dy) * invstd,  dbeta = sum(dy)
// dx, dgamma and dbeta are overwritten; dgamma/dbeta may be null, and gamma null means 1.
// dy is the gradient of BN's own output, or, with `relu_y` (the output of the BN+ReLU forward pass),
// of the ReLU after it: then the ReLU's backward, dy·[relu_y > 0], is taken in this pass (one fewer
// pass over the activation), written into dx plane by plane while the plane is in cache, and read back
// from there; the result is bit for bit that of relu_backward then batchnorm_backward. dx may alias dy.
// The saved mean is a float; the sums are taken around it and corrected to the exact batch mean
// in double, so a large mean costs no accuracy (Torch's own float mean would). `out`: where dy_in and relu_y
// lie, the forward's y's place in a concat's output (BatchNormOutput); dx keeps x's layout.
inline void batchnorm_backward(const BatchNormShape& shape, const float* x, const float* dy_in, const float* gamma,
                               const float* save_mean, const float* save_invstd, float* dx, float* dgamma,
                               float* dbeta, const float* relu_y = nullptr, BatchNormOutput out = {}) {
  batchnorm_backward_from(shape, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, relu_y, out,
                          [&](int n, int c, float*) { return dy_in + out.base(shape, n, c); });
}

// Folds an inference-mode BN into the convolution (or linear layer) before it:
//   w'[k][.] = w[k][.] * gamma[k] / sqrt(running_var[k] + eps)
//   b'[k]    = (b[k] - running_mean[k]) * gamma[k] / sqrt(running_var[k] + eps) + beta[k]
// `fan_in` is the number of weights per output channel (in_channels*kernel_h*kernel_w); `bias`
// may be null (a conv without bias); gamma/beta may be null (no affine). w_out/b_out may alias
// w/bias. Scale factors are computed in double.
inline void fold_batchnorm(int out_channels, std::int64_t fan_in, const float* w, const float* bias,
                           const float* gamma, const float* beta, const float* running_mean,
                           const float* running_var, float* w_out, float* b_out, double eps) {
  for (int k = 0; k < out_channels; ++k) {
    const double scale = (gamma ? gamma[k] : 1.0) / std::sqrt(static_cast<double>(running_var[k]) + eps);
    for (std::int64_t i = 0; i < fan_in; ++i) {
      const std::int64_t at = k * fan_in + i;
      w_out[at] = static_cast<float>(w[at] * scale);
    }
    const double b = bias ? bias[k] : 0.0;
    b_out[k] = static_cast<float>((b - running_mean[k]) * scale + (beta ? beta[k] : 0.0));
  }
}

}  // namespace cpu
}  // namespace nincc
