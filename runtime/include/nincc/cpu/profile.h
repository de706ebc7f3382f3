// Per-kernel wall time for generated code. With NINCC_PROFILE set while `nincc build` generates the
// code, every kernel opens with a ScopedKernelTimer; when the library is unloaded (in practice at
// process exit: its thread-local scratch makes it non-unloadable) a table of the kernels by total
// time goes to stderr, or is appended to the file NINCC_PROFILE names at run time (any value but 1).
// The median column is what to read on a loaded machine: the mean takes in every descheduling.
// A normal build has no timers at all.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
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
    std::fprintf(out, "nincc profile: %.3f s in %zu kernels\n%-34s %8s %10s %10s %10s %6s\n", total, sorted.size(), "kernel",
                 "calls", "ms/call", "median ms", "max ms", "%");
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
  explicit ScopedKernelTimer(const char* name) : name_(name), start_(std::chrono::steady_clock::now()) {}
  ~ScopedKernelTimer() {
    profile_detail::Registry::get().add(
        name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedKernelTimer(const ScopedKernelTimer&) = delete;
  ScopedKernelTimer& operator=(const ScopedKernelTimer&) = delete;

 private:
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace cpu
}  // namespace nincc
