// A PyTorch-like neighbour for A/B runs (bench/cpu/cpu-small-ab.ts --neighbour): for each line on stdin, one
// OpenMP parallel region of about US microseconds of arithmetic on OMP_NUM_THREADS threads, then "ok" on
// stdout. Built with g++ -fopenmp (libgomp) and run with its default wait policy, its idle worker spins
// after the region (GOMP_SPINCOUNT; about 2 ms of CPU time on the 2-core VM, measured with
// /proc/PID/task/TID/schedstat), as PyTorch's eager ops leave their OpenMP workers after each call.
//   g++ -O2 -fopenmp bench/cpu/omp-neighbour.cc -o /tmp/omp-neighbour && echo | OMP_NUM_THREADS=2 /tmp/omp-neighbour 2000
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: omp-neighbour US\n");
    return 2;
  }
  const std::chrono::duration<double, std::micro> span(std::atof(argv[1]));
  static volatile double sink[64 * 8];
  char line[64];
  while (std::fgets(line, sizeof line, stdin)) {
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel
    {
      double a = 1.0;
      while (std::chrono::steady_clock::now() - start < span)
        for (int i = 0; i < 1000; ++i) a = a * 1.0000001 + 1e-9;
      sink[(omp_get_thread_num() % 64) * 8] = a;
    }
    std::printf("ok\n");
    std::fflush(stdout);
  }
}
