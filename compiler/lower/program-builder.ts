// A small builder the lowering passes share: fresh buffer ids and kernel steps for one program.
import type { ShapedLayer } from '../ir.js';
import { layerComment, layerSource, type BufferDecl, type Dtype, type KernelStep, type OpKind } from './program-ir.js';
import { torchModuleString } from '../report/torch-print.js';

export const elementsOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

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

  step(l: ShapedLayer | undefined, op: OpKind, args: readonly string[], consts: KernelStep['consts'] = {}, scalars: readonly string[] = []): void {
    // A layer may need the same op twice with different shapes (the fused training program's
    // grad_rebuild, say): the second gets a numbered name, so one name never means two kernels.
    const base = l ? `k${l.index}_${op}` : `k_${op}`;
    const same = (k: KernelStep) => k.op === op && JSON.stringify(k.consts) === JSON.stringify(consts);
    let kernel = base;
    for (let i = 2; this.steps.some((k) => k.kernel === kernel && !same(k)); i++) kernel = `${base}_${i}`;
    this.steps.push({
      kernel,
      op,
      layer: l?.index ?? 0,
      source: l ? layerSource(l) : '',
      comment: l ? layerComment(l, torchModuleString(l)) : 'whole model',
      args,
      scalars,
      consts,
    });
  }
}

/** Shape constants of a spatial layer as the kernels name them (C×H×W in, K×P×Q out, R×S window). */
export function spatialConsts(l: ShapedLayer): Record<string, number> {
  const [C, H, W] = l.input;
  const [K, P, Q] = l.output;
  return { C, H, W, K, P, Q };
}
