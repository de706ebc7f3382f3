#!/usr/bin/env bash
# Nsight Compute against the emulator's profile (docs/profile.md), for a session lent a GPU: runs ncu
# on the profile micro-kernels (bench/gpu/micro_kernels.cu) and on the NIN training step's kernels,
# and prints measured vs modelled counters, so the time model's constants can be fitted and the
# table kept as a regression record. Without a GPU it is a dry run that says so: it builds what it
# can (the emulator's counts, the nvcc build of the micro-kernels) and prints the modelled column.
#   bash bench/gpu/ncu.sh            # outputs under $OUT (default bench/gpu/out/ncu)
# Needs: g++, node, python3; nvcc (CUDA 12+) and ncu on PATH for the GPU part. GPU=a100|h100|h200
# picks the time model's table (default: from nvidia-smi's name, else h100).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/gpu/out/ncu}
mkdir -p "$OUT"
metrics=l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,dram__bytes.sum,gpu__time_duration.sum
say() { echo "== $*"; }

say "modelled: the emulator's counters for the micro-kernels (runtime/emu-test, fast build)"
VARIANTS=fast BENCH=0 NVCC=0 bash runtime/emu-test/build-and-run.sh > "$OUT/emu-test.log" 2>&1 ||
  { tail -20 "$OUT/emu-test.log"; echo "ncu.sh: the emulator tests failed"; exit 1; }
runtime/emu-test/build/fast/emu_test --counts > "$OUT/modelled.jsonl" || exit 1

gpu=yes
if ! nvidia-smi -L > "$OUT/gpus.txt" 2>&1 || ! grep -q "^GPU" "$OUT/gpus.txt"; then
  gpu=no
  say "no GPU is present (nvidia-smi finds none): DRY RUN — nothing below is measured"
fi
model=${GPU:-$(grep -o -i -m1 -E "A100|H100|H200" "$OUT/gpus.txt" | tr 'A-Z' 'a-z')}
model=${model:-h100}
say "the time model for $model (runtime/profile/gpus.ts)"
node node_modules/typescript/bin/tsc -p tsconfig.json || { echo "ncu.sh: tsc failed"; exit 1; }
node dist/bench/gpu/predict.js --gpu "$model" "$OUT/modelled.jsonl" --json "$OUT/predicted.jsonl" || exit 1

binary="$OUT/micro_kernels"
if command -v nvcc > /dev/null 2>&1; then
  say "nvcc: the micro-kernels for sm_80 and sm_90"
  nvcc -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -I runtime/include \
    bench/gpu/micro_kernels.cu -o "$binary" || { echo "ncu.sh: nvcc failed"; exit 1; }
else
  say "nvcc is not on PATH: the micro-kernels are not built"
  binary=""
fi

if [[ "$gpu" == no || -z "$binary" ]] || ! command -v ncu > /dev/null 2>&1; then
  [[ "$gpu" == yes ]] && say "ncu is not on PATH: nothing is measured"
  say "micro-kernels: modelled counters only (measured: n/a)"
  python3 bench/gpu/ncu_table.py "$OUT/modelled.jsonl" "$OUT/predicted.jsonl" | tee "$OUT/table.txt"
  say "NIN kernels: skipped (needs a GPU); on one this runs ncu on a training step of models/nin.model"
  exit 0
fi

say "measured: ncu on the micro-kernels"
ncu --metrics "$metrics" --csv --print-units base "$binary" > "$OUT/ncu-micro.csv" 2> "$OUT/ncu-micro.log" ||
  { tail -20 "$OUT/ncu-micro.log"; echo "ncu.sh: ncu failed on the micro-kernels"; exit 1; }
python3 bench/gpu/ncu_table.py "$OUT/modelled.jsonl" "$OUT/predicted.jsonl" "$OUT/ncu-micro.csv" | tee "$OUT/table.txt"

say "measured: ncu on one NIN training step and inference at batch 128 (models/nin.model, target cuda)"
if [[ -f dist/bench/gpu/nincc.js ]]; then
  timeout 300 ncu --metrics "$metrics" --csv --print-units base --target-processes all \
    node dist/bench/gpu/nincc.js --device cuda --target cuda --batches 128 --runs 1 --warmup 0 \
    > "$OUT/ncu-nin.csv" 2> "$OUT/ncu-nin.log" || { tail -20 "$OUT/ncu-nin.log"; echo "ncu.sh: ncu on NIN failed"; }
  # The emulator's counts of generated kernels come with `nincc profile` (not yet: docs/profile.md).
  grep '^"' "$OUT/ncu-nin.csv" | cut -d, -f5,13,15 | sort | uniq | head -80
else
  echo "dist/bench/gpu/nincc.js is missing: run npx tsc -p tsconfig.json first"
fi
