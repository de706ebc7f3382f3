// NIN's 12 BN+ReLU training forwards at batch 16, 1 thread, least thread-CPU ms of 7 per round, rounds interleaved:
// the statistics in one pass around a channel value (batchnorm.h channel_moments<true>) against the two passes
// (<false>, the cpuBnOnePassStats ablation). bench/logs/i19t-bn-stats-one-pass.out. Build:
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include runtime/kernels-test/bench_cpu_train_bn_stats.cc -o /tmp/bnstats
#include <algorithm>
#include <cstdio>
#include <vector>
#include <omp.h>
#include "bench_train_cpu_time.h"
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
// The least thread-CPU ms of 7 calls of the forward with the statistics in one pass or two.
template <bool OnePass>
double least_forward_ms(const BatchNormShape& s, const std::vector<float>& x, std::vector<float>& y) {
  std::vector<float> g(s.channels, 1.f), b(s.channels, 0.1f), m(s.channels), is(s.channels), rm(s.channels), rv(s.channels, 1.f);
  double least = 1e9;
  for (int r = 0; r < 7; ++r)
    least = std::min(least, bench_train::time_ms([&] {
      batchnorm_forward_train<OnePass>(s, x.data(), g.data(), b.data(), y.data(), m.data(), is.data(), rm.data(), rv.data(), 1e-3, 0.1, true);
    }));
  return least;
}
int main() {
  omp_set_num_threads(1);
  const BatchNormShape shapes[] = {{16, 96, 3136}, {16, 256, 784}, {16, 384, 196}, {16, 1024, 49}};
  for (int round = 0; round < 3; ++round) {
    double one_total = 0, two_total = 0;
    for (const BatchNormShape& s : shapes) {
      std::vector<float> x(s.size()), y(s.size());
      for (size_t i = 0; i < x.size(); ++i) x[i] = (i * 7919 % 1000) * 0.001f - 0.5f;
      const double two = least_forward_ms<false>(s, x, y);
      const double one = least_forward_ms<true>(s, x, y);
      printf("round %d c%-5d plane %-5lld bn+relu fwd: two-pass stats %6.2f ms, one-pass %6.2f ms\n", round, s.channels, (long long)s.plane, two, one);
      two_total += 3 * two, one_total += 3 * one;
    }
    printf("round %d NIN's 12 BN fwd per step: two-pass %.1f ms, one-pass %.1f ms\n", round, two_total, one_total);
  }
}
