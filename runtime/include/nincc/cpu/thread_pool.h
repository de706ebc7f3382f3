// The kernels' thread pool: the calling thread and up to threads - 1 persistent workers take the
// tasks of one parallel loop from a shared counter. Unlike an OpenMP parallel region, the caller
// never waits for a worker that has not started: on a shared machine where the OS has descheduled
// a worker (another process holds the core), the caller runs the remaining tasks itself and returns,
// instead of sitting at the region's closing barrier until the worker's next time slice (several
// milliseconds, longer than most kernels). It waits only for tasks a worker has actually claimed.
//
// Protocol. `epoch_` is a sequence lock over the job fields (count, body): run() makes it odd, waits
// until no worker is registered in `busy_`, writes the job, makes it even (published) and takes
// tasks from the shared counter `next_`. A worker that sees a new even epoch registers in busy_ and
// re-checks the epoch: if it changed, the job it saw is gone; if not, the job stays as it was while
// it is registered (a writer must wait for busy_ == 0), and it claims tasks until none are left.
// run() returns once its own claims are exhausted and busy_ == 0, i.e. every claimed task is done;
// it spins for that, or (set_caller_spin_ns) sleeps after a while until the last worker wakes it.
// A worker that registers after that finds every task claimed and never calls the finished body.
// Workers spin briefly after each job (kernels follow each other within microseconds), then sleep;
// while a caller holds them (hold_workers: the cpu device, for the length of a program) they spin on.
// Built with -DNINCC_POOL_STATS (bench/cpu/cpu-infer-scaling.cc only), run() also counts where a
// parallel loop's time goes (pool_stats()); a normal build has none of it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NINCC_CPU_RELAX() _mm_pause()
#else
#define NINCC_CPU_RELAX() std::this_thread::yield()
#endif

namespace nincc {
namespace cpu {
namespace pool_detail {

// True on pool workers, and on a caller while it runs a job: loops nested in a task run serially.
inline thread_local bool t_inside_job = false;

#ifdef NINCC_POOL_STATS
// Totals over every run() since the last reset, for the scaling probe: jobs, their tasks, the tasks
// workers ran, the nanoseconds from a job's publication to a worker's registration (wake-up), and
// the nanoseconds the caller waited after its own claims ran out (imbalance plus late workers).
struct PoolStats {
  std::atomic<long> jobs{0}, tasks{0}, worker_tasks{0}, worker_joins{0}, join_in_ns{0}, caller_wait_ns{0};
};
inline PoolStats& pool_stats() {
  static PoolStats stats;
  return stats;
}
inline long pool_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
#define NINCC_POOL_STAT(...) __VA_ARGS__
#else
#define NINCC_POOL_STAT(...)
#endif

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }

  // body(i) for every i in [0, count), on the calling thread and up to threads - 1 workers.
  template <class Body>
  void run(std::int64_t count, int threads, Body& body) {
    std::lock_guard<std::mutex> one_job_at_a_time(run_mutex_);
    ensure_workers(threads - 1);
    epoch_.fetch_add(1, std::memory_order_seq_cst);  // odd: the job fields are being written
    while (busy_.load(std::memory_order_seq_cst) != 0) NINCC_CPU_RELAX();  // stragglers of the last job
    count_ = count;
    helpers_ = threads - 1;
    context_ = &body;
    invoke_ = [](void* context, std::int64_t i) { (*static_cast<Body*>(context))(i); };
    next_.store(0, std::memory_order_relaxed);
    NINCC_POOL_STAT(published_ns_ = pool_now_ns();)
    epoch_.fetch_add(1, std::memory_order_seq_cst);  // even: published
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
    t_inside_job = true;
    for (std::int64_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < count;) body(i);
    t_inside_job = false;
    NINCC_POOL_STAT(const long own_done_ns = pool_now_ns();)
    wait_for_claimed_tasks();
    NINCC_POOL_STAT(PoolStats& stats = pool_stats(); stats.jobs += 1; stats.tasks += count; stats.caller_wait_ns += pool_now_ns() - own_done_ns;)
  }

  // Holds the workers awake (spinning, not asleep) from hold_workers(1) to its hold_workers(-1), and
  // wakes any asleep now. A program's small layers follow serial ones by tens of microseconds, past a
  // worker's spin, and each would otherwise wake it again. Holds nest (a count).
  void hold_workers(int change) {
    if (holds_.fetch_add(change, std::memory_order_seq_cst) + change > 0 && sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      wake_.notify_all();
    }
  }

  // Workers asleep now (for tests: none while held).
  int sleeping_workers() const { return sleepers_.load(std::memory_order_seq_cst); }

  // How long run()'s caller spins for the tasks workers have claimed before it sleeps until they are
  // done (kSpinUntilDone: never sleeps). A worker still busy well past the caller's own tasks has
  // most likely lost its core (a shared machine, or another engine's pool spinning after its call):
  // spinning on keeps the caller's core from the OS, which could otherwise move the stalled worker
  // there. Off by default (NINCC_POOL_CALLER_SPIN_US sets it): with a higher-priority thread taking
  // one core of the loaded VM it won or lost by that thread's pattern (bench/RESULTS.md, branch i19w),
  // and what counts is an idle machine's scheduler, where the bench runs.
  static constexpr std::int64_t kSpinUntilDone = -1;
  void set_caller_spin_ns(std::int64_t ns) { caller_spin_ns_.store(ns, std::memory_order_relaxed); }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex_);
      stop_.store(true);
      wake_.notify_all();
    }
    for (std::thread& t : workers_) t.join();
  }

 private:
  // Pause instructions before a worker sleeps: 36.7-37.7 microseconds on the benches' AMD EPYC VM
  // (bench/logs/i19J-spin-and-pause.out), longer where a pause is (longer spins measured no faster on
  // NIN, and would take a core from whatever runs next on a shared machine).
  static constexpr int kSpinIterations = 2000;

  ThreadPool() : caller_spin_ns_(caller_spin_ns_from_env()) {}

  // NINCC_POOL_CALLER_SPIN_US: microseconds the caller spins for claimed tasks before it sleeps; unset
  // or negative: it spins until they are done (the default until an idle-machine bench shows a win).
  static std::int64_t caller_spin_ns_from_env() {
    const char* text = std::getenv("NINCC_POOL_CALLER_SPIN_US");
    return text && *text && std::atoll(text) >= 0 ? std::atoll(text) * 1000 : kSpinUntilDone;
  }

  // Returns once no worker is registered (every claimed task is done): spins caller_spin_ns_, then sleeps.
  // No lost wake-up: the caller publishes caller_sleeping_ before it re-reads busy_, and a worker
  // lowers busy_ before it reads caller_sleeping_ (both seq_cst), so one of them sees the other's write.
  void wait_for_claimed_tasks() {
    if (busy_.load(std::memory_order_acquire) == 0) return;
    const std::int64_t spin_ns = caller_spin_ns_.load(std::memory_order_relaxed);
    const auto start = std::chrono::steady_clock::now();
    for (int spin = 1; busy_.load(std::memory_order_acquire) != 0; ++spin) {
      NINCC_CPU_RELAX();
      if (spin_ns != kSpinUntilDone && spin % 64 == 0 && std::chrono::steady_clock::now() - start >= std::chrono::nanoseconds(spin_ns)) {
        std::unique_lock<std::mutex> lock(done_mutex_);
        caller_sleeping_.store(true, std::memory_order_seq_cst);
        done_.wait(lock, [&] { return busy_.load(std::memory_order_seq_cst) == 0; });
        caller_sleeping_.store(false, std::memory_order_relaxed);
        return;
      }
    }
  }

  // A worker's end of its registration: wakes the caller if it sleeps and this was the last one.
  void leave_job() {
    if (busy_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_sleeping_.load(std::memory_order_seq_cst)) {
      std::lock_guard<std::mutex> lock(done_mutex_);
      done_.notify_one();
    }
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id] { work(id); });
    }
  }

  // A published epoch other than `seen`, or shutdown: spins a while, then sleeps until woken. Shutdown is
  // tested on its own, not through the epoch: a worker whose thread first ran after ~ThreadPool's last
  // epoch step took that epoch as `seen` and, waiting for a different one, never returned to be joined.
  // While held (holds_ > 0) it spins on, and kSpinIterations more once released; a hold also ends a sleep.
  std::uint64_t next_epoch(std::uint64_t seen) {
    auto ready = [&](std::uint64_t e) { return stop_.load(std::memory_order_seq_cst) || (e != seen && e % 2 == 0); };
    auto held = [&] { return holds_.load(std::memory_order_seq_cst) > 0; };
    for (;;) {
      std::uint64_t e = epoch_.load(std::memory_order_acquire);
      for (int spin = 0; !ready(e) && spin < kSpinIterations; spin = held() ? 0 : spin + 1) {
        NINCC_CPU_RELAX();
        e = epoch_.load(std::memory_order_acquire);
      }
      if (ready(e)) return e;
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return ready(epoch_.load(std::memory_order_seq_cst)) || held(); });
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    }
  }

  void work(int id) {
    t_inside_job = true;
    std::uint64_t seen = epoch_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t e = next_epoch(seen);
      seen = e;
      if (stop_.load()) return;
      busy_.fetch_add(1, std::memory_order_seq_cst);
      if (epoch_.load(std::memory_order_seq_cst) == e && id < helpers_) {
        const std::int64_t count = count_;
        NINCC_POOL_STAT(long ran = 0; const long joined_ns = pool_now_ns();)
        for (std::int64_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < count;) {
          invoke_(context_, i);
          NINCC_POOL_STAT(++ran;)
        }
        NINCC_POOL_STAT(if (ran > 0) {
          PoolStats& stats = pool_stats();
          stats.worker_tasks += ran;
          stats.worker_joins += 1;
          stats.join_in_ns += joined_ns - published_ns_;
        })
      }
      leave_job();
    }
  }

  std::mutex run_mutex_;
  std::vector<std::thread> workers_;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<std::int64_t> next_{0};
  std::atomic<int> busy_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<int> holds_{0};
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<std::int64_t> caller_spin_ns_;
  std::atomic<bool> caller_sleeping_{false};
  std::mutex done_mutex_;
  std::condition_variable done_;
  // The job, written by run() only while busy_ == 0 and read by workers only while registered.
  std::int64_t count_ = 0;
  int helpers_ = 0;
  void* context_ = nullptr;
  void (*invoke_)(void*, std::int64_t) = nullptr;
  NINCC_POOL_STAT(long published_ns_ = 0;)
};

}  // namespace pool_detail
}  // namespace cpu
}  // namespace nincc
