// `nincc profile DIR --write-report`: the profile's per-kernel predictions written into the artifact —
// predictions-<gpu>-b<batch>.json (the whole profile, with the plan's source hash and the model's stated
// error) and report.txt's kernel table (compiler/report/kernel-table.ts), each replaced atomically. Neither
// file is sealed by plan.json's integrity hashes (they are read by people and tools, never by the runtime).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../compiler/emit/plan.js';
import { withPredictions, type TablePredictions } from '../../compiler/report/kernel-table.js';
import type { ProfileReport } from './run-profile.js';

/** One cell per kernel: its predicted µs and bound per phase, summed over its launches in that phase. */
export function predictionCells(r: ProfileReport): Map<string, string> {
  const cells = new Map<string, string[]>();
  for (const k of r.kernels) {
    const cell = `${k.prediction.micros.toFixed(1)} µs ${k.prediction.bound}${k.launches > 1 ? ` ×${k.launches}` : ''}${k.phase === 'infer' ? ' (infer)' : ''}`;
    cells.set(k.kernel, [...(cells.get(k.kernel) ?? []), cell]);
  }
  return new Map([...cells].map(([kernel, parts]) => [kernel, parts.join(' + ')]));
}

/** The table's second heading line: which GPU, batch and precision, how it was predicted, and how far to trust it. */
export function predictionSource(r: ProfileReport, precision: string, errorBand: string): string {
  const sampled = r.sample === 0 ? 'every block run' : `${r.sample} blocks per class run, scaled to the grid`;
  const occupancy = r.occupancyKnown ? 'occupancy from ptxas' : 'occupancy unknown (no nvcc): one block per SM assumed';
  return (
    `predicted for ${r.gpu}, batch ${r.batch}, ${precision}, by \`nincc profile\` (emulator counters, ${sampled}; ${occupancy}): ` +
    `µs per inference batch (infer) or training step, summed over the kernel's launches, and the bounding pipe; ${errorBand}`
  );
}

const replace = (path: string, text: string) => {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
};

/** Writes the predictions into the artifact `dir`; returns the two paths written. */
export function writePredictions(dir: string, gpuKey: string, r: ProfileReport, errorBand: string): { json: string; report: string } {
  const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan;
  const precision = plan.precision ?? 'fp32';
  const table: TablePredictions = { source: predictionSource(r, precision, errorBand), cells: predictionCells(r) };
  const reportPath = join(dir, 'report.txt');
  const report = withPredictions(readFileSync(reportPath, 'utf8'), table); // throws before anything is written
  const json = join(dir, `predictions-${gpuKey}-b${r.batch}.json`);
  replace(json, `${JSON.stringify({ format: 'nincc-predictions', version: 1, sourceHash: plan.sourceHash, precision, errorBand, ...r }, null, 1)}\n`);
  replace(reportPath, report);
  return { json, report: reportPath };
}
