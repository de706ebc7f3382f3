// Max and average pooling against the float64 reference over kernels, strides and pads (pad up
// to kernel/2, as Torch allows), plus the tie rule, -inf padding, count_include_pad, NIN's planes,
// planes wide enough for the 16-column vector paths, planes narrow enough for the in-register path
// (every window kind, pad and ceil mode, on 1, 2 and all threads), the NaN rule on both, and pools that
// write (and read the gradient of) their channels of a concat's output.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/channels.h"
#include "nincc/cpu/pool.h"
#include "reference_conv_pool.h"

namespace kernels_test {
namespace {

void check_reference_gradients(Rng& rng) {
  const Pool2dShape s{1, 2, 7, 6, 3, 3, 2, 2, 1, 1};
  const std::vector<double> x = to_double(random_floats(pool_x_size(s), rng));
  const std::vector<double> dy = to_double(random_floats(pool_y_size(s), rng));
  const MaxPoolResult mp = ref_maxpool_forward(s, x);
  CHECK_GRADIENT(x, ref_maxpool_backward(s, mp.argmax, dy),
                 [&](const std::vector<double>& v) { return dot(ref_maxpool_forward(s, v).y, dy); },
                 "reference maxpool dx");
  CHECK_GRADIENT(x, ref_avgpool_backward(s, dy),
                 [&](const std::vector<double>& v) { return dot(ref_avgpool_forward(s, v), dy); },
                 "reference avgpool dx");
}

void check_pool(const Pool2dShape& s, const std::vector<float>& x, Rng& rng) {
  char what[128];
  std::snprintf(what, sizeof what, "pool n%d c%d %dx%d kernel %dx%d stride %d,%d pad %d,%d", s.batch, s.channels,
                s.in_h, s.in_w, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w);
  const std::vector<float> dy = random_floats(pool_y_size(s), rng);
  const MaxPoolResult want = ref_maxpool_forward(s, to_double(x));

  std::vector<float> y = poisoned(pool_y_size(s));
  std::vector<std::int32_t> argmax(pool_y_size(s), -7);
  nincc::cpu::maxpool_forward(s, x.data(), y.data(), argmax.data());
  CHECK_CLOSE(y, want.y, 0.0, what);  // a max is exact
  CHECK(std::vector<int>(argmax.begin(), argmax.end()) == want.argmax);
  std::vector<float> y_only = poisoned(pool_y_size(s));
  nincc::cpu::maxpool_forward(s, x.data(), y_only.data(), nullptr);
  CHECK(bitwise_equal(y_only, y));

  std::vector<float> dx = poisoned(x.size()), dx_rescan = poisoned(x.size());
  nincc::cpu::maxpool_backward(s, dy.data(), argmax.data(), dx.data());
  CHECK_CLOSE(dx, ref_maxpool_backward(s, want.argmax, to_double(dy)), 1e-6, what);
  nincc::cpu::maxpool_backward_from_input(s, x.data(), dy.data(), dx_rescan.data());
  CHECK(bitwise_equal(dx_rescan, dx));

  std::vector<float> avg = poisoned(pool_y_size(s)), avg_dx = poisoned(x.size());
  nincc::cpu::avgpool_forward(s, x.data(), avg.data());
  CHECK_CLOSE(avg, ref_avgpool_forward(s, to_double(x)), 1e-6, what);
  nincc::cpu::avgpool_backward(s, dy.data(), avg_dx.data());
  CHECK_CLOSE(avg_dx, ref_avgpool_backward(s, to_double(dy)), 1e-6, what);
}

// A pool ending a concat's branch (PoolOutput): y written at channels offset… of a total-channel joined tensor,
// dy read there, bit for bit the dense kernels with the slice copied in and out (channels.h), the joined
// tensor's other channels untouched (their NaN poison compared as bits); on 1, 2 and all threads.
void check_pool_concat_slot(const Pool2dShape& s, int total, int offset, Rng& rng) {
  const std::int64_t plane = s.out_plane();
  const nincc::cpu::ChannelSlice slice{s.batch, s.channels, total, offset, plane};
  const nincc::cpu::PoolOutput out{total, offset};
  const std::int64_t joined_size = static_cast<std::int64_t>(s.batch) * total * plane;
  const std::vector<float> x = random_floats(pool_x_size(s), rng), joined_dy = random_floats(joined_size, rng);
  std::vector<float> dy(pool_y_size(s));
  nincc::cpu::channels_take(slice, joined_dy.data(), dy.data());
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
  };
  on_1_2_and_all_threads([&] {
    std::vector<float> y = poisoned(pool_y_size(s)), want = poisoned(joined_size), joined = poisoned(joined_size);
    std::vector<std::int32_t> argmax(pool_y_size(s), -7), slot_argmax(pool_y_size(s), -7);
    nincc::cpu::maxpool_forward(s, x.data(), y.data(), argmax.data());
    nincc::cpu::channels_place(slice, y.data(), want.data());
    nincc::cpu::maxpool_forward(s, x.data(), joined.data(), slot_argmax.data(), out);
    CHECK(same_bits(joined, want));
    CHECK(slot_argmax == argmax);
    std::vector<float> dx = poisoned(x.size()), slot_dx = poisoned(x.size());
    nincc::cpu::maxpool_backward(s, dy.data(), argmax.data(), dx.data());
    nincc::cpu::maxpool_backward(s, joined_dy.data(), slot_argmax.data(), slot_dx.data(), out);
    CHECK(same_bits(slot_dx, dx));

    std::vector<float> avg = poisoned(pool_y_size(s)), want_avg = poisoned(joined_size), joined_avg = poisoned(joined_size);
    nincc::cpu::avgpool_forward(s, x.data(), avg.data());
    nincc::cpu::channels_place(slice, avg.data(), want_avg.data());
    nincc::cpu::avgpool_forward(s, x.data(), joined_avg.data(), out);
    CHECK(same_bits(joined_avg, want_avg));
    std::vector<float> avg_dx = poisoned(x.size()), slot_avg_dx = poisoned(x.size());
    nincc::cpu::avgpool_backward(s, dy.data(), avg_dx.data());
    nincc::cpu::avgpool_backward(s, joined_dy.data(), slot_avg_dx.data(), out);
    CHECK(same_bits(slot_avg_dx, avg_dx));
  });
}

// Equal values: the first in-image element of each window, in row order, is the argmax.
void check_tie_rule() {
  const Pool2dShape s{1, 1, 5, 5, 3, 3, 2, 2, 1, 1};
  const std::vector<float> x(25, 0.5f);
  std::vector<float> y(9);
  std::vector<std::int32_t> argmax(9);
  nincc::cpu::maxpool_forward(s, x.data(), y.data(), argmax.data());
  // Window (oh, ow) starts at row 2*oh-1, col 2*ow-1; clipped to the image at the top/left edge.
  const std::int32_t expected[9] = {0, 1, 3, 5, 6, 8, 15, 16, 18};
  for (int o = 0; o < 9; ++o) CHECK(argmax[o] == expected[o]);

  // Two equal maxima in one window: the earlier one (row 0, col 2) wins over (row 1, col 0).
  const Pool2dShape one{1, 1, 2, 3, 2, 3, 1, 1, 0, 0};
  const float x2[6] = {0.f, 1.f, 9.f, 9.f, 2.f, 9.f};
  float y2;
  std::int32_t index;
  nincc::cpu::maxpool_forward(one, x2, &y2, &index);
  CHECK(y2 == 9.f && index == 2);
}

// All-negative input: padding must act as -inf, so no output becomes 0.
void check_negative_padding() {
  const Pool2dShape s{1, 1, 4, 4, 3, 3, 1, 1, 1, 1};
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = -1.f - i;
  std::vector<float> y(16);
  nincc::cpu::maxpool_forward(s, x.data(), y.data(), nullptr);
  CHECK(y[0] == -1.f);   // window rows -1..1, cols -1..1: max of x[0], x[1], x[4], x[5]
  CHECK(y[15] == -11.f); // bottom-right window: x[10], x[11], x[14], x[15]
}

// count_include_pad: a corner window of a constant-1 image holds 4 pixels and divides by 9.
void check_count_include_pad() {
  const Pool2dShape s{1, 1, 5, 5, 3, 3, 2, 2, 1, 1};
  const std::vector<float> x(25, 1.f);
  std::vector<float> y(9);
  nincc::cpu::avgpool_forward(s, x.data(), y.data());
  CHECK(std::fabs(y[0] - 4.0 / 9.0) < 1e-7);
  CHECK(std::fabs(y[1] - 6.0 / 9.0) < 1e-7);
  CHECK(std::fabs(y[4] - 1.0) < 1e-7);
}

// Torch's NaN rule (a NaN wins and stays) on planes wide enough for the vector paths (16 columns at
// a time, masked tails): a NaN anywhere in a window makes that output NaN, and only those.
// Also on planes of at most 32 columns, whose windows are taken from registers (plane_max_in_registers);
// and the argmax indices on both (a NaN window's index is its last NaN).
void check_nan_windows(Rng& rng, int width) {
  const Pool2dShape s{1, 2, 9, width, 3, 3, 2, 2, 1, 1};
  std::vector<float> x = random_floats(pool_x_size(s), rng);
  const int nan_at[][3] = {{0, 0, 0}, {0, 4, 33 % width}, {1, 8, width - 1}, {1, 3, 16 % width}, {1, 5, 47 % width}};  // channel, row, column
  for (const auto& p : nan_at) x[(static_cast<std::size_t>(p[0]) * s.in_h + p[1]) * s.in_w + p[2]] = std::nanf("");
  std::vector<float> y = poisoned(pool_y_size(s)), y_rule = poisoned(pool_y_size(s));
  nincc::cpu::maxpool_forward(s, x.data(), y.data(), nullptr);
  nincc::cpu::maxpool_forward(s, x.data(), y_rule.data(), nullptr, {}, /*plain_max=*/false);
  CHECK(bitwise_equal(y_rule, y));  // the plain max's NaN planes taken again by the rule
  int nan_outputs = 0;
  for (int c = 0; c < s.channels; ++c)
    for (int oh = 0; oh < s.out_h(); ++oh)
      for (int ow = 0; ow < s.out_w(); ++ow) {
        bool window_has_nan = false;
        for (const auto& p : nan_at)
          window_has_nan |= p[0] == c && p[1] >= oh * 2 - 1 && p[1] <= oh * 2 + 1 && p[2] >= ow * 2 - 1 && p[2] <= ow * 2 + 1;
        const float v = y[(static_cast<std::size_t>(c) * s.out_h() + oh) * s.out_w() + ow];
        CHECK(std::isnan(v) == window_has_nan);
        nan_outputs += std::isnan(v);
      }
  CHECK(nan_outputs > 5);

  // The indices a training step keeps, against Torch's scan (THNN: take v when v > max or v is NaN,
  // in row order): the first maximum, or the window's last NaN. Also the windows' maxima again.
  std::vector<float> y_train = poisoned(pool_y_size(s));
  std::vector<std::int32_t> argmax(pool_y_size(s), -7);
  nincc::cpu::maxpool_forward(s, x.data(), y_train.data(), argmax.data());
  CHECK(bitwise_equal(y_train, y));
  std::size_t at = 0;
  int nan_indices = 0;
  for (int c = 0; c < s.channels; ++c)
    for (int oh = 0; oh < s.out_h(); ++oh)
      for (int ow = 0; ow < s.out_w(); ++ow, ++at) {
        double best = 0.0;
        int want = -1;
        for (int ih = std::max(0, 2 * oh - 1); ih < std::min(s.in_h, 2 * oh + 2); ++ih)
          for (int iw = std::max(0, 2 * ow - 1); iw < std::min(s.in_w, 2 * ow + 2); ++iw) {
            const double v = x[(static_cast<std::size_t>(c) * s.in_h + ih) * s.in_w + iw];
            if (want < 0 || v > best || std::isnan(v)) best = v, want = ih * s.in_w + iw;
          }
        CHECK(argmax[at] == want);
        nan_indices += std::isnan(best);
      }
  CHECK(nan_indices == nan_outputs);
}

// The in-register path (plane_max_in_registers: planes up to 32 wide, up to 16 outputs a row) for
// each compile-time window (3/2, 2/2, 3/1) at every padding and in ceil mode, with and without
// ties, on 1, 2 and all threads, against the float64 reference, its plain max (the default) and the NaN
// rule at every step and the unprefetched rows giving the same bits; and widths past its limits, the two-pass path's (plane_max_two_pass:
// 33, and NIN's 56 and a 70 of several 16-column groups and a masked tail), the same way.
void check_small_planes(Rng& rng) {
  struct Window {
    int k, stride;
  };
  const Window windows[] = {{3, 2}, {2, 2}, {3, 1}};
  int case_index = 0;
  for (const Window& win : windows)
    for (int pad = 0; pad <= win.k / 2; ++pad)
      for (int w : {win.k, 13, 14, 16, 17, 28, 31, 32, 33, 56, 70})
        for (bool ceil : {false, true}) {
          const Pool2dShape s{2, 3, 5 + case_index % 5, w, win.k, win.k, win.stride, win.stride, pad, pad, ceil};
          std::vector<float> x = random_floats(pool_x_size(s), rng);
          if (case_index++ % 2)
            for (float& v : x) v = std::round(v * 2) / 2;
          if (!ceil) check_pool(s, x, rng);  // the reference average divides by the whole kernel: floor mode only
          char what[128];
          std::snprintf(what, sizeof what, "small-plane maxpool n2 c3 %dx%d kernel %d stride %d pad %d ceil=%d", s.in_h, w, win.k,
                        win.stride, pad, ceil);
          const MaxPoolResult want = ref_maxpool_forward(s, to_double(x));
          std::vector<int> thread_counts{1};
#ifdef _OPENMP
          const int saved = omp_get_max_threads();
          thread_counts = {1, 2, saved};
#endif
          for (int threads : thread_counts) {
#ifdef _OPENMP
            omp_set_num_threads(threads);
#endif
            std::vector<float> y = poisoned(pool_y_size(s));
            std::vector<std::int32_t> argmax(pool_y_size(s), -7);
            nincc::cpu::maxpool_forward(s, x.data(), y.data(), argmax.data());
            CHECK_CLOSE(y, want.y, 0.0, what);
            CHECK(std::vector<int>(argmax.begin(), argmax.end()) == want.argmax);
            // The NaN rule at every step (the ablation cpuPlainMaxPool): the plain max's bits.
            std::vector<float> y_rule = poisoned(pool_y_size(s));
            nincc::cpu::maxpool_forward(s, x.data(), y_rule.data(), nullptr, {}, /*plain_max=*/false);
            CHECK(bitwise_equal(y_rule, y));
            // Without the two-pass path's row prefetches (the ablation poolRowPrefetch): the same bits.
            std::vector<float> y_unfetched = poisoned(pool_y_size(s));
            nincc::cpu::maxpool_forward(s, x.data(), y_unfetched.data(), nullptr, {}, /*plain_max=*/true, /*prefetch_rows=*/false);
            CHECK(bitwise_equal(y_unfetched, y));
          }
#ifdef _OPENMP
          omp_set_num_threads(saved);
#endif
        }
}

}  // namespace

void test_pool() {
  Rng rng(41);
  check_reference_gradients(rng);
  check_tie_rule();
  check_negative_padding();
  check_count_include_pad();
  const int kernels[] = {1, 2, 3, 5, 7}, strides[] = {1, 2, 3};
  int case_index = 0;
  for (int k : kernels)
    for (int stride : strides)
      for (int pad = 0; pad <= k / 2; ++pad) {
        const int batch = 1 + case_index % 3, channels = 1 + 2 * (case_index % 4);
        const int h = std::max(1, k - 2 * pad) + rng.below(8), w = std::max(1, k - 2 * pad) + rng.below(8);
        const Pool2dShape s{batch, channels, h, w, k, k, stride, stride, pad, pad};
        // Every other case draws from a handful of values so windows hold ties.
        std::vector<float> x = random_floats(pool_x_size(s), rng);
        if (case_index % 2)
          for (float& v : x) v = std::round(v * 2) / 2;
        check_pool(s, x, rng);
        ++case_index;
      }
  const Pool2dShape nin_avgpool{2, 11, 7, 7, 7, 7, 1, 1, 0, 0};  // NIN's global 7x7 average
  check_pool(nin_avgpool, random_floats(pool_x_size(nin_avgpool), rng), rng);
  const Pool2dShape global_13{1, 5, 13, 13, 13, 13, 1, 1, 0, 0};  // a global average of 169 = 10 x 16 + 9 pixels
  check_pool(global_13, random_floats(pool_x_size(global_13), rng), rng);
  const Pool2dShape rectangular{2, 3, 9, 8, 3, 2, 2, 1, 1, 0};
  check_pool(rectangular, random_floats(pool_x_size(rectangular), rng), rng);
  // Concat slots: GoogLeNet's incReduce pool (3x3, stride 1, pad 1, ceil) on a 14-wide plane (the in-register
  // path), a 3x3 stride-2 pool on a wide one (the 16-column path), a global average (its vector path), and a
  // pool filling the whole joined tensor; over the parallel grain for the first.
  check_pool_concat_slot(Pool2dShape{3, 40, 14, 14, 3, 3, 1, 1, 1, 1, true}, 57, 11, rng);
  check_pool_concat_slot(Pool2dShape{2, 3, 9, 40, 3, 3, 2, 2, 1, 1}, 8, 5, rng);
  check_pool_concat_slot(Pool2dShape{2, 5, 7, 7, 7, 7, 1, 1, 0, 0}, 9, 2, rng);
  check_pool_concat_slot(Pool2dShape{2, 4, 6, 5, 2, 2, 2, 2, 0, 0}, 4, 0, rng);
  // NIN's three max pools (3x3, stride 2, pad 1) on their planes, and wider ones whose rows take
  // several 16-column groups and a masked tail (outputs 16, 17, 31, 33 wide), with and without ties.
  const int nin_planes[] = {56, 28, 14};
  for (int h : nin_planes) {
    const Pool2dShape nin{1, 3, h, h, 3, 3, 2, 2, 1, 1};
    check_pool(nin, random_floats(pool_x_size(nin), rng), rng);
  }
  const int wide[] = {31, 33, 34, 61, 66};
  for (int i = 0; i < 5; ++i) {
    const Pool2dShape s{1 + i % 2, 2, 5 + i, wide[i], 3, 3, 2, 2, i % 2, i % 2};
    std::vector<float> x = random_floats(pool_x_size(s), rng);
    if (i % 2)
      for (float& v : x) v = std::round(v * 2) / 2;
    check_pool(s, x, rng);
  }
  check_nan_windows(rng, 70);
  check_nan_windows(rng, 28);
  check_nan_windows(rng, 14);
  check_small_planes(rng);
}

}  // namespace kernels_test
