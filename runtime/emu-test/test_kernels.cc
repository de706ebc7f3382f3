// Kernels under the emulator against float64 references: both matrix multiplies and the
// two-kernel sum over a sweep of odd sizes and block shapes, and the grid-order check — forward,
// reverse, shuffled, several worker threads and reversed thread order give bitwise one result.
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace emu_test {

using nincc::emu::BlockOrder;
using nincc::emu::LaunchOptions;

// Every way of scheduling a grid a test runs (declared in kernels.h for the other test files).
std::vector<std::pair<std::string, LaunchOptions>> schedules() {
  std::vector<std::pair<std::string, LaunchOptions>> all;
  LaunchOptions o;
  all.push_back({"forward", o});
  o.order = BlockOrder::reverse;
  all.push_back({"reverse", o});
  o.order = BlockOrder::shuffled;
  o.seed = 7;
  all.push_back({"shuffled", o});
  o.order = BlockOrder::forward;
  o.workers = 3;
  all.push_back({"3 workers", o});
  o.workers = 1;
  o.reverse_threads = true;
  all.push_back({"threads reversed", o});
  return all;
}

namespace {

using MatmulKernel = void (*)(const float*, const float*, float*, int, int, int);

// |got - want| within what K float additions can lose: 2K·2^-24·Σ|a·b| per element.
void check_matmul(const char* name, MatmulKernel kernel, int tile, dim3 block, int m, int n, int k, bool orders) {
  Rng rng(uint64_t(m) * 1000003 + n * 1009 + k);
  Buffer<float> a(size_t(m) * k), b(size_t(k) * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = rng.uniform();
  for (size_t i = 0; i < b.size(); ++i) b[i] = rng.uniform();
  const dim3 grid((n + tile - 1) / tile, (m + tile - 1) / tile);
  Buffer<float> c(size_t(m) * n);
  nincc::emu::launch(name, grid, block, 0, LaunchOptions{}, kernel, a.data(), b.data(), c.data(), m, n, k);
  int bad = 0;
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double want = 0.0, magnitude = 0.0;
      for (int q = 0; q < k; ++q) {
        want += double(a[size_t(i) * k + q]) * b[size_t(q) * n + j];
        magnitude += std::fabs(double(a[size_t(i) * k + q]) * b[size_t(q) * n + j]);
      }
      const double got = c[size_t(i) * n + j];
      if (!(std::fabs(got - want) <= 2.0 * k * 0x1.0p-24 * magnitude + 1e-30) && bad++ < 3)
        report_failure(__FILE__, __LINE__,
                       std::string(name) + " " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                           ": C[" + std::to_string(i) + "][" + std::to_string(j) + "] = " + std::to_string(got) +
                           ", want " + std::to_string(want));
    }
  ++g_checks;
  if (!orders) return;
  for (const auto& [label, options] : schedules()) {
    Buffer<float> again(size_t(m) * n);
    nincc::emu::launch(name, grid, block, 0, options, kernel, a.data(), b.data(), again.data(), m, n, k);
    CHECK_MSG(again.bitwise_equal(c), std::string(name) + " in order \"" + label + "\" differs from forward");
  }
}

// The two-kernel sum of n floats with `threads` per block; returns it after checking it.
float check_sum(int n, int threads, const LaunchOptions& options) {
  constexpr int kChunk = 1024;
  Rng rng(uint64_t(n) * 31 + threads);
  Buffer<float> x(size_t(n) + 1);
  double want = 0.0, magnitude = 0.0;
  for (int i = 0; i < n; ++i) {
    x[i] = rng.uniform();
    want += x[i];
    magnitude += std::fabs(x[i]);
  }
  const int blocks = (n + kChunk - 1) / kChunk;
  Buffer<float> partials{size_t(blocks)}, total{1};
  nincc::emu::launch("block_partial_sums", dim3(blocks), dim3(threads), 0, options, &block_partial_sums, x.data(), n,
                     kChunk, partials.data());
  nincc::emu::launch("sum_partials", dim3(1), dim3(threads), 0, options, &sum_partials, partials.data(), blocks,
                     total.data());
  CHECK_MSG(std::fabs(total[0] - want) <= 2.0 * n * 0x1.0p-24 * magnitude + 1e-30,
            "sum of " + std::to_string(n) + " with " + std::to_string(threads) + " threads: got " +
                std::to_string(total[0]) + ", want " + std::to_string(want));
  return total[0];
}

}  // namespace

void test_matmul() {
  const int sizes[][3] = {{1, 1, 1}, {17, 33, 9}, {64, 64, 64}, {100, 37, 129}, {65, 130, 31}};
  for (const auto& s : sizes) {
    const bool orders = s[0] == 100;  // the order sweep once per kernel: it runs the grid five times
    check_matmul("matmul_tiled16", &matmul_tiled16, 16, dim3(16, 16), s[0], s[1], s[2], orders);
    check_matmul("matmul_64x64", &matmul_64x64, 64, dim3(16, 16), s[0], s[1], s[2], orders);
  }
}

void test_reduce() {
  // 80 and 33 threads end in a partial warp (16 lanes, 1 lane); 32 is a single warp; 1024 is
  // CUDA's largest block.
  const int threads[] = {256, 80, 33, 32, 1024};
  const int sizes[] = {1, 5, 1000, 4099, 100003};
  for (int t : threads)
    for (int n : sizes) check_sum(n, t, LaunchOptions{});
  for (int t : {256, 80}) {
    const float forward = check_sum(100003, t, LaunchOptions{});
    for (const auto& [label, options] : schedules()) {
      const float other = check_sum(100003, t, options);
      CHECK_MSG(std::memcmp(&forward, &other, sizeof forward) == 0,
                "sum with " + std::to_string(t) + " threads in order \"" + label + "\" differs from forward");
    }
  }
}

}  // namespace emu_test
