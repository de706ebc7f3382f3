// Dropout (Torch7 nn.Dropout v2: scaled at training time, identity at inference, mask keyed by
// seed and element index) and the torch/optim sgd update against a float64 reference.
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/dropout.h"
#include "nincc/cpu/sgd.h"
#include "reference_dense.h"

namespace kernels_test {
namespace {

void check_dropout(Rng& rng) {
  const std::int64_t count = 200003;
  const float p = 0.3f;
  const std::vector<float> x = random_floats(count, rng, 0.5, 1.5), dy = random_floats(count, rng, 0.5, 1.5);
  std::vector<float> y = poisoned(count), y_again = poisoned(count), dx = poisoned(count);
  nincc::cpu::dropout_forward(count, x.data(), y.data(), p, 1234);
  nincc::cpu::dropout_forward(count, x.data(), y_again.data(), p, 1234);
  nincc::cpu::dropout_backward(count, dy.data(), dx.data(), p, 1234);
  CHECK(bitwise_equal(y, y_again));

  const float scale = 1.f / (1.f - p);
  std::int64_t kept = 0;
  bool scaled = true, same_mask = true;
  for (std::int64_t i = 0; i < count; ++i) {
    const bool keep = y[i] != 0.f;  // x is never 0, so a zero output means dropped
    kept += keep;
    scaled = scaled && (keep ? y[i] == x[i] * scale && dx[i] == dy[i] * scale : y[i] == 0.f);
    same_mask = same_mask && keep == (dx[i] != 0.f) && keep == nincc::cpu::dropout_keeps(1234, i, p);
  }
  CHECK(scaled);
  CHECK(same_mask);
  const double kept_fraction = static_cast<double>(kept) / count;  // 1 - p within ~4 standard deviations
  CHECK(std::fabs(kept_fraction - (1 - p)) < 4 * std::sqrt(p * (1 - p) / count));

  // A different seed draws a different mask; a shorter tensor draws the same mask on its prefix,
  // so the mask of an image does not depend on the batch size it runs in.
  std::vector<float> other(count), prefix(1000);
  nincc::cpu::dropout_forward(count, x.data(), other.data(), p, 1235);
  nincc::cpu::dropout_forward(1000, x.data(), prefix.data(), p, 1234);
  CHECK(!bitwise_equal(other, y));
  CHECK(bitwise_equal(prefix, std::vector<float>(y.begin(), y.begin() + 1000)));

  std::vector<float> eval = poisoned(count), all_dropped = poisoned(count), none_dropped = poisoned(count);
  nincc::cpu::dropout_forward(count, x.data(), eval.data(), p, 1234, /*training=*/false);
  nincc::cpu::dropout_forward(count, x.data(), none_dropped.data(), 0.f, 1234);
  nincc::cpu::dropout_forward(count, x.data(), all_dropped.data(), 1.f, 1234);
  CHECK(bitwise_equal(eval, x));
  CHECK(bitwise_equal(none_dropped, x));
  CHECK(bitwise_equal(all_dropped, std::vector<float>(count, 0.f)));
}

// Two steps (the first sets the buffer, the second uses momentum) with and without weight decay
// and momentum, against torch/optim sgd in double.
void check_sgd(float lr, float wd, float momentum, Rng& rng) {
  const std::size_t n = 1003;
  std::vector<float> w = random_floats(n, rng), buf = poisoned(n);
  std::vector<double> wd_ref = to_double(w), buf_ref(n);
  for (int step = 0; step < 2; ++step) {
    std::vector<float> g = random_floats(n, rng);
    std::vector<double> g_ref = to_double(g);
    nincc::cpu::sgd_update(static_cast<std::int64_t>(n), w.data(), g.data(), momentum != 0.f ? buf.data() : nullptr, lr,
                           wd, momentum, step == 0);
    ref_sgd(wd_ref, g_ref, buf_ref, lr, wd, momentum, step == 0);
    CHECK_CLOSE(w, wd_ref, 1e-6, "sgd weights");
    CHECK_CLOSE(g, g_ref, 1e-6, "sgd gradient with weight decay");
    if (momentum != 0.f) CHECK_CLOSE(buf, buf_ref, 1e-6, "sgd momentum buffer");
  }
}

}  // namespace

void test_dropout_sgd() {
  Rng rng(67);
  check_dropout(rng);
  check_sgd(0.1f, 5e-4f, 0.9f, rng);
  check_sgd(0.01f, 0.f, 0.9f, rng);
  check_sgd(0.1f, 5e-4f, 0.f, rng);
}

}  // namespace kernels_test
