// report.txt's per-kernel table (issue #15): every CUDA kernel with its predicted time, its tile
// configuration (the tensor-core kernels and the fp32 SIMT convs) or launch geometry (the others), and what it fuses. A build writes
// it with no prediction; `nincc profile DIR --write-report` rewrites the predicted column and the heading
// (withPredictions), leaving every other line of report.txt as the build wrote it.
import type { PlanLaunch } from '../emit/plan.js';

export interface KernelRow {
  readonly name: string;
  readonly tile?: string;
  readonly fused: string; // '' for a plain kernel
  readonly launch: PlanLaunch;
}

/** What a profile predicted for the kernels it ran: the heading's words and one cell per kernel. */
export interface TablePredictions {
  /** Says which GPU, batch and precision, by what, and the model's stated error. */
  readonly source: string;
  /** kernel → its cell (e.g. "12.3 µs tensor"); kernels absent here were not launched by the profiled runs. */
  readonly cells: ReadonlyMap<string, string>;
}

const HEADING = 'CUDA kernels: predicted time | tile configuration (tensor-core kernels) or launch (grid × block) | fused parts';
const SEP = ' | ';
export const NOT_PREDICTED = 'predicted: run `nincc profile DIR --gpu G --batch N --write-report`';
const NOT_LAUNCHED = 'not in a profiled batch or step';
const PREDICTED_WIDTH = 24;

const dims = (d: readonly number[]) => d.join('×');
const shape = (k: KernelRow) => k.tile ?? `grid ${dims(k.launch.grid)}${k.launch.batchAxis !== undefined ? ` (batch on axis ${'xyz'[k.launch.batchAxis]})` : ''} × block ${dims(k.launch.block)}${k.launch.shared ? `, ${k.launch.shared} B dynamic smem` : ''}`;

function row(name: string, width: number, predicted: string, rest: string): string {
  return `  ${name.padEnd(width)}${SEP}${predicted.padEnd(PREDICTED_WIDTH)}${SEP}${rest}`;
}

/** The table as a build writes it: each row's prediction says how to get one, never a number. */
export function kernelTable(kernels: readonly KernelRow[]): string[] {
  const width = Math.max(0, ...kernels.map((k) => k.name.length));
  return [HEADING, `  ${NOT_PREDICTED}`, ...kernels.map((k) => row(k.name, width, '—', `${shape(k)}${SEP}${k.fused || 'nothing fused'}`))];
}

/**
 * `report` (a whole report.txt) with the table's predicted column and second heading line replaced by
 * `p`. Throws when the report has no kernel table, or when a predicted kernel has no row (the artifact
 * is not the one profiled).
 */
export function withPredictions(report: string, p: TablePredictions): string {
  const lines = report.split('\n');
  const at = lines.indexOf(HEADING);
  if (at < 0) throw new Error('report.txt has no per-kernel table (an artifact built before issue #15, or for the cpu target): rebuild it');
  const seen = new Set<string>();
  lines[at + 1] = `  ${p.source}`;
  for (let i = at + 2; i < lines.length && lines[i].startsWith('  '); i++) {
    const [name, , ...rest] = lines[i].slice(2).split(SEP);
    const kernel = name.trimEnd();
    seen.add(kernel);
    lines[i] = row(kernel, name.length, p.cells.get(kernel) ?? NOT_LAUNCHED, rest.join(SEP));
  }
  const missing = [...p.cells.keys()].filter((k) => !seen.has(k));
  if (missing.length > 0) throw new Error(`report.txt's kernel table has no row for ${missing.join(', ')}: the report is not this artifact's`);
  return lines.join('\n');
}
