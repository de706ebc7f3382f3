// A model's 3x3 stride-1 layers (NIN's 256->384 on 14x14 and 384->1024 on 7x7, or nin-fashion's 32->64 on 14x14 and
// 64->128 on 7x7) as Winograd F(2x2,3x3) and F(4x4,3x3), and, for nin-fashion, the packed implicit GEMM too, called in
// turn, median process CPU time (one thread on a loaded machine: the time the kernel ran). Unlike
// runtime/kernels-test/bench_winograd.cc (best wall time), meant for a machine other sessions share.
//   g++ -std=c++17 -O3 -fopenmp -march=native -I runtime/include bench/cpu/winograd-variants-ab.cc -o /tmp/winograd-variants-ab
//   OMP_NUM_THREADS=1 /tmp/winograd-variants-ab BATCH CALLS [nin|nin-fashion]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
static double cpu_ms() { timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
int main(int argc, char** argv) {
  const int batch = atoi(argv[1]), calls = atoi(argv[2]);
  const bool fashion = argc > 3 && std::strcmp(argv[3], "nin-fashion") == 0;
  struct L { int c, h, k; };
  const std::vector<L> ls = fashion ? std::vector<L>{{32, 14, 64}, {64, 7, 128}} : std::vector<L>{{256, 14, 384}, {384, 7, 1024}};
  for (auto l : ls) {
    Conv2dShape s{batch, l.c, l.h, l.h, l.k, 3, 3, 1, 1, 1, 1}, one = s; one.batch = 1;
    std::vector<float> x((size_t)batch * l.c * l.h * l.h), w((size_t)l.k * l.c * 9), b(l.k), y((size_t)batch * l.k * l.h * l.h);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (i * 2654435761u % 1000) / 1000.f - .5f;
    for (size_t i = 0; i < w.size(); ++i) w[i] = ((i * 40503u) % 1000) / 5000.f - .1f;
    WinogradKind kinds[] = {WinogradKind::F2x3, WinogradKind::F4x3};
    std::vector<float> u[2], packed;
    for (int v = 0; v < 2; ++v) { u[v].resize(winograd_weights_size(kinds[v], l.k, l.c)); pack_winograd_weights(kinds[v], one, w.data(), u[v].data()); }
    if (fashion) { packed.resize(packed_conv_weights_size(l.k, l.c * 9)); pack_conv_weights(one, w.data(), packed.data()); }
    const int variants = fashion ? 3 : 2;  // F2x3, F4x3[, the implicit GEMM]
    std::vector<double> t[3];
    for (int i = 0; i < calls; ++i) for (int v = 0; v < variants; ++v) {
      double c0 = cpu_ms();
      if (v < 2) conv2d_forward_winograd(kinds[v], s, x.data(), u[v].data(), b.data(), y.data(), true);
      else conv2d_forward(s, x.data(), PackedConvWeights{packed.data()}, b.data(), y.data(), true);
      t[v].push_back(cpu_ms() - c0);
    }
    for (auto& v : t) std::sort(v.begin(), v.end());
    std::printf("3x3 %d->%d on %dx%d batch %d: F2x3 %.3f ms, F4x3 %.3f ms (median CPU, 1 thread), F4x3/F2x3 %.3f", l.c, l.k, l.h, l.h, batch, t[0][calls / 2], t[1][calls / 2], t[1][calls / 2] / t[0][calls / 2]);
    if (fashion) std::printf("; GEMM %.3f ms, F2x3/GEMM %.3f, F4x3/GEMM %.3f", t[2][calls / 2], t[0][calls / 2] / t[2][calls / 2], t[1][calls / 2] / t[2][calls / 2]);
    std::printf("\n");
  }
}
