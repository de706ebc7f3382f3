// The CUDA definitions of the device primitives (nvcc): thin inline wrappers over CUDA's
// intrinsics, and the only inline PTX in the project (tf32/bf16 rounding, mma, ldmatrix, cp.async).
// Kernels include primitives.cuh, never this file.
#pragma once

#include <cstdint>
#include <type_traits>

#include "signature.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#error "nincc kernels target sm_80 and newer (tf32 mma, cvt.rna.tf32)"
#endif

#define NINCC_DEVICE __device__ __forceinline__
#define NINCC_HOST_DEVICE __host__ __device__
// extern "C": the runtime finds kernels by their plain names (cuModuleGetFunction).
#define NINCC_KERNEL extern "C" __global__
#define NINCC_UNROLL _Pragma("unroll")
// A loop unrolled by a fixed factor: enough loads in flight without the whole loop's registers (see conv-mma-halo.ts).
#define NINCC_PRAGMA(text) _Pragma(#text)
#define NINCC_UNROLL_BY(n) NINCC_PRAGMA(unroll n)
// The cuda device launches by name through the driver API (cuModuleGetFunction); what it exports is
// the kernel's parameter signature as a __device__ string `nincc_signature_<kernel>` ("p" pointer,
// "i"/"u" int32, "l"/"L" int64, "f" float, "d" double: emu_abi.h's codes), which the runtime reads
// with cuModuleGetGlobal to marshal kernelParams exactly as for the emu library's descriptors.
#define NINCC_EXPORT(kernel)                                                            \
  extern "C" __device__ const ::nincc::signature::Of<decltype(kernel)>::Text      \
      nincc_signature_##kernel = ::nincc::signature::Of<decltype(kernel)>::text()
// Read back with cuModuleGetGlobal to check the module against plan.json, as the cpu and emu
// libraries' nincc_source_hash().
#define NINCC_LIBRARY(source_hash) extern "C" __device__ const char nincc_source_hash[] = source_hash

// 16-byte alignment so float4 accesses to any shared array are legal.
#define NINCC_SHARED(T, name, count) __shared__ __align__(16) T name[count]
#define NINCC_SHARED_2D(T, name, rows, cols) __shared__ __align__(16) T name[rows][cols]
#define NINCC_DYNAMIC_SHARED(T, name)                                   \
  extern __shared__ __align__(16) unsigned char nincc_dynamic_shared[]; \
  T* const name = reinterpret_cast<T*>(nincc_dynamic_shared)

#include "bf16.h"

namespace nincc {

NINCC_DEVICE void sync_threads() { __syncthreads(); }

// The thread's index in its block as CUDA packs threads into warps (x fastest).
NINCC_DEVICE unsigned thread_rank() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
NINCC_DEVICE unsigned lane_id() { return thread_rank() & 31u; }
NINCC_DEVICE unsigned warp_id() { return thread_rank() >> 5; }
// Lanes in this warp: 32, except in the last warp of a block whose size is not a multiple of 32.
NINCC_DEVICE unsigned warp_lanes() {
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z, first = thread_rank() & ~31u;
  return min(32u, threads - first);
}
// Collectives name exactly the lanes that exist: the programming guide leaves a mask naming
// absent threads undefined. Every collective is over the whole warp (docs/emu.md).
NINCC_DEVICE unsigned warp_mask() {
  const unsigned lanes = warp_lanes();
  return lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
}

template <class T>
NINCC_DEVICE T shfl(T v, int src_lane, int width = 32) {
  return __shfl_sync(warp_mask(), v, src_lane, width);
}
template <class T>
NINCC_DEVICE T shfl_xor(T v, int lane_mask, int width = 32) {
  return __shfl_xor_sync(warp_mask(), v, lane_mask, width);
}
template <class T>
NINCC_DEVICE T shfl_up(T v, unsigned delta, int width = 32) {
  return __shfl_up_sync(warp_mask(), v, delta, width);
}
template <class T>
NINCC_DEVICE T shfl_down(T v, unsigned delta, int width = 32) {
  return __shfl_down_sync(warp_mask(), v, delta, width);
}

NINCC_DEVICE unsigned warp_ballot(bool predicate) { return __ballot_sync(warp_mask(), predicate); }
NINCC_DEVICE bool warp_any(bool predicate) { return __any_sync(warp_mask(), predicate) != 0; }
NINCC_DEVICE bool warp_all(bool predicate) { return __all_sync(warp_mask(), predicate) != 0; }
NINCC_DEVICE void sync_warp() { __syncwarp(warp_mask()); }

// Vector accesses: p must be 16- (float4) or 8-byte (float2) aligned.
NINCC_DEVICE float4 load_float4(const float* p) { return *reinterpret_cast<const float4*>(p); }
NINCC_DEVICE void store_float4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
NINCC_DEVICE float2 load_float2(const float* p) { return *reinterpret_cast<const float2*>(p); }
NINCC_DEVICE void store_float2(float* p, float2 v) { *reinterpret_cast<float2*>(p) = v; }
// A load through the read-only data cache (for data no thread of the grid writes).
template <class T>
NINCC_DEVICE T ldg(const T* p) {
  return __ldg(p);
}

// A load that skips L1 (whose lines are not coherent across SMs): data other blocks of the grid wrote,
// read after their __threadfence and a ticket told this block they are done.
template <class T>
NINCC_DEVICE T ldcg(const T* p) {
  return __ldcg(p);
}

// Plain scalar accesses and FMAs, spelled as primitives so the emulator's profile can count them at
// their call site (docs/profile.md); here they are exactly the load, store and fused multiply-add.
template <class T>
NINCC_DEVICE T ld(const T* p) {
  return *p;
}
template <class T>
NINCC_DEVICE void st(T* p, T v) {
  *p = v;
}
NINCC_DEVICE float ffma(float a, float b, float c) { return __fmaf_rn(a, b, c); }

// Round to tf32 (10-bit mantissa), to nearest, ties away from zero: the operand format of
// mma.m16n8k8.tf32, whose hardware otherwise ignores the low 13 bits.
NINCC_DEVICE uint32_t to_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
}

// D = A·B + C for one 16×8×8 tile, fragments as in fragments.h. volatile: the instruction is
// warp-synchronous, so it must not be moved into or out of divergent code.
NINCC_DEVICE void mma_tf32_m16n8k8(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                   const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}

// cvt.rn.bf16.f32: round to nearest, ties to even; NaN gives a NaN (emu: the canonical 0x7fff).
NINCC_DEVICE bf16 to_bf16(float x) {
  uint16_t r;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(x));
  return bf16{r};
}
// cvt.rn.bf16x2.f32 d, a, b: PTX puts the conversion of `a` in the upper half and of `b` in the lower.
NINCC_DEVICE uint32_t to_bf16x2(float a, float b) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(a), "f"(b));
  return r;
}
NINCC_DEVICE float bf16_to_float(bf16 x) { return __uint_as_float(uint32_t(x.bits) << 16); }

// D = A·B + C for one 16×8×16 bf16 tile, fragments as in fragments_m16n8k16.h.
NINCC_DEVICE void mma_bf16_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                    const float (&c)[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: `row` is this lane's row address (16-byte
// aligned, in shared memory); d[j] receives matrix j's fragment (fragments_m16n8k16.h, m8n8).
template <int N, bool Trans>
NINCC_DEVICE void ldmatrix_any(uint32_t (&d)[N], const void* row) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  if constexpr (N == 1 && !Trans) asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(d[0]) : "r"(a));
  if constexpr (N == 1 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];" : "=r"(d[0]) : "r"(a));
  if constexpr (N == 2 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];" : "=r"(d[0]), "=r"(d[1]) : "r"(a));
  if constexpr (N == 2 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];" : "=r"(d[0]), "=r"(d[1]) : "r"(a));
  if constexpr (N == 4 && !Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a));
  if constexpr (N == 4 && Trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(a));
}
template <int N>
NINCC_DEVICE void ldmatrix(uint32_t (&d)[N], const void* row) {
  ldmatrix_any<N, false>(d, row);
}
template <int N>
NINCC_DEVICE void ldmatrix_trans(uint32_t (&d)[N], const void* row) {
  ldmatrix_any<N, true>(d, row);
}

// cp.async.{ca,cg}.shared.global [dst], [src], Bytes, src_bytes: copies src_bytes (<= Bytes) from
// global to shared memory and zero-fills the rest, asynchronously; .cg (L2 only) takes 16 bytes.
// The data may be read only after a cp_async_wait_* that covers its group.
template <int Bytes>
NINCC_DEVICE void cp_async_ca(void* dst, const void* src, int src_bytes = Bytes) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(d), "l"(__cvta_generic_to_global(src)),
               "n"(Bytes), "r"(src_bytes)
               : "memory");
}
NINCC_DEVICE void cp_async_cg(void* dst, const void* src, int src_bytes = 16) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(d), "l"(__cvta_generic_to_global(src)),
               "r"(src_bytes)
               : "memory");
}
NINCC_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
NINCC_DEVICE void cp_async_wait_group() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
NINCC_DEVICE void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

}  // namespace nincc

#include "fragments.h"
#include "fragments_m16n8k16.h"
