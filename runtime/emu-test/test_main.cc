// The SIMT emulator's test driver: runs every test group, optionally the dlopen ABI test and the
// benchmarks, and exits nonzero when a check failed. Built and run by build-and-run.sh:
//   emu_test [--abi path/to/emu_test_kernels.so] [--bench] [--bench-only]
//   emu_test --counts     # the profile micro-kernels' counters as JSON lines (bench/gpu/ncu.sh)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>

#include "check.h"
#include "kernels.h"

namespace {

template <class Test>
void run(const char* name, Test test) {
  const int before = emu_test::g_failures;
  const auto start = std::chrono::steady_clock::now();
  try {
    test();
  } catch (const std::exception& e) {
    emu_test::report_failure(__FILE__, __LINE__, std::string(name) + " threw: " + e.what());
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-18s %s (%.0f ms)\n", name, emu_test::g_failures == before ? "ok" : "FAILED", ms);
}

}  // namespace

int main(int argc, char** argv) {
  const char* library = nullptr;
  bool bench = false, bench_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--abi") == 0 && i + 1 < argc) library = argv[++i];
    else if (std::strcmp(argv[i], "--bench") == 0) bench = true;
    else if (std::strcmp(argv[i], "--bench-only") == 0) bench = bench_only = true;
    else if (std::strcmp(argv[i], "--counts") == 0) {
      emu_test::print_micro_kernel_counts();
      return 0;
    } else {
      std::fprintf(stderr, "usage: %s [--abi library.so] [--bench] [--bench-only] | --counts\n", argv[0]);
      return 2;
    }
  }
  if (!bench_only) {
    run("matmul", emu_test::test_matmul);
    run("reduce", emu_test::test_reduce);
    run("coordinates", emu_test::test_coordinates);
    run("warp semantics", emu_test::test_warp_semantics);
    run("tf32 and mma", emu_test::test_tf32);
    run("faults", emu_test::test_faults);
    run("bf16 and cp.async", emu_test::test_bf16);
    run("profile counters", emu_test::test_profile);
    run("glue fold ticket", emu_test::test_glue_fold);
    if (library) run("dlopen ABI", [&] { emu_test::test_abi(library); });
    std::printf("%d checks, %d failed\n", emu_test::g_checks, emu_test::g_failures);
  }
  if (bench) emu_test::run_benchmarks();
  return emu_test::g_failures == 0 ? 0 : 1;
}
