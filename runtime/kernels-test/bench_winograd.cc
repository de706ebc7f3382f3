// NIN's 5x5 and 3x3 stride-1 layers forward, implicit GEMM (conv2d_forward_packed) against each
// Winograd variant that applies (conv2d_forward_winograd), weights packed once beforehand as
// inference does: best of a few runs in ms at batch 1 and 16, on OMP_NUM_THREADS threads; in
// brackets, the layer's direct-conv GFLOP/s (2 FLOP per multiply-add of the direct algorithm).
//   g++ -O3 -std=c++17 -fopenmp -march=native -I../include bench_winograd.cc -o /tmp/bench_winograd
//   OMP_NUM_THREADS=2 /tmp/bench_winograd
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "nincc/cpu/conv_winograd.h"
#include "nincc/cpu/kernels.h"

using namespace nincc::cpu;

template <class F>
double best_ms(int reps, F f) {
  double b = 1e9;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    b = std::min(b, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return b * 1e3;
}

int main() {
  struct Layer {
    const char* name;
    Conv2dShape s;
  };
  const Layer layers[] = {{"5x5 96>256 28x28", {16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}},
                          {"3x3 256>384 14x14", {16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
                          {"3x3 384>1024 7x7", {16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}}};
  std::printf("ms, best of runs (GFLOP/s)    batch  implicit GEMM   Winograd F(2,3)  F(4,3)           F(2,5)\n");
  for (const Layer& l : layers)
    for (int batch : {1, 16}) {
      Conv2dShape s = l.s;
      s.batch = batch;
      std::vector<float> x(static_cast<std::size_t>(s.batch) * s.in_channels * s.in_plane());
      std::vector<float> w(static_cast<std::size_t>(s.out_channels) * s.patch_size()), b(s.out_channels, 0.1f);
      std::vector<float> y(static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane());
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) * 0.1f;
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 5) * 0.01f;
      const double gflop = 2.0 * s.out_channels * s.patch_size() * s.out_plane() * s.batch * 1e-9;
      const int reps = batch == 1 ? 30 : 6;
      std::vector<float> packed(static_cast<std::size_t>(packed_conv_weights_size(s.out_channels, s.patch_size())));
      pack_conv_weights(s, w.data(), packed.data());
      const double direct = best_ms(reps, [&] { conv2d_forward_packed(s, x.data(), packed.data(), b.data(), y.data(), true); });
      std::printf("%-30s %5d  %6.2f (%4.0f)", l.name, batch, direct, gflop / direct * 1e3);
      for (WinogradKind k : {WinogradKind::F2x3, WinogradKind::F4x3, WinogradKind::F2x5}) {
        if (!winograd_applies(k, s)) {
          std::printf("  %15s", "");
          continue;
        }
        std::vector<float> u(static_cast<std::size_t>(winograd_weights_size(k, s.out_channels, s.in_channels)));
        pack_winograd_weights(k, s, w.data(), u.data());
        const double t = best_ms(reps, [&] { conv2d_forward_winograd(k, s, x.data(), u.data(), b.data(), y.data(), true); });
        std::printf("  %6.2f (%4.0f)  ", t, gflop / t * 1e3);
      }
      std::printf("\n");
    }
}
