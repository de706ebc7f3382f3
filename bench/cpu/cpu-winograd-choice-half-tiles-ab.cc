// NIN's batch-1 Winograd layers, conv2d_forward_winograd with half_tiles true vs false (the winogradHalfTiles ablation),
// interleaved call by call in one process, the order swapping each round; medians of 390 calls after 10, and whether the bits agree.
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include bench/cpu/cpu-winograd-choice-half-tiles-ab.cc -o /tmp/half_ab
//   OMP_NUM_THREADS=1 chrt -f 20 /tmp/half_ab
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>
#include <omp.h>
#include "nincc/cpu/conv_winograd.h"
using namespace nincc::cpu;
int main() {
  struct L { const char* name; WinogradKind kind; Conv2dShape s; };
  const L layers[] = {{"k31 F(2,3) 3x3 384>1024 7x7 b1", WinogradKind::F2x3, {1, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}},
                      {"k21 F(2,3) 3x3 256>384 14x14 b1", WinogradKind::F2x3, {1, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
                      {"k11 F(2,5) 5x5 96>256 28x28 b1", WinogradKind::F2x5, {1, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}}};
  for (const L& l : layers) {
    const Conv2dShape& s = l.s;
    std::vector<float> x(s.batch * s.in_channels * s.in_plane()), w(s.out_channels * s.in_channels * 9 * 3), b(s.out_channels);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = (i % 13) * 0.1f - 0.6f;
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = (i % 7) * 0.01f - 0.03f;
    std::vector<float> packed(winograd_weights_size(l.kind, s.out_channels, s.in_channels));
    pack_winograd_weights(l.kind, s, w.data(), packed.data());
    std::vector<float> y0(s.batch * s.out_channels * s.out_plane()), y1(y0.size());
    std::vector<double> t[2];
    for (int r = 0; r < 400; ++r)
      for (int v : {r % 2, 1 - r % 2}) {
        auto t0 = std::chrono::steady_clock::now();
        conv2d_forward_winograd(l.kind, s, x.data(), packed.data(), b.data(), v ? y1.data() : y0.data(), true, {}, v == 1);
        if (r >= 10) t[v].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
    for (auto& v : t) std::sort(v.begin(), v.end());
    const bool same = std::equal(y0.begin(), y0.end(), y1.begin());
    std::printf("%-34s threads %d: full-width %.3f ms, half tiles %.3f ms (%.3fx), outputs bitwise equal: %s\n", l.name, omp_get_max_threads(),
                t[0][t[0].size() / 2], t[1][t[1].size() / 2], t[1][t[1].size() / 2] / t[0][t[0].size() / 2], same ? "yes" : "NO");
  }
}
