// conv2d_backward_weights_stem (conv_wgrad_stem.h) against conv_wgrad.h's GEMM on NIN's 11x11/4 stem
// at batch 16, interleaved A, B, A, B: thread-CPU ms per call (1 thread) or process-CPU and wall ms
// (more), medians of `rounds`, and whether the two dw agree bit for bit.
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include runtime/kernels-test/bench_wgrad_stem_cpu_time.cc -o /tmp/ws
//   /tmp/ws [rounds] [threads] [batch]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>
#include <omp.h>

#include "bench_train_cpu_time.h"
#include "nincc/cpu/kernels.h"

using namespace nincc::cpu;

static double clock_ms(clockid_t c) {
  timespec t;
  clock_gettime(c, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const int batch = argc > 3 ? std::atoi(argv[3]) : 16;
  omp_set_num_threads(threads);
  const clockid_t cpu = threads > 1 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID;
  const Conv2dShape s{batch, 3, 224, 224, 96, 11, 11, 4, 4, 5, 5};
  std::vector<float> x(static_cast<size_t>(s.batch) * s.in_channels * s.in_plane()), dy(static_cast<size_t>(s.batch) * s.out_channels * s.out_plane());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) * 0.01f - 0.5f;
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = static_cast<float>((i * 53) % 97) * 0.002f - 0.09f;
  std::vector<float> dw_gemm(static_cast<size_t>(s.out_channels) * s.patch_size()), dw_stem(dw_gemm.size());
  std::vector<double> cpu_gemm, cpu_stem, wall_gemm, wall_stem;
  for (int r = 0; r < rounds + 1; ++r) {
    double c0 = clock_ms(cpu), w0 = clock_ms(CLOCK_MONOTONIC);
    conv2d_backward_weights_gemm(s, x.data(), dy.data(), dw_gemm.data());
    double c1 = clock_ms(cpu), w1 = clock_ms(CLOCK_MONOTONIC);
    conv2d_backward_weights_stem(s, x.data(), dy.data(), dw_stem.data());
    double c2 = clock_ms(cpu), w2 = clock_ms(CLOCK_MONOTONIC);
    if (r == 0) continue;  // warm-up
    cpu_gemm.push_back(c1 - c0), wall_gemm.push_back(w1 - w0), cpu_stem.push_back(c2 - c1), wall_stem.push_back(w2 - w1);
  }
  const double flops = 2.0 * s.batch * s.out_plane() * s.out_channels * s.patch_size();
  const double a = bench_train::median(cpu_gemm), b = bench_train::median(cpu_stem);
  const bool same = std::memcmp(dw_gemm.data(), dw_stem.data(), sizeof(float) * dw_gemm.size()) == 0;
  std::printf("stem 11x11/4 3->96 b%d, %d thread(s), %d rounds: gemm cpu %.2f ms (%.1f GFLOP/s) wall %.2f | stem cpu %.2f ms (%.1f GFLOP/s) wall %.2f | B/A cpu %.3f | bitwise %s\n",
              s.batch, threads, rounds, a, flops / a / 1e6, bench_train::median(wall_gemm), b, flops / b / 1e6,
              bench_train::median(wall_stem), b / a, same ? "equal" : "DIFFERENT");
  return same ? 0 : 1;
}
