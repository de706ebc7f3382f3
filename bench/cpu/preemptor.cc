// A thread that takes one core away at intervals, for A/B runs of the kernels' pool under a neighbour
// (bench/cpu/cpu-small-ab.ts --preempt): busy about BUSY_US microseconds, asleep about IDLE_US, until
// killed; each span drawn from 0.5x to 1.5x its mean, so the timed calls cannot lock to its period.
// Run at a higher SCHED_FIFO priority than the timed processes and pinned to one CPU, it preempts
// whichever of their threads holds that CPU, as another engine's spinning pool or a shared machine's
// other work does; on a machine loaded by other users that is the one repeatable form of it.
//   g++ -O2 bench/cpu/preemptor.cc -o /tmp/preemptor && chrt -f 30 taskset -c 1 /tmp/preemptor 1000 1000
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: preemptor BUSY_US IDLE_US\n");
    return 2;
  }
  const double busy_us = std::atof(argv[1]), idle_us = std::atof(argv[2]);
  std::mt19937 random(1);
  std::uniform_real_distribution<double> spread(0.5, 1.5);
  volatile double sink = 1;
  for (;;) {
    const auto busy = std::chrono::duration<double, std::micro>(busy_us * spread(random));
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < busy)
      for (int i = 0; i < 100; ++i) sink = sink * 1.0000001;
    std::this_thread::sleep_for(std::chrono::duration<double, std::micro>(idle_us * spread(random)));
  }
}
