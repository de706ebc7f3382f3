#!/usr/bin/env bash
# Builds and runs the SIMT emulator tests (docs/emu.md). The kernels in *.cu are written once
# against nincc/device/primitives.cuh and compiled three ways:
#   g++ -x c++ -DNINCC_EMU, linked into the C++ test driver and into a dlopen'ed library, in the
#     variants `checks` (NINCC_EMU_CHECKS), `fast` (+ benchmark), `asan` (ASan + UBSan, checks)
#     and `ucontext` (the portable context switch);
#   nvcc for sm_80 and sm_90, compile only, failing on any register spill (skipped without nvcc).
#   ./build-and-run.sh                       # everything
#   VARIANTS="checks asan" ./build-and-run.sh
#   BENCH=0 ./build-and-run.sh               # no benchmark
#   NVCC=0 ./build-and-run.sh                # no nvcc compile
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"  # relative source names, so fault messages say faults.cu:12
build="$here/build"
kernels=(matmul.cu reduce.cu warp_ops.cu faults.cu bench.cu bf16_ops.cu profile.cu glue_fold_last_cta.cu)
drivers=(test_main.cc test_kernels.cc test_warp.cc test_faults.cc test_abi.cc speed.cc test_bf16.cc test_profile.cc test_glue_fold.cc)
jobs=$(nproc 2>/dev/null || echo 2)
# -fvisibility=hidden: the library exports only its descriptors and identity (checked below).
common=(-std=c++17 -Wall -Wextra -Werror -DNINCC_EMU -I../include -I. -fPIC -fvisibility=hidden
        -fvisibility-inlines-hidden)

variant_flags() {
  case "$1" in
    checks) echo "-O2 -DNINCC_EMU_CHECKS" ;;
    fast) echo "-O2" ;;
    asan) echo "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DNINCC_EMU_CHECKS" ;;
    ucontext) echo "-O2 -DNINCC_EMU_UCONTEXT" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

# Compiles the variant's objects (in parallel; an object newer than its source, every header and
# this script is reused), then the library and the test driver.
build_variant() {
  local variant="$1" dir="$build/$1" flags src obj
  read -r -a flags <<< "$(variant_flags "$variant")"
  mkdir -p "$dir"
  for src in "${kernels[@]}" "${drivers[@]}"; do
    obj="$dir/$src.o"
    if [[ -f "$obj" && -z "$(find "$src" ./*.h ../include/nincc/device "$0" -newer "$obj" -print -quit)" ]]; then
      continue
    fi
    while (( $(jobs -rp | wc -l) >= jobs )); do wait -n; done
    if [[ "$src" == *.cu ]]; then
      g++ "${common[@]}" "${flags[@]}" -x c++ -c "$src" -o "$obj" &
    else
      g++ "${common[@]}" "${flags[@]}" -c "$src" -o "$obj" &
    fi
  done
  while (( $(jobs -rp | wc -l) > 0 )); do wait -n; done
  local kernel_objects=() driver_objects=()
  for src in "${kernels[@]}"; do kernel_objects+=("$dir/$src.o"); done
  for src in "${drivers[@]}"; do driver_objects+=("$dir/$src.o"); done
  g++ "${flags[@]}" -shared "${kernel_objects[@]}" -o "$dir/emu_test_kernels.so"
  g++ "${flags[@]}" "${kernel_objects[@]}" "${driver_objects[@]}" -o "$dir/emu_test" -ldl -pthread
}

status=0
for variant in ${VARIANTS:-checks fast asan ucontext}; do
  echo "== emu: $variant ($(variant_flags "$variant"))"
  start=$SECONDS
  build_variant "$variant" 2>&1 || { status=1; continue; }
  dir="$build/$variant"
  extra=()
  if [[ "${BENCH:-1}" == 1 && ( "$variant" == fast || "$variant" == ucontext ) ]]; then extra=(--bench); fi
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$dir/emu_test" --abi "$dir/emu_test_kernels.so" "${extra[@]}" || status=1
  # Beyond the ABI, allow only libstdc++'s own instantiations (std declares them default-visible;
  # they are the same code in every module) and ASan's ODR indicators.
  exported="$(nm -D --defined-only "$dir/emu_test_kernels.so" | awk '{print $3}' |
              grep -v -E '^(nincc_emu_[a-z0-9_]+|nincc_abi|nincc_source_hash)$' |
              grep -v -E '^(_ZNSt|_ZSt|_ZNKSt|__odr_asan)' || true)"
  if [[ -n "$exported" ]]; then echo "FAILED: the kernel library exports more than its ABI: $exported"; status=1; fi
  if [[ "$variant" == asan ]]; then  # and ASan does see bugs through the fibers (ASan alone:
    # UBSan's bounds and object-size checks would otherwise report the stack case first)
    g++ "${common[@]}" -O1 -g -fno-omit-frame-pointer -fsanitize=address -x c++ asan_detects.cu \
        -o "$dir/asan_detects" -ldl -pthread
    for what in shared stack; do
      report="$("$dir/asan_detects" "$what" 2>&1 || true)"
      if grep -q -E "AddressSanitizer: (use-after-poison|stack-buffer-overflow).*asan_detects.cu" <<< "$report"; then
        echo "asan sees the $what overrun: $(grep -m1 -o -E 'SUMMARY: AddressSanitizer: .*' <<< "$report")"
      else
        echo "FAILED: ASan did not report the $what overrun: $report"; status=1
      fi
    done
  fi
  echo "   ($((SECONDS - start)) s)"
done

if [[ "${NVCC:-1}" != 1 ]]; then
  echo "== nvcc: skipped (NVCC=0)"
elif ! command -v nvcc >/dev/null 2>&1; then
  echo "== nvcc: skipped (nvcc is not on PATH; the .cu files are only compiled for the emulator here)"
else
  echo "== nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'): sm_80 and sm_90, compile only, -Xptxas -v"
  mkdir -p "$build/nvcc"
  # The compiles run $jobs at a time; their reports are read in order below.
  for src in "${kernels[@]}"; do
    while (( $(jobs -rp | wc -l) >= jobs )); do wait -n || true; done
    rm -f "$build/nvcc/$src.status"
    ( code=0
      nvcc -std=c++17 -I../include -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
        -Xptxas -v -c "$src" -o "$build/nvcc/$src.o" > "$build/nvcc/$src.ptxas" 2>&1 || code=$?
      echo "$code" > "$build/nvcc/$src.status" ) &
  done
  wait
  for src in "${kernels[@]}"; do
    log="$build/nvcc/$src.ptxas"
    if [[ "$(cat "$build/nvcc/$src.status")" != 0 ]]; then
      cat "$log"; echo "FAILED: nvcc $src"; status=1; continue
    fi
    if grep -E "warning|error" "$log"; then echo "FAILED: nvcc warns on $src"; status=1; fi
    if grep -E "bytes spill (stores|loads)" "$log" | grep -v -q "0 bytes spill stores, 0 bytes spill loads"; then
      grep -B2 "spill" "$log"; echo "FAILED: register spills in $src"; status=1
    fi
    # kernel, arch, registers, shared bytes: one line per kernel and arch
    awk '/Compiling entry function/ { gsub(/\047/, ""); k = $7; a = $9 }
         /Used [0-9]+ registers/ { match($0, /Used [0-9]+/); r = substr($0, RSTART + 5, RLENGTH - 5);
           s = 0; if (match($0, /[0-9]+ bytes smem/)) s = substr($0, RSTART, RLENGTH - 11);
           printf "   %-24s %-6s %3d registers %6d bytes smem, no spills\n", k, a, r, s }' "$log"
  done
fi
exit $status
