#!/usr/bin/env bash
# Builds and runs the CPU kernel tests (runtime/kernels-test) twice: for this machine's vector
# unit (-march=native) and for the portable fallback (no target flags), both with OpenMP.
#   ./build-and-run.sh              # g++ -O2 -fopenmp -std=c++17
#   SANITIZE=1 ./build-and-run.sh   # adds -fsanitize=address,undefined
#   ARCHES="-mavx2 -mfma;portable" ./build-and-run.sh   # ';'-separated target flag sets;
#                                                       # "portable" means none
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="$here/build"
mkdir -p "$build"

flags=(-O2 -fopenmp -std=c++17 -Wall -Wextra -I"$here/../include")
variant=""
if [[ "${SANITIZE:-0}" == 1 ]]; then
  flags+=(-fsanitize=address,undefined -fno-omit-frame-pointer -g)
  variant="-sanitize"
fi
sources=(kernels_test.cc test_gemm.cc test_conv.cc test_conv_gemm.cc test_conv_direct.cc test_conv_winograd.cc test_batchnorm.cc test_pool.cc test_dense.cc test_training.cc
         test_determinism.cc test_thread_pool.cc test_u8_stem.cc test_pointwise_pair.cc test_block_band.cc)

IFS=';' read -r -a arches <<< "${ARCHES:--march=native;portable}"
status=0
for arch in "${arches[@]}"; do
  [[ "$arch" == portable ]] && arch=""
  tag="$(tr -cs 'a-z0-9' '_' <<< "$arch" | sed 's/^_*//; s/_*$//')"   # "-mavx2 -mfma" -> mavx2_mfma
  name="kernels_test-${tag:-portable}${variant}"
  # One object per source, compiled in parallel; an object newer than its source, every header
  # and this script (which holds the flags) is reused.
  pids=()
  for src in "${sources[@]}"; do
    obj="$build/${name}_${src%.cc}.o"
    if [[ -f "$obj" && -z "$(find "$here"/*.cc "$here"/*.h "$here/../include/nincc" "$0" -newer "$obj" -print -quit)" ]]; then
      continue
    fi
    # shellcheck disable=SC2086  # $arch is a list of flags
    g++ "${flags[@]}" $arch -c "$here/$src" -o "$obj" & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  objs=("${sources[@]/#/$build/${name}_}")
  g++ "${flags[@]}" $arch "${objs[@]/%.cc/.o}" -o "$build/$name"
  echo "== ${arch:-portable (no target flags)}"
  "$build/$name" || status=1
done
exit $status
