// `nincc inspect`: the Torch printout, a per-layer table (shape, parameters, MACs, spec line) and totals.
import type { ShapedModel } from '../ir.js';
import { torchModuleString, torchPrint } from './torch-print.js';

export interface InspectLayer {
  readonly index: number;
  readonly torch: string;
  readonly output: readonly number[];
  readonly params: number;
  readonly macs: number;
  readonly line: number; // the spec line of the layer call
  readonly calledFrom?: number; // the line of the outermost def call that produced it
}

export interface InspectJson {
  readonly model: string;
  readonly input: readonly number[];
  readonly layers: readonly InspectLayer[];
  readonly totals: { readonly params: number; readonly macs: number };
}

export function inspectJson(m: ShapedModel): InspectJson {
  return {
    model: m.name,
    input: m.input,
    layers: m.layers.map((l) => {
      const outer = l.callSites[l.callSites.length - 1];
      return {
        index: l.index,
        torch: torchModuleString(l),
        output: l.output,
        params: l.params,
        macs: l.macs,
        line: l.span.start.line,
        ...(outer ? { calledFrom: outer.span.start.line } : {}),
      };
    }),
    totals: m.totals,
  };
}

const grouped = (n: number) => n.toLocaleString('en-US');

function table(rows: readonly string[][], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export function inspectText(m: ShapedModel): string {
  const j = inspectJson(m);
  const file = m.file.split('/').pop() ?? m.file;
  const rows = [['#', 'layer', 'output', 'params', 'MACs', 'spec line']];
  for (const l of j.layers) {
    const where = l.calledFrom !== undefined ? `${file}:${l.line} (called at ${l.calledFrom})` : `${file}:${l.line}`;
    rows.push([String(l.index), l.torch, l.output.join('x'), grouped(l.params), grouped(l.macs), where]);
  }
  const gmac = m.totals.macs / 1e9;
  const header = [`model ${m.name}: input ${m.input.join('x')}${m.imageSize ? `, imageSize ${m.imageSize}` : ''}, output ${m.output.join('x')}`];
  if (m.transform) header.push(`transform: mean ${m.transform.mean.join(' ')}  std ${m.transform.std.join(' ')}`);
  return [
    torchPrint(m.layers),
    '',
    header.join('\n'),
    '',
    table(rows, new Set([0, 3, 4])),
    '',
    `total: ${grouped(m.totals.params)} parameters, ${grouped(m.totals.macs)} multiply-accumulates per image (${gmac.toFixed(3)} GMAC, ${(2 * gmac).toFixed(3)} GFLOP forward)`,
  ].join('\n');
}
