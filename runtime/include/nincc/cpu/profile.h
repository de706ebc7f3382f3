// Per-kernel wall (or thread CPU) time for generated code. With NINCC_PROFILE set while `nincc build` generates the
// code, every kernel opens with a ScopedKernelTimer; when the library is unloaded (in practice at
// process exit: its thread-local scratch makes it non-unloadable) a table of the kernels by total
// time goes to stderr, or is appended to the file NINCC_PROFILE names at run time (any value but 1).
// The median column is what to read on a loaded machine: the mean takes in every descheduling.
// NINCC_PROFILE_CLOCK=thread at run time times each kernel in the calling thread's CPU time instead of
// wall time (the table's first line says so): on a shared machine at OMP_NUM_THREADS=1 that leaves out
// the time other processes held the core; with more threads it counts the caller's share only.
// A normal build has no timers at all.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <time.h>
#include <vector>

namespace nincc {
namespace cpu {
namespace profile_detail {

struct Entry {
  const char* name;
  double seconds = 0.0;
  double max_seconds = 0.0;
  long calls = 0;
  std::vector<double> samples;  // every call's seconds, for the median
};

inline double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  const double upper = v[mid];
  if (v.size() % 2) return upper;
  return 0.5 * (upper + *std::max_element(v.begin(), v.begin() + mid));
}

// Whether NINCC_PROFILE_CLOCK=thread asked for thread CPU time (read once, at the first timer).
inline bool thread_cpu_clock() {
  static const bool on = [] {
    const char* v = std::getenv("NINCC_PROFILE_CLOCK");
    return v != nullptr && std::strcmp(v, "thread") == 0;
  }();
  return on;
}

// Seconds on the profile's clock: wall (steady) time, or the calling thread's CPU time.
inline double clock_seconds() {
  if (thread_cpu_clock()) {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class Registry {
 public:
  static Registry& get() {
    static Registry r;
    return r;
  }
  void add(const char* name, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
    if (it == entries_.end()) it = entries_.insert(entries_.end(), Entry{name});
    it->seconds += seconds;
    it->max_seconds = std::max(it->max_seconds, seconds);
    ++it->calls;
    it->samples.push_back(seconds);
  }
  ~Registry() {
    if (entries_.empty()) return;
    const char* target = std::getenv("NINCC_PROFILE");
    const bool to_file = target != nullptr && *target != '\0' && std::strcmp(target, "1") != 0;
    std::FILE* out = to_file ? std::fopen(target, "a") : stderr;
    if (out == nullptr) return;
    std::vector<Entry> sorted = entries_;
    std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
    double total = 0.0;
    for (const Entry& e : sorted) total += e.seconds;
    std::fprintf(out, "nincc profile: %.3f s in %zu kernels%s\n%-34s %8s %10s %10s %10s %6s\n", total, sorted.size(),
                 thread_cpu_clock() ? " (thread CPU time, NINCC_PROFILE_CLOCK=thread)" : "", "kernel", "calls", "ms/call", "median ms",
                 "max ms", "%");
    for (const Entry& e : sorted)
      std::fprintf(out, "%-34s %8ld %10.3f %10.3f %10.3f %6.1f\n", e.name, e.calls, 1e3 * e.seconds / e.calls,
                   1e3 * median_of(e.samples), 1e3 * e.max_seconds, 100.0 * e.seconds / total);
    if (out != stderr) std::fclose(out);
  }

 private:
  Registry() = default;
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace profile_detail

// Times the enclosing scope under `name` (a string literal: entries are keyed by its address).
class ScopedKernelTimer {
 public:
  explicit ScopedKernelTimer(const char* name) : name_(name), start_(profile_detail::clock_seconds()) {}
  ~ScopedKernelTimer() { profile_detail::Registry::get().add(name_, profile_detail::clock_seconds() - start_); }
  ScopedKernelTimer(const ScopedKernelTimer&) = delete;
  ScopedKernelTimer& operator=(const ScopedKernelTimer&) = delete;

 private:
  const char* name_;
  double start_;  // clock_seconds() at the kernel's start
};

}  // namespace cpu
}  // namespace nincc
