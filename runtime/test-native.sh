#!/usr/bin/env bash
# The native tests: the C++ core (plan loader, arena, executor, cpu device) through ctest, plainly and
# under AddressSanitizer + UBSan (LeakSanitizer included), and the CPU kernel library against its
# float64 references (runtime/kernels-test), and the SIMT emulator's kernel tests (runtime/emu-test).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B runtime/build/core -DNINCC_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build runtime/build/core -j"$jobs" >/dev/null
ctest --test-dir runtime/build/core --output-on-failure
echo "== the same core tests under ASan/UBSan/LSan"
cmake -S . -B runtime/build/core-asan -DNINCC_TESTS=ON -DNINCC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build runtime/build/core-asan -j"$jobs" >/dev/null
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir runtime/build/core-asan --output-on-failure
bash runtime/kernels-test/build-and-run.sh
echo "== the SIMT emulator (the emu device's foundation): checks, fast, ASan+UBSan, ucontext builds; nvcc sm_80/sm_90 compile"
bash runtime/emu-test/build-and-run.sh
