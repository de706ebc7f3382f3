// The emulator tests' harness: CHECK with file:line and a failure count that becomes the exit
// status, EXPECT_FAULT for launches that must fail with a message naming kernel, block and thread,
// a seeded generator, and 64-byte-aligned buffers (float4 loads need 16).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "nincc/device/primitives.cuh"

namespace emu_test {

inline int g_failures = 0;
inline int g_checks = 0;

inline void report_failure(const char* file, int line, const std::string& what) {
  ++g_failures;
  if (g_failures <= 40) std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

#define CHECK(cond)                                                         \
  do {                                                                      \
    ++::emu_test::g_checks;                                                 \
    if (!(cond)) ::emu_test::report_failure(__FILE__, __LINE__, #cond);     \
  } while (0)

#define CHECK_MSG(cond, message)                                                                   \
  do {                                                                                             \
    ++::emu_test::g_checks;                                                                        \
    if (!(cond)) ::emu_test::report_failure(__FILE__, __LINE__, std::string(#cond) + ": " + (message)); \
  } while (0)

// Runs `launch`, which must throw nincc::emu::KernelError with every needle in its message.
template <class Launch>
void expect_fault(const char* file, int line, const char* what, Launch launch, std::initializer_list<const char*> needles) {
  ++g_checks;
  try {
    launch();
  } catch (const nincc::emu::KernelError& e) {
    const std::string message = e.what();
    for (const char* needle : needles)
      if (message.find(needle) == std::string::npos) {
        report_failure(file, line, std::string(what) + ": the fault message lacks \"" + needle + "\": " + message);
        return;
      }
    if (std::getenv("EMU_TEST_SHOW_FAULTS")) std::printf("  fault: %s\n", message.c_str());
    return;
  }
  report_failure(file, line, std::string(what) + ": the launch did not fault");
}

#define EXPECT_FAULT(launch, ...) \
  ::emu_test::expect_fault(__FILE__, __LINE__, #launch, [&] { launch; }, {__VA_ARGS__})

// SplitMix64: the same inputs on every run.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return float(double(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0); }  // in [-1, 1)
};

// A 64-byte-aligned array; filled with `fill` bytes (0xFF = NaN for floats: outputs a kernel
// forgets to write fail their test).
template <class T>
class Buffer {
 public:
  explicit Buffer(size_t n, unsigned char fill = 0xFF) : n_(n) {
    data_ = static_cast<T*>(std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64 + 64));
    std::memset(data_, fill, n * sizeof(T));
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { std::free(data_); }
  T* data() const { return data_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) const { return data_[i]; }
  bool bitwise_equal(const Buffer& other) const {
    return n_ == other.n_ && std::memcmp(data_, other.data_, n_ * sizeof(T)) == 0;
  }

 private:
  T* data_;
  size_t n_;
};

}  // namespace emu_test
