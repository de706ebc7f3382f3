// Two `nincc profile --json` reports of one model side by side (issue #15, the HBM rule of
// runtime/profile/l2-reuse-hbm.ts): per kernel the HBM sectors and predicted µs before and after, the
// bound, and a check that every other counter is the same (the same sampled blocks), so the change in
// time is the HBM rule's alone. Markdown rows for bench/RESULTS.md.
//   npx tsc -p tsconfig.json && node dist/bench/l2-reuse-compare.js BEFORE.json AFTER.json
import { readFileSync } from 'node:fs';
import type { ProfileReport } from '../runtime/profile/run-profile.js';

const [beforeFile, afterFile] = process.argv.slice(2);
if (!beforeFile || !afterFile) throw new Error('usage: l2-reuse-compare.js BEFORE.json AFTER.json');
const before = JSON.parse(readFileSync(beforeFile, 'utf8')) as ProfileReport;
const after = JSON.parse(readFileSync(afterFile, 'utf8')) as ProfileReport;
/** Counters both reports have: the ones the HBM rule does not touch. */
const SAME = ['blocks', 'ffma', 'mma_tf32_m16n8k8', 'mma_bf16_m16n8k16', 'global_load_sectors', 'global_store_sectors', 'async_copy_sectors', 'shared_load_wavefronts', 'shared_store_wavefronts', 'shared_bank_conflicts', 'unique_global_sectors'] as const;
const M = (n: number) => (n / 1e6).toFixed(2);
const rows: string[] = [];
let differing = 0;
for (const phase of ['infer', 'train'] as const) {
  rows.push('', `${phase === 'infer' ? 'inference batch' : 'training step'}:`, '', '| kernel | HBM sectors before → after (M) | µs before → after | bound before → after |', '|---|---|---|---|');
  for (const a of after.kernels.filter((k) => k.phase === phase)) {
    const b = before.kernels.find((k) => k.phase === phase && k.kernel === a.kernel);
    if (!b) throw new Error(`${a.kernel} (${phase}) is not in ${beforeFile}`);
    for (const c of SAME)
      if (b.counts[c] !== a.counts[c]) {
        differing++;
        console.error(`${a.kernel} ${phase}: ${c} ${b.counts[c]} → ${a.counts[c]}`);
      }
    const hbmBefore = b.counts.unique_global_sectors; // the old rule: the sample's distinct sectors, scaled
    rows.push(`| ${a.kernel} | ${M(hbmBefore)} → ${M(a.prediction.hbmSectors)} | ${b.prediction.micros.toFixed(1)} → ${a.prediction.micros.toFixed(1)} | ${b.prediction.bound} → ${a.prediction.bound} |`);
  }
}
console.log(`${after.model} on ${after.gpu}, batch ${after.batch}, ${after.sample} blocks per class`);
console.log(`inference batch: ${(before.inferMicros / 1000).toFixed(3)} → ${(after.inferMicros / 1000).toFixed(3)} ms; training step: ${(before.trainMicros / 1000).toFixed(3)} → ${(after.trainMicros / 1000).toFixed(3)} ms`);
console.log(`training images/s: ${Math.round((before.batch / before.trainMicros) * 1e6)} → ${Math.round((after.batch / after.trainMicros) * 1e6)}`);
console.log(`counters other than HBM's that differ: ${differing}`);
console.log(rows.join('\n'));
