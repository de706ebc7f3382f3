// conv_wgrad_1x1.h against conv_wgrad.h's GEMM on NIN's 1x1 layers (and nin-fashion's 32-channel one) at
// batch 16, and against its own burst prefetches (<false>, the cpuWgradSpreadPrefetch ablation), called
// alternately in one process: median thread-CPU ms (bench_train_cpu_time.h) of each, GFLOP/s, and
// whether the three dw agree bit for bit. Buffers 64-byte aligned, as the runtime's arenas.
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include runtime/kernels-test/bench_wgrad_1x1_cpu_time.cc -o /tmp/w1
//   OMP_NUM_THREADS=1 /tmp/w1 [calls]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench_train_cpu_time.h"
#include "nincc/cpu/conv.h"

using nincc::cpu::Conv2dShape;

namespace {

// A float buffer on a 64-byte boundary (std::vector's 16 makes every AVX-512 load split two lines).
struct Aligned {
  float* data;
  explicit Aligned(std::size_t n) : data(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
  ~Aligned() { std::free(data); }
};

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 9;
  struct Layer { const char* name; Conv2dShape s; };
  const Layer layers[] = {{"1x1 96 56x56", {16, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0}}, {"1x1 256 28x28", {16, 256, 28, 28, 256, 1, 1, 1, 1, 0, 0}},
                          {"1x1 384 14x14", {16, 384, 14, 14, 384, 1, 1, 1, 1, 0, 0}}, {"1x1 1024 7x7", {16, 1024, 7, 7, 1024, 1, 1, 1, 1, 0, 0}},
                          {"1x1 32 28x28", {16, 32, 28, 28, 32, 1, 1, 1, 1, 0, 0}}};
  std::printf("layer            chosen     GEMM ms  GFLOP/s     1x1 ms  GFLOP/s   1x1/GEMM   burst ms  1x1/burst  bitwise\n");
  for (const Layer& l : layers) {
    const Conv2dShape& s = l.s;
    const std::size_t x_size = static_cast<std::size_t>(s.batch) * s.in_channels * s.in_plane();
    const std::size_t dy_size = static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane();
    const std::size_t dw_size = static_cast<std::size_t>(s.out_channels) * s.in_channels;
    Aligned x(x_size), dy(dy_size), gemm(dw_size), unpacked(dw_size), burst(dw_size);
    for (std::size_t i = 0; i < x_size; ++i) x.data[i] = static_cast<float>(i % 7) * 0.1f;
    for (std::size_t i = 0; i < dy_size; ++i) dy.data[i] = static_cast<float>(i % 11) * 0.03f - 0.15f;
    std::vector<double> a, b, c;
    for (int call = 0; call < calls; ++call) {
      a.push_back(bench_train::time_ms([&] { nincc::cpu::conv2d_backward_weights_gemm(s, x.data, dy.data, gemm.data); }));
      b.push_back(bench_train::time_ms([&] { nincc::cpu::conv2d_backward_weights_1x1(s, x.data, dy.data, unpacked.data); }));
      c.push_back(bench_train::time_ms([&] { nincc::cpu::conv2d_backward_weights_1x1<false>(s, x.data, dy.data, burst.data); }));
    }
    const double flops = 2.0 * s.batch * s.out_plane() * dw_size, ma = bench_train::median(a), mb = bench_train::median(b), mc = bench_train::median(c);
    const bool same = std::memcmp(gemm.data, unpacked.data, dw_size * sizeof(float)) == 0 && std::memcmp(burst.data, unpacked.data, dw_size * sizeof(float)) == 0;
    std::printf("%-16s %-8s %9.2f %8.1f %10.2f %8.1f %10.3f %10.2f %10.3f  %s\n", l.name, nincc::cpu::wgrad_1x1_applies(s) ? "1x1" : "GEMM", ma,
                flops / ma / 1e6, mb, flops / mb / 1e6, mb / ma, mc, mb / mc, same ? "yes" : "NO");
  }
}
