// Convolution forward, backward-data and backward-weights against the float64 reference over a
// sweep of kernels 1/3/5/11, strides 1/2/4, pads 0/1/2/5, batches 1-3 and odd channel counts, then
// the Winograd paths of training; the reference backward itself is checked by finite differences first.
#include <cstdio>
#include <cstring>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/channels.h"
#include "nincc/cpu/conv.h"
#include "reference_conv_pool.h"

namespace kernels_test {
namespace {

// The reference gradients are the derivatives of L = <conv(x, w, b), dy>.
void check_reference_gradients(const Conv2dShape& s, Rng& rng) {
  const std::vector<double> x = to_double(random_floats(conv_x_size(s), rng));
  const std::vector<double> w = to_double(random_floats(conv_w_size(s), rng));
  const std::vector<double> b = to_double(random_floats(s.out_channels, rng));
  const std::vector<double> dy = to_double(random_floats(conv_y_size(s), rng));
  const ConvGradients g = ref_conv_backward(s, x, w, dy);
  CHECK_GRADIENT(x, g.dx, [&](const std::vector<double>& v) { return dot(ref_conv_forward(s, v, w, &b, false), dy); },
                 "reference conv dx");
  CHECK_GRADIENT(w, g.dw, [&](const std::vector<double>& v) { return dot(ref_conv_forward(s, x, v, &b, false), dy); },
                 "reference conv dw");
  CHECK_GRADIENT(b, g.db, [&](const std::vector<double>& v) { return dot(ref_conv_forward(s, x, w, &v, false), dy); },
                 "reference conv db");
}

void check_conv(const Conv2dShape& s, bool with_bias, bool relu, Rng& rng) {
  char what[160];
  std::snprintf(what, sizeof what, "conv n%d c%d %dx%d -> k%d kernel %dx%d stride %d,%d pad %d,%d bias=%d relu=%d",
                s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
                s.pad_h, s.pad_w, with_bias, relu);
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng), dy = random_floats(conv_y_size(s), rng);
  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b);

  std::vector<float> y = poisoned(conv_y_size(s));
  nincc::cpu::conv2d_forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, y.data(), relu);
  CHECK_CLOSE(y, ref_conv_forward(s, xd, wd, with_bias ? &bd : nullptr, relu), 2e-5, what);

  const ConvGradients want = ref_conv_backward(s, xd, wd, to_double(dy));
  std::vector<float> dx = poisoned(x.size()), dw = poisoned(w.size()), db = poisoned(b.size());
  nincc::cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
  CHECK_CLOSE(dx, want.dx, 2e-5, what);
  nincc::cpu::conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), with_bias ? db.data() : nullptr);
  CHECK_CLOSE(dw, want.dw, 2e-5, what);
  if (with_bias) CHECK_CLOSE(db, want.db, 1e-6, what);
}

// A stride-1 conv's backward-data run as a forward conv of dy (conv.h backward_data_is_conv), or for
// a 3x3 or 5x5 kernel as a Winograd F(2x2,3x3) or F(2x2,5x5) conv of dy (backward_data_is_winograd,
// `winograd`; tolerance 5e-5 for F(2x2,5x5), as in test_conv_winograd.cc): against
// the float64 reference on 1, 2 and all threads, alone and with an addend (a fanned-out value's other
// gradient), over rectangular kernels, unequal pads and a pad of 0 (the flipped conv's pad is then
// kernel - 1).
void check_backward_data_as_conv(const Conv2dShape& s, bool winograd, Rng& rng) {
  char what[160];
  std::snprintf(what, sizeof what, "backward-data as %s conv n%d c%d %dx%d -> k%d kernel %dx%d pad %d,%d",
                winograd ? "Winograd" : "GEMM", s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h,
                s.kernel_w, s.pad_h, s.pad_w);
  CHECK(nincc::cpu::conv_detail::backward_data_is_winograd(s) == winograd);
  if (!winograd) CHECK(nincc::cpu::conv_detail::backward_data_is_conv(s));
  const double tolerance = winograd && s.kernel_h == 5 ? 5e-5 : 2e-5;
  const std::vector<float> w = random_floats(conv_w_size(s), rng), dy = random_floats(conv_y_size(s), rng);
  const std::vector<float> addend = random_floats(conv_x_size(s), rng);
  const std::vector<double> want = ref_conv_backward(s, to_double(random_floats(conv_x_size(s), rng)), to_double(w),
                                                     to_double(dy)).dx;
  std::vector<double> want_added = want;
  for (std::size_t i = 0; i < want.size(); ++i) want_added[i] += addend[i];
  on_1_2_and_all_threads([&] {
    std::vector<float> dx = poisoned(conv_x_size(s)), added = poisoned(conv_x_size(s));
    nincc::cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
    CHECK_CLOSE(dx, want, tolerance, what);
    nincc::cpu::conv2d_backward_data(s, dy.data(), w.data(), added.data(), addend.data());
    CHECK_CLOSE(added, want_added, tolerance, what);
  });
}

// Training's Winograd paths, each against the float64 reference at 1, 2 and all threads with the
// same bits on each: the forward with its weights transformed per call
// (conv2d_forward_winograd_training), and the weight gradient (conv_winograd_wgrad.h), called
// directly on any shape and through conv2d_backward_weights where backward_weights_is_winograd picks
// it. Tolerances as for the Winograd forward (test_conv_winograd.cc): 2e-5 for F(2,3), 5e-5 for F(2,5).
void check_winograd_training(const Conv2dShape& s, Rng& rng) {
  using nincc::cpu::WinogradKind;
  char what[160];
  std::snprintf(what, sizeof what, "training Winograd n%d c%d %dx%d -> k%d kernel %dx%d pad %d,%d", s.batch, s.in_channels,
                s.in_h, s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.pad_h, s.pad_w);
  const WinogradKind kind = nincc::cpu::conv_detail::gradient_winograd_kind(s);
  const double tolerance = s.kernel_h == 5 ? 5e-5 : 2e-5;
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng), dy = random_floats(conv_y_size(s), rng);
  const std::vector<double> bd = to_double(b);
  const std::vector<double> want_y = ref_conv_forward(s, to_double(x), to_double(w), &bd, true);
  const std::vector<double> want_dw = ref_conv_backward(s, to_double(x), to_double(w), to_double(dy)).dw;
  const bool dispatched = nincc::cpu::conv_detail::backward_weights_is_winograd(s);
  std::vector<float> first_y, first_dw;
  on_1_2_and_all_threads([&] {
    std::vector<float> y = poisoned(conv_y_size(s)), dw = poisoned(w.size()), via = poisoned(w.size());
    nincc::cpu::conv2d_forward_winograd_training(kind, s, x.data(), w.data(), b.data(), y.data(), true);
    CHECK_CLOSE(y, want_y, tolerance, what);
    nincc::cpu::conv2d_backward_weights_winograd(kind, s, x.data(), dy.data(), dw.data());
    CHECK_CLOSE(dw, want_dw, tolerance, what);
    nincc::cpu::conv2d_backward_weights(s, x.data(), dy.data(), via.data(), nullptr);
    if (dispatched) CHECK(bitwise_equal(via, dw));
    CHECK_CLOSE(via, want_dw, tolerance, what);
    if (first_y.empty()) first_y = y, first_dw = dw;
    CHECK(bitwise_equal(y, first_y));
    CHECK(bitwise_equal(dw, first_dw));
  });
}

// A training conv ending a concat's branch: y written at channels offset… of a total-channel joined tensor
// (ConvOutput), and its backward (weights, bias, data, with and without an addend) reading dy there
// (ConvGradientPlace): bit for bit the dense kernels with the slice copied in and out (channels.h), the joined
// tensor's other channels untouched (their NaN poison compared as bits); on 1, 2 and all threads.
void check_conv_concat_slot(const Conv2dShape& s, int total, int offset, Rng& rng) {
  using namespace nincc::cpu::conv_detail;
  const char* path = backward_data_is_winograd(s) ? "Winograd" : backward_data_is_conv(s) ? "forward-conv" : s.is_pointwise() ? "pointwise" : "columns";
  const std::int64_t plane = s.out_plane();
  const nincc::cpu::ChannelSlice slice{s.batch, s.out_channels, total, offset, plane};
  const nincc::cpu::ConvGradientPlace place{total, offset};
  const std::int64_t joined_size = static_cast<std::int64_t>(s.batch) * total * plane;
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng), addend = random_floats(conv_x_size(s), rng);
  const std::vector<float> joined_dy = random_floats(joined_size, rng);
  std::vector<float> dy(conv_y_size(s));
  nincc::cpu::channels_take(slice, joined_dy.data(), dy.data());
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& c) {
    return a.size() == c.size() && std::memcmp(a.data(), c.data(), sizeof(float) * a.size()) == 0;
  };
  const char* weights_path = backward_weights_is_winograd(s, total) ? "Winograd" : "GEMM";
  std::printf("    conv concat slot (%s backward-data, %s weight gradient) n%d c%d %dx%d -> k%d at %d of %d\n", path, weights_path,
              s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, offset, total);
  on_1_2_and_all_threads([&] {
    std::vector<float> y = poisoned(conv_y_size(s)), want = poisoned(joined_size), joined = poisoned(joined_size);
    nincc::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    nincc::cpu::channels_place(slice, y.data(), want.data());
    nincc::cpu::conv2d_forward(s, x.data(), w.data(), b.data(), joined.data(), false, nincc::cpu::ConvOutput{nullptr, total, offset});
    CHECK(same_bits(joined, want));
    std::vector<float> dw = poisoned(conv_w_size(s)), db = poisoned(s.out_channels);
    std::vector<float> slot_dw = poisoned(conv_w_size(s)), slot_db = poisoned(s.out_channels);
    nincc::cpu::conv2d_backward_weights(s, x.data(), dy.data(), dw.data(), db.data());
    nincc::cpu::conv2d_backward_weights(s, x.data(), joined_dy.data(), slot_dw.data(), slot_db.data(), place);
    CHECK(same_bits(slot_dw, dw) && same_bits(slot_db, db));
    for (const float* add : {static_cast<const float*>(nullptr), addend.data()}) {
      std::vector<float> dx = poisoned(conv_x_size(s)), slot_dx = poisoned(conv_x_size(s));
      nincc::cpu::conv2d_backward_data(s, dy.data(), w.data(), dx.data(), add);
      nincc::cpu::conv2d_backward_data(s, joined_dy.data(), w.data(), slot_dx.data(), add, place);
      CHECK(same_bits(slot_dx, dx));
    }
  });
}

// The 1x1 weight gradient with dy unpacked (conv_wgrad_1x1.h): against the float64 reference and bit
// for bit against conv_wgrad.h's GEMM (same blocks, same order) and its burst-prefetch form at 1, 2 and all threads, called
// directly (also on planes whose tiles cross images, which conv.h leaves to the GEMM) and, where
// wgrad_1x1_applies, through conv2d_backward_weights, and from a concat slot of dy.
void check_wgrad_1x1(const Conv2dShape& s, int total, int offset, Rng& rng) {
  char what[160];
  std::snprintf(what, sizeof what, "1x1 weight gradient n%d c%d %dx%d -> k%d, dy at %d of %d", s.batch, s.in_channels, s.in_h,
                s.in_w, s.out_channels, offset, total);
  const bool applies = nincc::cpu::wgrad_1x1_applies(s);
  std::printf("    %s (%s)\n", what, applies ? "chosen by conv2d_backward_weights" : "called directly");
  const std::int64_t plane = s.out_plane();
  const std::vector<float> x = random_floats(conv_x_size(s), rng);
  const std::vector<float> joined_dy = random_floats(static_cast<std::int64_t>(s.batch) * total * plane, rng);
  std::vector<float> dy(conv_y_size(s));
  nincc::cpu::channels_take(nincc::cpu::ChannelSlice{s.batch, s.out_channels, total, offset, plane}, joined_dy.data(), dy.data());
  const std::vector<double> want = ref_conv_backward(s, to_double(x), to_double(random_floats(conv_w_size(s), rng)), to_double(dy)).dw;
  const nincc::cpu::ConvGradientPlace place{total, offset};
  std::vector<float> first;
  on_1_2_and_all_threads([&] {
    std::vector<float> dw = poisoned(conv_w_size(s)), gemm = poisoned(conv_w_size(s)), slot = poisoned(conv_w_size(s));
    nincc::cpu::conv2d_backward_weights_1x1(s, x.data(), dy.data(), dw.data());
    CHECK_CLOSE(dw, want, 2e-5, what);
    nincc::cpu::conv2d_backward_weights_gemm(s, x.data(), dy.data(), gemm.data());
    CHECK(bitwise_equal(dw, gemm));
    nincc::cpu::conv2d_backward_weights_1x1(s, x.data(), joined_dy.data(), slot.data(), place);
    CHECK(bitwise_equal(slot, dw));
    // The prefetches in one burst per tile product (the cpuWgradSpreadPrefetch ablation): the same bits.
    std::vector<float> burst = poisoned(conv_w_size(s));
    nincc::cpu::conv2d_backward_weights_1x1<false>(s, x.data(), joined_dy.data(), burst.data(), place);
    CHECK(bitwise_equal(burst, dw));
    if (applies) {
      std::vector<float> via = poisoned(conv_w_size(s)), via_burst = poisoned(conv_w_size(s));
      nincc::cpu::conv2d_backward_weights(s, x.data(), joined_dy.data(), via.data(), nullptr, place);
      CHECK(bitwise_equal(via, dw));
      nincc::cpu::conv2d_backward_weights<false>(s, x.data(), joined_dy.data(), via_burst.data(), nullptr, place);
      CHECK(bitwise_equal(via_burst, dw));
    }
    if (first.empty()) first = dw;
    CHECK(bitwise_equal(dw, first));
  });
}

// The stem's weight gradient with X unpacked (conv_wgrad_stem.h): against the float64 reference and bit for bit
// against conv_wgrad.h's GEMM (same blocks, same order) at 1, 2 and all threads, called directly and, where
// wgrad_stem_applies, through conv2d_backward_weights.
void check_wgrad_stem(const Conv2dShape& s, Rng& rng) {
  char what[160];
  std::snprintf(what, sizeof what, "stem weight gradient n%d c%d %dx%d -> k%d, %dx%d/%dx%d pad %dx%d", s.batch, s.in_channels, s.in_h,
                s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w, s.pad_h, s.pad_w);
  const bool applies = nincc::cpu::wgrad_stem_applies(s);
  std::printf("    %s (%s)\n", what, applies ? "chosen by conv2d_backward_weights" : "called directly");
  const std::vector<float> x = random_floats(conv_x_size(s), rng), dy = random_floats(conv_y_size(s), rng);
  const std::vector<double> want = ref_conv_backward(s, to_double(x), to_double(random_floats(conv_w_size(s), rng)), to_double(dy)).dw;
  std::vector<float> first;
  on_1_2_and_all_threads([&] {
    std::vector<float> dw = poisoned(conv_w_size(s)), gemm = poisoned(conv_w_size(s));
    nincc::cpu::conv2d_backward_weights_stem(s, x.data(), dy.data(), dw.data());
    CHECK_CLOSE(dw, want, 2e-5, what);
    nincc::cpu::conv2d_backward_weights_gemm(s, x.data(), dy.data(), gemm.data());
    CHECK(bitwise_equal(dw, gemm));
    if (applies) {
      std::vector<float> via = poisoned(conv_w_size(s));
      nincc::cpu::conv2d_backward_weights(s, x.data(), dy.data(), via.data(), nullptr);
      CHECK(bitwise_equal(via, dw));
    }
    if (first.empty()) first = dw;
    CHECK(bitwise_equal(dw, first));
  });
}

}  // namespace

void test_conv() {
  Rng rng(23);
  check_reference_gradients(Conv2dShape{2, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1}, rng);
  check_reference_gradients(Conv2dShape{1, 2, 5, 5, 3, 1, 1, 1, 1, 0, 0}, rng);
  check_reference_gradients(Conv2dShape{1, 2, 6, 9, 2, 5, 3, 4, 2, 2, 1}, rng);

  // The sweep: every kernel x stride x pad, with an input just big enough for the padded kernel
  // plus an odd amount, and channel counts that are not multiples of the vector width.
  const int kernels[] = {1, 3, 5, 11}, strides[] = {1, 2, 4}, pads[] = {0, 1, 2, 5};
  const int in_channels[] = {1, 3, 5, 13}, out_channels[] = {1, 7, 13, 19, 33};
  int case_index = 0;
  for (int k : kernels)
    for (int stride : strides)
      for (int pad : pads) {
        const int batch = 1 + case_index % 3;
        const int c = k == 11 ? in_channels[case_index % 2] : in_channels[case_index % 4];
        const int out = out_channels[case_index % 5];
        const int base = std::max(1, k - 2 * pad);
        const int h = base + rng.below(9), w = base + rng.below(9);
        check_conv(Conv2dShape{batch, c, h, w, out, k, k, stride, stride, pad, pad}, case_index % 2 == 0,
                   case_index % 3 == 1, rng);
        ++case_index;
      }

  // Shapes that reach the GEMMs' other paths: pointwise (no taps) with several tiles, a patch
  // deeper than one 256 depth block, a scaled-down NIN conv1, rectangular kernels and strides.
  check_conv(Conv2dShape{3, 37, 9, 11, 29, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_conv(Conv2dShape{2, 13, 12, 10, 20, 5, 5, 1, 1, 2, 2}, true, false, rng);
  check_conv(Conv2dShape{2, 3, 35, 35, 24, 11, 11, 4, 4, 5, 5}, true, true, rng);
  check_conv(Conv2dShape{1, 24, 13, 13, 40, 3, 3, 1, 1, 1, 1}, false, true, rng);
  check_conv(Conv2dShape{2, 5, 9, 8, 6, 3, 1, 2, 1, 1, 0}, true, false, rng);
  check_conv(Conv2dShape{3, 4, 7, 7, 5, 1, 1, 2, 2, 0, 0}, true, false, rng);  // strided 1x1: through the phase split
  // dw narrower than one GEMM tile, cut into slices of a few columns each (large enough to run
  // in parallel), and a batch of 3 whose forward GEMMs run in parallel one image at a time.
  check_conv(Conv2dShape{3, 20, 40, 40, 64, 1, 1, 1, 1, 0, 0}, false, false, rng);
  check_conv(Conv2dShape{3, 7, 21, 19, 48, 3, 3, 1, 1, 1, 1}, true, true, rng);
  // A pointwise backward-data W^T dy whose dx is past conv_gemm.h's kOutputPastL2Bytes: one depth
  // block of 4, so it runs in BLIS's order (chunked_order_pays).
  check_conv(Conv2dShape{3, 64, 90, 90, 4, 1, 1, 1, 1, 0, 0}, false, false, rng);

  check_backward_data_as_conv(Conv2dShape{2, 13, 12, 10, 20, 5, 3, 1, 1, 2, 1}, false, rng);
  check_backward_data_as_conv(Conv2dShape{2, 11, 12, 13, 14, 5, 5, 1, 1, 2, 2}, true, rng);
  check_backward_data_as_conv(Conv2dShape{3, 7, 9, 11, 13, 5, 5, 1, 1, 0, 4}, true, rng);
  check_backward_data_as_conv(Conv2dShape{2, 30, 28, 28, 41, 5, 5, 1, 1, 2, 2}, true, rng);  // NIN's 5x5 plane
  // Winograd: pad 0 and 1 and 2, odd planes (half-outside tiles), planes under and over 100 pixels,
  // channel counts off every panel size, NIN's 7x7 and 14x14 planes; several tile blocks in parallel.
  check_backward_data_as_conv(Conv2dShape{3, 9, 12, 13, 17, 3, 3, 1, 1, 0, 0}, true, rng);
  check_backward_data_as_conv(Conv2dShape{2, 40, 14, 14, 70, 3, 3, 1, 1, 1, 1}, true, rng);
  check_backward_data_as_conv(Conv2dShape{4, 25, 7, 7, 37, 3, 3, 1, 1, 1, 1}, true, rng);
  check_backward_data_as_conv(Conv2dShape{2, 13, 9, 11, 5, 3, 3, 1, 1, 0, 1}, true, rng);
  check_backward_data_as_conv(Conv2dShape{3, 6, 5, 8, 29, 3, 3, 1, 1, 2, 2}, true, rng);
  check_backward_data_as_conv(Conv2dShape{1, 3, 3, 3, 2, 3, 3, 1, 1, 0, 0}, true, rng);  // one output pixel
  // dy deep enough that a block's V is past L2 (conv_winograd.h kVInL2Bytes: a*a matrix by matrix, M holding
  // all of a task's rows), with several row panels split between tasks at 2 threads.
  check_backward_data_as_conv(Conv2dShape{2, 30, 9, 9, 240, 5, 5, 1, 1, 2, 2}, true, rng);
  check_backward_data_as_conv(Conv2dShape{1, 26, 7, 7, 520, 3, 3, 1, 1, 1, 1}, true, rng);

  // Training's Winograd: several 256-tile chunks with a partial last one, channel counts off the 32
  // lanes, partial tiles, pad 0 and wide pads, one output pixel, and a shape past
  // kWinogradWeightsMinChannels that conv2d_backward_weights sends to Winograd.
  CHECK(!nincc::cpu::conv_detail::backward_weights_is_winograd(Conv2dShape{16, 16, 14, 14, 64, 3, 3, 1, 1, 1, 1}));
  CHECK(!nincc::cpu::conv_detail::backward_weights_is_winograd(Conv2dShape{2, 96, 9, 9, 100, 3, 3, 2, 2, 1, 1}));
  check_winograd_training(Conv2dShape{3, 20, 28, 28, 24, 5, 5, 1, 1, 2, 2}, rng);
  check_winograd_training(Conv2dShape{2, 40, 14, 14, 70, 3, 3, 1, 1, 1, 1}, rng);
  check_winograd_training(Conv2dShape{3, 9, 11, 13, 17, 3, 3, 1, 1, 0, 0}, rng);
  check_winograd_training(Conv2dShape{2, 5, 9, 7, 33, 5, 5, 1, 1, 0, 1}, rng);
  check_winograd_training(Conv2dShape{2, 6, 4, 4, 12, 5, 5, 1, 1, 3, 3}, rng);
  check_winograd_training(Conv2dShape{1, 3, 3, 3, 2, 3, 3, 1, 1, 0, 0}, rng);
  check_winograd_training(Conv2dShape{2, 96, 9, 9, 100, 3, 3, 1, 1, 1, 1}, rng);
  check_winograd_training(Conv2dShape{2, 32, 7, 7, 40, 5, 5, 1, 1, 2, 2}, rng);
  // The 1x1 weight gradient with dy unpacked: NIN's choice (56x56 = 98 tiles of 32) and its rule, then planes of
  // whole tiles with channels off the 12-row panels and 32-column tiles, several pixel groups (3 x 2560 pixels past
  // kGroupPixels, summed in parallel at 2 threads), a dw past kGroupedMaxFloats (ungrouped, split by columns), and
  // planes whose tiles cross images or end short (gathered, called directly).
  CHECK(nincc::cpu::wgrad_1x1_applies(Conv2dShape{16, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0}));
  CHECK(!nincc::cpu::wgrad_1x1_applies(Conv2dShape{16, 256, 28, 28, 256, 1, 1, 1, 1, 0, 0}));
  CHECK(!nincc::cpu::wgrad_1x1_applies(Conv2dShape{16, 96, 64, 64, 96, 1, 1, 2, 2, 0, 0}));
  CHECK(!nincc::cpu::wgrad_1x1_applies(Conv2dShape{16, 1024, 8, 8, 1024, 1, 1, 1, 1, 0, 0}));
  check_wgrad_1x1(Conv2dShape{2, 37, 8, 8, 29, 1, 1, 1, 1, 0, 0}, 29, 0, rng);
  check_wgrad_1x1(Conv2dShape{3, 13, 64, 40, 26, 1, 1, 1, 1, 0, 0}, 40, 9, rng);
  check_wgrad_1x1(Conv2dShape{1, 520, 4, 8, 320, 1, 1, 1, 1, 0, 0}, 320, 0, rng);
  check_wgrad_1x1(Conv2dShape{3, 20, 5, 7, 14, 1, 1, 1, 1, 0, 0}, 17, 3, rng);
  check_wgrad_1x1(Conv2dShape{2, 33, 28, 28, 40, 1, 1, 1, 1, 0, 0}, 40, 0, rng);
  // The stem's weight gradient with X unpacked: NIN's 11x11/4 stem (batch 1: 3136 pixels, one group) and its rule,
  // then stride 2 and 4 with pads 0-5, channel counts 1-4 off the 12-row panels and 32-column tiles, output rows
  // of 4 to 56 pixels, several pixel groups (3 x 2809 pixels past kGroupPixels), a dw past kGroupedMaxFloats
  // (ungrouped: called directly), and a 5-channel stride-2 conv (called directly).
  CHECK(nincc::cpu::wgrad_stem_applies(Conv2dShape{16, 3, 224, 224, 96, 11, 11, 4, 4, 5, 5}));
  CHECK(!nincc::cpu::wgrad_stem_applies(Conv2dShape{16, 3, 224, 224, 96, 11, 11, 1, 1, 5, 5}));
  CHECK(!nincc::cpu::wgrad_stem_applies(Conv2dShape{16, 5, 224, 224, 96, 3, 3, 2, 2, 1, 1}));
  CHECK(!nincc::cpu::wgrad_stem_applies(Conv2dShape{16, 4, 64, 64, 1024, 7, 7, 2, 2, 3, 3}));
  check_wgrad_stem(Conv2dShape{1, 3, 224, 224, 96, 11, 11, 4, 4, 5, 5}, rng);
  check_wgrad_stem(Conv2dShape{3, 1, 9, 7, 5, 3, 3, 2, 2, 1, 1}, rng);
  check_wgrad_stem(Conv2dShape{1, 4, 13, 61, 37, 5, 3, 2, 4, 2, 0}, rng);
  check_wgrad_stem(Conv2dShape{3, 2, 108, 108, 33, 5, 5, 2, 2, 1, 1}, rng);
  check_wgrad_stem(Conv2dShape{2, 3, 20, 23, 7, 11, 11, 4, 4, 5, 5}, rng);
  check_wgrad_stem(Conv2dShape{1, 4, 17, 17, 1024, 7, 7, 2, 2, 3, 3}, rng);
  check_wgrad_stem(Conv2dShape{2, 5, 11, 12, 19, 3, 3, 2, 2, 0, 1}, rng);
  // Concat slots, one shape per backward-data path (conv.h: Winograd, forward conv, pointwise, columns; each
  // prints its path), the last filling the whole joined tensor.
  check_conv_concat_slot(Conv2dShape{3, 6, 14, 14, 9, 3, 3, 1, 1, 1, 1}, 23, 7, rng);
  check_conv_concat_slot(Conv2dShape{2, 5, 12, 12, 7, 2, 2, 1, 1, 0, 0}, 12, 3, rng);  // 11x11 outputs: over kBackwardDataConvMinPlane
  check_conv_concat_slot(Conv2dShape{3, 37, 9, 11, 29, 1, 1, 1, 1, 0, 0}, 40, 11, rng);
  check_conv_concat_slot(Conv2dShape{2, 4, 9, 8, 6, 3, 3, 2, 2, 1, 1}, 15, 9, rng);
  check_conv_concat_slot(Conv2dShape{2, 4, 7, 7, 5, 3, 3, 1, 1, 1, 1}, 5, 0, rng);
  // Winograd weight gradients read from the slot (3x3 and 5x5, past kWinogradWeightsMinChannels), against the
  // dense Winograd weight gradient: the 5x5 slot ends the joined tensor.
  check_conv_concat_slot(Conv2dShape{2, 33, 9, 9, 40, 3, 3, 1, 1, 1, 1}, 75, 20, rng);
  check_conv_concat_slot(Conv2dShape{2, 32, 8, 8, 33, 5, 5, 1, 1, 2, 2}, 41, 8, rng);
}

}  // namespace kernels_test
