// The bf16 weight copies the SGD update writes (ablation sgdWeightCopies): a bf16 training program's conv_weight_bf16
// steps (lower/train-fused.ts bf16Weights) move to their own program, `train_weight_copies`, which the runtime runs
// only when something else wrote the weights (runtime/model.ts), and the sgd_update program updates those convs'
// weights with sgd_conv_bf16 steps that rewrite the copies (backends/cuda/sgd-weight-bf16.ts). A conv whose copies no
// SGD tile writes keeps its conversion launches in the training program.
import { sgdCopyPlan, copyOrderCode } from '../backends/cuda/sgd-weight-bf16.js';
import type { WeightCopyLayout } from '../backends/cuda/conv-weight-bf16.js';
import type { OpConsts } from './ops.js';
import type { KernelStep, Program, StepOf } from './program-ir.js';

/** The layout of conv `layer`'s copy (its reader's k order, as the cuda backend picks it for that layer and pass). */
export type CopyLayoutOf = (layer: number, c: OpConsts['conv_weight_bf16']) => WeightCopyLayout;

/** A conv whose SGD update writes its copies: its shape, each copy's order code and buffer (undefined: no such copy). */
export interface SgdWeightCopy {
  readonly layer: number;
  readonly consts: OpConsts['sgd_conv_bf16'];
  readonly wb?: string;
  readonly wbd?: string;
}

export const WEIGHT_COPIES_PROGRAM = 'train_weight_copies';

export function moveWeightCopies(train: Program, layoutOf: CopyLayoutOf): { train: Program; copies?: Program; updates: SgdWeightCopy[] } {
  const copySteps = train.steps.filter((s): s is StepOf<'conv_weight_bf16'> => s.op === 'conv_weight_bf16');
  const updates: SgdWeightCopy[] = [];
  const moved = new Set<KernelStep>();
  for (const layer of new Set(copySteps.map((s) => s.layer))) {
    const forward = copySteps.find((s) => s.layer === layer && !s.consts.dgrad);
    const dgrad = copySteps.find((s) => s.layer === layer && s.consts.dgrad);
    const shape = (forward ?? dgrad)!.consts;
    const layouts = { forward: forward && layoutOf(layer, forward.consts), dgrad: dgrad && layoutOf(layer, dgrad.consts) };
    if (!sgdCopyPlan(shape, layouts.forward, layouts.dgrad)) continue;
    const { C, H, W, K, P, Q, R, S, sh, sw, ph, pw } = shape;
    updates.push({ layer, consts: { C, H, W, K, P, Q, R, S, sh, sw, ph, pw, forward: copyOrderCode(layouts.forward), dgrad: copyOrderCode(layouts.dgrad) }, wb: forward?.buffers.wb, wbd: dgrad?.buffers.wb });
    for (const s of [forward, dgrad]) if (s) moved.add(s);
  }
  if (moved.size === 0) return { train, updates };
  return {
    train: { ...train, steps: train.steps.filter((s) => !moved.has(s)) },
    copies: { name: WEIGHT_COPIES_PROGRAM, inputs: {}, outputs: {}, steps: train.steps.filter((s) => moved.has(s)) },
    updates,
  };
}
