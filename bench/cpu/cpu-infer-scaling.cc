// Where nin-fashion's 2-thread inference time goes, layer by layer (issue #19): each layer of the
// network, in order, run at 1 and at THREADS threads alternately, call by call, through the kernel
// headers (bench/cpu/layer-times.cc's layers), with the thread pool's counters (thread_pool.h built
// with NINCC_POOL_STATS): parallel jobs and tasks per call, the share of tasks workers ran, how long
// after a job's publication a worker joined it, and how long the caller waited after its own tasks
// (imbalance and late workers). The layers' algorithms are the ones nin-fashion's report.txt names
// for the batch (k11 Winograd F(2x2) at batch 1 and F(4x4) from batch 2; k21 the implicit GEMM
// below batch 5 and F(4x4) from it). Wall times on a loaded machine mostly say when the OS ran the
// worker: read them on free cores; the job and task counts do not depend on the load.
//   g++ -std=c++17 -O3 -fopenmp -DNINCC_POOL_STATS -march=native -I runtime/include \
//       bench/cpu/cpu-infer-scaling.cc bench/cpu/layer-times.cc -o /tmp/cpu-infer-scaling
//   /tmp/cpu-infer-scaling [BATCH=16] [CALLS=300] [THREADS=2]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "nincc/cpu/thread_pool.h"

#include "bench-util.h"

using nincc_bench::median;

extern "C" int nincc_layer_count();
extern "C" const char* nincc_layer_name(int i);
extern "C" float nincc_layer_run(int i, int batch);

using nincc::cpu::pool_detail::pool_stats;

namespace {

// nin-fashion's inference kernels in network order (its report.txt's "infer" program; the pool, linear and
// softmax tail left out), found in layer-times.cc's table by name, so that a row added there moves none.
std::vector<int> network_layers(int batch) {
  const char* names[] = {"k1 5x5 1->32 28x28", "k4+k7 1x1 pair 32ch 28x28", "maxpool 32x28x28",
                         batch >= 2 ? "k11 as Winograd F4x3" : "k11 as Winograd F2x3", "k14+k17 1x1 pair 64ch 14x14",
                         "maxpool 64x14x14", batch >= 5 ? "k21 as Winograd F4x3" : "k21 3x3 64->128 7x7",
                         "k24+k27 1x1 pair 128ch 7x7"};
  std::vector<int> layers;
  for (const char* name : names)
    for (int i = 0;; ++i) {
      if (i == nincc_layer_count()) {
        std::fprintf(stderr, "layer-times.cc has no layer named \"%s\"\n", name);
        std::exit(2);
      }
      if (std::strcmp(nincc_layer_name(i), name) == 0) {
        layers.push_back(i);
        break;
      }
    }
  return layers;
}

double wall_us() { return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void reset_stats() {
  auto& s = pool_stats();
  for (auto* c : {&s.jobs, &s.tasks, &s.worker_tasks, &s.worker_joins, &s.join_in_ns, &s.caller_wait_ns}) c->store(0);
}

}  // namespace

int main(int argc, char** argv) {
  const int batch = argc > 1 ? std::atoi(argv[1]) : 16, calls = argc > 2 ? std::atoi(argv[2]) : 300, threads = argc > 3 ? std::atoi(argv[3]) : 2;
  const std::vector<int> layers = network_layers(batch);
  std::printf("nin-fashion layers at batch %d, %d calls each at 1 and %d threads alternately; wall medians in µs; pool counters per %d-thread call (join, wait: means)\n", batch,
              calls, threads, threads);
  std::printf("%-22s %9s %9s %6s %6s %7s %7s %9s %9s\n", "layer", "1T", "NT", "1T/NT", "jobs", "tasks", "worker", "join µs", "wait µs");
  double sum1 = 0, sumn = 0;
  volatile float sink = 0;
  for (int layer : layers) {
    std::vector<double> wall[2];
    long jobs = 0, tasks = 0, worker_tasks = 0, joins = 0, join_ns = 0, wait_ns = 0;
    for (int k = 0; k < 3; ++k) sink = sink + nincc_layer_run(layer, batch);
    for (int k = 0; k < calls; ++k)
      for (int v0 = 0; v0 < 2; ++v0) {
        const int v = (k + v0) % 2;  // alternate which goes first
        omp_set_num_threads(v ? threads : 1);
        reset_stats();
        const double t0 = wall_us();
        sink = sink + nincc_layer_run(layer, batch);
        wall[v].push_back(wall_us() - t0);
        if (v) {
          const auto& s = pool_stats();
          jobs += s.jobs, tasks += s.tasks, worker_tasks += s.worker_tasks, joins += s.worker_joins;
          join_ns += s.join_in_ns, wait_ns += s.caller_wait_ns;
        }
      }
    const double one = median(wall[0]), many = median(wall[1]);
    sum1 += one, sumn += many;
    std::printf("%-22s %9.1f %9.1f %6.2f %6.1f %7.1f %6.0f%% %9.2f %9.2f\n", nincc_layer_name(layer), one, many, one / many,
                static_cast<double>(jobs) / calls, jobs ? static_cast<double>(tasks) / jobs : 0.0,
                tasks ? 100.0 * worker_tasks / tasks : 0.0, joins ? 1e-3 * join_ns / joins : 0.0, jobs ? 1e-3 * wait_ns / jobs : 0.0);
  }
  std::printf("%-22s %9.1f %9.1f %6.2f\n", "sum", sum1, sumn, sum1 / sumn);
  return sink == 12345.f;  // keeps the calls
}
