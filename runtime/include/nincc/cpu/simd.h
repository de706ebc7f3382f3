// The vector instruction set the GEMM micro-kernel is written against: AVX-512, AVX2+FMA or a
// portable 4-lane GCC vector extension, chosen at compile time from the target's macros.
#pragma once

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace nincc {
namespace cpu {
namespace simd {

// Each instruction set is a struct of static functions over its register type, so the
// micro-kernel template is written once. `fma(a, b, c)` is a*b+c with one rounding where the
// hardware has it; the portable fallback rounds twice (the results differ in the last bit only).
#if defined(__AVX512F__)
struct Isa {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static constexpr const char* kName = "avx512";
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  // The masked form with an explicit pass-through: GCC 12 warns that the plain _mm512_max_ps
  // reads an uninitialised register (a false positive inside its own header).
  static Reg max(Reg a, Reg b) { return _mm512_mask_max_ps(b, static_cast<__mmask16>(0xFFFF), a, b); }
};
// 12 rows x 2 registers: 24 accumulators + 2 B vectors + 1 broadcast of the 32 zmm registers.
constexpr int kGemmRows = 12;
constexpr int kGemmRegsPerRow = 2;
// GEMM depth block: one packed B panel (192 x 32 floats, 24 KiB) and one A panel (9 KiB) share L1.
constexpr int kGemmDepthBlock = 192;

#elif defined(__AVX2__) && defined(__FMA__)
struct Isa {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static constexpr const char* kName = "avx2";
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static Reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
};
// 6 rows x 2 registers: 12 accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers.
constexpr int kGemmRows = 6;
constexpr int kGemmRegsPerRow = 2;
// GEMM depth block: one packed B panel (256 x 16 floats, 16 KiB) and one A panel (6 KiB) in L1.
constexpr int kGemmDepthBlock = 256;

#else
struct Isa {
  typedef float Reg __attribute__((vector_size(16)));
  static constexpr int kLanes = 4;
  static constexpr const char* kName = "portable";
  static Reg zero() { return Reg{0.f, 0.f, 0.f, 0.f}; }
  static Reg load(const float* p) {
    Reg v;
    __builtin_memcpy(&v, p, sizeof v);  // unaligned load without aliasing trouble
    return v;
  }
  static void store(float* p, Reg v) { __builtin_memcpy(p, &v, sizeof v); }
  static Reg broadcast(const float* p) { return Reg{*p, *p, *p, *p}; }
  static Reg fma(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg max(Reg a, Reg b) { return a > b ? a : b; }
};
// 6 rows x 2 registers fits the 16 registers of SSE and NEON alike.
constexpr int kGemmRows = 6;
constexpr int kGemmRegsPerRow = 2;
constexpr int kGemmDepthBlock = 256;
#endif

}  // namespace simd
}  // namespace cpu
}  // namespace nincc
