// The emulator's speed: fiber start/exit, block barriers and warp shuffles per second (kernels
// that do almost nothing else, so the time is the emulator's), and both matrix multiplies in
// GFLOP/s on one and on two OS threads.
#include <chrono>
#include <cstdio>
#include <thread>

#include "check.h"
#include "kernels.h"

namespace emu_test {
namespace {

template <class Launch>
double seconds(Launch launch) {
  launch();  // warm up: stacks mapped, pages touched
  const auto start = std::chrono::steady_clock::now();
  launch();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

nincc::emu::LaunchOptions on_workers(unsigned workers) {
  nincc::emu::LaunchOptions o;
  o.workers = workers;
  return o;
}

}  // namespace

void run_benchmarks() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("emulator speed (%s switch%s; %u cores)\n",
#ifdef NINCC_EMU_UCONTEXT
              "ucontext",
#else
              "x86-64 assembly",
#endif
#ifdef NINCC_EMU_CHECKS
              ", checks on",
#else
              "",
#endif
              cores);
  const int blocks = 256, threads = 256, rounds = 100;
  Buffer<float> out(size_t(blocks) * threads);

  const double fill = seconds([&] {
    nincc::emu::launch("fill_index", dim3(blocks), dim3(threads), 0, on_workers(1), &fill_index, out.data());
  });
  std::printf("  thread start+exit     %7.1f M threads/s\n", blocks * threads / fill * 1e-6);

  const double barrier = seconds([&] {
    nincc::emu::launch("barrier_rounds", dim3(blocks), dim3(threads), 0, on_workers(1), &barrier_rounds, rounds,
                       out.data());
  });
  std::printf("  __syncthreads         %7.1f M thread-barriers/s  (%.1f ns each)\n",
              double(blocks) * threads * rounds / barrier * 1e-6, barrier / (double(blocks) * threads * rounds) * 1e9);

  const double shuffle = seconds([&] {
    nincc::emu::launch("shuffle_rounds", dim3(blocks), dim3(threads), 0, on_workers(1), &shuffle_rounds, rounds,
                       out.data());
  });
  std::printf("  shfl_xor              %7.1f M thread-shuffles/s  (%.1f ns each)\n",
              double(blocks) * threads * rounds / shuffle * 1e-6, shuffle / (double(blocks) * threads * rounds) * 1e9);

  const int n = 256;
  Buffer<float> a(size_t(n) * n), b(size_t(n) * n), c(size_t(n) * n);
  Rng rng(1);
  for (size_t i = 0; i < a.size(); ++i) a[i] = rng.uniform(), b[i] = rng.uniform();
  const double flops = 2.0 * n * n * n;
  for (unsigned workers : {1u, 2u}) {
    if (workers > cores) continue;
    const double tiled = seconds([&] {
      nincc::emu::launch("matmul_tiled16", dim3(n / 16, n / 16), dim3(16, 16), 0, on_workers(workers),
                         &matmul_tiled16, a.data(), b.data(), c.data(), n, n, n);
    });
    const double blocked = seconds([&] {
      nincc::emu::launch("matmul_64x64", dim3(n / 64, n / 64), dim3(16, 16), 0, on_workers(workers), &matmul_64x64,
                         a.data(), b.data(), c.data(), n, n, n);
    });
    std::printf("  matmul %d^3, %u thread%s: tiled16 %.3f GFLOP/s (%.0f ms), 64x64 %.3f GFLOP/s (%.0f ms)\n", n, workers,
                workers == 1 ? " " : "s", flops / tiled * 1e-9, tiled * 1e3, flops / blocked * 1e-9, blocked * 1e3);
  }
}

}  // namespace emu_test
