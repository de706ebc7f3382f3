// nin-fashion's three 1x1 pairs with the pools after them at batch 1, timed call by call alternately: A as
// the program runs them with the ablation cpuPairBands off (conv2d_forward twice, then the pool) and B with
// the pair as one banded region (pointwise_pair_forward, issue #19 branch i19C), then the same pool. The
// pool's workers are held awake, as the cpu device holds them for a program. Wall medians in µs; read them
// on free cores or under `chrt -f 20`. Checks B's outputs are A's bits first.
//   g++ -std=c++17 -O3 -fopenmp -march=native -I runtime/include bench/cpu/pointwise-pair-region-ab.cc \
//       -o /tmp/pointwise-pair-region-ab && chrt -f 20 /tmp/pointwise-pair-region-ab [CALLS=3000] [THREADS=2] [pair]
// (`pair`: the convs alone, no pool after them.)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nincc/cpu/kernels.h"

#include "bench-util.h"

using namespace nincc::cpu;
using nincc_bench::values;
using nincc_bench::median;

namespace {

struct Pair {
  const char* name;
  int c, h;
  Pool2dShape pool;
  bool max;
};

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 3000, threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const bool with_pool = !(argc > 3 && std::strcmp(argv[3], "pair") == 0);
  omp_set_num_threads(threads);
  hold_pool_workers(true);
  const Pair pairs[] = {{"k4+k7+pool 32x28x28", 32, 28, {1, 32, 28, 28, 3, 3, 2, 2, 1, 1}, true},
                        {"k14+k17+pool 64x14x14", 64, 14, {1, 64, 14, 14, 3, 3, 2, 2, 1, 1}, true},
                        {"k24+k27+avg 128x7x7", 128, 7, {1, 128, 7, 7, 7, 7, 1, 1, 0, 0}, false}};
  std::printf("nin-fashion's 1x1 pairs%s at batch 1, %d calls each way alternately, %d threads; wall medians in µs\n", with_pool ? " + pools" : " alone", calls, threads);
  std::printf("%-24s %12s %12s %8s %8s\n", "pair + pool", "A 2 convs", "B region", "B/A", "bitwise");
  double sum_a = 0, sum_b = 0;
  for (const Pair& l : pairs) {
    const Conv2dShape s{1, l.c, l.h, l.h, l.c, 1, 1, 1, 1, 0, 0};
    const std::size_t size = static_cast<std::size_t>(l.c) * s.out_plane();
    const auto x = values(size, 2.f), w1 = values(l.c * l.c, 0.2f), w2 = values(l.c * l.c, 0.2f), b1 = values(l.c, 0.1f), b2 = values(l.c, 0.1f);
    std::vector<float> p1(packed_conv_weights_size(l.c, l.c)), p2(p1.size());
    pack_conv_weights(s, w1.data(), p1.data());
    pack_conv_weights(s, w2.data(), p2.data());
    std::vector<float> mid(size), y_a(size), y_b(size), pooled_a(l.pool.planes() * l.pool.out_plane()), pooled_b(pooled_a.size());
    auto pool = [&](const std::vector<float>& y, std::vector<float>& to) {
      if (!with_pool) return;
      if (l.max) maxpool_forward(l.pool, y.data(), to.data(), nullptr);
      else avgpool_forward(l.pool, y.data(), to.data());
    };
    auto a = [&] {
      conv2d_forward(s, x.data(), PackedConvWeights{p1.data()}, b1.data(), mid.data(), true);
      conv2d_forward(s, mid.data(), PackedConvWeights{p2.data()}, b2.data(), y_a.data(), true);
      pool(y_a, pooled_a);
    };
    auto b = [&] {
      pointwise_pair_forward(s, x.data(), p1.data(), b1.data(), p2.data(), b2.data(), y_b.data());
      pool(y_b, pooled_b);
    };
    a();
    b();
    const bool same = std::memcmp(y_a.data(), y_b.data(), size * sizeof(float)) == 0 &&
                      std::memcmp(pooled_a.data(), pooled_b.data(), pooled_a.size() * sizeof(float)) == 0;
    std::vector<double> ta, tb;
    for (int i = 0; i < calls; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      a();
      ta.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      t0 = std::chrono::steady_clock::now();
      b();
      tb.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    sum_a += median(ta);
    sum_b += median(tb);
    std::printf("%-24s %12.1f %12.1f %8.2f %8s\n", l.name, median(ta), median(tb), median(tb) / median(ta), same ? "yes" : "NO");
  }
  std::printf("%-24s %12.1f %12.1f %8.2f\n", "sum of medians", sum_a, sum_b, sum_b / sum_a);
  hold_pool_workers(false);
  return 0;
}
