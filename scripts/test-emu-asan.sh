#!/usr/bin/env bash
# The emu kernel tests (test/emu-*.test.ts) under AddressSanitizer: every emu library they build is
# compiled with NINCC_EMU_ASAN=1 (-fsanitize=address, a separate cache key), node itself is not
# instrumented, so libasan comes in by LD_PRELOAD (leak checking off: node's own allocations are not
# ours). First a probe proves the setup still catches something: a deliberately out-of-bounds emu
# kernel (runtime/emu-test/asan-probe/) must be reported with its source line.
#   bash scripts/test-emu-asan.sh            # needs the built addon (npm install) and g++ with libasan
#   ASAN_ALL=1 bash scripts/test-emu-asan.sh # every emu test, not CI's sample (about ten minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
libasan=$(g++ -print-file-name=libasan.so)
if [[ ! -e "$libasan" || "$libasan" == libasan.so ]]; then
  echo "== emu tests under ASan: skipped (g++ has no libasan.so)"; exit 0
fi
export NINCC_EMU_ASAN=1
# fast_unwind_on_fatal=1: report stacks by frame pointers, which end at each fiber's first frame
# (emu/fiber.h); libgcc's unwinder walks off the fiber trampoline, which has no CFI, and crashes.
asan_env=(env LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0:fast_unwind_on_fatal=1)

echo "== ASan probe: an out-of-bounds emu kernel must be reported"
probe=$(mktemp -d)
trap '[[ -n "${KEEP_PROBE:-}" ]] || rm -rf "$probe"' EXIT
# Compiled by the tests' own ASan emu command (toolchain.ts emuCompilerCommand, NINCC_EMU_ASAN=1 exported above, at
# vitest.config.ts's NINCC_EMU_OPT=-O1): the report's source line below comes from its -g1 line tables.
mapfile -t probe_cc < <(NINCC_EMU_OPT=-O1 node --input-type=module -e '
  const { emuCompilerCommand } = await import("./dist/compiler/backends/cuda/toolchain.js");
  for (const a of emuCompilerCommand(process.argv[1], process.argv[2])) console.log(a);' runtime/emu-test/asan-probe/kernels.cu "$probe/kernels.emu.so")
"${probe_cc[@]}"
# The runtime checks plan.json's integrity seal before it opens a library: seal the edited plan as nincc build does.
node --input-type=module -e '
  import fs from "node:fs";
  import { sealPlan } from "./dist/compiler/emit/integrity.js";
  const plan = JSON.parse(fs.readFileSync("runtime/core/tests/fixture/plan.json", "utf8"));
  plan.libraries = { emu: "kernels.emu.so" };
  // Only the probe kernel: the runtime resolves every step before the first runs.
  plan.programs.infer.steps = [{ ...plan.programs.infer.steps[0], launch: { grid: [1, 1, 1], block: [32, 1, 1], shared: 0 } }];
  fs.writeFileSync(process.argv[1] + "/plan.json", sealPlan(plan, process.argv[1]));' "$probe"
set +e
"${asan_env[@]}" node -e '
  const m = require("./runtime/build/addon/Release/nincc.node").load(process.argv[1], "emu");
  m.setInput("infer", "images", new Float32Array(4).fill(1), 1);
  m.run("infer", 1, { scale: 2, shift: 1 }, 0).then(() => console.log("probe ran without a report"));' "$probe" 2> "$probe/stderr"
code=$?
set -e
if [[ $code -ne 0 ]] && grep -q "heap-buffer-overflow" "$probe/stderr" && grep -q "SUMMARY: AddressSanitizer: heap-buffer-overflow runtime/emu-test/asan-probe/kernels.cu:11 in k_scale_add" "$probe/stderr"; then
  echo "ASan probe: reported (heap-buffer-overflow at runtime/emu-test/asan-probe/kernels.cu:11)"
else
  cat "$probe/stderr"; echo "FAILED: the ASan probe was not reported (exit $code)"; exit 1
fi

# A sample, for CI's time (every ASan build is a cold g++ compile, and all of test/emu-*.test.ts took
# ten minutes on 2 cores): the small specs that together reach every kernel family and edge case of
# the generated CUDA (fused conv/BN/ReLU paths and their partial tiles, odd pool windows, strides and
# pads, BN after a pool, dropout, every dense/loss kernel), forward, backward and inference (BN folded).
# Both files build a spec when a test first needs it, so only these compile. The NIN-sized runs, the
# NINCC_EMU_CHECKS build and the build-only tests run without ASan in npm test. ASAN_ALL=1 runs all.
# The sample runs as two vitest processes side by side, two specs each: each spec's build and run is
# one g++ or one emulating thread, so one process left a core of CI's two idle for four minutes.
# Only the two files that hold those tests are passed: vitest imports every file it is given, even when -t skips
# all of its tests, and importing the other emu files (each compiles its specs' kernels at load) took 309 s a part.
# Paired by their times on CI (round 13, cold: fused_paths 113 s, dropout_mlp 47 s, odds_and_ends 184 s, every_layer
# 189 s): the slowest with the fastest, about 300 s and 230 s a part, where the old pairing took 160 s and 373 s.
halves=('fused_paths|every_layer' 'odds_and_ends|dropout_mlp')
files=(test/emu-train.test.ts test/emu-infer.test.ts)
[[ -n "${ASAN_ALL:-}" ]] && halves=('') && files=(test/emu-*.test.ts)
echo "== test/emu-*.test.ts with NINCC_EMU_ASAN=1 under LD_PRELOAD=$libasan${ASAN_ALL:+ (all)}"
[[ -z "${ASAN_ALL:-}" ]] && echo "   (the tests named by: ${halves[0]}|${halves[1]}, in two processes)"
# nvcc checks nothing ASan can see: leave it out here. Within a process one file at a time: the second
# finds the (ASan) emu libraries the first compiled in the cache.
logs=$(mktemp -d)
pids=()
for i in "${!halves[@]}"; do
  filter=()
  [[ -n "${halves[$i]}" ]] && filter=(-t "${halves[$i]}")
  NINCC_NVCC=0 "${asan_env[@]}" npx vitest run --no-file-parallelism "${filter[@]}" "${files[@]}" > "$logs/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed=1
  # A renamed test would leave its filter matching nothing, which vitest passes: each part must have run tests.
  sed "s/\x1b\[[0-9;]*m//g" "$logs/$i.log" | grep -Eq "Tests .*[^0-9][1-9][0-9]* passed" || { echo "FAILED: part $((i + 1)) ran no test"; failed=1; }
  echo "-- part $((i + 1)) of ${#pids[@]}${halves[$i]:+ (${halves[$i]})}"
  cat "$logs/$i.log"
done
rm -rf "$logs"
echo "emu tests under ASan: $(( $(date +%s) - started )) s"
[[ $failed -eq 0 ]] || { echo "FAILED: emu tests under ASan"; exit 1; }
