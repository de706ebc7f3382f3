// A Torch7 network's containers read as nincc's blocks: nested nn.Sequentials opened in order, an
// nn.ConcatTable followed by nn.CAddTable as a residual block, nn.Concat(2) and nn.DepthConcat(2) as
// concat blocks; every other module is a leaf, matched to a spec layer later (runtime/t7/import.ts).
import type { BlockKind } from '../../compiler/ir.js';
import { describeValue, T7Object, T7Table, type T7Value } from './values.js';

/** A file that does not hold an importable network, or a network that does not fit the spec. */
export class T7ImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'T7ImportError';
  }
}

export interface FileModule {
  /** Torch indices from the outer Sequential inwards: [4], or [2, 3] for module 3 of the container at module 2. */
  readonly position: readonly number[];
  readonly object: T7Object;
}

/** `(4)`, or `(2)(3)` inside a nested container. */
export const positionLabel = (position: readonly number[]) => position.map((i) => `(${i})`).join('');

/** A container read as a block: its branches, each the modules of one child (a Sequential's opened). */
export interface FileBlock {
  readonly kind: 'block';
  readonly block: BlockKind;
  readonly position: readonly number[];
  /** `nn.ConcatTable + nn.CAddTable`, `nn.Concat(2)`, `nn.DepthConcat(2)`: for messages. */
  readonly described: string;
  readonly branches: readonly (readonly FileNode[])[];
}
export type FileNode = { readonly kind: 'module'; readonly module: FileModule } | FileBlock;

export const isModule = (v: T7Value | undefined): v is T7Object => v instanceof T7Object && /^(nn|cudnn)\./.test(v.className);

/** Far past any real network; torchPrintNetwork recurses as deep as this walk allows. */
const MAX_NESTING = 64;

const CONCAT_CLASSES: Readonly<Record<string, BlockKind>> = { 'nn.Concat': 'concat', 'nn.DepthConcat': 'depthconcat' };

/** Reads a network's containers; `nested` is set when an nn.Sequential is opened inside another. */
export class TreeReader {
  nested = false;
  // The containers enclosing the one being read: a file may make one contain itself (the reader keeps
  // Torch's shared references), which would otherwise recurse forever.
  private readonly enclosing: (T7Object | T7Table)[] = [];

  /** The modules of an nn.Sequential (or a table with `modules`), nested Sequentials opened in place. */
  sequence(container: T7Object | T7Table, prefix: readonly number[]): FileNode[] {
    return this.within(container, prefix, 'an nn.Sequential', (list) => this.items(list.map((m, i) => ({ position: [...prefix, i + 1], object: m }))));
  }

  /** Modules in forward order as nodes: Sequentials opened, a ConcatTable and the CAddTable after it one block. */
  private items(list: readonly FileModule[]): FileNode[] {
    const out: FileNode[] = [];
    for (let i = 0; i < list.length; i++) {
      const { position, object: m } = list[i];
      if (m.className === 'nn.Sequential') {
        this.nested = true;
        out.push(...this.sequence(m, position));
      } else if (m.className === 'nn.ConcatTable') {
        // fb.resnet.torch's residual block: the table of branches, then their sum.
        const next = list[i + 1]?.object;
        if (next?.className !== 'nn.CAddTable') {
          throw new T7ImportError(`module ${positionLabel(position)} is an nn.ConcatTable followed by ${next ? next.className : 'nothing'}: nincc reads an nn.ConcatTable only as a residual block, followed by nn.CAddTable`);
        }
        out.push(this.block(m, position, 'residual', 'nn.ConcatTable + nn.CAddTable'));
        i++;
      } else if (m.className === 'nn.CAddTable') {
        throw new T7ImportError(`module ${positionLabel(position)} is an nn.CAddTable that does not follow an nn.ConcatTable: nincc reads it only as a residual block's sum`);
      } else if (CONCAT_CLASSES[m.className]) {
        const dimension = m.get('dimension');
        if (dimension !== 2) throw new T7ImportError(`module ${positionLabel(position)} is an ${m.className} along dimension ${describeValue(dimension ?? null)}: nincc joins along channels only (dimension 2)`);
        out.push(this.block(m, position, CONCAT_CLASSES[m.className], `${m.className}(2)`));
      } else out.push({ kind: 'module', module: { position, object: m } });
    }
    return out;
  }

  /** A block's branches: each child's modules (an nn.Sequential's opened; any other child is a branch of one). */
  private block(container: T7Object, position: readonly number[], block: BlockKind, described: string): FileBlock {
    const branches = this.within(container, position, `an ${container.className}`, (list) =>
      list.map((child, b) => {
        const at = [...position, b + 1];
        return child.className === 'nn.Sequential' ? this.sequence(child, at) : this.items([{ position: at, object: child }]);
      }));
    return { kind: 'block', block, position, described, branches };
  }

  /** Reads a container's `modules` (each an nn module) inside `read`, refusing a container that contains itself. */
  private within<R>(container: T7Object | T7Table, prefix: readonly number[], what: string, read: (modules: T7Object[]) => R): R {
    const here = prefix.length ? `module ${positionLabel(prefix)}` : 'the network';
    const outer = this.enclosing.indexOf(container);
    if (outer >= 0) {
      const outerName = outer === 0 ? 'the network' : `module ${positionLabel(prefix.slice(0, outer))}`;
      throw new T7ImportError(`${here} is ${what} that contains itself: it is ${outerName}, which encloses it`);
    }
    if (this.enclosing.length >= MAX_NESTING) throw new T7ImportError(`${here} is nested more than ${MAX_NESTING} containers deep`);
    const list = container.get('modules');
    if (!(list instanceof T7Table)) throw new T7ImportError(`${here} is ${what} whose modules field is ${describeValue(list)}`);
    const modules = list.list().map((m, i) => {
      if (!isModule(m)) throw new T7ImportError(`module ${positionLabel([...prefix, i + 1])} is ${describeValue(m)}, not an nn module`);
      return m;
    });
    this.enclosing.push(container);
    try {
      return read(modules);
    } finally {
      this.enclosing.pop();
    }
  }
}

/** Every leaf module in forward order (a block's branches one after another). */
export const leafModules = (nodes: readonly FileNode[]): FileModule[] =>
  nodes.flatMap((n) => (n.kind === 'module' ? [n.module] : n.branches.flatMap(leafModules)));

/** The first block, depth first, if the network has any. */
export const firstBlock = (nodes: readonly FileNode[]): FileBlock | undefined => nodes.find((n): n is FileBlock => n.kind === 'block');
