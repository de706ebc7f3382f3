// NIN's layer shapes through the kernel library's public calls (conv forward at batch 1 and 16,
// backward-data and weight gradient at batch 16, max pooling, the classifier at batch 1): best of a
// few runs, in ms, on the given thread count. The calls are the ones every version of the library
// has, so the same file times an older checkout's headers too:
//   g++ -O3 -std=c++17 -fopenmp -march=native -I../include bench_nin_layers.cc -o /tmp/bench_nin_layers
//   /tmp/bench_nin_layers 1 && /tmp/bench_nin_layers 2
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <vector>
#include <omp.h>
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
template <class F> double best(int reps, F f) {
  double b = 1e9;
  for (int r = 0; r < reps; ++r) { auto t0 = std::chrono::steady_clock::now(); f(); b = std::min(b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()); }
  return b * 1e3;
}
int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  omp_set_num_threads(threads);
  struct L { const char* name; Conv2dShape s; };
  const L layers[] = {{"conv1 11x11/4", {16, 3, 224, 224, 96, 11, 11, 4, 4, 5, 5}}, {"1x1 96 56x56", {16, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0}},
                      {"5x5 96>256 28x28", {16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}}, {"1x1 256 28x28", {16, 256, 28, 28, 256, 1, 1, 1, 1, 0, 0}},
                      {"3x3 256>384 14x14", {16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}}, {"1x1 384 14x14", {16, 384, 14, 14, 384, 1, 1, 1, 1, 0, 0}},
                      {"3x3 384>1024 7x7", {16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}}, {"1x1 1024 7x7", {16, 1024, 7, 7, 1024, 1, 1, 1, 1, 0, 0}}};
  double tot[4] = {0, 0, 0, 0};
  printf("%d threads: ms (best of runs)      fwd b1   fwd b16   dx b16   dw b16\n", threads);
  for (const L& l : layers) {
    Conv2dShape s = l.s;
    std::vector<float> x((size_t)s.batch * s.in_channels * s.in_plane()), w((size_t)s.out_channels * s.patch_size()), b(s.out_channels, 0.1f),
        y((size_t)s.batch * s.out_channels * s.out_plane()), dx(x.size()), dw(w.size()), db(s.out_channels);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 7) * 0.1f;
    for (size_t i = 0; i < w.size(); ++i) w[i] = (i % 5) * 0.01f;
    Conv2dShape s1 = s; s1.batch = 1;
    double f1 = best(15, [&] { conv2d_forward(s1, x.data(), w.data(), b.data(), y.data(), true); });
    double f16 = best(4, [&] { conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), true); });
    double d16 = best(3, [&] { conv2d_backward_data(s, y.data(), w.data(), dx.data()); });
    double w16 = best(3, [&] { conv2d_backward_weights(s, x.data(), y.data(), dw.data(), db.data()); });
    tot[0] += f1; tot[1] += f16; tot[2] += d16; tot[3] += w16;
    printf("%-32s %8.2f %9.2f %8.2f %8.2f\n", l.name, f1, f16, d16, w16);
  }
  printf("%-32s %8.2f %9.2f %8.2f %8.2f\n", "sum of the 8 distinct shapes", tot[0], tot[1], tot[2], tot[3]);
  Pool2dShape p{16, 96, 56, 56, 3, 3, 2, 2, 1, 1};
  std::vector<float> px(p.planes() * p.in_plane(), 0.5f), py(p.planes() * p.out_plane());
  std::vector<int> am(py.size());
  for (size_t i = 0; i < px.size(); ++i) px[i] = (i * 7919 % 1000) * 0.001f;
  printf("maxpool 3x3/2 96x56x56 b16: %.2f ms, with argmax %.2f ms\n", best(10, [&] { maxpool_forward(p, px.data(), py.data(), nullptr); }),
         best(10, [&] { maxpool_forward(p, px.data(), py.data(), am.data()); }));
  LinearShape ls{1, 1024, 1000};
  std::vector<float> lx(1024, 0.5f), lw(1024 * 1000, 0.01f), lb(1000), ly(1000);
  printf("linear 1024>1000 b1: %.3f ms\n", best(50, [&] { linear_forward(ls, lx.data(), lw.data(), lb.data(), ly.data()); }));
}
