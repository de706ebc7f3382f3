// The banded 1x1 pair region (pointwise_pair.h) against the float64 reference (two 1x1 convs, each with
// bias and ReLU): nin-fashion's three pairs at batch 1 (one band a thread) and at batch 3 and 16 (one
// image a band), planes of only a short tile and of fewer tiles than threads, the second conv's depth
// a whole depth block, and C != K; each at 1, 2 and all threads with identical bits, and the same bits
// as the two conv2d_forward calls it replaces. Also which pairs it takes.
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/conv.h"
#include "nincc/cpu/pointwise_pair.h"
#include "reference_conv_pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernels_test {
namespace {

void check_pair(const Conv2dShape& first, Rng& rng) {
  CHECK(nincc::cpu::pointwise_pair_applies(first));
  const int k = first.out_channels;
  const Conv2dShape second{first.batch, k, first.out_h(), first.out_w(), k, 1, 1, 1, 1, 0, 0};
  const std::vector<float> x = random_floats(conv_x_size(first), rng), w1 = random_floats(conv_w_size(first), rng),
                           w2 = random_floats(conv_w_size(second), rng), b1 = random_floats(k, rng), b2 = random_floats(k, rng);
  std::vector<float> p1(static_cast<std::size_t>(nincc::cpu::packed_conv_weights_size(k, first.in_channels))),
      p2(static_cast<std::size_t>(nincc::cpu::packed_conv_weights_size(k, k)));
  nincc::cpu::pack_conv_weights(first, w1.data(), p1.data());
  nincc::cpu::pack_conv_weights(second, w2.data(), p2.data());
  const std::vector<double> bd1 = to_double(b1), bd2 = to_double(b2);
  const std::vector<double> want = ref_conv_forward(second, ref_conv_forward(first, to_double(x), to_double(w1), &bd1, true), to_double(w2), &bd2, true);
  const auto region = [&] {
    std::vector<float> y = poisoned(conv_y_size(second));
    nincc::cpu::pointwise_pair_forward(first, x.data(), p1.data(), b1.data(), p2.data(), b2.data(), y.data());
    return y;
  };
  std::vector<std::vector<float>> runs;
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, saved}) {
    omp_set_num_threads(threads);
    runs.push_back(region());
  }
  omp_set_num_threads(saved);
#else
  runs.push_back(region());
#endif
  char what[160];
  std::snprintf(what, sizeof what, "pointwise pair n%d %d -> %d -> %d on %dx%d", first.batch, first.in_channels, k, k, first.in_h, first.in_w);
  CHECK_CLOSE(runs[0], want, 2e-5, what);
  for (const auto& run : runs) CHECK(bitwise_equal(run, runs[0]));
  // The two calls the region replaces: the same bits.
  std::vector<float> between(conv_y_size(first)), y(conv_y_size(second));
  nincc::cpu::conv2d_forward(first, x.data(), nincc::cpu::PackedConvWeights{p1.data()}, b1.data(), between.data(), true);
  nincc::cpu::conv2d_forward(second, between.data(), nincc::cpu::PackedConvWeights{p2.data()}, b2.data(), y.data(), true);
  CHECK(bitwise_equal(runs[0], y));
}

}  // namespace

void test_pointwise_pair() {
  Rng rng(191);
  // nin-fashion's pairs at batch 1: 24.5, 6.1 and 1.5 tiles a plane.
  check_pair(Conv2dShape{1, 32, 28, 28, 32, 1, 1, 1, 1, 0, 0}, rng);
  check_pair(Conv2dShape{1, 64, 14, 14, 64, 1, 1, 1, 1, 0, 0}, rng);
  check_pair(Conv2dShape{1, 128, 7, 7, 128, 1, 1, 1, 1, 0, 0}, rng);
  // Batches of 3 and 16: one image a band (16 x 128 x 7 x 7: the two calls take the GEMM there, the same bits).
  check_pair(Conv2dShape{3, 64, 14, 14, 64, 1, 1, 1, 1, 0, 0}, rng);
  check_pair(Conv2dShape{16, 128, 7, 7, 128, 1, 1, 1, 1, 0, 0}, rng);
  // A plane of one short tile (19 pixels: one register and 3 narrow columns), C != K, a whole depth block deep.
  check_pair(Conv2dShape{1, 11, 1, 19, 40, 1, 1, 1, 1, 0, 0}, rng);
  check_pair(Conv2dShape{1, 24, 13, 13, 40, 1, 1, 1, 1, 0, 0}, rng);
  const int block = nincc::cpu::conv_gemm_detail::kMaxDepthBlock;
  check_pair(Conv2dShape{1, 16, 5, 9, block, 1, 1, 1, 1, 0, 0}, rng);
  // Not taken: a second conv deeper than one block, a strided or padded 1x1, a kxk conv.
  CHECK(!nincc::cpu::pointwise_pair_applies(Conv2dShape{1, 8, 14, 14, block + 1, 1, 1, 1, 1, 0, 0}));
  CHECK(!nincc::cpu::pointwise_pair_applies(Conv2dShape{1, 8, 14, 14, 8, 1, 1, 2, 2, 0, 0}));
  CHECK(!nincc::cpu::pointwise_pair_applies(Conv2dShape{1, 8, 14, 14, 8, 1, 1, 1, 1, 1, 1}));
  CHECK(!nincc::cpu::pointwise_pair_applies(Conv2dShape{1, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1}));
}

}  // namespace kernels_test
