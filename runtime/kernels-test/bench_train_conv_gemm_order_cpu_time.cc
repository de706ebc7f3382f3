// Training's implicit-GEMM convs whose loop order chunked_order_pays (conv_gemm.h) decides: forward
// (conv2d_forward, weights packed per call) and backward-data (conv2d_backward_data) of NIN's and
// ResNet-50's layers at batch 16, with controls the rule leaves alone (deeper convs, small outputs).
// Per layer: the median of `calls` calls; with 1 thread the thread-CPU ms, with more the wall ms
// (the threads' CPU time is not this thread's). A checksum of y and dx (equal bits give equal sums).
// A/B against another checkout's headers, run alternately:
//   g++ -O3 -std=c++17 -fopenmp -march=native -I<checkout>/runtime/include bench_train_conv_gemm_order_cpu_time.cc -o /tmp/o
//   OMP_NUM_THREADS=1 /tmp/o [calls=5] [layer-name-substring]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <omp.h>

#include "bench_train_cpu_time.h"
#include "nincc/cpu/kernels.h"

using namespace nincc::cpu;

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 5;
  const char* only = argc > 2 ? argv[2] : "";
  const bool wall = omp_get_max_threads() > 1;
  struct Layer { const char* name; Conv2dShape s; bool data_gradient; };
  const Layer layers[] = {
      {"NIN 1x1 96 56x56", {16, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0}, true},
      {"NIN 1x1 256 28x28", {16, 256, 28, 28, 256, 1, 1, 1, 1, 0, 0}, true},        // control: two depth blocks
      {"NIN conv1 11x11/4", {16, 3, 224, 224, 96, 11, 11, 4, 4, 5, 5}, false},       // control: two depth blocks
      {"r50 stem 7x7/2", {16, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3}, false},
      {"r50 1x1 64 56x56", {16, 64, 56, 56, 64, 1, 1, 1, 1, 0, 0}, true},
      {"r50 1x1 64>256 56x56", {16, 64, 56, 56, 256, 1, 1, 1, 1, 0, 0}, true},
      {"fashion 1x1 32 28x28", {16, 32, 28, 28, 32, 1, 1, 1, 1, 0, 0}, true}};      // control: 1.6 MB out
  std::printf("%-22s %10s %10s   (median %s ms of %d calls)\n", "layer", "fwd", "dgrad", wall ? "wall" : "thread-CPU", calls);
  for (const Layer& l : layers) {
    if (!std::strstr(l.name, only)) continue;
    const Conv2dShape s = l.s;
    std::vector<float> x(static_cast<std::size_t>(s.batch) * s.in_channels * s.in_plane()), w(static_cast<std::size_t>(s.out_channels) * s.patch_size());
    std::vector<float> y(static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane()), dy(y.size()), dx(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i % 7) * 0.1f;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = (i % 5) * 0.01f;
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = (i % 11) * 0.03f - 0.15f;
    auto time_ms = [&](auto&& fn) {
      if (!wall) return bench_train::time_ms(fn);
      const auto t0 = std::chrono::steady_clock::now();
      fn();
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    std::vector<double> fwd, dgrad;
    for (int c = 0; c < calls; ++c) {
      fwd.push_back(time_ms([&] { conv2d_forward(s, x.data(), w.data(), nullptr, y.data(), false); }));
      if (l.data_gradient) dgrad.push_back(time_ms([&] { conv2d_backward_data(s, dy.data(), w.data(), dx.data()); }));
    }
    double sum = 0;
    for (float v : y) sum += v;
    for (float v : dx) sum += v;
    std::printf("%-22s %10.2f %10.2f   (sum %.9g)\n", l.name, bench_train::median(fwd), l.data_gradient ? bench_train::median(dgrad) : 0.0, sum);
  }
}
