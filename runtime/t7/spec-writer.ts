// The spec a Torch7 network is, as `.model` text: its modules as layers and its containers as blocks
// (runtime/t7/network-tree.ts), so `nincc import-t7 --write-spec` can import a file nobody wrote a spec for.
import { basename } from 'node:path';
import type { Shape } from '../../compiler/ir.js';
import type { FileNode } from './network-tree.js';
import { positionLabel, specLayerString, T7ImportError, viewModule, type Network } from './nn-modules.js';

export interface SpecOptions {
  /** The model's name; by default the file's base name made an identifier. */
  readonly name?: string;
  /** [C, H, W]: a .t7 file does not say what its network takes. */
  readonly input: Shape;
  /** The file's name, for the spec's first comment line. */
  readonly file: string;
}

/** `resnet-18.t7` → `resnet_18`: the spec grammar's identifier. */
export function modelName(file: string): string {
  const stem = basename(file).replace(/\.t7$/i, '').replace(/[^A-Za-z0-9_]/g, '_');
  return /^[A-Za-z_]/.test(stem) ? stem : `m_${stem}`;
}

/** The layers and blocks of `nodes`, one layer per line, indented two spaces per level from `indent`. */
function body(nodes: readonly FileNode[], indent: string): string[] {
  return nodes.flatMap((n) => {
    if (n.kind === 'block') {
      return [
        `${indent}${n.block} {                # module ${positionLabel(n.position)}: ${n.described}`,
        ...n.branches.flatMap((b) => [`${indent}  branch {`, ...body(b, `${indent}    `), `${indent}  }`]),
        `${indent}}`,
      ];
    }
    const view = viewModule(n.module);
    const where = `module ${positionLabel(n.module.position)} is ${view.described}`;
    if (!view.op) throw new T7ImportError(`${where}: nincc has no layer for ${view.className}`);
    if (view.unsupported) throw new T7ImportError(`${where}: ${view.unsupported} has no nincc equivalent`);
    return [`${indent}${specLayerString(view.op)}`];
  });
}

export function specFromNetwork(network: Network, options: SpecOptions): string {
  const name = options.name ?? modelName(options.file);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new T7ImportError(`the model name ${JSON.stringify(name)} is not an identifier`);
  const lines = [
    `# ${name}: the network of ${basename(options.file)}, written by nincc import-t7 (docs/t7.md).`,
    `model ${name} {`,
    `  input ${options.input.join('x')}`,
  ];
  if (network.transform) lines.push(`  transform { mean ${network.transform.mean.join(' ')}  std ${network.transform.std.join(' ')} }`);
  // The spec's input is C×H×W: a network that starts on flat features (a bare nn.Linear) flattens first.
  const first = network.nodes[0];
  if (first?.kind === 'module' && viewModule(first.module).op?.kind === 'linear') lines.push('  view(-1)                       # the file\'s network takes the flattened input');
  lines.push(...body(network.nodes, '  '), '}', '');
  return lines.join('\n');
}
