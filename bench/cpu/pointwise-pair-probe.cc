// What fusing a block's two 1x1 convs into one parallel region would save at batch 1 (issue #19, a
// probe, not a kernel): nin-fashion's three pairs (k4+k7 on 32x28x28, k14+k17 on 64x14x14, k24+k27
// on 128x7x7), timed call by call, alternately, as the program runs them now (two conv2d_forward
// calls, each serial below kForwardParallelMinMacs) and as one parallel loop over pixel tiles in which
// a task runs the first conv on its tile into a tile-sized scratch and the second conv from it: no
// barrier between the two, and the tile's middle activations never leave the task's core. The pair
// runs pointwise_direct's micro-kernel and store in the same order, so its y must match the two
// calls' bit for bit (checked before timing). The pool is held awake, as the cpu device holds it for
// a program. Each way is also timed with the layer that follows the pair in nin-fashion (its pool,
// reading y), which pays for the lines of y the other core wrote; and, before a max pool, pair and
// pool run in two row bands, one a thread, so each thread's y stays on its core but one halo row
// (pointwise_pair_pool_banded: the band region's smallest case). Wall medians in µs; read them on
// free cores or under `chrt -f 20` (bench/RESULTS.md, branch i19z).
//   g++ -std=c++17 -O3 -fopenmp -march=native -I runtime/include bench/cpu/pointwise-pair-probe.cc \
//       -o /tmp/pointwise-pair-probe && chrt -f 20 /tmp/pointwise-pair-probe [CALLS=3000] [THREADS=2]
// (-DNINCC_POOL_STATS adds the banded way's pool counters: tasks on the worker, its join, the caller's wait.)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nincc/cpu/kernels.h"

#include "bench-util.h"

using namespace nincc::cpu;
using nincc_bench::values;
using nincc_bench::median;
using gemm_detail::ceil_div;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;

namespace {

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

// y = relu(w2 relu(w1 x + b1) + b2) on the pixel tile at p0 (cols pixels) of one image of c channels
// on `plane` pixels, c -> c -> c (the middle channels of the tile stay in the thread's scratch).
void pointwise_pair_tile(int c, std::int64_t plane, int w, const float* x, const float* w1, const float* b1, const float* w2,
                         const float* b2, float* y, std::int64_t p0, int cols) {
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
}

// The pair on pixels [begin, end), tile by tile from `begin`.
void pointwise_pair_range(int c, std::int64_t plane, int w, const float* x, const float* w1, const float* b1, const float* w2,
                          const float* b2, float* y, std::int64_t begin, std::int64_t end) {
  for (std::int64_t p0 = begin; p0 < end; p0 += kTileCols)
    pointwise_pair_tile(c, plane, w, x, w1, b1, w2, b2, y, p0, static_cast<int>(std::min<std::int64_t>(kTileCols, end - p0)));
}

// The pair in one parallel loop over its pixel tiles.
void pointwise_pair(int c, std::int64_t plane, int w, const float* x, const float* w1, const float* b1, const float* w2,
                    const float* b2, float* y, int threads) {
  parallel_for_dynamic(ceil_div(plane, kTileCols), threads, [&](std::int64_t q) {
    pointwise_pair_range(c, plane, w, x, w1, b1, w2, b2, y, q * kTileCols, std::min<std::int64_t>(plane, (q + 1) * kTileCols));
  });
}

// The pair and a 3x3/2 pad-1 max pool after it in two row bands, one a thread on 2 threads (2 tasks:
// the caller takes the first, the held worker the second; on 1 thread, both in turn): each task runs the pair on its half of the rows,
// then, after the loop's join, the pool's output rows whose windows start in its half, reading one
// row of the other half (the halo). y and the pool stay where their band's thread wrote them.
void pointwise_pair_pool_banded(int c, int h, const float* x, const float* w1, const float* b1, const float* w2,
                                const float* b2, float* y, float* pooled, int threads) {
  const std::int64_t plane = static_cast<std::int64_t>(h) * h;
  const int split = h / 2, out_h = (h + 2 - 3) / 2 + 1, out_split = (split + 1) / 2;  // out row r reads rows 2r-1..2r+1
  parallel_for_dynamic(2, threads, [&](std::int64_t b) {
    pointwise_pair_range(c, plane, h, x, w1, b1, w2, b2, y, b == 0 ? 0 : split * h, b == 0 ? split * h : plane);
  });
  parallel_for_dynamic(2, threads, [&](std::int64_t b) {
    const int o0 = b == 0 ? 0 : out_split, o1 = b == 0 ? out_split : out_h;
    const int first = b == 0 ? 0 : 2 * o0 - 1, last = std::min(h, 2 * o1);  // input rows [first, last)
    const Pool2dShape band{1, 1, last - first, h, 3, 3, 2, 2, b == 0 ? 1 : 0, 1};
    float* rows = thread_scratch(ScratchSlot::kPoolRows, 2 * static_cast<std::size_t>(h) + 4);
    for (int ch = 0; ch < c; ++ch)
      pool_detail::plane_max<3, 2>(band, y + ch * plane + first * h, pooled + (static_cast<std::int64_t>(ch) * out_h + o0) * out_h, rows);
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

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 3000, threads = argc > 2 ? std::atoi(argv[2]) : 2;
  omp_set_num_threads(threads);
  pool_detail::ThreadPool::instance().hold_workers(1);
  const Pair pairs[] = {{"k4+k7 1x1 32 28x28", 32, 28, {1, 32, 28, 28, 3, 3, 2, 2, 1, 1}},
                        {"k14+k17 1x1 64 14x14", 64, 14, {1, 64, 14, 14, 3, 3, 2, 2, 1, 1}},
                        {"k24+k27 1x1 128 7x7", 128, 7, {1, 128, 7, 7, 7, 7, 1, 1, 0, 0}}};
  std::printf("nin-fashion's 1x1 pairs at batch 1, %d calls each way alternately, %d threads; wall medians in µs\n", calls, threads);
  std::printf("%-24s %8s %9s %9s %6s %10s %10s %6s %12s %6s %8s\n", "pair", "2 calls", "fused 1T", "fused NT", "NT/2c", "2c + pool",
              "NT + pool", "ratio", "banded+pool", "ratio", "bitwise");
  for (const Pair& l : pairs) {
    const Conv2dShape s{1, l.c, l.h, l.h, l.c, 1, 1, 1, 1, 0, 0};
    const std::int64_t plane = s.out_plane();
    const auto x = values(static_cast<std::size_t>(l.c) * plane, 2.f), w1 = values(l.c * l.c, 0.2f), w2 = values(l.c * l.c, 0.2f);
    const auto b1 = values(l.c, 0.1f), b2 = values(l.c, 0.1f);
    std::vector<float> p1(packed_conv_weights_size(l.c, l.c)), p2(p1.size());
    pack_conv_weights(s, w1.data(), p1.data());
    pack_conv_weights(s, w2.data(), p2.data());
    // Each way its own outputs, so none pays for lines another way's thread wrote last.
    std::vector<float> mid(x.size()), y_calls(x.size()), y_fused(x.size(), -1.f), y_one(x.size()), y_pool(x.size()), y_band(x.size());
    std::vector<float> pooled(l.next.planes() * l.next.out_plane()), pooled_fused(pooled.size());
    auto pool = [&](const std::vector<float>& y, std::vector<float>& to) {
      if (l.next.kernel_h == l.h) avgpool_forward(l.next, y.data(), to.data());
      else maxpool_forward(l.next, y.data(), to.data(), nullptr);
    };
    auto two_calls = [&] {
      conv2d_forward(s, x.data(), PackedConvWeights{p1.data()}, b1.data(), mid.data(), true);
      conv2d_forward(s, mid.data(), PackedConvWeights{p2.data()}, b2.data(), y_calls.data(), true);
    };
    auto fused = [&](int t, std::vector<float>& y) { pointwise_pair(l.c, plane, l.h, x.data(), p1.data(), b1.data(), p2.data(), b2.data(), y.data(), t); };
    two_calls();
    fused(threads, y_fused);
    const bool same = std::memcmp(y_calls.data(), y_fused.data(), y_calls.size() * sizeof(float)) == 0;
    std::vector<double> a, one, many, a_pool, many_pool, banded;
    const bool max_pool = l.next.kernel_h == 3;
    std::vector<float> pooled_banded(pooled.size());
    auto band = [&] { pointwise_pair_pool_banded(l.c, l.h, x.data(), p1.data(), b1.data(), p2.data(), b2.data(), y_band.data(), pooled_banded.data(), threads); };
    bool same_pool = true;
    if (max_pool) {
      two_calls();
      pool(y_calls, pooled);
      band();
      same_pool = std::memcmp(pooled.data(), pooled_banded.data(), pooled.size() * sizeof(float)) == 0;
    }
    for (int i = 0; i < calls; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      two_calls();
      a.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      fused(1, y_one);
      one.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      fused(threads, y_fused);
      many.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      two_calls();
      pool(y_calls, pooled);
      a_pool.push_back(micros_since(t0));
      t0 = std::chrono::steady_clock::now();
      fused(threads, y_pool);
      pool(y_pool, pooled_fused);
      many_pool.push_back(micros_since(t0));
      if (!max_pool) continue;
      t0 = std::chrono::steady_clock::now();
      band();
      banded.push_back(micros_since(t0));
    }
#ifdef NINCC_POOL_STATS
    // Built with -DNINCC_POOL_STATS: where the banded way's 2-thread time goes, over `calls` more calls.
    if (max_pool) {
      auto& st = pool_detail::pool_stats();
      const long jobs = st.jobs, tasks = st.tasks, worker = st.worker_tasks, joins = st.worker_joins, join_ns = st.join_in_ns, wait_ns = st.caller_wait_ns;
      for (int i = 0; i < calls; ++i) band();
      std::printf("  banded, per parallel loop: %.2f tasks, %.0f%% of them on the worker, its join %.2f µs after publication, the caller's wait %.2f µs\n",
                  double(st.tasks - tasks) / (st.jobs - jobs), 100.0 * (st.worker_tasks - worker) / (st.tasks - tasks),
                  1e-3 * (st.join_in_ns - join_ns) / std::max(1L, st.worker_joins - joins), 1e-3 * (st.caller_wait_ns - wait_ns) / (st.jobs - jobs));
    }
#endif
    std::printf("%-24s %8.1f %9.1f %9.1f %6.2f %10.1f %10.1f %6.2f %12.1f %6.2f %8s\n", l.name, median(a), median(one), median(many),
                median(many) / median(a), median(a_pool), median(many_pool), median(many_pool) / median(a_pool),
                max_pool ? median(banded) : 0.0, max_pool ? median(banded) / median(a_pool) : 0.0, same && same_pool ? "yes" : "NO");
  }
  pool_detail::ThreadPool::instance().hold_workers(-1);
  return 0;
}
