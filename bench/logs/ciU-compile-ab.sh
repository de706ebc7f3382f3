#!/usr/bin/env bash
# ciU: g++ CPU seconds of emu library compiles, the old flags (A) and the tests' new ones (B), alternating per source.
#   bash bench/logs/ciU-compile-ab.sh asan|plain SOURCE...   (SOURCE: a generated kernels.cu, e.g. from a cache's emu/*.cc)
# asan: A = -O2 -g -fsanitize=address (before), B = -O1 -g1 -fsanitize=address; plain: A = -O2, B = -O1.
set -euo pipefail
mode=$1; shift
include="$(cd "$(dirname "$0")/../.." && pwd)/runtime/include"
common=(-std=c++17 -DNINCC_EMU -fPIC -shared -fvisibility=hidden -fvisibility-inlines-hidden -Wl,-Bsymbolic "-I$include" -x c++)
if [[ $mode == asan ]]; then a=(-O2 -g -fsanitize=address -fno-omit-frame-pointer); b=(-O1 -g1 -fsanitize=address -fno-omit-frame-pointer)
else a=(-O2); b=(-O1); fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for src in "$@"; do
  for side in A B; do
    if [[ $side == A ]]; then flags=("${a[@]}"); else flags=("${b[@]}"); fi
    /usr/bin/time -f "$side $(basename "$src") ${flags[*]}: %U+%S cpu s, %e wall s" g++ "${common[@]}" "$src" "${flags[@]}" -o "$out/$side.so"
  done
done
