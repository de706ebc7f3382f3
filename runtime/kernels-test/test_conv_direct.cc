// The direct convolutions forward (conv_direct.h: single-channel input; pointwise read in place),
// reached as inference reaches them (conv2d_forward with PackedConvWeights), against the float64
// reference: nin-fashion's 5x5 first layer at batch 1 and 3, rows wider than a pixel tile, padding
// past the kernel's reach, 1xN, 11x11 and 1x1 kernels; nin-fashion's 1x1 layers at batch 1 and one
// at batch 16 (x past L2: the prefetching loop), planes of whole, partial and only partial tiles, a
// full depth block; bias/ReLU on and off, and an output written into a concat's channels with a
// residual added; each at 1, 2 and all threads with
// identical bits, and the same bits as the implicit GEMM they replace. Also which convs they take.
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/conv.h"
#include "reference_conv_pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernels_test {
namespace {

using nincc::cpu::ConvOutput;

// y as a buffer of o.channels_of(s) channels per image (NaN outside the conv's channels), through
// the inference entry point (direct) or, with `gemm`, the implicit GEMM.
std::vector<float> forward(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& packed,
                           const float* bias, bool relu, const ConvOutput& o, bool gemm, bool narrow_tails = true) {
  std::vector<float> y = poisoned(std::size_t(s.batch) * o.channels_of(s) * s.out_plane());
  if (gemm) nincc::cpu::conv2d_forward_packed(s, x.data(), packed.data(), bias, y.data(), relu, o, narrow_tails);
  else nincc::cpu::conv2d_forward(s, x.data(), nincc::cpu::PackedConvWeights{packed.data()}, bias, y.data(), relu, o, narrow_tails);
  return y;
}

// The reference laid out as forward's y: the conv's channels at o.channel_offset, the residual
// added before the ReLU; channels outside stay NaN in both, so they are left out of the comparison.
void check_direct(const Conv2dShape& s, bool with_bias, bool relu, Rng& rng, int image_channels = 0, int channel_offset = 0,
                  bool residual = false) {
  CHECK(nincc::cpu::direct_conv_applies(s) || nincc::cpu::pointwise_direct_applies(s));
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng);
  const int total = image_channels > 0 ? image_channels : s.out_channels;
  const std::vector<float> r = random_floats(std::size_t(s.batch) * total * s.out_plane(), rng);
  const ConvOutput o{residual ? r.data() : nullptr, image_channels, channel_offset};
  const std::vector<double> bd = to_double(b);
  const std::vector<double> conv = ref_conv_forward(s, to_double(x), to_double(w), with_bias ? &bd : nullptr, false);
  std::vector<float> packed(static_cast<std::size_t>(nincc::cpu::packed_conv_weights_size(s.out_channels, s.patch_size())));
  nincc::cpu::pack_conv_weights(s, w.data(), packed.data());
  char what[220];
  std::snprintf(what, sizeof what, "direct conv n%d c%d %dx%d -> k%d kernel %dx%d pad %d,%d bias=%d relu=%d into %d channels at %d residual=%d",
                s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.pad_h, s.pad_w, with_bias, relu, total,
                channel_offset, residual);
  std::vector<std::vector<float>> runs;
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, saved}) {
    omp_set_num_threads(threads);
    runs.push_back(forward(s, x, packed, with_bias ? b.data() : nullptr, relu, o, false));
  }
  omp_set_num_threads(saved);
#else
  runs.push_back(forward(s, x, packed, with_bias ? b.data() : nullptr, relu, o, false));
#endif
  // The conv's own channels, from every run and from the reference.
  const std::int64_t plane = s.out_plane();
  std::vector<double> want;
  std::vector<std::vector<float>> got(runs.size());
  for (int n = 0; n < s.batch; ++n)
    for (int k = 0; k < s.out_channels; ++k)
      for (std::int64_t p = 0; p < plane; ++p) {
        const std::size_t at = (std::size_t(n) * total + channel_offset + k) * plane + p;
        double v = conv[(std::size_t(n) * s.out_channels + k) * plane + p] + (residual ? r[at] : 0.f);
        want.push_back(relu && v < 0 ? 0.0 : v);
        for (std::size_t i = 0; i < runs.size(); ++i) got[i].push_back(runs[i][at]);
      }
  CHECK_CLOSE(got[0], want, 2e-5, what);
  for (const auto& run : runs) CHECK(bitwise_equal(run, runs[0]));
  // The other channels are left as they were.
  std::size_t untouched = 0;
  for (float v : runs[0]) untouched += v != v;
  CHECK(untouched == runs[0].size() - got[0].size());
  // Every output summed in the implicit GEMM's order: the same bits.
  CHECK(bitwise_equal(runs[0], forward(s, x, packed, with_bias ? b.data() : nullptr, relu, o, true)));
  // A short last tile through all its registers (the narrowTails ablation): the same bits.
  CHECK(bitwise_equal(runs[0], forward(s, x, packed, with_bias ? b.data() : nullptr, relu, o, false, false)));
}

}  // namespace

void test_conv_direct() {
  Rng rng(131);
  // nin-fashion's first layer (1x28x28, 5x5 pad 2 -> 32), at batch 1 and 3 (parallel: row blocks
  // of each image split across threads).
  check_direct(Conv2dShape{1, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2}, true, true, rng);
  check_direct(Conv2dShape{3, 1, 28, 28, 32, 5, 5, 1, 1, 2, 2}, true, true, rng);
  // Rows wider than a pixel tile (a full and a partial tile per row), channels off the panel size.
  check_direct(Conv2dShape{2, 1, 20, 45, 13, 3, 3, 1, 1, 1, 1}, false, false, rng);
  // Padding past the kernel's reach (whole rows and columns of windows in the padding), a 1xN kernel,
  // 11x11 unpadded, and 1x1.
  check_direct(Conv2dShape{3, 1, 5, 6, 7, 3, 3, 1, 1, 3, 4}, true, false, rng);
  check_direct(Conv2dShape{2, 1, 9, 30, 25, 1, 7, 1, 1, 0, 3}, false, true, rng);
  check_direct(Conv2dShape{2, 1, 16, 16, 20, 11, 11, 1, 1, 0, 0}, true, true, rng);
  check_direct(Conv2dShape{2, 1, 5, 5, 12, 1, 1, 1, 1, 0, 0}, true, false, rng);
  // Written into channels [4, 14) of a 16-channel buffer, with a residual added before the ReLU.
  check_direct(Conv2dShape{2, 1, 9, 9, 10, 3, 3, 1, 1, 1, 1}, true, true, rng, 16, 4, true);
  // Not taken: two input channels, a stride, more taps than one depth block.
  CHECK(!nincc::cpu::direct_conv_applies(Conv2dShape{1, 2, 28, 28, 32, 5, 5, 1, 1, 2, 2}));
  CHECK(!nincc::cpu::direct_conv_applies(Conv2dShape{1, 1, 28, 28, 32, 5, 5, 2, 1, 2, 2}));
  CHECK(!nincc::cpu::direct_conv_applies(Conv2dShape{1, 1, 40, 40, 8, 17, 17, 1, 1, 0, 0}));
  // Pointwise: nin-fashion's 1x1 layers at batch 1 (planes of 24.5, 6.1 and 1.5 tiles; row slices
  // across threads on the 7x7 plane).
  check_direct(Conv2dShape{1, 32, 28, 28, 32, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_direct(Conv2dShape{1, 64, 14, 14, 64, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_direct(Conv2dShape{1, 128, 7, 7, 128, 1, 1, 1, 1, 0, 0}, true, true, rng);
  check_direct(Conv2dShape{3, 64, 28, 28, 100, 1, 1, 1, 1, 0, 0}, false, true, rng);
  // nin-fashion's 32x28x28 1x1 layer at batch 16: x (1.6 MB) past kPrefetchAheadMinBytes, so each
  // tile's first channel panel takes the prefetching loop.
  static_assert(16 * 32 * 28 * 28 * sizeof(float) > nincc::cpu::conv_direct_detail::kPrefetchAheadMinBytes, "reaches the prefetching loop");
  check_direct(Conv2dShape{16, 32, 28, 28, 32, 1, 1, 1, 1, 0, 0}, true, true, rng);
  // A plane of exactly one tile, planes of only a partial tile (into a concat, with a residual), and
  // a depth of a whole depth block.
  check_direct(Conv2dShape{2, 5, 4, 8, 13, 1, 1, 1, 1, 0, 0}, true, false, rng);
  check_direct(Conv2dShape{1, 7, 3, 3, 20, 1, 1, 1, 1, 0, 0}, true, true, rng, 28, 5, true);
  // Planes of 4 and 19 pixels: all narrow columns, and one register then 3 narrow ones (conv_gemm.h
  // tail_split), into a concat with a residual.
  check_direct(Conv2dShape{1, 9, 2, 2, 40, 1, 1, 1, 1, 0, 0}, true, true, rng, 44, 3, true);
  check_direct(Conv2dShape{1, 11, 1, 19, 100, 1, 1, 1, 1, 0, 0}, true, true, rng, 100, 0, true);
  check_direct(Conv2dShape{1, nincc::cpu::conv_gemm_detail::kMaxDepthBlock, 5, 5, 12, 1, 1, 1, 1, 0, 0}, true, true, rng);
  // Weights that outweigh the pixels: at 2 threads the tasks split the channel panels too.
  check_direct(Conv2dShape{1, 192, 14, 14, 192, 1, 1, 1, 1, 0, 0}, true, true, rng);
  // Not taken: strided or padded 1x1, a depth past one block, a batch of 7x7 planes (per-image tiles
  // 77% full, the GEMM's 98%).
  CHECK(!nincc::cpu::pointwise_direct_applies(Conv2dShape{16, 128, 7, 7, 128, 1, 1, 1, 1, 0, 0}));
  CHECK(!nincc::cpu::pointwise_direct_applies(Conv2dShape{1, 150, 4000, 4000, 8, 1, 1, 1, 1, 0, 0}));  // offsets past int
  CHECK(!nincc::cpu::pointwise_direct_applies(Conv2dShape{1, 8, 8, 8, 8, 1, 1, 2, 2, 0, 0}));
  CHECK(!nincc::cpu::pointwise_direct_applies(Conv2dShape{1, 8, 8, 8, 8, 1, 1, 1, 1, 1, 1}));
  CHECK(!nincc::cpu::pointwise_direct_applies(Conv2dShape{1, nincc::cpu::conv_gemm_detail::kMaxDepthBlock + 1, 4, 4, 8, 1, 1, 1, 1, 0, 0}));
}

}  // namespace kernels_test
