// The kernels' thread pool (thread_pool.h, through parallel.h's loops): every index runs exactly
// once, for any count and thread count, over thousands of back-to-back jobs (the epoch protocol);
// loops nested in a task run serially on the task's thread; a task that stalls (as a descheduled
// thread would) delays only itself; held workers (hold_pool_workers) stay awake between loops and
// still run every index once, and sleep again once released; a caller set to sleep for a stalled
// worker's task (set_caller_spin_ns) waits for it asleep, and is always woken.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/parallel.h"

namespace kernels_test {

void test_thread_pool() {
  using namespace nincc::cpu;
  // Exactly once, for counts around the team size and thread counts beyond the machine's.
  bool once = true;
  for (int threads : {1, 2, 3, 8})
    for (int count = 0; count <= 40; ++count) {
      std::vector<std::atomic<int>> seen(count);
      parallel_for_dynamic(count, threads, [&](std::int64_t i) { seen[i].fetch_add(1); });
      for (auto& s : seen) once = once && s.load() == 1;
    }
  CHECK(once);

  // Back-to-back jobs: a worker that arrives late for one job must not run a task of the next.
  std::atomic<long> total{0};
  long expected = 0;
  for (int job = 0; job < 5000; ++job) {
    const int count = 1 + job % 7;
    expected += count * (job + 1);
    parallel_for_dynamic(count, 2, [&](std::int64_t) { total.fetch_add(job + 1); });
  }
  CHECK(total.load() == expected);

  // Nested loops run serially on the task's own thread.
  std::atomic<int> nested_parallel{0};
  parallel_for_dynamic(8, 2, [&](std::int64_t) {
    if (max_threads() != 1) nested_parallel.fetch_add(1);
    const auto me = std::this_thread::get_id();
    parallel_for_dynamic(4, 2, [&](std::int64_t) {
      if (std::this_thread::get_id() != me) nested_parallel.fetch_add(1);
    });
  });
  CHECK(nested_parallel.load() == 0);

  // One stalled task: the other tasks still all run, the loop returns once the stalled one ends.
  std::vector<std::atomic<int>> seen(64);
  parallel_for_dynamic(64, 2, [&](std::int64_t i) {
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    seen[i].fetch_add(1);
  });
  bool all = true;
  for (auto& s : seen) all = all && s.load() == 1;
  CHECK(all);

#ifdef _OPENMP
  // Held: the worker does not sleep between loops, however long the gap, and loops stay exactly-once.
  // Released: it sleeps again after its spin (about 0.1 ms). Waits are bounded so a failure reports.
  auto& pool = pool_detail::ThreadPool::instance();
  auto wait_until = [](auto done) {
    for (int i = 0; i < 2000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return done();
  };
  CHECK(wait_until([&] { return pool.sleeping_workers() > 0; }));  // idle since the loops above
  hold_pool_workers(true);
  CHECK(wait_until([&] { return pool.sleeping_workers() == 0; }));  // the hold woke it
  bool held_awake = true, held_once = true;
  for (int job = 0; job < 20; ++job) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // 20x a worker's unheld spin
    held_awake = held_awake && pool.sleeping_workers() == 0;
    std::vector<std::atomic<int>> ran(16);
    parallel_for_dynamic(16, 2, [&](std::int64_t i) { ran[i].fetch_add(1); });
    for (auto& r : ran) held_once = held_once && r.load() == 1;
  }
  CHECK(held_awake);
  CHECK(held_once);
  hold_pool_workers(false);
  CHECK(wait_until([&] { return pool.sleeping_workers() > 0; }));

  // The caller asleep while a worker's claimed task stalls (set_caller_spin_ns): run() still returns
  // only once that task is done, and the caller's thread spends a small part of the stall on the CPU
  // (spinning, it spends all of the stall it is scheduled for: a tenth of 200 ms at a load of 20 on 2 cores).
  auto thread_cpu_ms = [] {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
  };
  pool.set_caller_spin_ns(100000);
  hold_pool_workers(true);  // the worker awake, so it claims one of the two tasks
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> worker_in{false}, stalled_done{false};
  const double cpu_before = thread_cpu_ms();
  parallel_for_dynamic(2, 2, [&](std::int64_t) {
    if (std::this_thread::get_id() == caller) {
      for (int i = 0; i < 2000 && !worker_in.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return;
    }
    worker_in.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a worker that lost its core
    stalled_done.store(true);
  });
  const double caller_cpu_ms = thread_cpu_ms() - cpu_before;
  hold_pool_workers(false);
  CHECK(worker_in.load());
  CHECK(stalled_done.load());
  CHECK(caller_cpu_ms < 5.0);
  if (caller_cpu_ms >= 5.0) std::fprintf(stderr, "caller spent %.1f ms of CPU waiting for a stalled task\n", caller_cpu_ms);

  // Sleeping after 0 ns, on every job a worker ends last: no lost wake-up (a hang), every index once.
  pool.set_caller_spin_ns(0);
  std::atomic<long> slept_total{0};
  long slept_expected = 0;
  for (int job = 0; job < 3000; ++job) {
    const int count = 1 + job % 5;
    slept_expected += count;
    parallel_for_dynamic(count, 2, [&](std::int64_t i) {
      if (i == count - 1) for (volatile int spin = 0; spin < 200 * (job % 3); ++spin) {}
      slept_total.fetch_add(1);
    });
  }
  CHECK(slept_total.load() == slept_expected);
  pool.set_caller_spin_ns(pool_detail::ThreadPool::kSpinUntilDone);
#endif

  // parallel_for_threads and parallel_slices cover their ranges exactly once as well.
  std::vector<int> hits(1000, 0);
  parallel_for_threads(1000, 2, [&](std::int64_t i) { ++hits[i]; });
  parallel_slices(1000, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) ++hits[i];
  });
  bool twice = true;
  for (int h : hits) twice = twice && h == 2;
  CHECK(twice);
}

}  // namespace kernels_test
