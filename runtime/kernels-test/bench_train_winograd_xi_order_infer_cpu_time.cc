// The Winograd forward with weights packed once (inference's call) on NIN's layers at batch 16 and 2, one
// thread, median thread-CPU time of 7 calls: the layers whose block V is past L2 (conv_winograd.h
// kVInL2Bytes: k21 as F(4x4,3x3)) run their products a*a matrix by matrix since the training data
// gradient's change; the others are there to show they did not move. A/B against another checkout's headers:
//   g++ -O3 -std=c++17 -fopenmp -march=native -I<checkout>/runtime/include bench_train_winograd_xi_order_infer_cpu_time.cc -o /tmp/wi
//   OMP_NUM_THREADS=1 /tmp/wi
#include <cstdio>
#include <vector>

#include "bench_train_cpu_time.h"
#include "nincc/cpu/conv.h"

using namespace nincc::cpu;

int main() {
  struct Layer {
    const char* name;
    WinogradKind kind;
    Conv2dShape shape;
  };
  const Layer layers[] = {{"k21 3x3 256->384 14x14 F4x3 b16", WinogradKind::F4x3, {16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
                          {"k21 3x3 256->384 14x14 F4x3 b2", WinogradKind::F4x3, {2, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
                          {"k31 3x3 384->1024 7x7 F2x3 b16", WinogradKind::F2x3, {16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}},
                          {"k11 5x5 96->256 28x28 F2x5 b16", WinogradKind::F2x5, {16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}}};
  for (const Layer& l : layers) {
    const Conv2dShape& s = l.shape;
    std::vector<float> x(static_cast<std::size_t>(s.batch) * s.in_channels * s.in_plane(), 0.5f);
    std::vector<float> w(static_cast<std::size_t>(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w, 0.01f);
    std::vector<float> y(static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane());
    std::vector<float> u(static_cast<std::size_t>(winograd_weights_size(l.kind, s.out_channels, s.in_channels)));
    pack_winograd_weights(l.kind, s, w.data(), u.data());
    std::vector<double> times;
    for (int r = 0; r < 7; ++r)
      times.push_back(bench_train::time_ms([&] { conv2d_forward_winograd(l.kind, s, x.data(), u.data(), nullptr, y.data()); }));
    std::printf("%-34s %8.2f ms\n", l.name, bench_train::median(times));
  }
}
