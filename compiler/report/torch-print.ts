// Prints a model the way Torch7's print(model) does: nn.Sequential:__tostring__ (the seed's printouts are golden)
// and, for blocks, the nn.ConcatTable / nn.Concat / nn.DepthConcat tree with nn.CAddTable after a residual.
import { isBlock, type Block, type MergeOp, type NetLayerOp, type NetNode } from '../ir.js';
import { layerSpecs } from '../front/layers.js';

/** One module's line as Torch7's __tostring__ of that class writes it (a lowered block's merge: its merging module). */
export function torchModuleString(l: NetLayerOp | MergeOp): string {
  if (l.kind === 'add') return mergeClass.residual;
  if (l.kind === 'concat') return `${mergeClass.concat}(2)`;
  const name = layerSpecs[l.kind].torch;
  switch (l.kind) {
    case 'conv': {
      const a = l.attrs;
      let s = `${name}(${a.nIn} -> ${a.nOut}, ${a.kW}x${a.kH}`;
      if (a.dW !== 1 || a.dH !== 1 || a.padW !== 0 || a.padH !== 0) s += `, ${a.dW},${a.dH}`;
      if (a.padW !== 0 || a.padH !== 0) s += `, ${a.padW},${a.padH}`;
      return a.bias ? `${s})` : `${s}) without bias`;
    }
    case 'maxpool': {
      const a = l.attrs;
      return `${name}(${a.kW},${a.kH},${a.dW},${a.dH},${a.padW},${a.padH})`;
    }
    case 'avgpool': {
      // The seed's Torch printed SpatialAveragePooling as (kW,kH,dW,dH); padding, when present, follows.
      const a = l.attrs;
      const pad = a.padW !== 0 || a.padH !== 0 ? `,${a.padW},${a.padH}` : '';
      return `${name}(${a.kW},${a.kH},${a.dW},${a.dH}${pad})`;
    }
    case 'view':
      return `${name}(${l.attrs.sizes.join('x')})`;
    case 'linear': {
      const a = l.attrs;
      return `${name}(${a.nIn} -> ${a.nOut})${a.bias ? '' : ' without bias'}`;
    }
    case 'dropout':
      return `${name}(${l.attrs.p.toFixed(6)})`;
    case 'zeropad': {
      const a = l.attrs;
      return `${name}(l=${a.l}, r=${a.r}, t=${a.t}, b=${a.b})`;
    }
    case 'bn':
    case 'relu':
    case 'logsoftmax':
    case 'softmax':
    case 'lrn':
    case 'threshold':
    case 'tanh':
    case 'sigmoid':
    case 'identity':
      return name;
  }
}

/** A branch of one Torch module is that module; of more (a residual block is two), an nn.Sequential of them. */
export const isOneModule = (nodes: readonly NetNode[]) => nodes.length === 1 && nodes[0].kind !== 'residual';

/** The Torch module that holds a block's branches, and the one whose output is the block's (a residual's CAddTable after its ConcatTable). */
export const containerClass = { residual: 'nn.ConcatTable', concat: 'nn.Concat', depthconcat: 'nn.DepthConcat' } as const;
export const mergeClass = { residual: 'nn.CAddTable', concat: containerClass.concat, depthconcat: containerClass.depthconcat } as const;

/**
 * A container of branches as Torch's ConcatTable/Concat:__tostring__ writes it: `input`, a `|`-> (i): ` line per
 * branch (the last one `` `-> ``) with the branch's own lines indented under it, then `... -> output`.
 */
function branchesString(b: Block<NetNode>): string {
  const lines = [`${containerClass[b.kind]} {`, '  input'];
  b.branches.forEach((branch, i) => {
    const last = i === b.branches.length - 1;
    const text = isOneModule(branch.nodes) ? moduleString(branch.nodes[0]) : sequentialString(branch.nodes);
    lines.push(`  ${last ? '   `-> ' : '  |`-> '}(${i + 1}): ${text.replace(/\n/g, `\n  ${last ? '       ' : '  |    '}`)}`);
  });
  lines.push('     ... -> output', '}');
  return lines.join('\n');
}

function moduleString(n: NetNode): string {
  return isBlock(n) ? branchesString(n) : torchModuleString(n);
}

/** The Torch modules a node list holds, with their indices: a residual block is its ConcatTable then a CAddTable. */
function modules(nodes: readonly NetNode[]): { index: number; text: string }[] {
  return nodes.flatMap((n) => {
    const own = { index: n.index, text: moduleString(n) };
    return n.kind === 'residual' ? [own, { index: n.index + 1, text: mergeClass.residual }] : [own];
  });
}

/** Torch's nn.Sequential:__tostring__: the arrow line, then each module with its continuation lines indented. */
function sequentialString(nodes: readonly NetNode[]): string {
  const list = modules(nodes);
  const arrows = list.map((m) => ` -> (${m.index})`).join('');
  const lines = ['nn.Sequential {', `  [input${arrows} -> output]`];
  for (const m of list) lines.push(`  (${m.index}): ${m.text.replace(/\n/g, '\n  ')}`);
  lines.push('}');
  return lines.join('\n');
}

export function torchPrint(nodes: readonly NetNode[]): string {
  return sequentialString(nodes);
}
