// NIN's three BN+ReLU backwards whose ReLU a max pool alone reads (3x3/2/1 pools on 96x56², 256x28², 384x14²), batch
// 16, 1 thread, thread-CPU ms: maxpool_backward then batchnorm_backward (relu_y) against batchnorm_relu_maxpool_backward
// (bn_pool_backward.h, ablation cpuBnPoolBackward), alternated call by call, median of `reps` each per round; the
// outputs checked equal first. Build as bench_dgrad_cpu_time.cc says; bench/logs/i19D-bn-pool-backward.out.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <omp.h>
#include "bench_train_cpu_time.h"
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
using bench_train::median;
using bench_train::time_ms;

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 15, rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  omp_set_num_threads(1);
  struct Layer { int channels, size; };
  const Layer layers[] = {{96, 56}, {256, 28}, {384, 14}};
  std::vector<double> two_total(rounds, 0.0), one_total(rounds, 0.0);
  for (const Layer& l : layers) {
    const Pool2dShape pool{16, l.channels, l.size, l.size, 3, 3, 2, 2, 1, 1};
    const BatchNormShape bn{pool.batch, pool.channels, pool.in_plane()};
    const std::size_t in = bn.size(), out = static_cast<std::size_t>(pool.planes() * pool.out_plane());
    std::vector<float> x(in), y(in), pool_y(out), pool_dy(out), dx_pool(in), dx_two(in), dx_one(in);
    std::vector<float> gamma(bn.channels, 0.9f), beta(bn.channels, 0.1f), mean(bn.channels), invstd(bn.channels);
    std::vector<float> rm(bn.channels), rv(bn.channels, 1.f), dg(bn.channels), db(bn.channels), dg1(bn.channels), db1(bn.channels);
    std::vector<std::int32_t> argmax(out);
    for (std::size_t i = 0; i < in; ++i) x[i] = (i * 7919 % 1000) * 0.001f - 0.5f;
    for (std::size_t i = 0; i < out; ++i) pool_dy[i] = (i * 104729 % 1000) * 0.001f - 0.5f;
    batchnorm_forward_train(bn, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), 1e-3, 0.1, true);
    maxpool_forward(pool, y.data(), pool_y.data(), argmax.data());
    auto two = [&] {
      maxpool_backward(pool, pool_dy.data(), argmax.data(), dx_pool.data());
      batchnorm_backward(bn, x.data(), dx_pool.data(), gamma.data(), mean.data(), invstd.data(), dx_two.data(), dg.data(), db.data(), y.data());
    };
    auto one = [&] {
      batchnorm_relu_maxpool_backward(bn, pool, x.data(), pool_dy.data(), argmax.data(), y.data(), gamma.data(), mean.data(), invstd.data(),
                                      dx_one.data(), dg1.data(), db1.data());
    };
    two();
    one();
    if (std::memcmp(dx_two.data(), dx_one.data(), in * sizeof(float)) != 0 || dg != dg1 || db != db1) return std::printf("outputs differ\n"), 1;
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> t2, t1;
      for (int i = 0; i < reps; ++i) {
        t2.push_back(time_ms(two));
        t1.push_back(time_ms(one));
      }
      two_total[r] += median(t2);
      one_total[r] += median(t1);
      std::printf("c%-4d %dx%d round %d: pool bwd + bn bwd %6.3f ms, in one pass %6.3f ms (%.3fx)\n", l.channels, l.size, l.size, r + 1, median(t2),
                  median(t1), median(t1) / median(t2));
    }
  }
  for (int r = 0; r < rounds; ++r)
    std::printf("all three, round %d: %6.3f -> %6.3f ms (%.3fx)\n", r + 1, two_total[r], one_total[r], one_total[r] / two_total[r]);
}
