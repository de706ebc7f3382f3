// The uint8 stem's forward and weight gradient (nincc/cpu/u8_input.h, bytes gathered in place) against the
// way it ran before (a float copy of the normalised images in scratch, planar or phase-split, then the float
// gather; reproduced here as `copied`), and against the float path fed already-normalised floats: NIN's
// ImageNet stem (3x224x224, 96 11x11 filters, stride 4) at batch 16. Rounds interleave the three, so load on a
// shared machine hits each alike; prints each round and the medians in ms.
//   g++ -O3 -std=c++17 -fopenmp -march=native -I../include bench_u8_stem.cc -o /tmp/bench_u8_stem
//   OMP_NUM_THREADS=2 /tmp/bench_u8_stem [rounds]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "nincc/cpu/kernels.h"

using namespace nincc::cpu;

namespace {

// Before: the normalised images as the float view the gather reads, written in the thread's scratch.
conv_gemm_detail::InputView copied_view(const Conv2dShape& s, const U8Images& in) {
  const int channels = s.in_channels, stride = s.stride_w;
  const std::vector<float> table = u8_detail::value_tables(channels, in.mean, in.std);
  const int width = (s.in_w + stride - 1) / stride;
  const std::int64_t row = static_cast<std::int64_t>(stride) * width;
  const std::int64_t rows = static_cast<std::int64_t>(s.batch) * channels * s.in_h;
  float* copy = thread_scratch(ScratchSlot::kConvPhases, static_cast<std::size_t>(rows * row));
  parallel_for(rows, rows * row, [&](std::int64_t r) {
    const std::int64_t n = r / (static_cast<std::int64_t>(channels) * s.in_h);
    const int c = static_cast<int>(r / s.in_h % channels), ih = static_cast<int>(r % s.in_h);
    const std::uint8_t* src = in.pixels + ((n * s.in_h + ih) * s.in_w) * channels + c;
    const float* value = table.data() + c * 256;
    float* dst = copy + r * row;
    for (int ph = 0; ph < stride; ++ph) {
      const int inside = (s.in_w - ph + stride - 1) / stride;
      float* out = dst + ph * width;
      for (int j = 0; j < inside; ++j) out[j] = value[src[static_cast<std::int64_t>(j * stride + ph) * channels]];
      for (int j = inside; j < width; ++j) out[j] = 0.f;
    }
  });
  const std::int64_t plane = static_cast<std::int64_t>(s.in_h) * row;
  return {copy, channels * plane, plane, row, stride == 1 ? 0 : width};
}

template <class F>
double ms(F f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[(xs.size() - 1) / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const Conv2dShape s{16, 3, 224, 224, 96, 11, 11, 4, 4, 0, 0};
  const double mean[3] = {0.485, 0.456, 0.406}, stdev[3] = {0.229, 0.224, 0.225};
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(s.batch) * 3 * 224 * 224);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 2654435761u >> 24);
  std::vector<float> floats(bytes.size(), 0.5f), w(static_cast<std::size_t>(96) * s.patch_size(), 0.01f), bias(96, 0.f);
  std::vector<float> y(static_cast<std::size_t>(s.batch) * 96 * s.out_plane()), dw(w.size()), db(96);
  std::vector<float> dy(y.size(), 0.001f);
  const U8Images images{bytes.data(), mean, stdev};
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights, static_cast<std::size_t>(packed_conv_weights_size(96, s.patch_size())));
  std::vector<double> t[6];
  const char* names[6] = {"forward u8 in place", "forward u8 copied", "forward float", "wgrad u8 in place", "wgrad u8 copied", "wgrad float"};
  for (int r = 0; r <= rounds; ++r) {  // round 0 warms up, untimed
    const double a[6] = {
        ms([&] { conv2d_forward(s, images, w.data(), bias.data(), y.data()); }),
        ms([&] {
          pack_conv_weights(s, w.data(), packed);
          conv2d_forward_view(s, copied_view(s, images), packed, bias.data(), y.data());
        }),
        ms([&] { conv2d_forward(s, floats.data(), w.data(), bias.data(), y.data()); }),
        ms([&] { conv2d_backward_weights(s, images, dy.data(), dw.data(), db.data()); }),
        ms([&] {
          conv2d_backward_weights_view(s, copied_view(s, images), dy.data(), dw.data());
          conv2d_bias_gradient(s, dy.data(), db.data());
        }),
        ms([&] { conv2d_backward_weights(s, floats.data(), dy.data(), dw.data(), db.data()); }),
    };
    if (r == 0) continue;
    std::printf("round %d:", r);
    for (int i = 0; i < 6; ++i) {
      t[i].push_back(a[i]);
      std::printf(" %.2f", a[i]);
    }
    std::printf("\n");
  }
  std::printf("stem 3x224x224 -> 96x54x54 (11x11/4), batch 16, %d threads, median of %d rounds (ms):\n", max_threads(), rounds);
  for (int i = 0; i < 6; ++i) std::printf("  %-22s %8.2f\n", names[i], median(t[i]));
  return 0;
}
