// Parallel loops and thread-local scratch memory shared by every CPU kernel family.
// Built with -fopenmp, loops run on the kernels' own pool (thread_pool.h), sized by OpenMP's
// settings (OMP_NUM_THREADS, omp_set_num_threads; default: the CPUs this process may use). Without
// it every kernel runs on the calling thread, with the same results.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#ifdef _OPENMP
#include <omp.h>

#include "thread_pool.h"
#endif

namespace nincc {
namespace cpu {

// Loops over fewer elements than this run on the calling thread: waking the team costs a few
// microseconds, more than an elementwise pass over a small tensor takes.
constexpr std::int64_t kParallelGrain = 1 << 15;

// The threads a kernel may use: OpenMP's thread count, or 1 inside a task of a parallel loop.
inline int max_threads() {
#ifdef _OPENMP
  return pool_detail::t_inside_job ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

// The number of threads a loop of `work` elements should use: 1 below `grain`, where waking the
// team costs more than it saves. Inside an outer parallel loop (the convolutions run images in
// parallel) the answer is 1, so nested kernels run serially on their own thread instead of
// oversubscribing the machine.
inline int threads_for(std::int64_t work, std::int64_t grain = kParallelGrain) {
  if (work < grain) return 1;
  return max_threads();
}

// body(i) for i in [0, count), handed out one at a time to whichever of `threads` threads is free
// (the caller among them), or in order on the calling thread when threads <= 1. Iterations must be
// independent. Meant for coarse items (images, GEMM slices): a thread the OS has descheduled (a
// shared machine) holds up at most the one item it took, and a worker that never started holds up
// nothing (thread_pool.h).
template <class Body>
inline void parallel_for_dynamic(std::int64_t count, int threads, Body&& body) {
#ifdef _OPENMP
  // Inside a task (a nested loop) the loop runs serially, whatever `threads` says.
  if (threads > 1 && count > 1 && !pool_detail::t_inside_job) {
    pool_detail::ThreadPool::instance().run(count, threads, body);
    return;
  }
#endif
  (void)threads;
  for (std::int64_t i = 0; i < count; ++i) body(i);
}

// Keeps the pool's workers spinning between parallel loops from hold_pool_workers(true) until
// hold_pool_workers(false) (thread_pool.h hold_workers); without -fopenmp, nothing.
inline void hold_pool_workers(bool held) {
#ifdef _OPENMP
  pool_detail::ThreadPool::instance().hold_workers(held ? 1 : -1);
#else
  (void)held;
#endif
}

// body(i) for i in [0, count) in a few contiguous blocks per thread (for many cheap iterations:
// one task per block, not per iteration).
template <class Body>
inline void parallel_for_threads(std::int64_t count, int threads, Body&& body) {
  if (threads <= 1 || count <= 1) {
    for (std::int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  const std::int64_t blocks = std::min<std::int64_t>(count, 4 * threads);
  parallel_for_dynamic(blocks, threads, [&](std::int64_t b) {
    for (std::int64_t i = count * b / blocks; i < count * (b + 1) / blocks; ++i) body(i);
  });
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
  const int threads = threads_for(count);
  if (threads <= 1) {
    body(std::int64_t{0}, count);
    return;
  }
  parallel_for_dynamic(threads, threads, [&](std::int64_t t) { body(count * t / threads, count * (t + 1) / threads); });
}

// Scratch memory: each thread owns a few grow-only, 64-byte-aligned buffers, one per purpose
// (slot), kept for the life of the thread (OpenMP keeps its worker threads alive between regions).
// Kernels are called with the same shapes every step, so after the first step nothing allocates.
// A buffer is only ever used by the thread that owns it, so no kernel needs a workspace argument;
// the cost is one largest-layer buffer per slot per thread (an im2col buffer of NIN's first layer
// at 224x224 is 4.5 MB).
// kBlockBandA/B/C: block_band.h's middle activations (a band's, or the whole batch's).
enum class ScratchSlot : int { kGemmPackedA, kGemmPackedB, kConvColumns, kConvPackedWeights, kConvPhases, kPoolRows, kBlockBandA, kBlockBandB, kBlockBandC, kCount };

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
