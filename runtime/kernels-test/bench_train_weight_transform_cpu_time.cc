// What training's per-call Winograd weight transforms cost beside the convs that use them, on NIN's 3x3 and
// 5x5 layers at batch 16, one thread: pack_winograd_weights (the forward's U = G g G^T) and
// pack_winograd_weights_flipped (the data gradient's), against the whole Winograd forward and data gradient
// that include them. Median thread-CPU time of `rounds` rounds (steady on a loaded machine).
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include runtime/kernels-test/bench_train_weight_transform_cpu_time.cc -o /tmp/wtt
//   OMP_NUM_THREADS=1 /tmp/wtt [rounds]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_train_cpu_time.h"
#include "nincc/cpu/conv.h"

using namespace nincc::cpu;
using bench_train::median;
using bench_train::time_ms;

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  struct Layer {
    const char* name;
    Conv2dShape shape;
  };
  const Layer layers[] = {
      {"NIN 5x5 96->256 28x28", Conv2dShape{16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}},
      {"NIN 3x3 256->384 14x14", Conv2dShape{16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
      {"NIN 3x3 384->1024 7x7", Conv2dShape{16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}},
  };
  std::printf("%-24s %12s %12s %12s %12s  (median thread-CPU ms of %d rounds)\n", "layer", "fwd pack", "fwd conv", "dgrad pack",
              "dgrad", rounds);
  for (const Layer& l : layers) {
    const Conv2dShape& s = l.shape;
    const WinogradKind kind = conv_detail::gradient_winograd_kind(s);
    const Conv2dShape flipped = conv_detail::backward_data_conv_shape(s);
    std::vector<float> x(static_cast<std::size_t>(s.batch) * s.in_channels * s.in_plane(), 0.5f);
    std::vector<float> w(static_cast<std::size_t>(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w, 0.25f);
    std::vector<float> y(static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane()), dx(x.size());
    std::vector<float> packed(static_cast<std::size_t>(std::max(winograd_weights_size(kind, s.out_channels, s.in_channels),
                                                                winograd_weights_size(kind, s.in_channels, s.out_channels))));
    std::vector<double> fp, fc, dp, dc;
    for (int r = 0; r < rounds; ++r) {
      fp.push_back(time_ms([&] { pack_winograd_weights(kind, s, w.data(), packed.data()); }));
      fc.push_back(time_ms([&] { conv2d_forward_winograd_training(kind, s, x.data(), w.data(), nullptr, y.data()); }));
      dp.push_back(time_ms([&] { pack_winograd_weights_flipped(kind, flipped, w.data(), packed.data()); }));
      dc.push_back(time_ms([&] { conv2d_backward_data(s, y.data(), w.data(), dx.data()); }));
    }
    std::printf("%-24s %12.2f %12.2f %12.2f %12.2f\n", l.name, median(fp), median(fc), median(dp), median(dc));
  }
}
