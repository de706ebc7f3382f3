// The implicit-GEMM convolution forward (conv_gemm.h, conv_gather.h) against the float64 reference: tiles that straddle output rows and images (planes of 1, 7x7, 13x11 pixels
// in batches of up to 5), strided convs read through their phase split, padding wider than the
// kernel's reach, channel counts off every panel size, depth over several blocks, bias and ReLU, small
// weights in either loop order (big weights' next panel prefetched by every tile or the last), pointwise convs at batch 1 read in place; each at 1, 2 and all threads with identical bits. Also the small-batch dot-product linear layer.
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/conv_gemm.h"
#include "nincc/cpu/linear.h"
#include "reference_conv_pool.h"
#include "reference_dense.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernels_test {
namespace {

std::vector<float> forward(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& w,
                           const float* bias, bool relu, bool narrow_tails = true, bool in_place_pointwise = true,
                           bool spread_weight_prefetch = true) {
  std::vector<float> packed(static_cast<std::size_t>(nincc::cpu::packed_conv_weights_size(s.out_channels, s.patch_size())));
  nincc::cpu::pack_conv_weights(s, w.data(), packed.data());
  std::vector<float> y = poisoned(conv_y_size(s));
  nincc::cpu::conv2d_forward_packed(s, x.data(), packed.data(), bias, y.data(), relu, {}, narrow_tails, in_place_pointwise,
                                    spread_weight_prefetch);
  return y;
}

void check_implicit_gemm(const Conv2dShape& s, bool with_bias, bool relu, Rng& rng) {
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng);
  const std::vector<double> bd = to_double(b);
  const std::vector<double> want = ref_conv_forward(s, to_double(x), to_double(w), with_bias ? &bd : nullptr, relu);
  {
    char what[200];
    std::snprintf(what, sizeof what, "implicit-gemm conv n%d c%d %dx%d -> k%d kernel %dx%d stride %d,%d pad %d,%d bias=%d relu=%d",
                  s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,
                  s.pad_h, s.pad_w, with_bias, relu);
    std::vector<std::vector<float>> runs;
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2, saved}) {
      omp_set_num_threads(threads);
      runs.push_back(forward(s, x, w, with_bias ? b.data() : nullptr, relu));
    }
    omp_set_num_threads(saved);
#else
    runs.push_back(forward(s, x, w, with_bias ? b.data() : nullptr, relu));
#endif
    CHECK_CLOSE(runs[0], want, 2e-5, what);
    for (const auto& r : runs) CHECK(bitwise_equal(r, runs[0]));
    // Every pixel tile through all its registers (the narrowTails ablation): the same sums, the same bits.
    CHECK(bitwise_equal(forward(s, x, w, with_bias ? b.data() : nullptr, relu, false), runs[0]));
    // A pointwise conv at batch 1 gathering its tiles (the inPlacePointwise ablation): the same sums, the same bits.
    CHECK(bitwise_equal(forward(s, x, w, with_bias ? b.data() : nullptr, relu, true, false), runs[0]));
    // The next weight panel prefetched in a sweep's last tile only (the spreadWeightPrefetch ablation): the same bits.
    CHECK(bitwise_equal(forward(s, x, w, with_bias ? b.data() : nullptr, relu, true, true, false), runs[0]));
  }
}

// Which convs conv_gemm.h reads_in_place: pointwise at batch 1 whose short last tile reads its own columns only.
void check_reads_in_place() {
  using nincc::cpu::conv_gemm_detail::reads_in_place;
  auto in_place = [](const Conv2dShape& s) { return reads_in_place(s, nincc::cpu::conv_gemm_detail::direct_view(s, nullptr), true, true); };
  if (nincc::cpu::gemm_detail::kNarrowMaxCols == 4) {  // AVX-512: 32-pixel tiles, 16-lane registers, narrow columns
    CHECK(in_place(Conv2dShape{1, 384, 7, 7, 100, 1, 1, 1, 1, 0, 0}));   // 49 = 32 + 16 + 1 narrow column
    CHECK(in_place(Conv2dShape{1, 260, 14, 14, 40, 1, 1, 1, 1, 0, 0}));  // 196 = 6 x 32 + 4 narrow
    CHECK(in_place(Conv2dShape{1, 200, 28, 28, 24, 1, 1, 1, 1, 0, 0}));  // 784 = 24 x 32 + 16
  }
  CHECK(in_place(Conv2dShape{1, 64, 8, 8, 24, 1, 1, 1, 1, 0, 0}));      // whole tiles on every ISA
  CHECK(!in_place(Conv2dShape{1, 300, 5, 5, 24, 1, 1, 1, 1, 0, 0}));   // 25 = 16 + 9: a register past its columns
  CHECK(!in_place(Conv2dShape{2, 300, 7, 7, 24, 1, 1, 1, 1, 0, 0}));   // tiles across images
  CHECK(!in_place(Conv2dShape{1, 30, 7, 7, 24, 3, 3, 1, 1, 1, 1}));    // not pointwise
  const Conv2dShape nin_k34{1, 1024, 7, 7, 1024, 1, 1, 1, 1, 0, 0};
  CHECK(!reads_in_place(nin_k34, nincc::cpu::conv_gemm_detail::direct_view(nin_k34, nullptr), false, true));  // whole-register tails
  CHECK(!reads_in_place(nin_k34, nincc::cpu::conv_gemm_detail::direct_view(nin_k34, nullptr), true, false));  // ablated
}

// One depth block and an output past kOutputPastL2Bytes (chunked_order_pays): small weights in BLIS's
// order, chunks of tiles per weight panel, not tile by tile. Against the reference, then each image
// against that image alone, whose smaller output keeps the tile order: the same bits, as both sum
// each output in depth order in one tile product.
void check_chunked_order(Rng& rng) {
  using nincc::cpu::conv_gemm_detail::chunked_order_pays;
  for (const Conv2dShape& s : {Conv2dShape{3, 8, 90, 90, 64, 1, 1, 1, 1, 0, 0}, Conv2dShape{3, 2, 62, 62, 48, 3, 3, 1, 1, 1, 1}}) {
    const std::int64_t pixels = static_cast<std::int64_t>(s.out_h()) * s.out_w();
    CHECK(chunked_order_pays(s.out_channels, s.patch_size(), s.batch * pixels));  // else this tests the tile order only
    CHECK(!chunked_order_pays(s.out_channels, s.patch_size(), pixels));
    check_implicit_gemm(s, true, true, rng);
    const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng), b = random_floats(s.out_channels, rng);
    const std::vector<float> all = forward(s, x, w, b.data(), false);
    Conv2dShape one = s;
    one.batch = 1;
    for (int n = 0; n < s.batch; ++n) {
      const std::vector<float> image(x.begin() + n * conv_x_size(one), x.begin() + (n + 1) * conv_x_size(one));
      const std::vector<float> alone = forward(one, image, w, b.data(), false);
      CHECK(bitwise_equal(alone, std::vector<float>(all.begin() + n * alone.size(), all.begin() + (n + 1) * alone.size())));
    }
  }
}

}  // namespace

void test_conv_gemm() {
  Rng rng(97);
  // Planes smaller than a tile: every tile straddles images (P = 1, 6, 49) and output rows.
  check_implicit_gemm(Conv2dShape{5, 3, 3, 3, 40, 3, 3, 1, 1, 0, 0}, true, true, rng);     // P = 1
  check_implicit_gemm(Conv2dShape{4, 7, 2, 3, 33, 1, 1, 1, 1, 0, 0}, false, false, rng);   // pointwise, P = 6
  check_implicit_gemm(Conv2dShape{3, 16, 7, 7, 130, 3, 3, 1, 1, 1, 1}, true, true, rng);   // NIN-like 7x7
  check_implicit_gemm(Conv2dShape{2, 20, 13, 11, 45, 5, 3, 1, 1, 2, 1}, true, false, rng); // rectangular kernel
  // Gather runs merged across output rows (conv_gather.h tap_runs: same offset, one run), and with one
  // input channel across images too (the plane is the image): 5x5 "same" on 7x7 and 6x5 planes, 1x1.
  check_implicit_gemm(Conv2dShape{3, 1, 7, 7, 32, 5, 5, 1, 1, 2, 2}, true, true, rng);
  check_implicit_gemm(Conv2dShape{4, 1, 6, 5, 13, 3, 3, 1, 1, 1, 1}, false, false, rng);
  check_implicit_gemm(Conv2dShape{3, 12, 5, 5, 24, 1, 1, 1, 1, 0, 0}, true, true, rng);
  // Strided convs through the phase split: stride 2 and 4, padding, an 11x11 kernel (NIN conv1).
  check_implicit_gemm(Conv2dShape{3, 5, 13, 13, 128, 3, 3, 2, 2, 1, 1}, true, true, rng);
  check_implicit_gemm(Conv2dShape{2, 3, 35, 35, 24, 11, 11, 4, 4, 5, 5}, true, true, rng);
  check_implicit_gemm(Conv2dShape{1, 2, 10, 17, 19, 3, 5, 3, 2, 0, 2}, false, true, rng);
  // Depth over several depth blocks and weights too big for the tile-by-tile order (> 512 KiB).
  check_implicit_gemm(Conv2dShape{2, 64, 9, 9, 260, 3, 3, 1, 1, 1, 1}, true, true, rng);
  // Many pixels: several chunks per thread, and a plane that is a whole number of tiles.
  check_implicit_gemm(Conv2dShape{2, 9, 32, 32, 37, 3, 3, 1, 1, 1, 1}, true, false, rng);
  // Padding wider than half the kernel: whole rows and columns of windows in the padding.
  check_implicit_gemm(Conv2dShape{2, 3, 4, 5, 20, 3, 3, 1, 1, 2, 3}, true, true, rng);
  check_chunked_order(rng);
  // A short last pixel tile (conv_gemm.h tail_split): NIN's 1x1s at batch 1, deep enough for several
  // depth blocks (the narrow columns accumulate into y): 7x7 (49 = 32 + 16 + 1 narrow column), 14x14
  // (196 = 6 x 32 + 4 narrow), 28x28 (784 = 24 x 32 + 16: one register); a 3x3 on 6x6 (36 = 32 + 4
  // narrow); two 5x5 images (50 = 32 + 16 + 2 narrow, the narrow ones in the second image's last row);
  // 3 narrow columns of a conv with fewer channels than a panel group.
  check_implicit_gemm(Conv2dShape{1, 384, 7, 7, 100, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_implicit_gemm(Conv2dShape{1, 260, 14, 14, 40, 1, 1, 1, 1, 0, 0}, true, false, rng);
  check_implicit_gemm(Conv2dShape{1, 200, 28, 28, 24, 1, 1, 1, 1, 0, 0}, false, true, rng);
  check_implicit_gemm(Conv2dShape{1, 30, 6, 6, 50, 3, 3, 1, 1, 1, 1}, true, true, rng);
  check_implicit_gemm(Conv2dShape{2, 16, 5, 5, 30, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_implicit_gemm(Conv2dShape{1, 8, 5, 7, 13, 1, 1, 1, 1, 0, 0}, true, true, rng);
  // Pointwise at batch 1 with the channels split across threads, read from x in place (reads_in_place) on 2 threads
  // and gathered on 1 (one split): NIN's 1024- and 384-channel 1x1s; and one that is never in place (25 pixels).
  check_reads_in_place();
  check_implicit_gemm(Conv2dShape{1, 1024, 7, 7, 1024, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_implicit_gemm(Conv2dShape{1, 384, 14, 14, 384, 1, 1, 1, 1, 0, 0}, true, false, rng);
  check_implicit_gemm(Conv2dShape{1, 300, 5, 5, 24, 1, 1, 1, 1, 0, 0}, true, true, rng);

  // linear_forward's dot-product path (batch <= 4): against the reference, and the same bits on any
  // thread count (a 1000 x 1024 layer is big enough to run in parallel).
  for (int batch : {1, 4}) {
    const int in = 1024, out = 1000;
    const std::vector<float> x = random_floats(std::size_t(batch) * in, rng), w = random_floats(std::size_t(out) * in, rng);
    const std::vector<float> b = random_floats(out, rng);
    const std::vector<double> want = ref_linear_forward(batch, in, out, to_double(x), to_double(w), to_double(b));
    std::vector<std::vector<float>> runs;
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2, saved}) {
      omp_set_num_threads(threads);
#endif
      std::vector<float> y = poisoned(std::size_t(batch) * out);
      nincc::cpu::linear_forward(nincc::cpu::LinearShape{batch, in, out}, x.data(), w.data(), b.data(), y.data());
      runs.push_back(y);
#ifdef _OPENMP
    }
    omp_set_num_threads(saved);
#endif
    CHECK_CLOSE(runs[0], want, 2e-5, "linear dot products");
    for (const auto& r : runs) CHECK(bitwise_equal(r, runs[0]));
  }
}

}  // namespace kernels_test
