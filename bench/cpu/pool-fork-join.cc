// The kernels' thread pool's fork/join cost: wall time of one parallel_for_dynamic over `threads`
// tasks of about 2 us each (spinning on the clock) on the pool, against the same tasks run one after
// another on the calling thread, median of many calls, with the share of tasks a worker ran. Where
// workers take their share (~50% at 2 threads), pool time minus one task's time is the fork/join
// cost a parallel conv pays per call; where they take none (a loaded machine: the workers are
// descheduled), the caller runs every task and the pool time is the serial time plus the publish.
// Calls follow each other within microseconds, as kernels do, so the workers are spinning, not asleep.
//   g++ -std=c++17 -O2 -fopenmp -I runtime/include bench/cpu/pool-fork-join.cc -o /tmp/pool-fork-join
//   OMP_NUM_THREADS=2 /tmp/pool-fork-join [CALLS=20000] [TASK_US=2]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "nincc/cpu/parallel.h"

using namespace nincc::cpu;

namespace {

// The median and the 5th percentile nanoseconds of one call of run(), over `calls` calls timed one by one.
struct Times {
  double median, p5;
};
template <class Run>
Times times_ns(int calls, Run&& run) {
  std::vector<double> ns(calls);
  for (int i = 0; i < calls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ns[i] = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(ns.begin(), ns.end());
  return {ns[calls / 2], ns[calls / 20]};
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  const double task_us = argc > 2 ? std::atof(argv[2]) : 2.0;
  const int threads = max_threads();
  std::atomic<long> by_worker{0};
  const std::thread::id caller = std::this_thread::get_id();
  auto task = [&](std::int64_t) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(static_cast<long>(task_us * 1000));
    while (std::chrono::steady_clock::now() < until) {}
    if (std::this_thread::get_id() != caller) by_worker.fetch_add(1, std::memory_order_relaxed);
  };
  const Times serial = times_ns(calls, [&] { parallel_for_dynamic(threads, 1, task); });
  const Times pool = times_ns(calls, [&] { parallel_for_dynamic(threads, threads, task); });
  const double worker_share = static_cast<double>(by_worker.load()) / (static_cast<double>(calls) * threads);
  std::printf("threads %d, %d calls of %d tasks of %.1f us: serial median %.0f ns; on the pool median %.0f ns, 5th percentile %.0f ns; "
              "workers ran %.0f%% of the tasks\n",
              threads, calls, threads, task_us, serial.median, pool.median, pool.p5, 100 * worker_share);
  return 0;
}
