// The kernels' thread pool's fork/join cost: wall time of one parallel_for_dynamic over `threads`
// empty tasks (the team wakes, each thread takes a task, the caller waits), against the same loop
// run on the calling thread, median of many calls. Workers are warm (the calls follow each other
// within microseconds, as kernels do), so this is the per-layer cost a parallel conv pays. Also
// prints the share of pool calls in which a worker ran a task: on a loaded machine the caller often
// runs every task itself (its workers are descheduled), and then the time is not a round trip.
//   g++ -std=c++17 -O2 -fopenmp -I runtime/include bench/cpu/pool-fork-join.cc -o /tmp/pool-fork-join
//   OMP_NUM_THREADS=2 /tmp/pool-fork-join [CALLS=20000]
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

// Median nanoseconds of one call of run(), over `calls` calls timed one by one.
template <class Run>
double median_ns(int calls, Run&& run) {
  std::vector<double> ns(calls);
  for (int i = 0; i < calls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ns[i] = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  }
  std::nth_element(ns.begin(), ns.begin() + calls / 2, ns.end());
  return ns[calls / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int threads = max_threads();
  std::atomic<long> sink{0}, helped{0};
  const std::thread::id caller = std::this_thread::get_id();
  auto task = [&](std::int64_t i) {
    sink.fetch_add(i, std::memory_order_relaxed);
    if (std::this_thread::get_id() != caller) helped.fetch_add(1, std::memory_order_relaxed);
  };
  const double serial = median_ns(calls, [&] { parallel_for_dynamic(threads, 1, task); });
  const double parallel = median_ns(calls, [&] { parallel_for_dynamic(threads, threads, task); });
  const double worker_share = static_cast<double>(helped.load()) / calls;
  // Back to back with 20 us of serial work between calls (a layer's time): workers still spinning.
  const double spaced = median_ns(calls, [&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) {}
    parallel_for_dynamic(threads, threads, task);
  }) - median_ns(calls, [&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) {}
  });
  std::printf("threads %d, %d calls: %d empty tasks serial %.0f ns, on the pool %.0f ns (a worker ran a task in %.0f%% of calls); after 20 us of work %.0f ns\n",
              threads, calls, threads, serial, parallel, 100 * worker_share, spaced);
  return sink.load() == -1;
}
