// Batch norm: training forward (biased variance for normalising, unbiased for the running
// variance, momentum 0.1), inference forward, backward, and folding into a convolution.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/activation.h"
#include "nincc/cpu/batchnorm.h"
#include "nincc/cpu/bn_pool_backward.h"
#include "nincc/cpu/channels.h"
#include "nincc/cpu/conv.h"
#include "nincc/cpu/pointwise.h"
#include "nincc/cpu/pool.h"
#include "reference_conv_pool.h"
#include "reference_dense.h"

namespace kernels_test {
namespace {

using nincc::cpu::BatchNormShape;

void check_reference_gradients(Rng& rng) {
  const RefBatchNorm s{3, 2, 5};
  const std::vector<double> x = to_double(random_floats(30, rng)), dy = to_double(random_floats(30, rng));
  const std::vector<double> gamma = to_double(random_floats(2, rng, 0, 1)), beta = to_double(random_floats(2, rng));
  const std::vector<double> zeros(2, 0.0), ones(2, 1.0);
  const double eps = 1e-3;
  auto loss = [&](const std::vector<double>& xv, const std::vector<double>& g, const std::vector<double>& b) {
    return dot(ref_batchnorm_train(s, xv, g, b, zeros, ones, eps, 0.1).y, dy);
  };
  const BatchNormGradients want = ref_batchnorm_backward(s, x, gamma, dy, eps);
  CHECK_GRADIENT(x, want.dx, [&](const std::vector<double>& v) { return loss(v, gamma, beta); }, "reference bn dx");
  CHECK_GRADIENT(gamma, want.dgamma, [&](const std::vector<double>& v) { return loss(x, v, beta); },
                 "reference bn dgamma");
  CHECK_GRADIENT(beta, want.dbeta, [&](const std::vector<double>& v) { return loss(x, gamma, v); },
                 "reference bn dbeta");
}

// Four values 1, 2, 3, 4 in one channel: mean 2.5, biased variance 1.25, unbiased 5/3.
void check_variance_and_momentum() {
  const BatchNormShape s{4, 1, 1};
  const float x[4] = {1, 2, 3, 4}, gamma = 1.f, beta = 0.f;
  float y[4], mean, invstd, running_mean = 1.f, running_var = 2.f;
  nincc::cpu::batchnorm_forward_train(s, x, &gamma, &beta, y, &mean, &invstd, &running_mean, &running_var, 1e-5);
  CHECK(mean == 2.5f);
  CHECK(std::fabs(invstd - 1.0 / std::sqrt(1.25 + 1e-5)) < 1e-6);
  CHECK(std::fabs(running_mean - (0.9 * 1.0 + 0.1 * 2.5)) < 1e-6);
  CHECK(std::fabs(running_var - (0.9 * 2.0 + 0.1 * 5.0 / 3.0)) < 1e-6);
  CHECK(std::fabs(y[0] - (1 - 2.5) / std::sqrt(1.25 + 1e-5)) < 1e-6);
}

void check_shape(const BatchNormShape& s, double offset, Rng& rng) {
  char what[96];
  std::snprintf(what, sizeof what, "batchnorm n%d c%d plane%lld offset %g", s.batch, s.channels,
                static_cast<long long>(s.plane), offset);
  const RefBatchNorm r{s.batch, s.channels, static_cast<int>(s.plane)};
  std::vector<float> x = random_floats(s.size(), rng);
  for (float& v : x) v = static_cast<float>(v + offset);  // a large mean tests the variance's stability
  const std::vector<float> gamma = random_floats(s.channels, rng, 0, 1), beta = random_floats(s.channels, rng);
  const std::vector<float> rm0 = random_floats(s.channels, rng), rv0 = random_floats(s.channels, rng, 0.5, 2);
  const std::vector<float> dy = random_floats(s.size(), rng);
  const double eps = 1e-3;
  const BatchNormTrainResult want = ref_batchnorm_train(r, to_double(x), to_double(gamma), to_double(beta),
                                                        to_double(rm0), to_double(rv0), eps, 0.1);

  std::vector<float> y = poisoned(x.size()), mean = poisoned(s.channels), invstd = poisoned(s.channels);
  std::vector<float> rm = rm0, rv = rv0;
  nincc::cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                      rm.data(), rv.data(), eps);
  CHECK_CLOSE(y, want.y, 2e-5, what);
  CHECK_CLOSE(mean, want.mean, 1e-6, what);
  CHECK_CLOSE(invstd, want.invstd, 2e-5, what);
  CHECK_CLOSE(rm, want.running_mean, 1e-6, what);
  CHECK_CLOSE(rv, want.running_var, 2e-5, what);

  std::vector<float> y_relu = poisoned(x.size());
  rm = rm0, rv = rv0;
  nincc::cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), y_relu.data(), mean.data(),
                                      invstd.data(), rm.data(), rv.data(), eps, 0.1, true);
  std::vector<double> want_relu = want.y;
  for (double& v : want_relu) v = std::max(v, 0.0);
  CHECK_CLOSE(y_relu, want_relu, 2e-5, what);

  std::vector<float> y_eval = poisoned(x.size());
  nincc::cpu::batchnorm_forward_eval(s, x.data(), gamma.data(), beta.data(), rm0.data(), rv0.data(), y_eval.data(),
                                     eps);
  const std::vector<double> want_eval =
      ref_batchnorm_eval(r, to_double(x), to_double(gamma), to_double(beta), to_double(rm0), to_double(rv0), eps);
  CHECK_CLOSE(y_eval, want_eval, 2e-5, what);

  const BatchNormGradients grads = ref_batchnorm_backward(r, to_double(x), to_double(gamma), to_double(dy), eps);
  std::vector<float> dx = poisoned(x.size()), dgamma = poisoned(s.channels), dbeta = poisoned(s.channels);
  nincc::cpu::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                 dgamma.data(), dbeta.data());
  if (s.per_channel() > 1) CHECK_CLOSE(dx, grads.dx, 2e-5, what);  // one value: dx is 0 up to rounding
  CHECK_CLOSE(dgamma, grads.dgamma, 2e-5, what);
  CHECK_CLOSE(dbeta, grads.dbeta, 1e-6, what);
}

// The BN+ReLU backward (relu_y given): against the float64 backward of the ReLU-masked gradient, on 1, 2
// and all threads (the shape is large enough for batchnorm.h to split its channels), with dx apart from
// and aliasing dy, and bit for bit equal to relu_backward then batchnorm_backward, which it replaces.
// Random x, gamma and beta, and the BN+ReLU training forward of them (eps 1e-3): what the fused backwards' checks start from.
struct BnReluForward {
  std::vector<float> x, gamma, y, mean, invstd;
};
BnReluForward bn_relu_forward(const BatchNormShape& s, Rng& rng) {
  BnReluForward f{random_floats(s.size(), rng), random_floats(s.channels, rng, 0, 1), poisoned(s.size()), poisoned(s.channels),
                  poisoned(s.channels)};
  const std::vector<float> beta = random_floats(s.channels, rng);
  std::vector<float> rm(s.channels, 0.f), rv(s.channels, 1.f);
  nincc::cpu::batchnorm_forward_train(s, f.x.data(), f.gamma.data(), beta.data(), f.y.data(), f.mean.data(), f.invstd.data(),
                                      rm.data(), rv.data(), 1e-3, 0.1, true);
  return f;
}

void check_relu_fused_backward(const BatchNormShape& s, Rng& rng) {
  char what[96];
  std::snprintf(what, sizeof what, "batchnorm+relu backward n%d c%d plane%lld", s.batch, s.channels,
                static_cast<long long>(s.plane));
  const RefBatchNorm r{s.batch, s.channels, static_cast<int>(s.plane)};
  const BnReluForward f = bn_relu_forward(s, rng);
  const std::vector<float>&x = f.x, &gamma = f.gamma, &y = f.y, &mean = f.mean, &invstd = f.invstd;
  const std::vector<float> dy = random_floats(s.size(), rng);
  const double eps = 1e-3;
  std::vector<double> masked = to_double(dy);
  int zeros = 0;
  for (std::size_t i = 0; i < masked.size(); ++i)
    if (!(y[i] > 0.f)) masked[i] = 0.0, ++zeros;
  CHECK(zeros > 0 && zeros < static_cast<int>(masked.size()));  // the mask matters
  const BatchNormGradients want = ref_batchnorm_backward(r, to_double(x), to_double(gamma), masked, eps);
  on_1_2_and_all_threads([&] {
    std::vector<float> dx = poisoned(x.size()), dgamma = poisoned(s.channels), dbeta = poisoned(s.channels);
    nincc::cpu::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                   dgamma.data(), dbeta.data(), y.data());
    CHECK_CLOSE(dx, want.dx, 2e-5, what);
    CHECK_CLOSE(dgamma, want.dgamma, 2e-5, what);
    CHECK_CLOSE(dbeta, want.dbeta, 1e-6, what);

    std::vector<float> in_place = dy;  // dx aliasing the gradient it reads
    nincc::cpu::batchnorm_backward(s, x.data(), in_place.data(), gamma.data(), mean.data(), invstd.data(),
                                   in_place.data(), nullptr, nullptr, y.data());
    CHECK(in_place == dx);

    std::vector<float> relu_dx = poisoned(x.size()), two_pass = poisoned(x.size());
    std::vector<float> two_dgamma = poisoned(s.channels), two_dbeta = poisoned(s.channels);
    nincc::cpu::relu_backward(s.size(), y.data(), dy.data(), relu_dx.data());
    nincc::cpu::batchnorm_backward(s, x.data(), relu_dx.data(), gamma.data(), mean.data(), invstd.data(),
                                   two_pass.data(), two_dgamma.data(), two_dbeta.data());
    CHECK(two_pass == dx && two_dgamma == dgamma && two_dbeta == dbeta);
  });
}

// The BN+ReLU backward that takes the max pool's backward plane by plane (bn_pool_backward.h; ablation
// cpuBnPoolBackward): against the float64 backward of the pool's routed gradient masked by the ReLU, and bit for bit
// equal to maxpool_backward then the BN+ReLU backward, which it replaces; on 1, 2 and all threads. `pool`'s batch,
// channels and plane are the BN's.
void check_relu_maxpool_backward(const nincc::cpu::Pool2dShape& pool, Rng& rng) {
  char what[96];
  std::snprintf(what, sizeof what, "batchnorm+relu+maxpool backward n%d c%d %dx%d", pool.batch, pool.channels,
                pool.in_h, pool.in_w);
  const BatchNormShape s{pool.batch, pool.channels, pool.in_plane()};
  const RefBatchNorm r{s.batch, s.channels, static_cast<int>(s.plane)};
  const BnReluForward f = bn_relu_forward(s, rng);
  const std::vector<float>&x = f.x, &gamma = f.gamma, &y = f.y, &mean = f.mean, &invstd = f.invstd;
  const double eps = 1e-3;
  const std::size_t pooled = static_cast<std::size_t>(pool.planes() * pool.out_plane());
  std::vector<float> pool_y = poisoned(pooled), pool_dy = random_floats(pooled, rng);
  std::vector<std::int32_t> argmax(pooled, -7);
  nincc::cpu::maxpool_forward(pool, y.data(), pool_y.data(), argmax.data());
  std::vector<double> masked = ref_maxpool_backward(pool, std::vector<int>(argmax.begin(), argmax.end()), to_double(pool_dy));
  int zeros = 0, routed = 0;
  for (std::size_t i = 0; i < masked.size(); ++i) {
    routed += masked[i] != 0.0;
    if (!(y[i] > 0.f)) masked[i] = 0.0, ++zeros;
  }
  CHECK(zeros > 0 && routed > zeros / 4);  // the mask and the routing both matter
  const BatchNormGradients want = ref_batchnorm_backward(r, to_double(x), to_double(gamma), masked, eps);
  on_1_2_and_all_threads([&] {
    std::vector<float> dx = poisoned(x.size()), dgamma = poisoned(s.channels), dbeta = poisoned(s.channels);
    nincc::cpu::batchnorm_relu_maxpool_backward(s, pool, x.data(), pool_dy.data(), argmax.data(), y.data(), gamma.data(),
                                                mean.data(), invstd.data(), dx.data(), dgamma.data(), dbeta.data());
    CHECK_CLOSE(dx, want.dx, 2e-5, what);
    CHECK_CLOSE(dgamma, want.dgamma, 2e-5, what);
    CHECK_CLOSE(dbeta, want.dbeta, 1e-6, what);

    std::vector<float> pool_dx = poisoned(x.size()), two_pass = poisoned(x.size());
    std::vector<float> two_dgamma = poisoned(s.channels), two_dbeta = poisoned(s.channels);
    nincc::cpu::maxpool_backward(pool, pool_dy.data(), argmax.data(), pool_dx.data());
    nincc::cpu::batchnorm_backward(s, x.data(), pool_dx.data(), gamma.data(), mean.data(), invstd.data(), two_pass.data(),
                                   two_dgamma.data(), two_dbeta.data(), y.data());
    CHECK(two_pass == dx && two_dgamma == dgamma && two_dbeta == dbeta);
  });
}

// A concat branch ending in a BN+ReLU, a BN, a ReLU or a Tanh that writes channels offset… of a total-channel joined
// tensor, and its backward reading y and dy there (BatchNormOutput; channels.h relu_/tanh_forward_into, _backward_from): bit
// for bit the dense kernels' results (checked against float64 above) with the slice copied in and out, the
// joined tensor's other channels untouched; on 1, 2 and all threads, and the BN backward without the ReLU too.
void check_concat_slot(const BatchNormShape& s, int total, int offset, Rng& rng) {
  char what[96];
  std::snprintf(what, sizeof what, "concat slot n%d c%d plane%lld at %d of %d", s.batch, s.channels,
                static_cast<long long>(s.plane), offset, total);
  const nincc::cpu::ChannelSlice slice{s.batch, s.channels, total, offset, s.plane};
  const std::int64_t joined_size = static_cast<std::int64_t>(s.batch) * total * s.plane;
  const std::vector<float> x = random_floats(s.size(), rng), joined_dy = random_floats(joined_size, rng);
  const std::vector<float> gamma = random_floats(s.channels, rng, 0, 1), beta = random_floats(s.channels, rng);
  const double eps = 1e-3;
  std::vector<float> dy(s.size());
  nincc::cpu::channels_take(slice, joined_dy.data(), dy.data());
  on_1_2_and_all_threads([&] {
    for (bool relu : {true, false}) {
      // Dense: y, then its backward from dy.
      std::vector<float> y = poisoned(x.size()), mean = poisoned(s.channels), invstd = poisoned(s.channels);
      std::vector<float> rm(s.channels, 0.f), rv(s.channels, 1.f);
      nincc::cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                          rm.data(), rv.data(), eps, 0.1, relu);
      std::vector<float> dx = poisoned(x.size()), dgamma = poisoned(s.channels), dbeta = poisoned(s.channels);
      nincc::cpu::batchnorm_backward(s, x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), dx.data(),
                                     dgamma.data(), dbeta.data(), relu ? y.data() : nullptr);
      // In the slot: the joined tensor's other channels keep their poison (NaN: compared as bits).
      std::vector<float> joined = poisoned(joined_size), want_joined = poisoned(joined_size);
      nincc::cpu::channels_place(slice, y.data(), want_joined.data());
      std::vector<float> slot_mean = poisoned(s.channels), slot_invstd = poisoned(s.channels);
      std::vector<float> slot_rm(s.channels, 0.f), slot_rv(s.channels, 1.f);
      const nincc::cpu::BatchNormOutput out{total, offset};
      nincc::cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), joined.data(), slot_mean.data(),
                                          slot_invstd.data(), slot_rm.data(), slot_rv.data(), eps, 0.1, relu, nullptr, out);
      CHECK(std::memcmp(joined.data(), want_joined.data(), sizeof(float) * joined.size()) == 0);
      CHECK(slot_mean == mean && slot_invstd == invstd && slot_rm == rm && slot_rv == rv);
      std::vector<float> slot_dx = poisoned(x.size()), slot_dgamma = poisoned(s.channels), slot_dbeta = poisoned(s.channels);
      nincc::cpu::batchnorm_backward(s, x.data(), joined_dy.data(), gamma.data(), mean.data(), invstd.data(),
                                     slot_dx.data(), slot_dgamma.data(), slot_dbeta.data(), relu ? joined.data() : nullptr, out);
      CHECK(slot_dx == dx && slot_dgamma == dgamma && slot_dbeta == dbeta);
    }
    // A ReLU alone: its slice of the joined tensor, and its backward from the joined y and dy.
    std::vector<float> y = poisoned(x.size()), want_joined = poisoned(joined_size), joined = poisoned(joined_size);
    nincc::cpu::relu_forward(s.size(), x.data(), y.data());
    nincc::cpu::channels_place(slice, y.data(), want_joined.data());
    nincc::cpu::relu_forward_into(slice, x.data(), joined.data());
    CHECK(std::memcmp(joined.data(), want_joined.data(), sizeof(float) * joined.size()) == 0);
    std::vector<float> dx = poisoned(x.size()), slot_dx = poisoned(x.size());
    nincc::cpu::relu_backward(s.size(), y.data(), dy.data(), dx.data());
    nincc::cpu::relu_backward_from(slice, joined.data(), joined_dy.data(), slot_dx.data());
    CHECK(slot_dx == dx);
    // A Tanh alone, the same way.
    std::vector<float> t = poisoned(x.size()), want_t = poisoned(joined_size), joined_t = poisoned(joined_size);
    nincc::cpu::tanh_forward(s.size(), x.data(), t.data());
    nincc::cpu::channels_place(slice, t.data(), want_t.data());
    nincc::cpu::tanh_forward_into(slice, x.data(), joined_t.data());
    CHECK(std::memcmp(joined_t.data(), want_t.data(), sizeof(float) * joined_t.size()) == 0);
    std::vector<float> t_dx = poisoned(x.size()), slot_t_dx = poisoned(x.size());
    nincc::cpu::tanh_backward(s.size(), t.data(), dy.data(), t_dx.data());
    nincc::cpu::tanh_backward_from(slice, joined_t.data(), joined_dy.data(), slot_t_dx.data());
    CHECK(slot_t_dx == t_dx);
  });
}

// conv -> bn(eval) equals the conv with the BN folded into its weights and bias.
// The training forward's one-pass statistics (batchnorm.h channel_moments<true>, around each channel's first
// value) when that value is far from the mean: a large mean (1000) and each channel's first value 100 spreads
// off it, so sum (x - s)^2 is ~10^4 times the squares about the mean that it must give after its correction.
// Against the float64 reference at the tolerances check_shape uses, on 1, 2 and all threads, bit for bit the
// same on each; the two-pass form (<false>, the cpuBnOnePassStats ablation) against the same reference.
void check_one_pass_statistics(const BatchNormShape& s, Rng& rng) {
  char what[96];
  std::snprintf(what, sizeof what, "batchnorm one-pass statistics n%d c%d plane%lld", s.batch, s.channels,
                static_cast<long long>(s.plane));
  const RefBatchNorm r{s.batch, s.channels, static_cast<int>(s.plane)};
  std::vector<float> x = random_floats(s.size(), rng);
  for (float& v : x) v = static_cast<float>(v + 1000.0);
  for (int c = 0; c < s.channels; ++c) x[static_cast<std::size_t>(c) * s.plane] = 1100.f;  // the shift: an outlier
  const std::vector<float> gamma = random_floats(s.channels, rng, 0, 1), beta = random_floats(s.channels, rng);
  const std::vector<float> rm0 = random_floats(s.channels, rng), rv0 = random_floats(s.channels, rng, 0.5, 2);
  const double eps = 1e-3;
  const BatchNormTrainResult want = ref_batchnorm_train(r, to_double(x), to_double(gamma), to_double(beta),
                                                        to_double(rm0), to_double(rv0), eps, 0.1);
  auto forward = [&](auto one_pass) {
    std::vector<float> y = poisoned(x.size()), mean = poisoned(s.channels), invstd = poisoned(s.channels);
    std::vector<float> rm = rm0, rv = rv0;
    nincc::cpu::batchnorm_forward_train<decltype(one_pass)::value>(s, x.data(), gamma.data(), beta.data(), y.data(),
                                                                   mean.data(), invstd.data(), rm.data(), rv.data(), eps);
    CHECK_CLOSE(y, want.y, 2e-5, what);
    CHECK_CLOSE(mean, want.mean, 1e-6, what);
    CHECK_CLOSE(invstd, want.invstd, 2e-5, what);
    CHECK_CLOSE(rm, want.running_mean, 1e-6, what);
    CHECK_CLOSE(rv, want.running_var, 2e-5, what);
    return y;
  };
  std::vector<float> first;
  on_1_2_and_all_threads([&] {
    const std::vector<float> y = forward(std::true_type{});
    if (first.empty()) first = y;
    CHECK(std::memcmp(y.data(), first.data(), y.size() * sizeof(float)) == 0);
  });
  forward(std::false_type{});
}

// The training BN forward on the per-tile sums its conv's GEMM epilogue recorded (conv_gemm.h store_tile, bn_moments.h;
// opt-in cpuBnStatsInConv): against the float64 reference BN of the conv's own float output, against the BN's own
// pass over that output, y bit for bit what the conv stores without the sums, and the same bits on 1, 2 and all
// threads. `bias_level` lifts the channels' means far from their spread (the shifts' work).
void check_statistics_from_conv(const nincc::cpu::Conv2dShape& cs, double bias_level, Rng& rng) {
  using namespace nincc::cpu;
  char what[128];
  std::snprintf(what, sizeof what, "batchnorm statistics from the conv n%d c%d k%d %dx%d plane%lld bias%g", cs.batch,
                cs.in_channels, cs.out_channels, cs.kernel_h, cs.kernel_w, static_cast<long long>(cs.out_plane()), bias_level);
  const BatchNormShape s{cs.batch, cs.out_channels, cs.out_plane()};
  const std::vector<float> x = random_floats(conv_x_size(cs), rng), w = random_floats(conv_w_size(cs), rng);
  std::vector<float> b = random_floats(cs.out_channels, rng);
  for (float& v : b) v = static_cast<float>(v + bias_level);
  const std::vector<float> gamma = random_floats(s.channels, rng, 0, 1), beta = random_floats(s.channels, rng);
  const std::vector<float> rm0 = random_floats(s.channels, rng), rv0 = random_floats(s.channels, rng, 0.5, 2);
  const double eps = 1e-3;
  std::vector<float> plain = poisoned(s.size());
  conv2d_forward(cs, x.data(), w.data(), b.data(), plain.data());
  const RefBatchNorm r{s.batch, s.channels, static_cast<int>(s.plane)};
  const BatchNormTrainResult want = ref_batchnorm_train(r, to_double(plain), to_double(gamma), to_double(beta),
                                                        to_double(rm0), to_double(rv0), eps, 0.1);
  std::vector<float> pass_mean(s.channels), pass_invstd(s.channels);
  {
    std::vector<float> y(s.size()), rm = rm0, rv = rv0;
    batchnorm_forward_train(s, plain.data(), gamma.data(), beta.data(), y.data(), pass_mean.data(), pass_invstd.data(),
                            rm.data(), rv.data(), eps);
  }
  // As compiler/lower/ops.ts sizes it: 6 floats a channel and 8-pixel tile of an image.
  const std::size_t partial_floats = static_cast<std::size_t>(cs.batch) * cs.out_channels *
                                     ((s.plane + kBnMomentMinTilePixels - 1) / kBnMomentMinTilePixels) * 6;
  std::vector<float> first;
  on_1_2_and_all_threads([&] {
    std::vector<float> conv_y = poisoned(s.size()), partials = poisoned(partial_floats);
    const ConvMoments moments = ConvMoments::over(partials.data(), s.batch * s.plane);
    conv2d_forward(cs, x.data(), w.data(), b.data(), conv_y.data(), false, ConvOutput{nullptr, 0, 0, moments});
    CHECK(std::memcmp(conv_y.data(), plain.data(), plain.size() * sizeof(float)) == 0);
    std::vector<float> y = poisoned(s.size()), mean = poisoned(s.channels), invstd = poisoned(s.channels);
    std::vector<float> rm = rm0, rv = rv0;
    batchnorm_forward_train(s, conv_y.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(), rm.data(),
                            rv.data(), eps, 0.1, false, nullptr, BatchNormOutput{}, moments);
    CHECK_CLOSE(y, want.y, 2e-5, what);
    CHECK_CLOSE(mean, want.mean, 1e-6, what);
    CHECK_CLOSE(invstd, want.invstd, 2e-5, what);
    CHECK_CLOSE(rm, want.running_mean, 1e-6, what);
    CHECK_CLOSE(rv, want.running_var, 2e-5, what);
    CHECK_CLOSE(mean, to_double(pass_mean), 1e-6, what);
    CHECK_CLOSE(invstd, to_double(pass_invstd), 2e-5, what);
    if (first.empty()) first = y;
    CHECK(std::memcmp(y.data(), first.data(), y.size() * sizeof(float)) == 0);
  });
}

void check_fold(bool conv_has_bias, Rng& rng) {
  const Conv2dShape s{2, 5, 7, 6, 9, 3, 3, 1, 1, 1, 1};
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng);
  const std::vector<float> gamma = random_floats(s.out_channels, rng, 0, 1), beta = random_floats(s.out_channels, rng);
  const std::vector<float> rm = random_floats(s.out_channels, rng), rv = random_floats(s.out_channels, rng, 0.1, 3);
  const double eps = 1e-3;
  const std::vector<double> bd = to_double(b);
  const std::vector<double> conv_out =
      ref_conv_forward(s, to_double(x), to_double(w), conv_has_bias ? &bd : nullptr, false);
  const RefBatchNorm r{s.batch, s.out_channels, static_cast<int>(s.out_plane())};
  const std::vector<double> want =
      ref_batchnorm_eval(r, conv_out, to_double(gamma), to_double(beta), to_double(rm), to_double(rv), eps);

  std::vector<float> folded_w = poisoned(w.size()), folded_b = poisoned(s.out_channels), y = poisoned(want.size());
  nincc::cpu::fold_batchnorm(s.out_channels, s.patch_size(), w.data(), conv_has_bias ? b.data() : nullptr, gamma.data(),
                             beta.data(), rm.data(), rv.data(), folded_w.data(), folded_b.data(), eps);
  nincc::cpu::conv2d_forward(s, x.data(), folded_w.data(), folded_b.data(), y.data());
  CHECK_CLOSE(y, want, 2e-5, conv_has_bias ? "fold_batchnorm with conv bias" : "fold_batchnorm without conv bias");
}

}  // namespace

void test_batchnorm() {
  Rng rng(31);
  check_reference_gradients(rng);
  check_variance_and_momentum();
  check_shape(BatchNormShape{2, 5, 63}, 0.0, rng);
  check_shape(BatchNormShape{3, 13, 1}, 0.0, rng);  // nn.BatchNormalization on N x C
  check_shape(BatchNormShape{1, 3, 29}, 0.0, rng);
  check_shape(BatchNormShape{1, 6, 1}, 0.0, rng);   // one value per channel: variance 0
  check_shape(BatchNormShape{3, 7, 121}, 1000.0, rng);
  check_relu_fused_backward(BatchNormShape{3, 7, 121}, rng);
  check_relu_fused_backward(BatchNormShape{4, 6, 1500}, rng);  // 36000 values: over the parallel grain
  using nincc::cpu::Pool2dShape;
  check_relu_maxpool_backward(Pool2dShape{3, 5, 13, 13, 3, 3, 2, 2, 1, 1}, rng);            // NIN's pools: overlapping windows
  check_relu_maxpool_backward(Pool2dShape{4, 12, 28, 28, 3, 3, 2, 2, 1, 1}, rng);           // over the parallel grain
  check_relu_maxpool_backward(Pool2dShape{2, 3, 9, 11, 2, 2, 2, 2, 0, 0, true}, rng);       // ceil mode, a last column alone
  check_concat_slot(BatchNormShape{3, 5, 29}, 12, 4, rng);
  check_concat_slot(BatchNormShape{4, 6, 1500}, 15, 9, rng);  // over the parallel grain: channels split across threads
  check_concat_slot(BatchNormShape{2, 4, 7}, 4, 0, rng);      // the whole joined tensor
  check_one_pass_statistics(BatchNormShape{4, 6, 1500}, rng);  // over the parallel grain
  check_one_pass_statistics(BatchNormShape{3, 5, 13}, rng);    // planes shorter than two lane rows, with tails
  using nincc::cpu::Conv2dShape;
  check_statistics_from_conv(Conv2dShape{3, 5, 12, 12, 24, 3, 3, 1, 1, 1, 1}, 0.0, rng);  // whole tiles and tiles across images
  check_statistics_from_conv(Conv2dShape{2, 7, 7, 7, 13, 1, 1, 1, 1, 0, 0}, 1000.0, rng);  // a part panel; means far from 0
  check_statistics_from_conv(Conv2dShape{4, 16, 28, 28, 32, 3, 3, 1, 1, 1, 1}, 50.0, rng);  // parallel, tile by tile
  check_statistics_from_conv(Conv2dShape{2, 64, 56, 56, 96, 1, 1, 1, 1, 0, 0}, 0.0, rng);  // parallel, chunked order (y past L2)
  check_fold(true, rng);
  check_fold(false, rng);
}

}  // namespace kernels_test
