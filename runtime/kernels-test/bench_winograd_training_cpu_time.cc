// Training's Winograd paths against the implicit GEMMs they replace, on NIN's and nin-fashion's 3x3 and
// 5x5 layers at batch 16, one thread: the forward (weights transformed every call) against
// conv2d_forward, the weight gradient (conv_winograd_wgrad.h) against conv_wgrad.h's GEMM, A and B
// alternated call by call, the median thread-CPU time of `rounds` rounds each (steady on a loaded
// machine), and each weight gradient's worst error against a float64 sum on sampled elements,
// relative to the sum of the magnitudes of its terms.
//   g++ -O3 -std=c++17 -fopenmp -march=native -Iruntime/include runtime/kernels-test/bench_winograd_training_cpu_time.cc -o /tmp/wt
//   OMP_NUM_THREADS=1 /tmp/wt [rounds]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "bench_train_cpu_time.h"
#include "nincc/cpu/conv.h"

using namespace nincc::cpu;
using bench_train::cpu_ms;
using bench_train::median;

namespace {

// max over ~1000 sampled elements of |dw - exact| / sum |terms|, the exact sum in double.
double worst_error(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& dy, const std::vector<float>& dw) {
  const int taps = s.kernel_h * s.kernel_w, oh = s.out_h(), ow = s.out_w();
  double worst = 0;
  for (std::size_t i = 0; i < dw.size(); i += 1 + dw.size() / 997) {
    const int k = static_cast<int>(i / (static_cast<std::size_t>(s.in_channels) * taps)), c = static_cast<int>(i / taps % s.in_channels);
    const int r = static_cast<int>(i % taps) / s.kernel_w, q = static_cast<int>(i % taps) % s.kernel_w;
    double sum = 0, magnitude = 0;
    for (int n = 0; n < s.batch; ++n)
      for (int p = 0; p < oh; ++p)
        for (int o = 0; o < ow; ++o) {
          const int h = p - s.pad_h + r, w = o - s.pad_w + q;
          if (h < 0 || w < 0 || h >= s.in_h || w >= s.in_w) continue;
          const double t = static_cast<double>(dy[((static_cast<std::size_t>(n) * s.out_channels + k) * oh + p) * ow + o]) *
                           x[((static_cast<std::size_t>(n) * s.in_channels + c) * s.in_h + h) * s.in_w + w];
          sum += t;
          magnitude += std::fabs(t);
        }
    worst = std::max(worst, std::fabs(dw[i] - sum) / (magnitude + 1e-30));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  struct Layer {
    const char* name;
    Conv2dShape s;
  };
  const Layer layers[] = {{"NIN 5x5 96>256 28x28", {16, 96, 28, 28, 256, 5, 5, 1, 1, 2, 2}},
                          {"NIN 3x3 256>384 14x14", {16, 256, 14, 14, 384, 3, 3, 1, 1, 1, 1}},
                          {"NIN 3x3 384>1024 7x7", {16, 384, 7, 7, 1024, 3, 3, 1, 1, 1, 1}},
                          {"nin-fashion 3x3 32>64 14x14", {16, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1}},
                          {"nin-fashion 3x3 64>128 7x7", {16, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1}}};
  std::printf("%-28s %10s %10s %6s %10s %10s %6s %10s %10s\n", "layer (batch 16, ms)", "fwd GEMM", "fwd Wino", "B/A",
              "dw GEMM", "dw Wino", "B/A", "err GEMM", "err Wino");
  for (const Layer& l : layers) {
    const Conv2dShape& s = l.s;
    const WinogradKind kind = nincc::cpu::conv_detail::gradient_winograd_kind(s);
    std::vector<float> x(static_cast<std::size_t>(s.batch) * s.in_channels * s.in_plane());
    std::vector<float> dy(static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane()), y(dy.size());
    std::vector<float> w(static_cast<std::size_t>(s.out_channels) * s.patch_size()), dw_gemm(w.size()), dw_wino(w.size());
    std::vector<float> b(s.out_channels, 0.1f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * i);
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = 0.05f * std::cos(0.11f * i);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.05f * std::cos(0.7f * i);
    std::vector<double> t[4];
    for (int round = 0; round <= rounds; ++round) {
      const bool b_first = round % 2;
      for (int half = 0; half < 2; ++half) {
        const bool run_b = half == 0 ? b_first : !b_first;
        double t0 = cpu_ms();
        if (run_b) conv2d_forward_winograd_training(kind, s, x.data(), w.data(), b.data(), y.data(), true);
        else conv2d_forward(s, x.data(), w.data(), b.data(), y.data(), true);
        const double forward = cpu_ms() - t0;
        t0 = cpu_ms();
        if (run_b) conv2d_backward_weights_winograd(kind, s, x.data(), dy.data(), dw_wino.data());
        else conv2d_backward_weights_gemm(s, x.data(), dy.data(), dw_gemm.data());
        const double weights = cpu_ms() - t0;
        if (round == 0) continue;  // warm-up
        t[run_b ? 1 : 0].push_back(forward);
        t[run_b ? 3 : 2].push_back(weights);
      }
    }
    const double f0 = median(t[0]), f1 = median(t[1]), w0 = median(t[2]), w1 = median(t[3]);
    std::printf("%-28s %10.2f %10.2f %6.3f %10.2f %10.2f %6.3f %10.2e %10.2e\n", l.name, f0, f1, f1 / f0, w0, w1, w1 / w0,
                worst_error(s, x, dy, dw_gemm), worst_error(s, x, dy, dw_wino));
  }
}
