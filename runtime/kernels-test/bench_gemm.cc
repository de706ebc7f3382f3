// GEMM throughput on NIN-like shapes. Build and run (from runtime/kernels-test):
//   g++ -O3 -march=native -fopenmp -std=c++17 -I../include bench_gemm.cc -o /tmp/bench_gemm && /tmp/bench_gemm
// Prints GFLOP/s (2*m*n*k flops per call, best of several runs, so that a busy shared machine
// shows its quiet moments) on one thread and on all of them, for each shape and transpose mode.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "nincc/cpu/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using nincc::cpu::Transpose;

struct Shape {
  const char* what;
  int m, n, k;
  Transpose ta, tb;
};

double best_seconds(const Shape& s, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c) {
  const std::int64_t lda = s.ta == Transpose::kNo ? s.k : s.m;
  const std::int64_t ldb = s.tb == Transpose::kNo ? s.n : s.k;
  double best = 1e30;
  const double flops = 2.0 * s.m * s.n * s.k;
  const int runs = std::max(3, static_cast<int>(2e10 / flops));
  for (int r = 0; r < runs + 1; ++r) {  // the first run warms the scratch buffers and caches
    auto t0 = std::chrono::steady_clock::now();
    nincc::cpu::gemm(s.ta, s.tb, s.m, s.n, s.k, a.data(), lda, b.data(), ldb, c.data(), s.n);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, dt);
  }
  return best;
}

}  // namespace

int main() {
  const Transpose N = Transpose::kNo, T = Transpose::kYes;
  const Shape shapes[] = {
      {"target 256x3136x1024", 256, 3136, 1024, N, N},
      {"conv1x1 fwd 96x3136x96 (56x56)", 96, 3136, 96, N, N},
      {"conv1x1 fwd 256x729x256 (27x27)", 256, 729, 256, N, N},
      {"conv11 fwd 96x3136x363", 96, 3136, 363, N, N},
      {"conv3 fwd 384x169x2304", 384, 169, 2304, N, N},
      {"conv3 fwd 1024x169x3456", 1024, 169, 3456, N, N},
      {"conv dx  A^T: 2304x169x384", 2304, 169, 384, T, N},
      {"conv dW  B^T: 384x2304x169", 384, 2304, 169, N, T},
      {"linear fwd B^T: 128x1000x1024", 128, 1000, 1024, N, T},
      {"linear dW A^T: 1000x1024x128", 1000, 1024, 128, T, N},
  };
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  const int all_threads = nincc::cpu::max_threads();
  std::printf("isa %s; GFLOP/s on 1 thread and on %d\n", nincc::cpu::gemm_isa_name(), all_threads);
  for (const Shape& s : shapes) {
    std::vector<float> a(static_cast<std::size_t>(s.m) * s.k), b(static_cast<std::size_t>(s.k) * s.n),
        c(static_cast<std::size_t>(s.m) * s.n);
    for (float& v : a) v = dist(rng);
    for (float& v : b) v = dist(rng);
    const double flops = 2.0 * s.m * s.n * s.k;
    std::printf("%-34s %6.2f GFLOP", s.what, flops * 1e-9);
    for (int threads : {1, all_threads}) {
#ifdef _OPENMP
      omp_set_num_threads(threads);
#endif
      const double sec = best_seconds(s, a, b, c);
      std::printf("  %8.3f ms %7.1f GFLOP/s", sec * 1e3, flops / sec * 1e-9);
    }
    std::printf("\n");
  }
  return 0;
}
