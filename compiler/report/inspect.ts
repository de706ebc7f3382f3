// `nincc inspect`: the Torch printout, a per-layer table (shape, parameters, MACs, spec line) and totals.
import { isBlock, opLayers, type ShapedModel, type ShapedNetNode, type ShapedNetwork } from '../ir.js';
import { isOneModule, mergeClass, torchModuleString, torchPrint } from './torch-print.js';

export interface InspectLayer {
  readonly index: number;
  /** Torch's module path inside blocks (`4.1.2`: module 2 of branch 1 of module 4); absent at the top level. */
  readonly path?: string;
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

/** The rows of a node list in Torch's order: each layer, and after a block's branches the module that merges them. */
function rows(nodes: readonly ShapedNetNode[], prefix: string, bare = false): InspectLayer[] {
  return nodes.flatMap((n) => {
    // `bare`: the node is its branch's only module, so its path is the branch's.
    const path = prefix === '' ? undefined : bare ? prefix.slice(0, -1) : `${prefix}${n.index}`;
    const outer = n.callSites[n.callSites.length - 1];
    const row = (index: number, p: string | undefined, torch: string, params: number, macs: number): InspectLayer => ({
      index,
      ...(p !== undefined ? { path: p } : {}),
      torch,
      output: n.output,
      params,
      macs,
      line: n.span.start.line,
      ...(outer ? { calledFrom: outer.span.start.line } : {}),
    });
    if (!isBlock(n)) return [row(n.index, path, torchModuleString(n), n.params, n.macs)];
    // A branch of one module is that module; of several, an nn.Sequential: its modules' paths go one level deeper.
    const inside = n.branches.flatMap((b, i) => rows(b.nodes, `${path ?? n.index}.${i + 1}.`, isOneModule(b.nodes)));
    // The row of the module whose output is the block's: a residual's CAddTable (the module after its ConcatTable), else the Concat.
    if (n.kind === 'residual') return [...inside, row(n.index + 1, prefix === '' ? undefined : `${prefix}${n.index + 1}`, mergeClass.residual, 0, 0)];
    return [...inside, row(n.index, path, mergeClass[n.kind], 0, 0)];
  });
}

/** A chain model (what lowering takes) prints as the network it was opened from, or is one without blocks. */
const nodesOf = (m: ShapedNetwork | ShapedModel) => ('nodes' in m ? m.nodes : (m.network ?? opLayers(m.layers)));

export function inspectJson(m: ShapedNetwork | ShapedModel): InspectJson {
  return { model: m.name, input: m.input, layers: rows(nodesOf(m), ''), totals: m.totals };
}

const grouped = (n: number) => n.toLocaleString('en-US');

function table(rows: readonly string[][], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export function inspectText(m: ShapedNetwork | ShapedModel): string {
  const j = inspectJson(m);
  const file = m.file.split('/').pop() ?? m.file;
  const cells = [['#', 'layer', 'output', 'params', 'MACs', 'spec line']];
  for (const l of j.layers) {
    const where = l.calledFrom !== undefined ? `${file}:${l.line} (called at ${l.calledFrom})` : `${file}:${l.line}`;
    cells.push([l.path ?? String(l.index), l.torch, l.output.join('x'), grouped(l.params), grouped(l.macs), where]);
  }
  const gmac = m.totals.macs / 1e9;
  const header = [`model ${m.name}: input ${m.input.join('x')}${m.imageSize ? `, imageSize ${m.imageSize}` : ''}, output ${m.output.join('x')}`];
  if (m.transform) header.push(`transform: mean ${m.transform.mean.join(' ')}  std ${m.transform.std.join(' ')}`);
  return [
    torchPrint(nodesOf(m)),
    '',
    header.join('\n'),
    '',
    table(cells, new Set([0, 3, 4])),
    '',
    `total: ${grouped(m.totals.params)} parameters, ${grouped(m.totals.macs)} multiply-accumulates per image (${gmac.toFixed(3)} GMAC, ${(2 * gmac).toFixed(3)} GFLOP forward)`,
  ].join('\n');
}
