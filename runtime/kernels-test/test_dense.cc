// Linear layer, ReLU, softmax, log-softmax and the NLL loss against float64 references, with
// the references' gradients checked by finite differences, and log-softmax + NLL end to end.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/activation.h"
#include "nincc/cpu/linear.h"
#include "nincc/cpu/loss.h"
#include "reference_dense.h"

namespace kernels_test {
namespace {

void check_linear(int batch, int in, int out, Rng& rng) {
  char what[64];
  std::snprintf(what, sizeof what, "linear %d x %d -> %d", batch, in, out);
  const std::vector<float> x = random_floats(std::size_t(batch) * in, rng);
  const std::vector<float> w = random_floats(std::size_t(out) * in, rng);
  const std::vector<float> b = random_floats(out, rng), dy = random_floats(std::size_t(batch) * out, rng);
  const nincc::cpu::LinearShape s{batch, in, out};
  const std::vector<double> want = ref_linear_forward(batch, in, out, to_double(x), to_double(w), to_double(b));

  std::vector<float> y = poisoned(want.size()), y_relu = poisoned(want.size());
  nincc::cpu::linear_forward(s, x.data(), w.data(), b.data(), y.data());
  CHECK_CLOSE(y, want, 2e-5, what);
  nincc::cpu::linear_forward(s, x.data(), w.data(), b.data(), y_relu.data(), true);
  std::vector<double> want_relu = want;
  for (double& v : want_relu) v = std::max(v, 0.0);
  CHECK_CLOSE(y_relu, want_relu, 2e-5, what);

  const LinearGradients g = ref_linear_backward(batch, in, out, to_double(x), to_double(w), to_double(dy));
  std::vector<float> dx = poisoned(x.size()), dw = poisoned(w.size()), db = poisoned(out);
  nincc::cpu::linear_backward_data(s, dy.data(), w.data(), dx.data());
  nincc::cpu::linear_backward_weights(s, x.data(), dy.data(), dw.data(), db.data());
  CHECK_CLOSE(dx, g.dx, 2e-5, what);
  CHECK_CLOSE(dw, g.dw, 2e-5, what);
  CHECK_CLOSE(db, g.db, 1e-6, what);
}

void check_reference_gradients(Rng& rng) {
  const int batch = 2, in = 5, out = 3, classes = 6;
  const std::vector<double> x = to_double(random_floats(batch * in, rng)), w = to_double(random_floats(out * in, rng));
  const std::vector<double> b = to_double(random_floats(out, rng)), dy = to_double(random_floats(batch * out, rng));
  const LinearGradients g = ref_linear_backward(batch, in, out, x, w, dy);
  auto linear_loss = [&](const std::vector<double>& xv, const std::vector<double>& wv, const std::vector<double>& bv) {
    return dot(ref_linear_forward(batch, in, out, xv, wv, bv), dy);
  };
  CHECK_GRADIENT(x, g.dx, [&](const std::vector<double>& v) { return linear_loss(v, w, b); }, "reference linear dx");
  CHECK_GRADIENT(w, g.dw, [&](const std::vector<double>& v) { return linear_loss(x, v, b); }, "reference linear dw");
  CHECK_GRADIENT(b, g.db, [&](const std::vector<double>& v) { return linear_loss(x, w, v); }, "reference linear db");

  const std::vector<double> z = to_double(random_floats(batch * classes, rng, -3, 3));
  const std::vector<double> dz = to_double(random_floats(batch * classes, rng));
  CHECK_GRADIENT(z, ref_log_softmax_backward(batch, classes, z, dz),
                 [&](const std::vector<double>& v) { return dot(ref_log_softmax(batch, classes, v), dz); },
                 "reference log_softmax dx");
  CHECK_GRADIENT(z, ref_softmax_backward(batch, classes, z, dz),
                 [&](const std::vector<double>& v) { return dot(ref_softmax(batch, classes, v), dz); },
                 "reference softmax dx");
}

void check_relu(Rng& rng) {
  const std::vector<float> x = random_floats(1001, rng), dy = random_floats(1001, rng);
  std::vector<float> y = poisoned(x.size()), dx = poisoned(x.size());
  nincc::cpu::relu_forward(static_cast<std::int64_t>(x.size()), x.data(), y.data());
  nincc::cpu::relu_backward(static_cast<std::int64_t>(x.size()), y.data(), dy.data(), dx.data());
  bool ok = true;
  for (std::size_t i = 0; i < x.size(); ++i) {
    ok = ok && y[i] == (x[i] > 0 ? x[i] : 0.f);
    ok = ok && dx[i] == (x[i] > 0 ? dy[i] : 0.f);
  }
  CHECK(ok);
  std::vector<float> in_place = x;  // y over x, dx over dy: the aliasing generated code uses
  nincc::cpu::relu_forward(static_cast<std::int64_t>(in_place.size()), in_place.data(), in_place.data());
  CHECK(bitwise_equal(in_place, y));
}

void check_softmax(int rows, int classes, double spread, Rng& rng) {
  char what[64];
  std::snprintf(what, sizeof what, "softmax %d x %d spread %g", rows, classes, spread);
  const std::vector<float> x = random_floats(std::size_t(rows) * classes, rng, -spread, spread);
  const std::vector<float> dy = random_floats(x.size(), rng);
  std::vector<float> logp = poisoned(x.size()), p = poisoned(x.size());
  std::vector<float> dlog = poisoned(x.size()), dp = poisoned(x.size());
  nincc::cpu::log_softmax_forward(rows, classes, x.data(), logp.data());
  nincc::cpu::softmax_forward(rows, classes, x.data(), p.data());
  CHECK_CLOSE(logp, ref_log_softmax(rows, classes, to_double(x)), 1e-6, what);
  CHECK_CLOSE(p, ref_softmax(rows, classes, to_double(x)), 1e-5, what);
  nincc::cpu::log_softmax_backward(rows, classes, logp.data(), dy.data(), dlog.data());
  nincc::cpu::softmax_backward(rows, classes, p.data(), dy.data(), dp.data());
  CHECK_CLOSE(dlog, ref_log_softmax_backward(rows, classes, to_double(x), to_double(dy)), 1e-5, what);
  CHECK_CLOSE(dp, ref_softmax_backward(rows, classes, to_double(x), to_double(dy)), 1e-5, what);
}

// loss = nll(log_softmax(x)); its gradient through both kernels against finite differences of
// the float64 reference composition.
void check_nll(int batch, int classes, Rng& rng) {
  const std::vector<float> x = random_floats(std::size_t(batch) * classes, rng, -4, 4);
  std::vector<std::int32_t> labels(batch);
  for (int& l : labels) l = rng.below(classes);
  const std::vector<int> labels_int(labels.begin(), labels.end());
  std::vector<float> logp(x.size()), dlogp = poisoned(x.size()), dx = poisoned(x.size());
  float loss = NAN;
  nincc::cpu::log_softmax_forward(batch, classes, x.data(), logp.data());
  nincc::cpu::nll_loss_forward(batch, classes, logp.data(), labels.data(), &loss);
  CHECK(std::fabs(loss - ref_nll_loss(batch, classes, ref_log_softmax(batch, classes, to_double(x)), labels_int)) <
        1e-5 * (1 + std::fabs(loss)));
  nincc::cpu::nll_loss_backward(batch, classes, labels.data(), dlogp.data());
  nincc::cpu::log_softmax_backward(batch, classes, logp.data(), dlogp.data(), dx.data());
  auto loss_of = [&](const std::vector<double>& v) {
    return ref_nll_loss(batch, classes, ref_log_softmax(batch, classes, v), labels_int);
  };
  CHECK_GRADIENT(to_double(x), to_double(dx), loss_of, "log_softmax + nll gradient");

  labels[0] = classes;  // out of range: the loss says so with a NaN
  nincc::cpu::nll_loss_forward(batch, classes, logp.data(), labels.data(), &loss);
  CHECK(std::isnan(loss));
}

}  // namespace

void test_linear_activation_loss() {
  Rng rng(53);
  check_reference_gradients(rng);
  check_linear(1, 1, 1, rng);
  check_linear(3, 17, 5, rng);
  check_linear(7, 300, 37, rng);
  check_linear(2, 1024, 1000, rng);  // NIN's classifier at batch 2
  check_relu(rng);
  check_softmax(1, 1, 1.0, rng);
  check_softmax(3, 7, 3.0, rng);
  check_softmax(5, 1000, 1.0, rng);
  check_softmax(2, 10, 80.0, rng);  // exp would overflow without subtracting the row max
  check_nll(1, 3, rng);
  check_nll(5, 10, rng);
}

}  // namespace kernels_test
