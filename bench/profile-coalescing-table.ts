// Each kernel's coalescing from two `nincc profile --write-report` runs (predictions-GPU-bN.json), before and
// after a change, as a markdown table for bench/RESULTS.md: load and store efficiency, the excess over the
// fewest sectors (runtime/profile/profile-coalescing.ts), predicted µs and bound.
//   node dist/bench/profile-coalescing-table.js BEFORE.json AFTER.json
import { readFileSync } from 'node:fs';
import type { KernelProfile, ProfileReport } from '../runtime/profile/run-profile.js';

const pct = (f: number) => `${(100 * f).toFixed(0)}%`;
const excess = (f: number) => (f < 0.005 ? 'full' : `+${(100 * f).toFixed(0)}%`);
const cell = (k: KernelProfile) =>
  `${pct(k.coalescing.load.efficiency)} (${excess(k.coalescing.load.excess)}) / ${pct(k.coalescing.store.efficiency)} (${excess(k.coalescing.store.excess)}), ${k.prediction.micros.toFixed(1)} ${k.prediction.bound}`;

function main(args: readonly string[]): number {
  if (args.length !== 2) {
    process.stderr.write('usage: profile-coalescing-table BEFORE.json AFTER.json (predictions-*.json of nincc profile --write-report)\n');
    return 2;
  }
  const [before, after] = args.map((f) => JSON.parse(readFileSync(f, 'utf8')) as ProfileReport);
  const key = (k: KernelProfile) => `${k.phase} ${k.kernel}`;
  const old = new Map(before.kernels.map((k) => [key(k), k]));
  const lines = ['| phase | kernel | before: ld eff (excess) / st eff (excess), µs bound | after |', '|---|---|---|---|'];
  for (const k of after.kernels) {
    const b = old.get(key(k));
    lines.push(`| ${k.phase} | ${k.kernel} | ${b ? cell(b) : '—'} | ${cell(k)} |`);
  }
  const ms = (r: ProfileReport, phase: 'infer' | 'train') => (phase === 'infer' ? r.inferMicros : r.trainMicros) / 1000;
  lines.push('', `inference ${ms(before, 'infer').toFixed(3)} → ${ms(after, 'infer').toFixed(3)} ms; training step ${ms(before, 'train').toFixed(3)} → ${ms(after, 'train').toFixed(3)} ms`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
