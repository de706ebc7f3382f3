// A/B of two builds of bench/cpu/layer-times.cc (say, before and after a kernel-header change):
// loads both, and for each layer calls A and B alternately, call by call, timing each call in
// process CPU time (on one thread: the time the kernel ran, not the time other processes held the
// core) and wall time. Prints each layer's median per build and B/A; interference on a loaded
// machine falls on both alike. Driven by bench/cpu/layer-ab.sh. With LAYER_AB_COLD=1 in the environment, 64 MiB are
// written between calls (untimed), so that each call finds its weights and input in memory, not cache, as a layer
// of a whole network does when its weights are read once a call (NIN's 1x1s at batch 1).
// machine falls on both alike. Driven by bench/cpu/layer-ab.sh. LAYER_AB_ONLY=TEXT times only the layers
// whose names contain TEXT (NIN's 1x1s take minutes under load).
//   layer-ab A.so B.so BATCH CALLS
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "bench-util.h"

using nincc_bench::median;

namespace {

struct Library {
  int (*count)();
  const char* (*name)(int);
  float (*run)(int, int);
};

Library open(const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::fprintf(stderr, "layer-ab: %s\n", dlerror());
    std::exit(2);
  }
  return {reinterpret_cast<int (*)()>(dlsym(h, "nincc_layer_count")), reinterpret_cast<const char* (*)(int)>(dlsym(h, "nincc_layer_name")),
          reinterpret_cast<float (*)(int, int)>(dlsym(h, "nincc_layer_run"))};
}

double cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return 1e3 * t.tv_sec + 1e-6 * t.tv_nsec;
}

double wall_ms() { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: layer-ab A.so B.so BATCH CALLS\n");
    return 2;
  }
  const Library lib[2] = {open(argv[1]), open(argv[2])};
  const int batch = std::atoi(argv[3]), calls = std::atoi(argv[4]);
  const char* cold_env = std::getenv("LAYER_AB_COLD");
  std::vector<float> evict(cold_env && std::atoi(cold_env) ? std::size_t{16} << 20 : 0);
  if (!evict.empty()) std::printf("cold caches: 64 MiB written between calls\n");
  const char* only = std::getenv("LAYER_AB_ONLY");
  std::printf("%-24s %10s %10s %6s %10s %10s %6s\n", "layer (median ms)", "A cpu", "B cpu", "B/A", "A wall", "B wall", "B/A");
  double sum[2] = {0, 0};
  volatile float sink = 0;
  for (int i = 0; i < lib[0].count(); ++i) {
    if (only && !std::strstr(lib[0].name(i), only)) continue;
    std::vector<double> cpu[2], wall[2];
    for (int k = 0; k < 3; ++k) sink = sink + lib[0].run(i, batch) + lib[1].run(i, batch);
    for (int k = 0; k < calls; ++k)
      for (int v0 = 0; v0 < 2; ++v0) {
        const int v = (k + v0) % 2;  // alternate which goes first
        for (std::size_t j = 0; j < evict.size(); j += 16) evict[j] += 1.f;  // a line at a time
        const double w0 = wall_ms(), c0 = cpu_ms();
        sink = sink + lib[v].run(i, batch);
        cpu[v].push_back(cpu_ms() - c0);
        wall[v].push_back(wall_ms() - w0);
      }
    const double a = median(cpu[0]), b = median(cpu[1]), wa = median(wall[0]), wb = median(wall[1]);
    sum[0] += a, sum[1] += b;
    std::printf("%-24s %10.4f %10.4f %6.3f %10.4f %10.4f %6.3f\n", lib[0].name(i), a, b, b / a, wa, wb, wb / wa);
  }
  std::printf("%-24s %10.4f %10.4f %6.3f\n", "sum", sum[0], sum[1], sum[1] / sum[0]);
}
