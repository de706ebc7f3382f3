// Per-layer A/B of the two forward algorithms a BN-folded 1x1 conv can run with the same packed weights:
// conv2d_forward (which takes the pointwise direct conv, conv_direct.h, where pointwise_direct_applies) and
// conv2d_forward_packed (the implicit GEMM, conv_gemm.h). Interleaved call by call; per shape and batch,
// the median thread-CPU ms (on 1 thread: the kernel's own time on a loaded machine) and wall ms (with more
// threads), and whether the outputs' bits agree. For compiler/schedule/cpu-conv-algorithm.ts's choice.
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include -Iruntime/kernels-test bench/cpu/cpu-choice-pointwise-ab.cc -o /tmp/pab
//   OMP_NUM_THREADS=1 /tmp/pab [CALLS=15]
#include <chrono>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "bench_train_cpu_time.h"
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;

static double wall_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 15;
  struct Layer { const char* name; int c, hw; };
  // NIN's 1x1 convs on 56x56 and 28x28 (its 14x14 and 7x7 ones are deeper than a depth block), nin-fashion's.
  const Layer layers[] = {{"nin 96>96 56x56", 96, 56}, {"nin 256>256 28x28", 256, 28},
                          {"nin-fashion 32>32 28x28", 32, 28}, {"nin-fashion 64>64 14x14", 64, 14}, {"nin-fashion 128>128 7x7", 128, 7}};
  for (int batch : {1, 2, 4, 16}) {
    for (const Layer& l : layers) {
      const Conv2dShape s{batch, l.c, l.hw, l.hw, l.c, 1, 1, 1, 1, 0, 0};
      std::vector<float> x((size_t)s.batch * s.in_channels * s.in_plane()), w((size_t)s.out_channels * s.in_channels), b(s.out_channels);
      for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 7919) % 1000) / 1000.f - 0.4f;
      for (size_t i = 0; i < w.size(); ++i) w[i] = float((i * 104729) % 1000) / 10000.f - 0.05f;
      for (size_t i = 0; i < b.size(); ++i) b[i] = 0.01f * float(i % 7);
      std::vector<float> ya((size_t)s.batch * s.out_channels * s.out_plane()), yb(ya.size());
      std::vector<float> packed(packed_conv_weights_size(s.out_channels, s.patch_size()));
      pack_conv_weights(s, w.data(), packed.data());
      std::vector<double> cpu_a, cpu_b, wall_a, wall_b;
      for (int k = 0; k < calls; ++k) {
        const auto run_a = [&] { conv2d_forward(s, x.data(), PackedConvWeights{packed.data()}, b.data(), ya.data(), true); };
        const auto run_b = [&] { conv2d_forward_packed(s, x.data(), packed.data(), b.data(), yb.data(), true); };
        for (int order = 0; order < 2; ++order) {
          const bool a_first = (k + order) % 2 == 0;
          double t0 = wall_ms();
          const double c = bench_train::time_ms(a_first ? std::function<void()>(run_a) : std::function<void()>(run_b));
          const double wl = wall_ms() - t0;
          (a_first ? cpu_a : cpu_b).push_back(c);
          (a_first ? wall_a : wall_b).push_back(wl);
        }
      }
      const bool same = std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)) == 0;
      const double out_mib = double(ya.size()) * sizeof(float) / (1 << 20);
      std::printf("b%-2d %-24s out %6.2f MiB direct_applies %d: conv2d_forward cpu %7.3f wall %7.3f | GEMM cpu %7.3f wall %7.3f | GEMM/forward cpu %.2f wall %.2f | same bits %d\n",
                  batch, l.name, out_mib, (int)pointwise_direct_applies(s), bench_train::median(cpu_a), bench_train::median(wall_a),
                  bench_train::median(cpu_b), bench_train::median(wall_b), bench_train::median(cpu_b) / bench_train::median(cpu_a),
                  bench_train::median(wall_b) / bench_train::median(wall_a), (int)same);
    }
  }
}
