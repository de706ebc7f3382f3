// Determinism: every kernel run twice gives the same bits, and (with OpenMP) so does a run on
// 1, 2 or all threads, which also exercises both of the convolutions' ways of splitting a batch.
#include <cstdint>
#include <functional>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/kernels.h"

namespace kernels_test {
namespace {

using namespace nincc::cpu;

// Runs `kernel` (which fills its outputs) under each thread count and returns the outputs, so
// the caller can compare them bit for bit.
std::vector<std::vector<float>> outputs_by_thread_count(const std::function<std::vector<float>()>& kernel) {
  std::vector<std::vector<float>> results;
  on_1_2_and_all_threads([&] { results.push_back(kernel()); });
  results.push_back(kernel());  // and once more as the last count, for run-to-run repeatability
  return results;
}

void check_same_bits(const std::function<std::vector<float>()>& kernel, const char* what) {
  const auto results = outputs_by_thread_count(kernel);
  bool same = true;
  for (const auto& r : results) same = same && bitwise_equal(r, results.front());
  if (!same) report_failure(__FILE__, __LINE__, what);
  ++g_checks;
}

// Appends b to a, so one kernel run can return all of its outputs as one vector.
std::vector<float> joined(std::vector<float> a, const std::vector<float>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

void test_determinism() {
  Rng rng(79);
  // Big enough that every kernel takes its parallel path; batches of 3 and 4 cut the convolutions'
  // batch-wide GEMMs into tasks differently, and both must give the serial bits.
  const Conv2dShape conv{4, 16, 24, 24, 32, 3, 3, 1, 1, 1, 1};
  const std::vector<float> x = random_floats(std::size_t(4) * 16 * 24 * 24, rng);
  const std::vector<float> w = random_floats(std::size_t(32) * 16 * 9, rng), b = random_floats(32, rng);
  const std::vector<float> dy = random_floats(std::size_t(4) * 32 * conv.out_plane(), rng);
  for (int batch : {3, 4}) {
    Conv2dShape s = conv;
    s.batch = batch;
    check_same_bits([&] {
      std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(32);
      conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), true);
      conv2d_backward_data(s, dy.data(), w.data(), dx.data());
      conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), db.data());
      return joined(joined(joined(y, dx), dw), db);
    }, "conv forward/backward bits vary with the thread count");
  }

  const BatchNormShape bn{4, 32, 576};
  const std::vector<float> gamma = random_floats(32, rng, 0, 1), beta = random_floats(32, rng);
  check_same_bits([&] {
    std::vector<float> y(dy.size()), mean(32), invstd(32), rm(32, 0.f), rv(32, 1.f), dx(dy.size()), dg(32), dbeta(32);
    batchnorm_forward_train(bn, dy.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(), rm.data(),
                            rv.data(), 1e-3);
    batchnorm_backward(bn, dy.data(), y.data(), gamma.data(), mean.data(), invstd.data(), dx.data(), dg.data(),
                       dbeta.data());
    return joined(joined(joined(joined(y, rm), rv), dx), joined(dg, dbeta));
  }, "batchnorm bits vary with the thread count");

  const Pool2dShape pool{4, 16, 24, 24, 3, 3, 2, 2, 1, 1};
  const std::vector<float> pool_dy = random_floats(std::size_t(pool.planes()) * pool.out_plane(), rng);
  check_same_bits([&] {
    std::vector<float> y(pool_dy.size()), dx(x.size()), avg(pool_dy.size()), avg_dx(x.size());
    std::vector<std::int32_t> argmax(pool_dy.size());
    maxpool_forward(pool, x.data(), y.data(), argmax.data());
    maxpool_backward(pool, pool_dy.data(), argmax.data(), dx.data());
    avgpool_forward(pool, x.data(), avg.data());
    avgpool_backward(pool, pool_dy.data(), avg_dx.data());
    return joined(joined(y, dx), joined(avg, avg_dx));
  }, "pooling bits vary with the thread count");

  const LinearShape fc{16, 576, 100};
  const std::vector<float> fc_w = random_floats(100 * 576, rng), fc_b = random_floats(100, rng);
  check_same_bits([&] {
    std::vector<float> y(16 * 100), dx(16 * 576), dw(100 * 576), db(100), logp(16 * 100), dlogp(16 * 100);
    std::vector<std::int32_t> labels(16, 3);
    float loss;
    linear_forward(fc, x.data(), fc_w.data(), fc_b.data(), y.data());
    log_softmax_forward(16, 100, y.data(), logp.data());
    nll_loss_forward(16, 100, logp.data(), labels.data(), &loss);
    nll_loss_backward(16, 100, labels.data(), dlogp.data());
    log_softmax_backward(16, 100, logp.data(), dlogp.data(), dlogp.data());
    linear_backward_data(fc, dlogp.data(), fc_w.data(), dx.data());
    linear_backward_weights(fc, x.data(), dlogp.data(), dw.data(), db.data());
    return joined(joined(joined(y, logp), joined(dx, dw)), joined(db, std::vector<float>{loss}));
  }, "linear/log_softmax/nll bits vary with the thread count");

  check_same_bits([&] {
    std::vector<float> weights = x, grads = dy, buffer(x.size()), dropped(x.size());
    grads.resize(x.size());
    const auto count = static_cast<std::int64_t>(x.size());
    sgd_update(count, weights.data(), grads.data(), buffer.data(), 0.1f, 5e-4f, 0.9f, /*first=*/true);
    sgd_update(count, weights.data(), grads.data(), buffer.data(), 0.1f, 5e-4f, 0.9f, /*first=*/false);
    dropout_forward(static_cast<std::int64_t>(x.size()), x.data(), dropped.data(), 0.5f, 99);
    return joined(weights, dropped);
  }, "sgd/dropout bits vary with the thread count");
}

}  // namespace kernels_test
