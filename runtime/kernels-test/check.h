// The kernel test harness: a CHECK macro that reports file:line and counts failures, float-vs-
// float64 comparisons with a tolerance, NaN poisoning of outputs, a seeded generator and a
// central-difference gradient checker, and a loop over thread counts.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernels_test {

// Runs `body` on 1, 2 and all of OpenMP's threads (once, without OpenMP), then restores the count.
template <class Body>
void on_1_2_and_all_threads(Body&& body) {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, saved}) {
    omp_set_num_threads(threads);
    body();
  }
  omp_set_num_threads(saved);
#else
  body();
#endif
}

inline int g_failures = 0;
inline int g_checks = 0;

inline void report_failure(const char* file, int line, const char* what) {
  ++g_failures;
  if (g_failures <= 40) std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
}

#define CHECK(cond)                                                           \
  do {                                                                        \
    ++::kernels_test::g_checks;                                               \
    if (!(cond)) ::kernels_test::report_failure(__FILE__, __LINE__, #cond);   \
  } while (0)

// Deterministic uniform numbers (SplitMix64), so every run tests the same inputs.
struct Rng {
  std::uint64_t state;
  explicit Rng(std::uint64_t seed) : state(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo = -1.0, double hi = 1.0) { return lo + (hi - lo) * (next() >> 11) * 0x1.0p-53; }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
};

inline std::vector<float> random_floats(std::size_t n, Rng& rng, double lo = -1.0, double hi = 1.0) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Outputs are filled with NaN before a kernel runs, so an element it forgets to write fails.
inline std::vector<float> poisoned(std::size_t n) { return std::vector<float>(n, NAN); }

inline double rms(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x * x;
  return v.empty() ? 0.0 : std::sqrt(s / v.size());
}

// got (float32 kernel) vs want (float64 reference), element by element:
//   |got - want| <= tol * (|want| + rms(want))
// The rms term keeps a near-zero element (a sum that cancels) from demanding more accuracy than
// the float32 terms that produced it could give. NaN or a size mismatch always fails.
inline bool close_to(const char* file, int line, const char* what, const std::vector<float>& got,
                     const std::vector<double>& want, double tol) {
  ++g_checks;
  if (got.size() != want.size()) {
    report_failure(file, line, what);
    return false;
  }
  const double scale = rms(want);
  std::size_t bad = 0, first_bad = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    const double allowed = tol * (std::fabs(want[i]) + scale) + 1e-30;
    if (!(err <= allowed)) {
      if (bad++ == 0) first_bad = i;
    }
    if (err / allowed > worst) worst = err / allowed;
  }
  if (bad == 0) return true;
  ++g_failures;
  if (g_failures <= 40)
    std::fprintf(stderr, "%s:%d: FAILED: %s: %zu of %zu elements off; first at [%zu]: got %.9g want %.9g (rms %.3g)\n",
                 file, line, what, bad, got.size(), first_bad, static_cast<double>(got[first_bad]), want[first_bad],
                 scale);
  return false;
}

#define CHECK_CLOSE(got, want, tol, what) ::kernels_test::close_to(__FILE__, __LINE__, what, got, want, tol)

// Checks an analytic gradient of a scalar function of x against central differences, in double,
// at `samples` evenly spread indices (all of them when x is smaller).
template <class Loss>
bool gradient_matches(const char* file, int line, const char* what, std::vector<double> x,
                      const std::vector<double>& analytic, Loss loss, std::size_t samples = 64) {
  ++g_checks;
  const double h = 1e-6;
  const std::size_t step = x.size() <= samples ? 1 : x.size() / samples;
  double scale = rms(analytic);
  for (std::size_t i = 0; i < x.size(); i += step) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss(x);
    x[i] = saved - h;
    const double down = loss(x);
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    if (!(std::fabs(numeric - analytic[i]) <= 1e-6 * (std::fabs(numeric) + scale) + 1e-9)) {
      ++g_failures;
      std::fprintf(stderr, "%s:%d: FAILED: %s: d/dx[%zu] numeric %.10g analytic %.10g\n", file, line, what, i, numeric,
                   analytic[i]);
      return false;
    }
  }
  return true;
}

#define CHECK_GRADIENT(x, analytic, loss, what) \
  ::kernels_test::gradient_matches(__FILE__, __LINE__, what, x, analytic, loss)

// sum_i a[i] * b[i]: the scalar loss L = <f(x), weights> whose gradient a backward pass computes
// when fed dy = weights.
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  return true;
}

}  // namespace kernels_test
