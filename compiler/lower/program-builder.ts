// A small builder the lowering passes share: fresh buffer ids and kernel steps for one program.
import type { ShapedLayer } from '../ir.js';
import { layerComment, layerSource, type BufferDecl, type Dtype, type KernelStep, type OpConsts, type OpKind, type StepOf } from './program-ir.js';
import { opBuffers, opScalars, type BufferName, type ConvShape } from './ops.js';
import { torchModuleString } from '../report/torch-print.js';

export const elementsOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** A step's buffers by the names of its op's contract; an undefined one is one the consts leave out (a bias). */
export type StepBuffers<K extends OpKind> = { readonly [N in BufferName<K>]?: string | undefined };

export class ProgramBuilder {
  readonly buffers: BufferDecl[] = [];
  readonly steps: KernelStep[] = [];
  private counter = 0;

  constructor(readonly prefix: string) {}

  /** A per-image activation buffer (the runtime multiplies its size by N). */
  act(what: string, size: number, dtype: Dtype = 'f32'): string {
    const id = `${this.prefix}:${what}#${this.counter++}`;
    this.buffers.push({ id, space: 'act', size, dtype });
    return id;
  }

  /** A buffer whose size does not depend on the batch. */
  fixed(what: string, size: number): string {
    const id = `${this.prefix}:${what}`;
    this.buffers.push({ id, space: 'fixed', size, dtype: 'f32' });
    return id;
  }

  /** A fixed buffer of last-block tickets, which every launch that takes them leaves 0 when it runs to its end. */
  tickets(what: string, size: number): string {
    const id = `${this.prefix}:${what}`;
    this.buffers.push({ id, space: 'fixed', size, dtype: 'f32', tickets: true });
    return id;
  }

  /**
   * A kernel step of `op`: `buffers` names its buffers as the op's contract does (compiler/lower/ops.ts;
   * an undefined entry is one the consts leave out), and the contract puts them in argument order.
   * `kernelName`: the kernel's name where the numbering below would not give it the same meaning in every
   * program (a concat's copy of branch k, when earlier branches are not copied: concatPlaceKernel).
   */
  step<K extends OpKind>(l: ShapedLayer | undefined, op: K, buffers: StepBuffers<K>, consts: OpConsts[K], kernelName?: string): void {
    // A layer may need the same op twice with different shapes (the fused training program's
    // grad_rebuild, say): the second gets a numbered name, so one name never means two kernels.
    const base = l ? `k${l.index}_${op}` : `k_${op}`;
    const same = (k: KernelStep) => k.op === op && JSON.stringify(k.consts) === JSON.stringify(consts);
    let kernel = kernelName ?? base;
    if (kernelName && this.steps.some((k) => k.kernel === kernelName && !same(k))) throw new Error(`internal error: kernel ${kernelName} named for two different ${op} steps`);
    for (let i = 2; !kernelName && this.steps.some((k) => k.kernel === kernel && !same(k)); i++) kernel = `${base}_${i}`;
    const contract = opBuffers(op, consts);
    const byName: Readonly<Record<string, string | undefined>> = buffers;
    const given = Object.keys(byName).filter((name) => byName[name] !== undefined);
    const unknown = given.filter((name) => !contract.some((b) => b.name === name));
    if (unknown.length > 0) throw new Error(`internal error: ${kernel} (${op}) was given buffers its contract does not take here: ${unknown.join(', ')}`);
    const named = contract.map((b) => {
      const id = byName[b.name];
      if (id === undefined) throw new Error(`internal error: ${kernel} (${op}) lacks its buffer '${b.name}'`);
      return [b.name, id] as const;
    });
    const step: StepOf<K> = {
      kernel,
      op,
      layer: l?.index ?? 0,
      source: l ? layerSource(l) : '',
      comment: l ? layerComment(l, torchModuleString(l)) : 'whole model',
      buffers: Object.fromEntries(named),
      args: named.map(([, id]) => id),
      scalars: opScalars(op),
      consts,
    };
    this.steps.push(step as KernelStep); // StepOf<K> is the union's member for K
  }
}

type WindowLayer = ShapedLayer & { readonly kind: 'conv' | 'maxpool' | 'avgpool' };

/** Shape constants of a conv or pool layer as the kernels name them (C×H×W in, K×P×Q out, R×S window); a ceil-mode pool says so. */
export function windowShape(l: WindowLayer): ConvShape & { readonly ceil?: true } {
  const [C, H, W] = l.input;
  const [K, P, Q] = l.output;
  const a = l.attrs;
  const ceil = l.kind !== 'conv' && l.attrs.ceil ? { ceil: true as const } : {};
  return { C, H, W, K, P, Q, R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW, ...ceil };
}

/** The constants of a zero-padding layer: its planes in and out, where the input's corner lands. */
export function padConsts(l: ShapedLayer & { readonly kind: 'zeropad' }) {
  const [C, H, W] = l.input;
  const [, P, Q] = l.output;
  return { C, H, W, P, Q, top: l.attrs.t, left: l.attrs.l };
}

/** The constants of an LRN layer: its channels and positions, window and coefficients. */
export const lrnConsts = (l: ShapedLayer & { readonly kind: 'lrn' }) => ({ ...channelShape(l), ...l.attrs });

/** Shape constants of a batch-norm layer: channels and positions per channel of one image. */
export const channelShape = (l: ShapedLayer) => ({ C: l.input[0], HW: l.input[1] * l.input[2] });
