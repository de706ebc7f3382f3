// conv2d_backward_weights of NIN's conv layers at batch 16 on 1 thread beside the same layer's forward:
// the least thread-CPU time of a few runs (steadier than wall time on a loaded machine), GFLOP/s and a
// checksum. With a thread count above 1, the least process CPU time and the least wall time instead.
// A/B against another checkout's headers:
//   g++ -O3 -std=c++17 -fopenmp -march=native -I<checkout>/runtime/include bench_wgrad_cpu_time.cc -o /tmp/dw
//   /tmp/dw [runs] [layer-name-substring] [threads]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>
#include <omp.h>
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
static clockid_t g_clock = CLOCK_THREAD_CPUTIME_ID;
static double clock_ms(clockid_t c) { timespec t; clock_gettime(c, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }
static double cpu_ms() { return clock_ms(g_clock); }
int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  const char* only = argc > 2 ? argv[2] : "";
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  omp_set_num_threads(threads);
  if (threads > 1) g_clock = CLOCK_PROCESS_CPUTIME_ID;
  struct L { const char* name; Conv2dShape s; };
  const L layers[] = {{"conv1 11x11/4", {16, 3, 224, 224, 96, 11, 11, 4, 4, 5, 5}}, {"1x1 96 56x56", {16, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0}},
                      {"5x5 96>256 28x28", {16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}}, {"1x1 256 28x28", {16, 256, 28, 28, 256, 1, 1, 1, 1, 0, 0}},
                      {"3x3 256>384 14x14", {16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}}, {"1x1 384 14x14", {16, 384, 14, 14, 384, 1, 1, 1, 1, 0, 0}},
                      {"3x3 384>1024 7x7", {16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}}, {"1x1 1024 7x7", {16, 1024, 7, 7, 1024, 1, 1, 1, 1, 0, 0}}};
  double total_fwd = 0, total_dw = 0;
  for (const L& l : layers) {
    if (!std::strstr(l.name, only)) continue;
    const Conv2dShape s = l.s;
    std::vector<float> x((size_t)s.batch * s.in_channels * s.in_plane()), w((size_t)s.out_channels * s.patch_size()), b(s.out_channels, 0.1f),
        y((size_t)s.batch * s.out_channels * s.out_plane()), dw(w.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 7) * 0.1f;
    for (size_t i = 0; i < w.size(); ++i) w[i] = (i % 5) * 0.01f;
    for (size_t i = 0; i < y.size(); ++i) y[i] = (i % 11) * 0.03f - 0.15f;
    std::vector<float> dy = y;
    double bf = 1e9, bw = 1e9, wall_dw = 1e9;
    for (int r = 0; r < runs; ++r) {
      double t0 = cpu_ms(); conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), true); bf = std::min(bf, cpu_ms() - t0);
      const double w0 = clock_ms(CLOCK_MONOTONIC);
      t0 = cpu_ms(); conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), nullptr); bw = std::min(bw, cpu_ms() - t0);
      wall_dw = std::min(wall_dw, clock_ms(CLOCK_MONOTONIC) - w0);
    }
    total_fwd += bf; total_dw += bw;
    const double flops = 2.0 * s.batch * s.out_plane() * s.out_channels * s.patch_size();
    double sum = 0; for (float v : dw) sum += v;
    printf("%-18s fwd %8.2f ms %6.1f GFLOP/s | dw %8.2f ms %6.1f GFLOP/s", l.name, bf, flops / bf / 1e6, bw, flops / bw / 1e6);
    if (threads > 1) printf(" | dw wall %8.2f ms", wall_dw);
    printf("  (dw checksum %.6g)\n", sum);
  }
  printf("%-18s fwd %8.2f ms                 | dw %8.2f ms\n", "total", total_fwd, total_dw);
}
