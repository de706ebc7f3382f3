// The block region in bands of output rows (block_band.h) against the float64 reference (a k×k conv, two 1x1 convs,
// each with bias and ReLU, then a max pool): nin-fashion's two blocks (a 5x5 direct conv, a 3x3 Winograd F(2x2)) at
// batch 1 (one band a thread) and 3, a strided 11x11 stem through the implicit GEMM (NIN's first block, on a small
// image), an odd plane whose last pool window runs past it, and blocks with no pool (NIN's last); each at 1, 2 and
// all threads, with the bits of the four calls it replaces at every thread count (a band computes whole tiles of the
// image's grid).
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/block_band.h"
#include "nincc/cpu/conv.h"
#include "nincc/cpu/pool.h"
#include "reference_conv_pool.h"

namespace kernels_test {
namespace {

using nincc::cpu::Pool2dShape;
using nincc::cpu::WinogradKind;

// The k×k conv's algorithm: the packed direct conv or implicit GEMM, or Winograd F(2x2) (3x3 or 5x5).
enum class Algorithm { kPacked, kWinograd };

void check_block(const Conv2dShape& conv, const Pool2dShape& pool_window, Algorithm algorithm, Rng& rng) {
  const int k = conv.out_channels;
  const Conv2dShape pointwise{conv.batch, k, conv.out_h(), conv.out_w(), k, 1, 1, 1, 1, 0, 0};
  Pool2dShape pool = pool_window;
  pool.batch = conv.batch;
  pool.channels = k;
  pool.in_h = conv.out_h();
  pool.in_w = conv.out_w();
  const std::vector<float> x = random_floats(conv_x_size(conv), rng), w0 = random_floats(conv_w_size(conv), rng),
                           w1 = random_floats(conv_w_size(pointwise), rng), w2 = random_floats(conv_w_size(pointwise), rng),
                           b0 = random_floats(k, rng), b1 = random_floats(k, rng), b2 = random_floats(k, rng);
  const WinogradKind kind = conv.kernel_h == 5 ? WinogradKind::F2x5 : WinogradKind::F2x3;
  std::vector<float> p0(static_cast<std::size_t>(algorithm == Algorithm::kWinograd
                                                     ? nincc::cpu::winograd_weights_size(kind, k, conv.in_channels)
                                                     : nincc::cpu::packed_conv_weights_size(k, conv.patch_size()))),
      p1(static_cast<std::size_t>(nincc::cpu::packed_conv_weights_size(k, k))), p2(p1.size());
  if (algorithm == Algorithm::kWinograd) nincc::cpu::pack_winograd_weights(kind, conv, w0.data(), p0.data());
  else nincc::cpu::pack_conv_weights(conv, w0.data(), p0.data());
  nincc::cpu::pack_conv_weights(pointwise, w1.data(), p1.data());
  nincc::cpu::pack_conv_weights(pointwise, w2.data(), p2.data());
  const std::vector<double> bd0 = to_double(b0), bd1 = to_double(b1), bd2 = to_double(b2);
  const std::vector<double> middle = ref_conv_forward(
      pointwise, ref_conv_forward(pointwise, ref_conv_forward(conv, to_double(x), to_double(w0), &bd0, true), to_double(w1), &bd1, true),
      to_double(w2), &bd2, true);
  const std::vector<double> want = ref_maxpool_forward(pool, middle).y;

  const auto conv_call = [&](const Conv2dShape& s, const float* in, float* out) {
    if (algorithm == Algorithm::kWinograd) nincc::cpu::conv2d_forward_winograd(kind, s, in, p0.data(), b0.data(), out, true);
    else nincc::cpu::conv2d_forward(s, in, nincc::cpu::PackedConvWeights{p0.data()}, b0.data(), out, true);
  };
  const auto pair = [&](const Conv2dShape& s, const float* in, float* between, float* out) {
    nincc::cpu::conv2d_forward(s, in, nincc::cpu::PackedConvWeights{p1.data()}, b1.data(), between, true);
    nincc::cpu::conv2d_forward(s, between, nincc::cpu::PackedConvWeights{p2.data()}, b2.data(), out, true);
  };
  const auto max_pool = [&](const Pool2dShape& s, const float* in, float* out) { nincc::cpu::maxpool_forward(s, in, out, nullptr); };
  const int row_tile = algorithm == Algorithm::kWinograd ? 2 : 1;
  const auto region = [&] {
    std::vector<float> y = poisoned(static_cast<std::size_t>(pool.planes() * pool.out_plane()));
    nincc::cpu::block_band_forward(conv, pool, row_tile, x.data(), y.data(), conv_call, pair, max_pool);
    return y;
  };
  // The four calls it replaces.
  std::vector<float> a(conv_y_size(conv)), b(a.size()), c(a.size()), calls(static_cast<std::size_t>(pool.planes() * pool.out_plane()));
  conv_call(conv, x.data(), a.data());
  pair(pointwise, a.data(), b.data(), c.data());
  max_pool(pool, c.data(), calls.data());

  std::vector<std::vector<float>> runs;
  on_1_2_and_all_threads([&] { runs.push_back(region()); });
  char what[200];
  std::snprintf(what, sizeof what, "block band n%d %d -> %d %dx%d/%d on %dx%d, pool %dx%d/%d pad %d", conv.batch, conv.in_channels, k,
                conv.kernel_h, conv.kernel_w, conv.stride_h, conv.in_h, conv.in_w, pool.kernel_h, pool.kernel_w, pool.stride_h, pool.pad_h);
  for (const auto& run : runs) {
    CHECK_CLOSE(run, want, 5e-5, what);
    CHECK(bitwise_equal(run, calls));
  }
}

}  // namespace

void test_block_band() {
  Rng rng(1919);
  const Pool2dShape pool_3_2_1{0, 0, 0, 0, 3, 3, 2, 2, 1, 1};
  // nin-fashion's first two blocks at batch 1 and 3 (its 5x5 on one channel: the direct conv).
  for (int n : {1, 3}) {
    check_block(Conv2dShape{n, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2}, pool_3_2_1, Algorithm::kPacked, rng);
    check_block(Conv2dShape{n, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1}, pool_3_2_1, Algorithm::kWinograd, rng);
  }
  // A 5x5 Winograd F(2x2) on an odd plane (its last tile half past it), the last pool window past the plane too.
  check_block(Conv2dShape{1, 8, 13, 11, 16, 5, 5, 1, 1, 2, 2}, pool_3_2_1, Algorithm::kWinograd, rng);
  // NIN's first block on a 67x67 image (an 11x11 stride-4 conv through the implicit GEMM, 15x15 out), and a 2x2/2 pool.
  check_block(Conv2dShape{1, 3, 67, 67, 24, 11, 11, 4, 4, 5, 5}, pool_3_2_1, Algorithm::kPacked, rng);
  check_block(Conv2dShape{2, 16, 12, 12, 16, 3, 3, 1, 1, 1, 1}, Pool2dShape{0, 0, 0, 0, 2, 2, 2, 2, 0, 0}, Algorithm::kPacked, rng);
  // No pool (a 1x1 window of stride 1): nin-fashion's last block (the implicit GEMM on 7x7) and a Winograd on 9 rows.
  const Pool2dShape none{0, 0, 0, 0, 1, 1, 1, 1, 0, 0};
  for (int n : {1, 3}) check_block(Conv2dShape{n, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1}, none, Algorithm::kPacked, rng);
  check_block(Conv2dShape{1, 8, 9, 10, 16, 3, 3, 1, 1, 1, 1}, none, Algorithm::kWinograd, rng);
}

}  // namespace kernels_test
