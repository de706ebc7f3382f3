#!/usr/bin/env bash
# Two checkouts' builds of one spec A/B, each loaded by its own checkout's runtime (dist/runtime/model.js and its
# native addon) in a process of its own under `chrt -f 20` (SCHED_FIFO; root only), the order swapping each round:
# the median microseconds of CALLS inference calls or training steps (lr 0, so the weights stay) at BATCH after
# three warm-ups, per round, with `uptime` before and after. For a suspected regression between two commits, where
# bench/cpu/cpu-small-ab.ts times inference only and through one checkout's runtime.
#   bash bench/cpu/checkout-ab.sh infer|train BATCH CALLS ROUNDS CHECKOUT_A:ARTIFACT_A CHECKOUT_B:ARTIFACT_B
# (each checkout built: npx tsc -p tsconfig.json && npm run build:native; each artifact by its checkout's nincc build).
set -euo pipefail
mode=$1 batch=$2 calls=$3 rounds=$4
shift 4
child='
const [checkout, dir, mode, batch, calls] = process.argv.slice(1);
const { load } = await import(`${checkout}/dist/runtime/model.js`);
const m = await load(dir, { device: "cpu", seed: 1 });
const x = new Float32Array(batch * m.info.input.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
const y = Int32Array.from({ length: batch }, (_, i) => i % m.info.classes);
const run = mode === "train" ? () => m.trainStep(x, y, { lr: 0, momentum: 0.9, weightDecay: 5e-4 }) : () => m.infer(x);
const us = [];
for (let i = 0; i < Number(calls) + 3; i++) { const t0 = performance.now(); await run(); if (i >= 3) us.push((performance.now() - t0) * 1000); }
us.sort((a, b) => a - b);
console.log(us[us.length >> 1].toFixed(1));
m.dispose();'
echo "$mode batch $batch, $calls calls a round, $rounds rounds, chrt -f 20, OMP_NUM_THREADS=${OMP_NUM_THREADS:-(default)}"
for s in "$@"; do echo "  ${s%%:*} runs ${s#*:}"; done
uptime
for r in $(seq 1 "$rounds"); do
  subjects=("$@")
  if (( r % 2 == 0 )); then subjects=("$2" "$1"); fi
  line="round $r:"
  for s in "${subjects[@]}"; do
    line+=" $(basename "${s%%:*}"):$(basename "${s#*:}")=$(chrt -f 20 node --input-type=module -e "$child" "${s%%:*}" "${s#*:}" "$mode" "$batch" "$calls")"
  done
  echo "$line"
done
uptime
