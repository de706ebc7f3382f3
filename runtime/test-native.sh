#!/usr/bin/env bash
# The native tests: the C++ core (plan loader, arena, executor, cpu device) through ctest, and the
# CPU kernel library against its float64 references (runtime/kernels-test).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B runtime/build/core -DNINCC_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build runtime/build/core -j"$jobs" >/dev/null
ctest --test-dir runtime/build/core --output-on-failure
bash runtime/kernels-test/build-and-run.sh
