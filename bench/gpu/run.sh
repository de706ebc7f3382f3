#!/usr/bin/env bash
# The GPU benchmark and GPU tests in one run (docs/design.md §8), for a machine with an NVIDIA GPU and driver.
#
# Needs: nvcc (CUDA 12+), cmake ≥ 3.18, g++, xz; python3 with PyTorch (CUDA build) for the comparison
# (skipped when absent). Node: `node` on PATH, or bench/gpu/node.xz (made here by
# `bash bench/gpu/pack-node.sh`; Node's binary needs only glibc), unpacked to bench/gpu/.node/. The npm
# packages come with the tree: carry node_modules/ (and, to skip rebuilding, dist/ and
# runtime/build/addon/) from a machine that ran `npm install`; nothing is downloaded here.
#
#   bash bench/gpu/run.sh                 # everything, under 10 minutes (each step has a timeout); outputs under $OUT (default bench/gpu/out)
#   RUNS=5 COMPILE=0 bash bench/gpu/run.sh   # quicker: fewer timed runs, no torch.compile
#
# Steps: build the TypeScript and the addon where missing, `nincc build models/nin.model --target
# cuda`, `npm run test:gpu` with NINCC_REQUIRE_GPU=1 (vitest with vitest.gpu.config.ts; the run stops if it fails), nincc's train/infer images/s at batch
# 128 and 1 on device cuda (bench/gpu/nincc.ts), the same NIN in PyTorch eager+cuDNN fp32 and bf16
# autocast (channels_last) and torch.compile (bench/gpu/torch_nin.py), then one table.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/gpu/out}
RUNS=${RUNS:-20}
mkdir -p "$OUT"
started=$(date +%s)
say() { echo "== $* ($(( $(date +%s) - started )) s)"; }
fail() { echo "bench/gpu/run.sh: $*" >&2; exit 1; }

if ! command -v node >/dev/null 2>&1; then
  [[ -f bench/gpu/node.xz ]] || fail "no node on PATH and no bench/gpu/node.xz (make it with bash bench/gpu/pack-node.sh where node exists)"
  mkdir -p bench/gpu/.node/bin
  [[ -x bench/gpu/.node/bin/node ]] || { xz -dc bench/gpu/node.xz > bench/gpu/.node/bin/node && chmod +x bench/gpu/.node/bin/node; }
  export PATH="$PWD/bench/gpu/.node/bin:$PATH"
fi
[[ -d node_modules/vitest && -d node_modules/cmake-js && -d node_modules/typescript ]] ||
  fail "node_modules/ is missing or incomplete: carry it from a machine that ran npm install"
command -v nvcc >/dev/null 2>&1 || fail "nvcc is not on PATH (the cuda target needs it)"
{ echo "node $(node --version), $(nvcc --version | grep release)"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null; } | tee "$OUT/machine.txt"

say "TypeScript → dist/"
node node_modules/typescript/bin/tsc -p tsconfig.json || fail "tsc failed"
if [[ ! -f runtime/build/addon/Release/nincc.node ]]; then
  say "the native addon (cmake-js)"
  node node_modules/cmake-js/bin/cmake-js compile --out runtime/build/addon --log-level error || fail "the addon did not build"
fi
node -e 'const d = require("./runtime/build/addon/Release/nincc.node").devices(); console.log("runtime devices:", d.join(", ")); if (!d.includes("cuda")) process.exit(1)' ||
  echo "WARNING: the runtime sees no cuda device; the nincc cuda figures will be missing" | tee -a "$OUT/machine.txt"

say "nincc build models/nin.model --target cuda"
node bin/nincc build models/nin.model --target cuda -o build/bench-gpu/nin-cuda 2>&1 | tail -3
cp build/bench-gpu/nin-cuda/report.txt "$OUT/nin-report.txt" 2>/dev/null

say "npm run test:gpu"
# NINCC_REQUIRE_GPU=1: a suite that would skip (no device, no nvcc) fails; timing kernels that fail their tests means nothing.
NINCC_REQUIRE_GPU=1 timeout 180 node node_modules/vitest/vitest.mjs run --config vitest.gpu.config.ts > "$OUT/test-gpu.log" 2>&1
gpu_tests=$?
echo "test:gpu exit $gpu_tests ($(grep -E 'Tests ' "$OUT/test-gpu.log" | tail -1 | sed 's/\x1b\[[0-9;]*m//g'))" | tee "$OUT/test-gpu.summary"
[[ $gpu_tests == 0 ]] || fail "the GPU tests failed (exit $gpu_tests; $OUT/test-gpu.log): no timings"

say "nincc cuda: NIN train and infer at batch 128 and 1"
timeout 150 node dist/bench/gpu/nincc.js --device cuda --target cuda --batches 128,1 --runs "$RUNS" --json "$OUT/nincc.json" | tee "$OUT/nincc.txt"

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  say "PyTorch: eager fp32, eager bf16 autocast, torch.compile bf16 (channels_last)"
  compile=(); [[ "${COMPILE:-1}" == 0 ]] && compile=(--no-compile)
  timeout 200 python3 bench/gpu/torch_nin.py --batches 128,1 --runs "$RUNS" "${compile[@]}" --json "$OUT/torch.json" | tee "$OUT/torch.txt"
else
  echo "PyTorch with CUDA is not available here: no comparison" | tee "$OUT/torch.txt"
fi

say "table"
node -e '
  const fs = require("fs"), out = process.argv[1];
  const read = (f) => { try { return JSON.parse(fs.readFileSync(`${out}/${f}`, "utf8")); } catch { return { rows: [] }; } };
  const nincc = read("nincc.json"), torch = read("torch.json");
  const rows = [...nincc.rows, ...torch.rows];
  const lines = [`NIN 224², images/s (median of runs)${torch.gpu ? ` on ${torch.gpu}, torch ${torch.torch}` : ""}`, "engine               mode   batch 128   batch 1"];
  for (const engine of [...new Set(rows.map((r) => r.engine))]) for (const mode of ["train", "infer"]) {
    const cell = (n) => { const r = rows.find((x) => x.engine === engine && x.mode === mode && x.batch === n); return r ? (r.imagesPerSecond ? r.imagesPerSecond.toFixed(1) : "n/a") : "-"; };
    lines.push(`${engine.padEnd(20)} ${mode.padEnd(5)} ${cell(128).padStart(10)} ${cell(1).padStart(9)}`);
  }
  fs.writeFileSync(`${out}/table.txt`, lines.join("\n") + "\n");
  console.log(lines.join("\n"));' "$OUT"
say "done; outputs in $OUT"
