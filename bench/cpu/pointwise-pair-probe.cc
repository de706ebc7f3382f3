// What fusing a block's two 1x1 convs into one parallel region would save at batch 1 (issue #19, a
// probe, not a kernel): nin-fashion's three pairs (k4+k7 on 32x28x28, k14+k17 on 64x14x14, k24+k27
// on 128x7x7), timed call by call, alternately, as the program runs them now (two conv2d_forward
// calls, each serial below kForwardParallelMinMacs) and as one parallel loop over pixel tiles in which
// a task runs the first conv on its tile into a tile-sized scratch and the second conv from it: no
// barrier between the two, and the tile's middle activations never leave the task's core. The pair
// runs pointwise_direct's micro-kernel and store in the same order, so its y must match the two
// calls' bit for bit (checked before timing). The pool is held awake, as the cpu device holds it for
// a program. Each way is also timed with the layer that follows the pair in nin-fashion (its pool,
// reading y), which pays for the lines of y the other core wrote. Wall medians in µs; read them on
// free cores or under `chrt -f 20`.
//   g++ -std=c++17 -O3 -fopenmp -march=native -I runtime/include bench/cpu/pointwise-pair-probe.cc \
//       -o /tmp/pointwise-pair-probe && chrt -f 20 /tmp/pointwise-pair-probe [CALLS=3000] [THREADS=2]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nincc/cpu/kernels.h"

using namespace nincc::cpu;
using gemm_detail::ceil_div;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;

namespace {

std::vector<float> values(std::size_t n, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 2654435761u) % 1000) / 1000.f - scale / 2;
  return v;
}

// One 1x1 conv (m output channels over `depth` rows of B, row c at b_row(c)) on one pixel tile,
// stored through `out` at segment `seg`, with bias and ReLU: pointwise_direct's inner loop.
template <class BRow>
void pointwise_tile(int m, int depth, const float* packed_w, BRow b_row, const conv_gemm_detail::SegmentStore& out,
                    const conv_gemm_detail::Segment& seg, const float* bias) {
  for (int p = 0; p < ceil_div(m, kTileRows); ++p) {
    const int first_row = p * kTileRows, tile_rows = std::min(kTileRows, m - first_row);
    gemm_detail::TileAccumulators acc;
    gemm_detail::tile_product_rows_of(tile_rows, depth, conv_gemm_detail::weight_panel(packed_w, m, 0, depth, p), b_row, acc);
    conv_gemm_detail::store_tile(out, acc, &seg, 1, first_row, tile_rows, false, true, bias + first_row, true);
  }
}

// y = relu(w2 relu(w1 x + b1) + b2) for one image of c channels on `plane` pixels, c -> c -> c, the
// tasks whole pixel tiles (the middle channels of a tile stay in the task's scratch).
void pointwise_pair(int c, std::int64_t plane, int w, const float* x, const float* w1, const float* b1, const float* w2,
                    const float* b2, float* y, int threads) {
  const int tiles = ceil_div(plane, kTileCols);
  parallel_for_dynamic(tiles, threads, [&](std::int64_t q) {
    const std::int64_t p0 = q * kTileCols;
    const int cols = static_cast<int>(std::min<std::int64_t>(kTileCols, plane - p0));
    float* mid = thread_scratch(ScratchSlot::kConvPhases, static_cast<std::size_t>(2 * c) * kTileCols);
    float* panel = mid + static_cast<std::size_t>(c) * kTileCols;
    const float* b = x + p0;
    std::int64_t stride = plane;
    if (cols < kTileCols) {  // the last, partial tile: zero-padded, as pointwise_direct does
      for (int i = 0; i < c; ++i) {
        std::copy(b + i * plane, b + i * plane + cols, panel + i * kTileCols);
        std::fill(panel + i * kTileCols + cols, panel + (i + 1) * kTileCols, 0.f);
      }
      b = panel;
      stride = kTileCols;
    }
    std::fill(mid, mid + static_cast<std::size_t>(c) * kTileCols, 0.f);  // lanes past `cols` stay zero
    const conv_gemm_detail::SegmentStore to_mid{mid, c, kTileCols, kTileCols, nullptr}, to_y{y, c, plane, w, nullptr};
    pointwise_tile(c, c, w1, [&](int i) { return b + i * stride; }, to_mid, conv_gemm_detail::Segment{0, 0, 0, 0, cols}, b1);
    pointwise_tile(c, c, w2, [&](int i) { return mid + i * kTileCols; }, to_y,
                   conv_gemm_detail::Segment{0, 0, static_cast<int>(p0), 0, cols}, b2);
  });
}

struct Pair {
  const char* name;
  int c, h;
  Pool2dShape next;  // the pool after the pair
};

double micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 3000, threads = argc > 2 ? std::atoi(argv[2]) : 2;
  omp_set_num_threads(threads);
  pool_detail::ThreadPool::instance().hold_workers(1);
  const Pair pairs[] = {{"k4+k7 1x1 32 28x28", 32, 28, {1, 32, 28, 28, 3, 3, 2, 2, 1, 1}},
                        {"k14+k17 1x1 64 14x14", 64, 14, {1, 64, 14, 14, 3, 3, 2, 2, 1, 1}},
                        {"k24+k27 1x1 128 7x7", 128, 7, {1, 128, 7, 7, 7, 7, 1, 1, 0, 0}}};
  std::printf("nin-fashion's 1x1 pairs at batch 1, %d calls each way alternately, %d threads; wall medians in µs\n", calls, threads);
  std::printf("%-24s %8s %9s %9s %6s %12s %12s %6s %8s\n", "pair", "2 calls", "fused 1T", "fused NT", "NT/2c", "2c + pool", "NT + pool", "ratio",
              "bitwise");
  for (const Pair& l : pairs) {
    const Conv2dShape s{1, l.c, l.h, l.h, l.c, 1, 1, 1, 1, 0, 0};
    const std::int64_t plane = s.out_plane();
    const auto x = values(static_cast<std::size_t>(l.c) * plane, 2.f), w1 = values(l.c * l.c, 0.2f), w2 = values(l.c * l.c, 0.2f);
    const auto b1 = values(l.c, 0.1f), b2 = values(l.c, 0.1f);
    std::vector<float> p1(packed_conv_weights_size(l.c, l.c)), p2(p1.size());
    pack_conv_weights(s, w1.data(), p1.data());
    pack_conv_weights(s, w2.data(), p2.data());
    std::vector<float> mid(x.size()), y_calls(x.size()), y_fused(x.size(), -1.f), pooled(l.next.planes() * l.next.out_plane());
    auto pool = [&](const std::vector<float>& y) {
      if (l.next.kernel_h == l.h) avgpool_forward(l.next, y.data(), pooled.data());
      else maxpool_forward(l.next, y.data(), pooled.data(), nullptr);
    };
    auto two_calls = [&] {
      conv2d_forward(s, x.data(), PackedConvWeights{p1.data()}, b1.data(), mid.data(), true);
      conv2d_forward(s, mid.data(), PackedConvWeights{p2.data()}, b2.data(), y_calls.data(), true);
    };
    auto fused = [&](int t) { pointwise_pair(l.c, plane, l.h, x.data(), p1.data(), b1.data(), p2.data(), b2.data(), y_fused.data(), t); };
    two_calls();
    fused(threads);
    const bool same = std::memcmp(y_calls.data(), y_fused.data(), y_calls.size() * sizeof(float)) == 0;
    std::vector<double> a, one, many, a_pool, many_pool;
    for (int i = 0; i < calls; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      two_calls();
      a.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      fused(1);
      one.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      fused(threads);
      many.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      two_calls();
      pool(y_calls);
      a_pool.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      fused(threads);
      pool(y_fused);
      many_pool.push_back(micros_since(t0));
    }
    std::printf("%-24s %8.1f %9.1f %9.1f %6.2f %12.1f %12.1f %6.2f %8s\n", l.name, median(a), median(one), median(many),
                median(many) / median(a), median(a_pool), median(many_pool), median(many_pool) / median(a_pool), same ? "yes" : "NO");
  }
  pool_detail::ThreadPool::instance().hold_workers(-1);
  return 0;
}
