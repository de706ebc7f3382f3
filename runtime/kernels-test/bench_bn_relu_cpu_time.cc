// NIN's 12 BN+ReLU pairs at batch 16, 1 thread, least thread-CPU ms of 7 (steadier than wall time on a loaded
// machine): the separate passes (bn fwd, relu fwd; relu bwd, bn bwd) against the fused ones (bn fwd with relu; bn
// bwd with relu_y). Build as bench_dgrad_cpu_time.cc says; bench/logs/cpu-train-bn-relu.out.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <vector>
#include <omp.h>
#include "nincc/cpu/kernels.h"
using namespace nincc::cpu;
static double cpu_ms() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1e3 + t.tv_nsec * 1e-6; }
template <class F> double best(int reps, F f) { double b = 1e9; for (int r = 0; r < reps; ++r) { double t0 = cpu_ms(); f(); b = std::min(b, cpu_ms() - t0); } return b; }
int main() {
  omp_set_num_threads(1);
  const BatchNormShape shapes[] = {{16, 96, 3136}, {16, 256, 784}, {16, 384, 196}, {16, 1024, 49}};
  double sep = 0, fused = 0;
  for (const BatchNormShape& s : shapes) {
    std::vector<float> x(s.size()), z(s.size()), y(s.size()), dy(s.size()), dz(s.size()), dx(s.size()), g(s.channels, 1.f), b(s.channels, 0.1f),
        m(s.channels), is(s.channels), rm(s.channels), rv(s.channels, 1.f), dg(s.channels), db(s.channels);
    for (size_t i = 0; i < x.size(); ++i) { x[i] = (i * 7919 % 1000) * 0.001f - 0.5f; dy[i] = (i * 104729 % 1000) * 0.001f - 0.5f; }
    const double bf = best(7, [&] { batchnorm_forward_train(s, x.data(), g.data(), b.data(), z.data(), m.data(), is.data(), rm.data(), rv.data(), 1e-3); });
    const double rf = best(7, [&] { relu_forward(s.size(), z.data(), y.data()); });
    const double rb = best(7, [&] { relu_backward(s.size(), y.data(), dy.data(), dz.data()); });
    const double bb = best(7, [&] { batchnorm_backward(s, x.data(), dz.data(), g.data(), m.data(), is.data(), dx.data(), dg.data(), db.data()); });
    const double ff = best(7, [&] { batchnorm_forward_train(s, x.data(), g.data(), b.data(), y.data(), m.data(), is.data(), rm.data(), rv.data(), 1e-3, 0.1, true); });
    const double fb = best(7, [&] { batchnorm_backward(s, x.data(), dy.data(), g.data(), m.data(), is.data(), dx.data(), dg.data(), db.data(), y.data()); });
    printf("c%-5d plane %-5lld separate: bn fwd %6.2f relu fwd %6.2f relu bwd %6.2f bn bwd %6.2f = %6.2f | fused: fwd %6.2f bwd %6.2f = %6.2f\n", s.channels,
           (long long)s.plane, bf, rf, rb, bb, bf + rf + rb + bb, ff, fb, ff + fb);
    sep += 3 * (bf + rf + rb + bb); fused += 3 * (ff + fb);
  }
  printf("NIN's 12 pairs per step: separate %.1f ms, fused %.1f ms\n", sep, fused);
}
