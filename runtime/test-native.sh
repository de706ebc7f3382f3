#!/usr/bin/env bash
# The native tests: the C++ core (plan loader, arena, executor, cpu device) through ctest under
# AddressSanitizer + UBSan (LeakSanitizer included), the CPU kernel library against its float64
# references (runtime/kernels-test), and the SIMT emulator's kernel tests (runtime/emu-test).
# CI's run (the default) leaves out two builds whose tests another build runs with more checks, and the
# emulator's benchmark, which measures and asserts nothing (bench/RESULTS.md "ciT: CI time": 3 of its
# 8 builds): the core tests' plain -O2 build (the same tests run under the sanitizers; the optimized core
# runs under vitest inside the addon) and the emulator's `checks` variant (`asan` compiles the same checks,
# with ASan and UBSan). NINCC_TEST_FULL=1 runs every build, the benchmark included.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
full=${NINCC_TEST_FULL:-0}
if [[ "$full" == 1 ]]; then
  cmake -S . -B runtime/build/core -DNINCC_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build runtime/build/core -j"$jobs" >/dev/null
  ctest --test-dir runtime/build/core --output-on-failure
  echo "== the same core tests under ASan/UBSan/LSan"
else
  echo "== the core tests under ASan/UBSan/LSan (and in a plain -O2 build: NINCC_TEST_FULL=1)"
fi
cmake -S . -B runtime/build/core-asan -DNINCC_TESTS=ON -DNINCC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build runtime/build/core-asan -j"$jobs" >/dev/null
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir runtime/build/core-asan --output-on-failure
bash runtime/kernels-test/build-and-run.sh
if [[ "$full" == 1 ]]; then
  echo "== the SIMT emulator (the emu device's foundation): checks, fast, ASan+UBSan, ucontext builds; nvcc sm_80/sm_90 compile"
  bash runtime/emu-test/build-and-run.sh
else
  echo "== the SIMT emulator (the emu device's foundation): fast, ASan+UBSan (with checks), ucontext builds; nvcc sm_80/sm_90 compile"
  echo "   (the checks-only build and the benchmark: NINCC_TEST_FULL=1)"
  VARIANTS="${VARIANTS:-fast asan ucontext}" BENCH="${BENCH:-0}" bash runtime/emu-test/build-and-run.sh
fi
