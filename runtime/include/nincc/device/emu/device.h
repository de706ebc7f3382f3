// The SIMT emulator's definitions of the device primitives (docs/emu.md): CUDA's keywords and
// built-in variables for g++, and nincc::'s barrier, warp collectives, vector memory access and
// tf32 tensor-core fragment product, all running on the block runner's fibers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "block.h"
#include "types.h"

// Everything below binds inside the kernel library (see config.h); only NINCC_EXPORT's
// descriptors and NINCC_LIBRARY's functions are exported.
#pragma GCC visibility push(hidden)

#define NINCC_DEVICE inline
#define NINCC_HOST_DEVICE
#define NINCC_KERNEL extern "C" NINCC_EMU_HIDDEN
#define NINCC_UNROLL
#define NINCC_UNROLL_BY(n)

// CUDA's keywords: kernels and device functions are plain functions here.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// A storage class cannot make a variable per block; this turns a stray __shared__ into a compile
// error that says what to write instead.
#define __shared__ NINCC_SHARED_declares_shared_memory_in_emulated_kernels

// CUDA's built-in variables, for the thread whose fiber is running.
#define threadIdx (::nincc::emu::runner().thread_index())
#define blockIdx (::nincc::emu::runner().block_index())
#define blockDim (::nincc::emu::runner().launch().block)
#define gridDim (::nincc::emu::runner().launch().grid)
#define __syncthreads() ::nincc::sync_threads()
inline constexpr int warpSize = 32;

#include "../bf16.h"

// CUDA's global min/max overloads (math_functions.h), which kernels use unqualified.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }

// Shared memory: the arena's storage for this declaration (a static tag identifies it), the same
// bytes for every thread of the block. Checks builds wrap it in a bounds-checked array.
#define NINCC_EMU_DECLARE_SHARED(T, name, bytes)                                                          \
  static const char nincc_shared_tag_##name = 0;                                                          \
  void* const nincc_shared_##name = ::nincc::emu::runner().shared().declare(&nincc_shared_tag_##name, bytes, \
                                                                            alignof(T), #name, __FILE__, __LINE__)
#ifdef NINCC_EMU_CHECKS
#define NINCC_SHARED(T, name, count)                       \
  NINCC_EMU_DECLARE_SHARED(T, name, sizeof(T) * (count)); \
  const ::nincc::emu::SharedArray<T> name(nincc_shared_##name, (count), #name, __FILE__, __LINE__)
#define NINCC_SHARED_2D(T, name, rows, cols)                        \
  NINCC_EMU_DECLARE_SHARED(T, name, sizeof(T) * (rows) * (cols)); \
  const ::nincc::emu::SharedArray2D<T, (cols)> name(nincc_shared_##name, (rows), #name, __FILE__, __LINE__)
#define NINCC_DYNAMIC_SHARED(T, name)                                                                         \
  const ::nincc::emu::SharedArray<T> name(::nincc::emu::runner().shared().dynamic(),                         \
                                          ::nincc::emu::runner().shared().dynamic_bytes() / sizeof(T), #name, \
                                          __FILE__, __LINE__)
#else
#define NINCC_SHARED(T, name, count)                       \
  NINCC_EMU_DECLARE_SHARED(T, name, sizeof(T) * (count)); \
  T* const name = static_cast<T*>(nincc_shared_##name)
#define NINCC_SHARED_2D(T, name, rows, cols)                        \
  NINCC_EMU_DECLARE_SHARED(T, name, sizeof(T) * (rows) * (cols)); \
  T(*const name)[cols] = static_cast<T(*)[cols]>(nincc_shared_##name)
#define NINCC_DYNAMIC_SHARED(T, name) T* const name = reinterpret_cast<T*>(::nincc::emu::runner().shared().dynamic())
#endif

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

enum class ShuffleMode { idx, up, down, bfly };

// The source lane of shfl.sync, per the PTX ISA's pseudo-code with the `c` operand CUDA's
// __shfl*_sync build from `width`: lanes form segments of `width`; a source past the segment's
// end (or before its start, for up) yields the caller's own value.
inline int shuffle_source(ShuffleMode mode, int lane, int b, int width) {
  const int segmask = (32 - width) & 0x1f;
  const int clamp = mode == ShuffleMode::up ? 0 : 0x1f;
  const int min_lane = lane & segmask;
  const int max_lane = min_lane | (clamp & ~segmask);
  const int bval = b & 0x1f;
  int j = lane;
  bool in_range = false;
  switch (mode) {
    case ShuffleMode::up: j = lane - bval; in_range = j >= max_lane; break;
    case ShuffleMode::down: j = lane + bval; in_range = j <= max_lane; break;
    case ShuffleMode::bfly: j = lane ^ bval; in_range = j <= max_lane; break;
    case ShuffleMode::idx: j = min_lane | (bval & ~segmask); in_range = j <= max_lane; break;
  }
  return in_range ? j : lane;
}

template <class T>
T shuffle(ShuffleMode mode, T v, int b, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of at most 8 bytes");
  BlockRunner& r = runner();
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    r.fail("warp shuffle (%s:%d): width %d is not a power of two in 1..32", file, line, width);
  uint32_t words[2] = {0, 0};
  std::memcpy(words, &v, sizeof(T));
  const ExchangeSlot slot = r.exchange(WarpOp::shuffle, words, 2, file, line);
  const int src = shuffle_source(mode, int(r.lane()), b, width);
  T out;
  if (r.lane_exists(src))
    std::memcpy(&out, slot[src], sizeof(T));
  else
    std::memset(&out, 0xFF, sizeof(T));  // a lane past the end of a partial warp: undefined on a GPU
  return out;
}

// The value of a tf32 operand; the low 13 bits do not take part (checks builds insist they are 0).
inline float tf32_value(uint32_t bits) {
  bits &= 0xffffe000u;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Tells the launch's profile, if it has one, about one lane's access at a call site.
inline void record_access(bool store, const void* p, unsigned bytes, const char* file, int line) {
  BlockRunner& r = runner();
  Profile* profile = r.profile();
  if (__builtin_expect(profile == nullptr, 1)) return;
  const Space space = r.shared().contains(p) ? (store ? Space::shared_store : Space::shared_load)
                                             : (store ? Space::global_store : Space::global_load);
  profile->record(space, file, line, r.rank(), p, bytes);
}

// Vector accesses fault where a GPU would (misaligned address) and, in shared memory, where the
// access leaves the declaration it starts in.
inline void check_vector_access(const void* p, size_t bytes, const char* what, const char* file, int line) {
#ifdef NINCC_EMU_CHECKS
  BlockRunner& r = runner();
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0)
    r.fail("%s (%s:%d): address %p is not %zu-byte aligned (a misaligned-address fault on a GPU)", what, file, line,
           p, bytes);
  if (r.shared().contains(p) && !r.shared().inside_one_allocation(p, bytes))
    r.fail("%s (%s:%d): the %zu bytes at %p leave the shared-memory declaration they start in", what, file, line,
           bytes, p);
#else
  (void)p, (void)bytes, (void)what, (void)file, (void)line;
#endif
}

}  // namespace emu

// ---- the primitives (the same names and meaning as in cuda.cuh)

inline void sync_threads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::runner().sync_threads(file, line);
}
inline unsigned thread_rank() { return emu::runner().rank(); }
inline unsigned lane_id() { return emu::runner().lane(); }
inline unsigned warp_id() { return emu::runner().rank() >> 5; }
inline unsigned warp_lanes() { return emu::runner().warp_lanes(); }

template <class T>
inline T shfl(T v, int src_lane, int width = 32, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return emu::shuffle(emu::ShuffleMode::idx, v, src_lane, width, file, line);
}
template <class T>
inline T shfl_xor(T v, int lane_mask, int width = 32, const char* file = __builtin_FILE(),
                  int line = __builtin_LINE()) {
  return emu::shuffle(emu::ShuffleMode::bfly, v, lane_mask, width, file, line);
}
template <class T>
inline T shfl_up(T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                 int line = __builtin_LINE()) {
  return emu::shuffle(emu::ShuffleMode::up, v, int(delta), width, file, line);
}
template <class T>
inline T shfl_down(T v, unsigned delta, int width = 32, const char* file = __builtin_FILE(),
                   int line = __builtin_LINE()) {
  return emu::shuffle(emu::ShuffleMode::down, v, int(delta), width, file, line);
}

inline unsigned warp_ballot(bool predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::BlockRunner& r = emu::runner();
  const uint32_t word = predicate ? 1u : 0u;
  const emu::ExchangeSlot slot = r.exchange(emu::WarpOp::vote, &word, 1, file, line);
  unsigned bits = 0;
  for (int l = 0; l < 32; ++l)
    if (r.lane_exists(l) && slot[l][0]) bits |= 1u << l;
  return bits;
}
inline bool warp_any(bool predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return warp_ballot(predicate, file, line) != 0;
}
inline bool warp_all(bool predicate, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const unsigned lanes = warp_lanes();
  return warp_ballot(predicate, file, line) == (lanes == 32 ? 0xffffffffu : (1u << lanes) - 1);
}
inline void sync_warp(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::runner().exchange(emu::WarpOp::sync, nullptr, 0, file, line);
}

inline float4 load_float4(const float* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::check_vector_access(p, 16, "load_float4", file, line);
  emu::record_access(false, p, 16, file, line);
  float4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_float4(float* p, float4 v, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::check_vector_access(p, 16, "store_float4", file, line);
  emu::record_access(true, p, 16, file, line);
  std::memcpy(p, &v, sizeof v);
}
inline float2 load_float2(const float* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::check_vector_access(p, 8, "load_float2", file, line);
  emu::record_access(false, p, 8, file, line);
  float2 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_float2(float* p, float2 v, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::check_vector_access(p, 8, "store_float2", file, line);
  emu::record_access(true, p, 8, file, line);
  std::memcpy(p, &v, sizeof v);
}
template <class T>
inline T ldg(const T* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::record_access(false, p, sizeof(T), file, line);
  return *p;
}
// A load past L1 (ld.cg): other blocks' writes, read after a fence and a ticket (atomics.h); the emulator
// has no L1, so it is ld.
template <class T>
inline T ldcg(const T* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::record_access(false, p, sizeof(T), file, line);
  return *p;
}
// Scalar accesses and FMAs as primitives: exactly *p, *p = v and a fused multiply-add, counted at
// their call site when the launch is profiled.
template <class T>
inline T ld(const T* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::record_access(false, p, sizeof(T), file, line);
  return *p;
}
template <class T>
inline void st(T* p, T v, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::record_access(true, p, sizeof(T), file, line);
  *p = v;
}
inline float ffma(float a, float b, float c) {
  if (emu::Profile* profile = emu::runner().profile()) ++profile->counters.ffma;
  return std::fma(a, b, c);
}

// cvt.rna.tf32.f32: round to a 10-bit mantissa, to nearest, ties away from zero; NaN stays NaN.
inline uint32_t to_tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? 0x7fffffffu : u;
  return (u + 0x1000u) & 0xffffe000u;
}

}  // namespace nincc

#include "../fragments.h"

namespace nincc {

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 as a warp collective: every lane deposits
// its fragments, then computes its own four elements of D = A·B + C from everyone's. tf32
// products are exact in fp32 (11-bit significands), so the one rounding per step is the fp32 sum,
// taken in k order starting from C. (Tensor cores sum in their own order: a GPU may differ in the
// last bits; the emulated result is the reference.)
inline void mma_tf32_m16n8k8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4],
                             const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  emu::BlockRunner& r = emu::runner();
  if (r.warp_lanes() != 32)
    r.fail("mma.m16n8k8 (%s:%d) needs a full warp; this warp has %u lanes", file, line, r.warp_lanes());
  uint32_t words[emu::kExchangeWords];
  std::memcpy(words, a, 4 * sizeof(uint32_t));
  std::memcpy(words + 4, b, 2 * sizeof(uint32_t));
  std::memcpy(words + 6, c, 4 * sizeof(float));
#ifdef NINCC_EMU_CHECKS
  for (int i = 0; i < 6; ++i)
    if (words[i] & 0x1fffu)
      r.fail("mma.m16n8k8 (%s:%d): %s operand 0x%08x is not a tf32 value (round it with nincc::to_tf32)", file, line,
             i < 4 ? "an A" : "a B", words[i]);
#endif
  const emu::ExchangeSlot slot = r.exchange(emu::WarpOp::mma, words, emu::kExchangeWords, file, line);
  const int lane = int(r.lane());
  if (lane == 0 && r.profile()) ++r.profile()->counters.mma_tf32_m16n8k8;
  for (int i = 0; i < 4; ++i) {
    const int row = m16n8k8::c_row(lane, i), col = m16n8k8::c_col(lane, i);
    float acc;
    std::memcpy(&acc, &words[6 + i], sizeof acc);
    for (int k = 0; k < 8; ++k) {
      const float av = emu::tf32_value(slot[m16n8k8::a_lane(row, k)][m16n8k8::a_reg(row, k)]);
      const float bv = emu::tf32_value(slot[m16n8k8::b_lane(k, col)][4 + m16n8k8::b_reg(k, col)]);
      acc += av * bv;
    }
    d[i] = acc;
  }
}

}  // namespace nincc

#include "async_copy.h"
#include "atomics.h"
#include "tensor_ops.h"

#pragma GCC visibility pop
