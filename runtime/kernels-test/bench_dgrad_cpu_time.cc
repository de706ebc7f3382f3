// conv2d_backward_data of NIN's (and nin-fashion's 3x3) stride-1 non-pointwise layers at batch 16 on 1 thread: the least
// thread-CPU time of 5 runs (steadier than wall time on a loaded machine), GFLOP/s and a checksum.
// A/B against another checkout's headers (bench/logs/cpu-train-dgrad-as-conv.out, cpu-train-dgrad-winograd.out):
//   g++ -O3 -std=c++17 -fopenmp -march=native -I<checkout>/runtime/include bench_dgrad_cpu_time.cc -o /tmp/dx
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>
#include <omp.h>
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
static double cpu_ms() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }
int main() {
  omp_set_num_threads(1);
  struct L { const char* name; Conv2dShape s; };
  const L layers[] = {{"5x5 96>256 28x28", {16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}},
                      {"3x3 256>384 14x14", {16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
                      {"3x3 384>1024 7x7", {16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}},
                      {"fashion 3x3 32>64 14x14", {16, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1}}};
  for (const L& l : layers) {
    Conv2dShape s = l.s;
    std::vector<float> w((size_t)s.out_channels * s.patch_size()), y((size_t)s.batch * s.out_channels * s.out_plane()), dx((size_t)s.batch * s.in_channels * s.in_plane());
    for (size_t i = 0; i < y.size(); ++i) y[i] = (i % 7) * 0.1f;
    for (size_t i = 0; i < w.size(); ++i) w[i] = (i % 5) * 0.01f;
    double bd = 1e9, bf = 1e9;
    for (int r = 0; r < 5; ++r) {
      double t0 = cpu_ms(); conv2d_backward_data(s, y.data(), w.data(), dx.data()); bd = std::min(bd, cpu_ms() - t0);
    }
    double flops = 2.0 * s.batch * s.out_plane() * s.out_channels * s.patch_size();
    double sum = 0; for (float v : dx) sum += v;
    printf("%-24s dx b16 min cpu %8.2f ms  %6.1f GFLOP/s  (checksum %.6g)\n", l.name, bd, flops / bd / 1e6, sum);
  }
}
