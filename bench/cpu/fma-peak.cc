// The machine's measured fp32 FMA peak and core clock, for bench/cpu.ts (bench/cpu/fma-probe-trust.ts reads it).
// Each configuration (vector width × independent chains × thread count) runs `trials` timed trials on threads
// pinned one per CPU and released together; per configuration it prints the best and median GFLOP/s, and
// the share of the best trial's wall time its threads were on a CPU (another process took the rest). The clock
// comes from a chain of dependent integer adds (one cycle each), timed on the same pinned threads, so the FLOP
// per cycle, and from it the number of FMA units, is measured rather than assumed from /proc/cpuinfo.
// Built by bench/cpu.ts with the kernel library's own vector flags:
//   g++ -O2 -pthread -mavx512f ... bench/cpu/fma-peak.cc -o fma-peak && ./fma-peak 2 7
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <time.h>
#include <vector>

using Clock = std::chrono::steady_clock;

struct Avx2 {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static constexpr const char* kName = "avx2";
  static Reg splat(float v) { return _mm256_set1_ps(v); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float lane0(Reg v) { return _mm256_cvtss_f32(v); }
};
#if defined(__AVX512F__)
struct Avx512 {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static constexpr const char* kName = "avx512";
  static Reg splat(float v) { return _mm512_set1_ps(v); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static float lane0(Reg v) { return _mm512_cvtss_f32(v); }
};
#endif

// The multiplier comes from a volatile so the compiler cannot fold the chains.
static volatile float g_multiplier = 0.9999999f;
static volatile float g_sink;

// `Chains` independent accumulators: FMA latency (4 cycles) × units (2) needs 8; more shows whether it does.
template <class V, int Chains>
static void fma_chains(long iterations) {
  typename V::Reg acc[Chains];
  for (int i = 0; i < Chains; ++i) acc[i] = V::splat(1.0f + i * 1e-3f);
  const typename V::Reg a = V::splat(g_multiplier), b = V::splat(1e-7f);
  for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < Chains; ++i) acc[i] = V::fma(acc[i], a, b);
  }
  float s = 0.f;
  for (int i = 0; i < Chains; ++i) s += V::lane0(acc[i]);
  g_sink = s;
}

// 64 dependent one-cycle adds per iteration: iterations × 64 / seconds is the core clock.
constexpr int kAddsPerIteration = 64;
static void add_chain(long iterations) {
  unsigned long x = 0, one = 1;
  for (long it = 0; it < iterations; ++it) {
#define NINCC_ADD8 "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
    asm volatile(NINCC_ADD8 NINCC_ADD8 NINCC_ADD8 NINCC_ADD8 NINCC_ADD8 NINCC_ADD8 NINCC_ADD8 NINCC_ADD8 : "+r"(x) : "r"(one));
#undef NINCC_ADD8
  }
  g_sink = static_cast<float>(x);
}

// One trial: the slowest thread's wall seconds, and the least share of them any thread was on a CPU
// (its thread-CPU time over its wall time): under 1, another process had the core for a while.
struct Trial {
  double seconds, share;
};

static double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/** `work` on `threads` threads pinned to CPUs 0..threads-1, released together. */
template <class Work>
static Trial timed_on_pinned_threads(int threads, Work work) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> seconds(threads, 0.0), shares(threads, 0.0);
  std::vector<std::thread> team;
  for (int t = 0; t < threads; ++t) {
    team.emplace_back([&, t] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(t, &set);
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // fails harmlessly where CPU t is not ours
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const auto t0 = Clock::now();
      const double c0 = thread_cpu_seconds();
      work();
      seconds[t] = std::chrono::duration<double>(Clock::now() - t0).count();
      shares[t] = (thread_cpu_seconds() - c0) / seconds[t];
    });
  }
  while (ready.load() < threads) {
  }
  go.store(true, std::memory_order_release);
  for (auto& th : team) th.join();
  return {*std::max_element(seconds.begin(), seconds.end()), *std::min_element(shares.begin(), shares.end())};
}

/** Best and median of `units` (in billions) ÷ seconds over `trials`, and the CPU share of the best trial. */
template <class Work>
static void measure(const char* kind, const char* isa, int lanes, int chains, int threads, int trials, double units, Work work) {
  std::vector<double> rates;
  Trial best{0.0, 0.0};
  for (int r = 0; r < trials; ++r) {
    const Trial t = timed_on_pinned_threads(threads, work);
    rates.push_back(units / t.seconds * 1e-9);
    if (best.seconds == 0.0 || t.seconds < best.seconds) best = t;
  }
  std::sort(rates.begin(), rates.end());
  std::printf("{\"kind\": \"%s\", \"isa\": \"%s\", \"lanes\": %d, \"chains\": %d, \"threads\": %d, \"trials\": %d, \"best\": %.2f, \"median\": %.2f, \"share\": %.3f}\n", kind, isa,
              lanes, chains, threads, trials, rates.back(), rates[rates.size() / 2], best.share);
  std::fflush(stdout);
}

template <class V, int Chains>
static void measure_fma(int threads, int trials) {
  const long iterations = 6'000'000 / Chains * 8;  // ~50 ms a trial at 3 GHz, whatever the chain count
  const double flops = 2.0 * V::kLanes * Chains * static_cast<double>(iterations) * threads;
  measure("fma", V::kName, V::kLanes, Chains, threads, trials, flops, [=] { fma_chains<V, Chains>(iterations); });
}

template <class V>
static void measure_width(int threads, int trials) {
  measure_fma<V, 8>(threads, trials);
  measure_fma<V, 12>(threads, trials);
  measure_fma<V, 16>(threads, trials);
  measure_fma<V, 24>(threads, trials);
}

int main(int argc, char** argv) {
  const int max_threads = argc > 1 ? std::atoi(argv[1]) : static_cast<int>(std::thread::hardware_concurrency());
  const int trials = argc > 2 ? std::atoi(argv[2]) : 7;
  if (max_threads < 1 || trials < 1) {
    std::fprintf(stderr, "usage: fma-peak [threads ≥ 1] [trials ≥ 1]\n");
    return 2;
  }
  timed_on_pinned_threads(max_threads, [] { fma_chains<Avx2, 16>(20'000'000); });  // warm-up: clocks settle
  std::vector<int> counts{1};
  if (max_threads > 1) counts.push_back(max_threads);
  for (int threads : counts) {
    // GHz per core (the slowest thread's), not summed over threads: 160M adds, ~50 ms at 3 GHz.
    const long adds = 2'500'000;
    measure("clock", "x86", 1, 1, threads, trials, static_cast<double>(adds) * kAddsPerIteration, [=] { add_chain(adds); });
#if defined(__AVX512F__)
    measure_width<Avx512>(threads, trials);
#endif
    measure_width<Avx2>(threads, trials);
  }
  return 0;
}
