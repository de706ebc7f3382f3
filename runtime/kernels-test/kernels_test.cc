// The CPU kernel test program: every kernel family against float64 references. Exits nonzero
// on any failure. Build and run with ./build-and-run.sh (SANITIZE=1 for ASan + UBSan).
#include <chrono>
#include <cstdio>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/gemm.h"

namespace {

template <class Test>
void run(const char* name, Test test) {
  const int failures_before = kernels_test::g_failures;
  const auto start = std::chrono::steady_clock::now();
  test();
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-28s %s  (%.0f ms)\n", name, kernels_test::g_failures == failures_before ? "ok" : "FAILED", ms);
}

}  // namespace

int main() {
  std::printf("nincc cpu kernels: isa %s, %d threads\n", nincc::cpu::gemm_isa_name(), nincc::cpu::max_threads());
  run("gemm", kernels_test::test_gemm);
  run("conv", kernels_test::test_conv);
  run("conv implicit gemm", kernels_test::test_conv_gemm);
  run("conv direct", kernels_test::test_conv_direct);
  run("conv winograd", kernels_test::test_conv_winograd);
  run("batchnorm", kernels_test::test_batchnorm);
  run("pool", kernels_test::test_pool);
  run("linear/activation/loss", kernels_test::test_linear_activation_loss);
  run("dropout/sgd", kernels_test::test_dropout_sgd);
  run("determinism", kernels_test::test_determinism);
  run("thread pool", kernels_test::test_thread_pool);
  run("uint8 stem", kernels_test::test_u8_stem);
  run("pointwise pair", kernels_test::test_pointwise_pair);
  run("block band", kernels_test::test_block_band);
  std::printf("%d checks, %d failed\n", kernels_test::g_checks, kernels_test::g_failures);
  return kernels_test::g_failures == 0 ? 0 : 1;
}
