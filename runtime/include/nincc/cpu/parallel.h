// OpenMP shims and thread-local scratch memory shared by every CPU kernel family.
// Everything here also compiles without -fopenmp, where every kernel runs on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#ifdef _OPENMP
#include <omp.h>
#endif

// `#pragma omp CLAUSES` that disappears without OpenMP. A plain #pragma omp would only be
// ignored there, but -Wall then warns at every use, and g++ cannot silence unknown pragmas per
// header (diagnostic push/pop does not cover them).
#ifdef _OPENMP
#define NINCC_OMP(...) _Pragma(NINCC_OMP_TEXT(omp __VA_ARGS__))
#define NINCC_OMP_TEXT(...) #__VA_ARGS__
#else
#define NINCC_OMP(...)
#endif

namespace nincc {
namespace cpu {

// Loops over fewer elements than this run on the calling thread: waking the team costs a few
// microseconds, more than an elementwise pass over a small tensor takes.
constexpr std::int64_t kParallelGrain = 1 << 15;

// The threads a kernel may use: the OpenMP team size, or 1 inside an outer parallel region.
inline int max_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

// The number of threads a loop of `work` elements should use: 1 below `grain`, where waking the
// team costs more than it saves. Inside an outer parallel region (the convolutions run images in
// parallel) the answer is 1, so nested kernels run serially on their own thread instead of
// oversubscribing the machine.
inline int threads_for(std::int64_t work, std::int64_t grain = kParallelGrain) {
  if (work < grain) return 1;
  return max_threads();
}

// body(i) for i in [0, count), spread over `threads` threads in contiguous static blocks (or run
// in order on the calling thread when threads <= 1). Iterations must be independent.
template <class Body>
inline void parallel_for_threads(std::int64_t count, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && count > 1) {
    NINCC_OMP(parallel for schedule(static) num_threads(threads))
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
#endif
  (void)threads;
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

// body(i) for i in [0, count) handed out one at a time to whichever of `threads` threads is
// free: for a few coarse items (images, GEMM slices), so that a thread the OS has descheduled
// (a shared machine) holds up one item instead of its whole static share.
template <class Body>
inline void parallel_for_dynamic(std::int64_t count, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && count > 1) {
    NINCC_OMP(parallel for schedule(dynamic, 1) num_threads(threads))
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
#endif
  (void)threads;
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

// The same, with the thread count chosen from the total work (in elements) of the loop.
template <class Body>
inline void parallel_for(std::int64_t count, std::int64_t total_work, Body&& body) {
  parallel_for_threads(count, threads_for(total_work), body);
}

// body(begin, end) over one contiguous slice of [0, count) per thread, for elementwise loops
// that should stay simple vectorisable loops inside each slice.
template <class Body>
inline void parallel_slices(std::int64_t count, Body&& body) {
#ifdef _OPENMP
  const int threads = threads_for(count);
  if (threads > 1) {
    NINCC_OMP(parallel num_threads(threads))
    {
      const std::int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
      body(count * me / team, count * (me + 1) / team);
    }
    return;
  }
#endif
  body(std::int64_t{0}, count);
}

// Scratch memory: each thread owns a few grow-only, 64-byte-aligned buffers, one per purpose
// (slot), kept for the life of the thread (OpenMP keeps its worker threads alive between regions).
// Kernels are called with the same shapes every step, so after the first step nothing allocates.
// A buffer is only ever used by the thread that owns it, so no kernel needs a workspace argument;
// the cost is one largest-layer buffer per slot per thread (an im2col buffer of NIN's first layer
// at 224x224 is 4.5 MB).
enum class ScratchSlot : int { kGemmPackedA, kGemmPackedB, kConvColumns, kCount };

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }

  // Returns room for at least `count` floats; the previous contents are not kept.
  float* reserve(std::size_t count) {
    if (count > capacity_) {
      std::free(data_);
      // Grow by half again so a slowly rising sequence of shapes does not reallocate each call.
      std::size_t grown = count + count / 2;
      std::size_t bytes = (grown * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (data_ == nullptr) throw std::bad_alloc();
      capacity_ = grown;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  std::size_t capacity_ = 0;
};

inline float* thread_scratch(ScratchSlot slot, std::size_t count) {
  thread_local ScratchBuffer buffers[static_cast<int>(ScratchSlot::kCount)];
  return buffers[static_cast<int>(slot)].reserve(count);
}

}  // namespace cpu
}  // namespace nincc
