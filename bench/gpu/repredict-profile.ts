// A `nincc profile --json` report's kernels predicted again by today's time model (runtime/profile/time-model.ts),
// from the counts and residency the report holds: what a change to the model alone does, without emulating again.
//   npx tsc -p tsconfig.json && node dist/bench/gpu/repredict-profile.js --gpu h100 PROFILE.json [--only PATTERN]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GPUS, gpuNamed, type GpuSpec } from '../../runtime/profile/gpus.js';
import type { ProfileReport } from '../../runtime/profile/run-profile.js';
import { predictKernel } from '../../runtime/profile/time-model.js';

const { values, positionals } = parseArgs({ options: { gpu: { type: 'string', default: 'h100' }, only: { type: 'string' } }, allowPositionals: true });
if (positionals.length !== 1) throw new Error('usage: repredict-profile.js --gpu a100|h100|h200 PROFILE.json [--only PATTERN]');
const report = JSON.parse(readFileSync(positionals[0], 'utf8')) as ProfileReport;
const gpu = gpuNamed(values.gpu ?? 'h100');
const reportGpu = Object.values(GPUS).find((g) => g.name === report.gpu);
const only = values.only ? new RegExp(values.only) : undefined;
const totals = { infer: [0, 0], train: [0, 0] };
console.log(`${report.model}, batch ${report.batch}: the report's µs (${report.gpu}) → today's model on ${gpu.name}; MMA·4096 / µs as % of each GPU's dense bf16 peak; residency as the report's (ptxas for sm_90 where it ran on an H100)`);
for (const k of report.kernels) {
  const now = predictKernel(k.counts, gpu, k.blocksPerSm ?? 1);
  totals[k.phase][0] += k.prediction.micros;
  totals[k.phase][1] += now.micros;
  const tensor = (micros: number, on: GpuSpec | undefined) => (k.counts.mma_bf16_m16n8k16 > 0 && on ? `${((100 * k.counts.mma_bf16_m16n8k16 * 4096) / (micros * 1e-6) / (on.bf16TensorTflops * 1e12)).toFixed(1)} %` : '');
  if (!only || only.test(k.kernel))
    console.log(`  ${k.phase.padEnd(5)} ${k.kernel.padEnd(30)} ${k.counts.blocks.toString().padStart(7)} blocks ${String(k.blocksPerSm ?? '?').padStart(2)}/SM  ${k.prediction.micros.toFixed(1).padStart(8)} → ${now.micros.toFixed(1).padStart(8)} µs  ${now.bound.padEnd(6)} ${tensor(k.prediction.micros, reportGpu).padStart(7)} → ${tensor(now.micros, gpu).padStart(7)}`);
}
for (const phase of ['infer', 'train'] as const) console.log(`${phase}: ${(totals[phase][0] / 1000).toFixed(3)} → ${(totals[phase][1] / 1000).toFixed(3)} ms`);
