// The thread-CPU clock and median the training kernel benches time with (steadier than wall time on a
// loaded machine): bench_winograd_training_cpu_time.cc, bench_train_weight_transform_cpu_time.cc,
// bench_train_winograd_xi_order_infer_cpu_time.cc.
#pragma once

#include <algorithm>
#include <ctime>
#include <vector>

namespace bench_train {

// This thread's CPU time, in ms.
inline double cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

// The upper median (the middle of an odd count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Thread-CPU ms that fn() takes.
template <class Fn>
double time_ms(Fn&& fn) {
  const double t0 = cpu_ms();
  fn();
  return cpu_ms() - t0;
}

}  // namespace bench_train
