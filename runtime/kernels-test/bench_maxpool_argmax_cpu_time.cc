// maxpool_forward of NIN's three 3x3/2 poolings at batch 16 on 1 thread, with the argmax indices a
// training step keeps and without them (inference): the least thread-CPU time of a few runs and a
// checksum of y and the indices. A/B against another checkout's headers (bench/logs/cpu-train-maxpool-argmax.out):
//   g++ -O3 -std=c++17 -fopenmp -march=native -I<checkout>/runtime/include bench_maxpool_argmax_cpu_time.cc -o /tmp/mp
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>
#include <omp.h>
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
static double cpu_ms() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }
int main(int argc, char** argv) {
  omp_set_num_threads(1);
  const int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  const Pool2dShape shapes[] = {{16, 96, 56, 56, 3, 3, 2, 2, 1, 1}, {16, 256, 28, 28, 3, 3, 2, 2, 1, 1}, {16, 384, 14, 14, 3, 3, 2, 2, 1, 1}};
  double total = 0;
  for (const Pool2dShape& s : shapes) {
    std::vector<float> x(static_cast<size_t>(s.planes()) * s.in_plane()), y(static_cast<size_t>(s.planes()) * s.out_plane());
    std::vector<std::int32_t> argmax(y.size());
    // Pseudo-random values with ties (a ReLU's zeros): where the maximum sits varies window to window.
    unsigned state = 12345;
    for (float& v : x) { state = state * 1664525u + 1013904223u; const int r = static_cast<int>(state >> 24) - 96; v = r > 0 ? r * 0.01f : 0.f; }
    double with = 1e9, without = 1e9;
    for (int r = 0; r < runs; ++r) {
      double t0 = cpu_ms(); maxpool_forward(s, x.data(), y.data(), argmax.data()); with = std::min(with, cpu_ms() - t0);
      t0 = cpu_ms(); maxpool_forward(s, x.data(), y.data(), nullptr); without = std::min(without, cpu_ms() - t0);
    }
    total += with;
    double sum = 0, isum = 0;
    for (size_t i = 0; i < y.size(); ++i) { sum += y[i]; isum += argmax[i]; }
    printf("maxpool 3x3/2 %4dx%2dx%2d b16: with argmax %7.3f ms, without %7.3f ms  (checksums %.6g %.0f)\n", s.channels, s.in_h, s.in_w, with, without, sum, isum);
  }
  printf("total with argmax %7.3f ms\n", total);
}
