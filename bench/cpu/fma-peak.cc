// The machine's measured fp32 FMA peak, for bench/cpu.ts: each thread runs independent chains of
// vector FMAs (enough chains to cover the FMA latency on every port) and the FLOP rate is
// reported per thread count. Built by bench/cpu.ts with the kernel library's own flags:
//   g++ -O2 -fopenmp -mavx512f ... bench/cpu/fma-peak.cc -o fma-peak && ./fma-peak 2
#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#if defined(__AVX512F__)
using Reg = __m512;
constexpr int kLanes = 16;
static inline Reg splat(float v) { return _mm512_set1_ps(v); }
static inline Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
static inline float lane0(Reg v) { return _mm512_cvtss_f32(v); }
#else
using Reg = __m256;
constexpr int kLanes = 8;
static inline Reg splat(float v) { return _mm256_set1_ps(v); }
static inline Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
static inline float lane0(Reg v) { return _mm256_cvtss_f32(v); }
#endif

// 16 independent accumulators: 2 ports x 4-cycle latency needs 8; 16 leaves no doubt.
constexpr int kChains = 16;

static float run(long iterations) {
  Reg acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = splat(1.0f + i * 1e-3f);
  const Reg a = splat(0.9999999f), b = splat(1e-7f);
  for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], a, b);
  }
  float s = 0.f;
  for (int i = 0; i < kChains; ++i) s += lane0(acc[i]);
  return s;
}

int main(int argc, char** argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  const long iterations = 40'000'000;
  volatile float sink = run(iterations / 10);  // warm-up: clocks settle, pages touched
  for (int threads = 1; threads <= max_threads; ++threads) {
    double best = 0.0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
      { sink = run(iterations); }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double flops = 2.0 * kLanes * kChains * static_cast<double>(iterations) * threads;
      if (flops / s > best) best = flops / s;
    }
    std::printf("{\"threads\": %d, \"lanes\": %d, \"gflops\": %.1f}\n", threads, kLanes, best / 1e9);
  }
  (void)sink;
  return 0;
}
