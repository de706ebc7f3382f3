// Winograd convolution (conv_winograd.h) against the float64 reference, for each variant: F(2,3) and
// F(4,3) on 3x3 convs, F(2,5) on 5x5 ones; planes that are not a whole number of tiles (the last
// tile row and column half outside), tiles that straddle images, padding 0 to r - 1 and beyond,
// channel counts off every panel size, several blocks and channel groups per call (and nin-fashion's
// batch-16 layers, whose blocks shrink at 2 threads), bias and ReLU;
// each at 1, 2 and all threads with identical bits. Also the transform matrices themselves: the 1-D
// identity A^T [(G g) (.) (B^T d)] = correlation, in double.
#include <cmath>
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/conv_winograd.h"
#include "reference_conv_pool.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernels_test {
namespace {

using nincc::cpu::WinogradKind;

const char* name_of(WinogradKind kind) {
  return kind == WinogradKind::F2x3 ? "F(2,3)" : kind == WinogradKind::F4x3 ? "F(4,3)" : "F(2,5)";
}

template <int M, int R>
void check_matrices() {
  constexpr auto mat = nincc::cpu::winograd_detail::make_matrices(M, R);
  constexpr int a = M + R - 1;
  Rng rng(M * 10 + R);
  double worst = 0.0;
  for (int trial = 0; trial < 20; ++trial) {
    double g[R], d[a];
    for (double& v : g) v = rng.uniform(-1.0, 1.0);
    for (double& v : d) v = rng.uniform(-1.0, 1.0);
    double prod[a];
    for (int j = 0; j < a; ++j) {
      double gg = 0.0, dd = 0.0;
      for (int k = 0; k < R; ++k) gg += mat.g[j][k] * g[k];
      for (int k = 0; k < a; ++k) dd += mat.bt[j][k] * d[k];
      prod[j] = gg * dd;
    }
    for (int i = 0; i < M; ++i) {
      double y = 0.0, want = 0.0;
      for (int j = 0; j < a; ++j) y += mat.at[i][j] * prod[j];
      for (int k = 0; k < R; ++k) want += g[k] * d[i + k];
      worst = std::fmax(worst, std::fabs(y - want));
    }
  }
  char what[64];
  std::snprintf(what, sizeof what, "winograd F(%d,%d) matrices: 1-D identity", M, R);
  if (!(worst < 1e-12)) std::fprintf(stderr, "%s: off by %g\n", what, worst);
  CHECK(worst < 1e-12);
  // B^T holds small integers after the row scaling (an exact input transform up to rounding of sums).
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < a; ++j) CHECK(mat.bt[i][j] == std::round(mat.bt[i][j]));
}

std::vector<float> forward(WinogradKind kind, const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& w,
                           const float* bias, bool relu, bool half_tiles = true) {
  std::vector<float> packed(static_cast<std::size_t>(nincc::cpu::winograd_weights_size(kind, s.out_channels, s.in_channels)));
  nincc::cpu::pack_winograd_weights(kind, s, w.data(), packed.data());
  std::vector<float> y = poisoned(conv_y_size(s));
  nincc::cpu::conv2d_forward_winograd(kind, s, x.data(), packed.data(), bias, y.data(), relu, {}, half_tiles);
  return y;
}

void check_winograd(WinogradKind kind, const Conv2dShape& s, bool with_bias, bool relu, double tol, Rng& rng) {
  CHECK(nincc::cpu::winograd_applies(kind, s));
  const std::vector<float> x = random_floats(conv_x_size(s), rng), w = random_floats(conv_w_size(s), rng);
  const std::vector<float> b = random_floats(s.out_channels, rng);
  const std::vector<double> bd = to_double(b);
  const std::vector<double> want = ref_conv_forward(s, to_double(x), to_double(w), with_bias ? &bd : nullptr, relu);
  char what[200];
  std::snprintf(what, sizeof what, "winograd %s conv n%d c%d %dx%d -> k%d kernel %dx%d pad %d,%d bias=%d relu=%d", name_of(kind),
                s.batch, s.in_channels, s.in_h, s.in_w, s.out_channels, s.kernel_h, s.kernel_w, s.pad_h, s.pad_w, with_bias, relu);
  std::vector<std::vector<float>> runs;
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, saved}) {
    omp_set_num_threads(threads);
    runs.push_back(forward(kind, s, x, w, with_bias ? b.data() : nullptr, relu));
  }
  omp_set_num_threads(saved);
#else
  runs.push_back(forward(kind, s, x, w, with_bias ? b.data() : nullptr, relu));
#endif
  CHECK_CLOSE(runs[0], want, tol, what);
  for (const auto& r : runs) CHECK(bitwise_equal(r, runs[0]));
  // Every column tile through all its lanes (the winogradHalfTiles ablation): the same sums, the same bits.
  CHECK(bitwise_equal(forward(kind, s, x, w, with_bias ? b.data() : nullptr, relu, false), runs[0]));
}

}  // namespace

void test_conv_winograd() {
  check_matrices<2, 3>();
  check_matrices<4, 3>();
  check_matrices<2, 5>();
  Rng rng(131);
  // Tolerances: F(2,3) rounds like the direct sum; F(4,3) and F(2,5) transform with coefficients up
  // to 8 and 1/24, a few ulps more per output (measured worst 1e-5 relative with 384 channels).
  for (WinogradKind kind : {WinogradKind::F2x3, WinogradKind::F4x3}) {
    const double tol = kind == WinogradKind::F2x3 ? 2e-5 : 5e-5;
    check_winograd(kind, Conv2dShape{3, 16, 7, 7, 130, 3, 3, 1, 1, 1, 1}, true, true, tol, rng);   // NIN-like 7x7, tiles straddle images
    check_winograd(kind, Conv2dShape{2, 20, 13, 11, 45, 3, 3, 1, 1, 1, 1}, true, false, tol, rng); // odd planes: partial tiles
    check_winograd(kind, Conv2dShape{5, 3, 3, 3, 13, 3, 3, 1, 1, 0, 0}, false, true, tol, rng);    // 1x1 output planes
    check_winograd(kind, Conv2dShape{2, 7, 6, 9, 25, 3, 3, 1, 1, 2, 3}, true, true, tol, rng);     // padding beyond the kernel's reach
    check_winograd(kind, Conv2dShape{2, 64, 14, 14, 100, 3, 3, 1, 1, 1, 1}, true, true, tol, rng); // NIN-like 14x14, several blocks
    check_winograd(kind, Conv2dShape{1, 384, 7, 7, 40, 3, 3, 1, 1, 1, 1}, true, false, tol, rng);  // deep: NIN's 384 channels
  }
  // A column tile of at most kHalfTileCols Winograd tiles multiplies only its first half of lanes: at
  // that count (NIN's k31 at batch 1: 16 tiles with 16-lane AVX-512) and one past it (full width), alone
  // and as the last column tile after a full one.
  {
    constexpr int half = nincc::cpu::winograd_detail::kHalfTileCols;
    check_winograd(WinogradKind::F2x3, Conv2dShape{1, 24, 2 * half, 2, 30, 3, 3, 1, 1, 1, 1}, true, true, 2e-5, rng);
    check_winograd(WinogradKind::F2x3, Conv2dShape{1, 24, 2 * half + 2, 2, 30, 3, 3, 1, 1, 1, 1}, true, true, 2e-5, rng);
    check_winograd(WinogradKind::F2x3, Conv2dShape{1, 24, 2 * (3 * half), 2, 30, 3, 3, 1, 1, 1, 1}, true, false, 2e-5, rng);
    check_winograd(WinogradKind::F2x3, Conv2dShape{1, 24, 2 * (3 * half + 1), 2, 30, 3, 3, 1, 1, 1, 1}, true, false, 2e-5, rng);
  }
  // nin-fashion's F(4x4) layers at batch 16 (k11: 8 column tiles, k21: 2): at 2 threads their blocks
  // shrink before the row panels split (4 blocks x 1 group, 2 x 2), and the bits stay those of 1 thread.
  {
    using nincc::cpu::winograd_detail::split_tasks;
    using nincc::cpu::gemm_detail::kTileRows;
    const auto k11 = split_tasks(6, 32, nincc::cpu::gemm_detail::ceil_div(64, kTileRows), 8, 2), k21 = split_tasks(6, 64, nincc::cpu::gemm_detail::ceil_div(128, kTileRows), 2, 2);
    CHECK(k11.block_tiles == 2 && k11.groups == 1);
    CHECK(k21.block_tiles == 1 && k21.groups == 2);
    CHECK(split_tasks(6, 32, nincc::cpu::gemm_detail::ceil_div(64, kTileRows), 8, 1).block_tiles == 4);  // one thread: whole blocks
  }
  check_winograd(WinogradKind::F4x3, Conv2dShape{16, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1}, true, true, 5e-5, rng);
  check_winograd(WinogradKind::F4x3, Conv2dShape{16, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1}, true, true, 5e-5, rng);
  check_winograd(WinogradKind::F2x5, Conv2dShape{2, 24, 28, 28, 40, 5, 5, 1, 1, 2, 2}, true, true, 5e-5, rng);  // NIN-like 5x5
  check_winograd(WinogradKind::F2x5, Conv2dShape{3, 5, 9, 7, 17, 5, 5, 1, 1, 0, 1}, true, false, 5e-5, rng);    // partial tiles
  check_winograd(WinogradKind::F2x5, Conv2dShape{4, 6, 4, 4, 12, 5, 5, 1, 1, 3, 3}, false, true, 5e-5, rng);    // wide padding
  check_winograd(WinogradKind::F2x5, Conv2dShape{16, 96, 12, 12, 30, 5, 5, 1, 1, 2, 2}, true, true, 5e-5, rng); // many blocks
}

}  // namespace kernels_test
