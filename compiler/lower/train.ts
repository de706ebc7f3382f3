// Pass: the training programs: forward in training mode, NLL loss, backward, and the SGD update.
import { isMerge, type ShapedLayer, type ShapedModel, type ShapedOpLayer } from '../ir.js';
import { closingAdd, inputsOf, needsGradient, readers, reluFollows } from './chain.js';
import { gradId, momentumId, paramId, wholeSpaceId, type ParamLayout } from './params.js';
import type { SgdWeightCopy } from './sgd-weight-copies.js';
import type { Program } from './program-ir.js';
import { channelShape, elementsOf, lrnConsts, padConsts, ProgramBuilder, windowShape } from './program-builder.js';
import { bnMomentFloats } from './ops.js';
import { stemConsts, u8Words, type U8Stem } from './u8-input.js';
import { chooseTrainingConvAlgorithm } from '../schedule/cpu-conv-algorithm.js';

export class LoweringError extends Error {}

interface Saved {
  readonly x: string; // input activation
  readonly y: string; // output activation
  // Saved for the backward: BN's batch mean and 1/std, max-pool's argmax, LRN's scale (dropout recomputes its mask).
  readonly saveMean?: string;
  readonly saveInvstd?: string;
  readonly argmax?: string;
  readonly scale?: string;
  readonly stem?: U8Stem; // x is the uint8 images this conv normalises on load
  readonly reluFused?: boolean; // a BN whose pass applied the ReLU after it: y is the ReLU's output, the gradient it gets the ReLU's
}

/** A concat's output buffer and the channel slice a branch end writes in it (and whose gradient its backward reads there). */
interface ConcatSlot {
  readonly y: string;
  readonly slice: Slice;
}
type Slice = ReturnType<typeof concatSlices>[number];

/**
 * `reluAfter`: a BN's only reader is the ReLU after it, which this BN's pass applies (and its backward undoes).
 * `slot`: the layer's output (a BN+ReLU's) is a concat branch's end, written straight into its channels of the concat's output.
 * `bnStats`: a BN forward's statistics consts (trainStatsConsts).
 * `moments`: a conv's, the per-tile sums it records for the BN after it (momentsTaker); a BN's, those its conv recorded.
 */
function forwardLayer(b: ProgramBuilder, l: ShapedOpLayer, x: string, stem?: U8Stem, reluAfter = false, slot?: ConcatSlot, bnStats: BnStatsConsts = {}, moments?: string): Saved {
  const out = elementsOf(l.output);
  const p = (f: string) => paramId(l, f);
  switch (l.kind) {
    case 'conv': {
      const y = slot?.y ?? b.act(`conv${l.index}.out`, out);
      b.step(l, 'conv_fwd', { x, w: p('weight'), b: l.attrs.bias ? p('bias') : undefined, y, bn_moments: moments }, { ...windowShape(l), bias: l.attrs.bias, relu: false, ...(moments ? { bnMoments: true } : {}), ...convSlot(slot), ...stemConsts(stem) }, sliceKernel(l, 'conv_fwd', slot));
      return { x, y, ...(stem ? { stem } : {}) };
    }
    case 'linear': {
      const y = b.act(`linear${l.index}.out`, out);
      b.step(l, 'linear_fwd', { x, w: p('weight'), b: l.attrs.bias ? p('bias') : undefined, y }, { in: l.attrs.nIn, out: l.attrs.nOut, bias: l.attrs.bias, relu: false });
      return { x, y };
    }
    case 'bn': {
      if (!l.attrs.affine) throw new LoweringError(`${l.span.file}:${l.span.start.line}:${l.span.start.column}: bn with affine=0 is not supported by the code generator`);
      const y = slot?.y ?? b.act(`bn${l.index}.out`, out);
      const mean = b.fixed(`bn${l.index}.save_mean`, l.attrs.nFeatures);
      const invstd = b.fixed(`bn${l.index}.save_invstd`, l.attrs.nFeatures);
      b.step(l, 'bn_fwd_train', { x, gamma: p('weight'), beta: p('bias'), running_mean: p('running_mean'), running_var: p('running_var'), moments, y, save_mean: mean, save_invstd: invstd }, { ...bnConsts(l), ...bnStats, ...convMomentsConsts(moments), ...(reluAfter ? { relu: true } : {}), ...endSlot(slot) });
      return { x, y, saveMean: mean, saveInvstd: invstd, ...(reluAfter ? { reluFused: true } : {}) };
    }
    case 'maxpool': {
      const y = slot?.y ?? b.act(`maxpool${l.index}.out`, out);
      const argmax = b.act(`maxpool${l.index}.argmax`, out, 'i32');
      b.step(l, 'maxpool_fwd', { x, y, argmax }, { ...windowShape(l), ...endSlot(slot) }, sliceKernel(l, 'maxpool_fwd', slot));
      return { x, y, argmax };
    }
    case 'avgpool': {
      const y = slot?.y ?? b.act(`avgpool${l.index}.out`, out);
      b.step(l, 'avgpool_fwd', { x, y }, { ...windowShape(l), ...endSlot(slot) }, sliceKernel(l, 'avgpool_fwd', slot));
      return { x, y };
    }
    case 'dropout': {
      // No mask buffer: the mask is a hash of (call seed, layer, element), recomputed by the backward.
      const y = b.act(`dropout${l.index}.out`, out);
      b.step(l, 'dropout_fwd', { x, y }, { count: elementsOf(l.input), p: l.attrs.p });
      return { x, y };
    }
    case 'view':
    case 'identity':
      return { x, y: x }; // a view is the same memory; nn.Identity passes its input on
    case 'relu':
    case 'tanh':
    case 'sigmoid': {
      if (slot && l.kind !== 'sigmoid') {
        b.step(l, `${l.kind}_fwd_slice`, { x, y: slot.y }, slot.slice);
        return { x, y: slot.y };
      }
      const y = b.act(`${l.kind}${l.index}.out`, out);
      b.step(l, `${l.kind}_fwd`, { x, y }, { count: elementsOf(l.input) });
      return { x, y };
    }
    case 'threshold': {
      const y = b.act(`threshold${l.index}.out`, out);
      b.step(l, 'threshold_fwd', { x, y }, { count: elementsOf(l.input), th: l.attrs.th, v: l.attrs.v });
      return { x, y };
    }
    case 'zeropad': {
      const y = b.act(`zeropad${l.index}.out`, out);
      b.step(l, 'zeropad_fwd', { x, y }, padConsts(l));
      return { x, y };
    }
    case 'lrn': {
      const y = b.act(`lrn${l.index}.out`, out);
      const scale = b.act(`lrn${l.index}.scale`, out);
      b.step(l, 'lrn_fwd', { x, y, scale }, lrnConsts(l));
      return { x, y, scale };
    }
    case 'logsoftmax':
    case 'softmax': {
      const y = b.act(`${l.kind}${l.index}.out`, out);
      b.step(l, `${l.kind}_fwd`, { x, y }, { classes: l.input[0] });
      return { x, y };
    }
  }
}

const bnConsts = (l: ShapedLayer & { kind: 'bn' }) => ({ ...channelShape(l), eps: l.attrs.eps, momentum: l.attrs.momentum });
/** A BN forward's consts when it takes its statistics from its conv's per-tile sums. */
const convMomentsConsts = (moments?: string) => (moments ? { convMoments: true } : {});
/** A BN's or pool's output (and gradient) channels in a concat's output: ops.ts endOutput's outTotal/outOffset. */
const endSlot = (slot?: { slice: Slice }) => (slot ? { outTotal: slot.slice.total, outOffset: slot.slice.offset } : {});
/**
 * The kernel name of a pool's or conv's step that writes (or reads the gradient of) a concat slot: k<N>_<op>_slice,
 * as relu_fwd_slice's, so no name means both it and the dense kernel (the inference program's avgpool_fwd).
 */
const sliceKernel = (l: ShapedLayer, op: string, slot: unknown) => (slot ? `k${l.index}_${op}_slice` : undefined);
/** A conv's output (and gradient) channels in a concat's output: ops.ts convSlot's yTotal/yOffset. */
const convSlot = (slot?: { slice: Slice }) => (slot ? { yTotal: slot.slice.total, yOffset: slot.slice.offset } : {});

/**
 * Emits the backward of one layer; returns the gradient w.r.t. its input (undefined when not needed).
 * `addend`: another reader's gradient of the same input, which a conv's backward-data adds as it writes.
 */
function backwardLayer(b: ProgramBuilder, l: ShapedOpLayer, s: Saved, g: string, needDx: boolean, addend?: string, gSlice?: Slice, wgrad: WgradConsts = {}): string | undefined {
  const inSize = elementsOf(l.input);
  // Only a concat branch's end written in place (concatSlots: SLOT_ENDS) reads its gradient from the concat's.
  if (gSlice && !(SLOT_ENDS as readonly string[]).includes(l.kind)) throw new Error(`internal error: ${l.kind} ${l.index} reads its gradient in a concat's, which only ${SLOT_ENDS.join(', ')} can`);
  const p = (f: string) => paramId(l, f);
  const grad = (f: string) => gradId(l, f);
  const dx = () => b.act(`${l.kind}${l.index}.grad_in`, inSize);
  switch (l.kind) {
    case 'conv': {
      const c = { ...windowShape(l), bias: l.attrs.bias, ...convSlot(gSlice && { slice: gSlice }) };
      b.step(l, 'conv_bwd_weight', { x: s.x, g, dw: grad('weight'), db: c.bias ? grad('bias') : undefined }, { ...c, ...stemConsts(s.stem), ...wgrad }, sliceKernel(l, 'conv_bwd_weight', gSlice));
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'conv_bwd_data', { g, w: p('weight'), g_add: addend, dx: d }, { ...c, ...(addend ? { addend: true } : {}) }, sliceKernel(l, 'conv_bwd_data', gSlice));
      return d;
    }
    case 'linear': {
      const c = { in: l.attrs.nIn, out: l.attrs.nOut, bias: l.attrs.bias };
      b.step(l, 'linear_bwd_weight', { x: s.x, g, dw: grad('weight'), db: c.bias ? grad('bias') : undefined }, c);
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'linear_bwd_data', { g, w: p('weight'), dx: d }, c);
      return d;
    }
    case 'bn': {
      const d = dx();
      const relu = s.reluFused ? { y: s.y } : {};
      b.step(l, 'bn_bwd', { x: s.x, g, ...relu, gamma: p('weight'), save_mean: s.saveMean, save_invstd: s.saveInvstd, dx: d, dgamma: grad('weight'), dbeta: grad('bias') }, { ...bnConsts(l), ...(s.reluFused ? { relu: true } : {}), ...endSlot(gSlice && { slice: gSlice }) });
      return d;
    }
    case 'view':
    case 'identity':
      return g;
    case 'tanh':
    case 'sigmoid': {
      if (!needDx) return undefined;
      const d = dx();
      if (gSlice && l.kind === 'tanh') b.step(l, 'tanh_bwd_slice', { y: s.y, g, dx: d }, gSlice);
      else b.step(l, `${l.kind}_bwd`, { y: s.y, g, dx: d }, { count: inSize });
      return d;
    }
    case 'threshold': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'threshold_bwd', { x: s.x, g, dx: d }, { count: inSize, th: l.attrs.th });
      return d;
    }
    case 'zeropad': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'zeropad_bwd', { g, dx: d }, padConsts(l));
      return d;
    }
    case 'lrn': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'lrn_bwd', { x: s.x, y: s.y, scale: s.scale, g, dx: d }, lrnConsts(l));
      return d;
    }
    case 'maxpool': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'maxpool_bwd', { g, argmax: s.argmax, dx: d }, { ...windowShape(l), ...endSlot(gSlice && { slice: gSlice }) }, sliceKernel(l, 'maxpool_bwd', gSlice));
      return d;
    }
    case 'avgpool': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'avgpool_bwd', { g, dx: d }, { ...windowShape(l), ...endSlot(gSlice && { slice: gSlice }) }, sliceKernel(l, 'avgpool_bwd', gSlice));
      return d;
    }
    case 'dropout': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'dropout_bwd', { g, dx: d }, { count: inSize, p: l.attrs.p });
      return d;
    }
    case 'relu': {
      if (!needDx) return undefined;
      const d = dx();
      if (gSlice) b.step(l, 'relu_bwd_slice', { y: s.y, g, dx: d }, gSlice);
      else b.step(l, 'relu_bwd', { y: s.y, g, dx: d }, { count: inSize });
      return d;
    }
    case 'logsoftmax':
    case 'softmax': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, `${l.kind}_bwd`, { y: s.y, g, dx: d }, { classes: l.input[0] });
      return d;
    }
  }
}

/** The last layer, which training with the nll criterion needs to be a logsoftmax. */
export function logSoftmaxHead(m: ShapedModel): ShapedLayer {
  const last = m.layers[m.layers.length - 1];
  if (!last || last.kind !== 'logsoftmax') {
    throw new LoweringError(`${m.file}: training with the nll criterion needs a model that ends in logsoftmax (this one ends in ${last?.kind ?? 'nothing'})`);
  }
  return last;
}

/** A training program's builder and its two inputs: the images (float, or uint8 NHWC for a `stem`) and one int32 label per image. */
export function trainingInputs(m: ShapedModel, stem?: U8Stem): { b: ProgramBuilder; images: string; labels: string } {
  const b = new ProgramBuilder('train');
  const images = stem ? b.act('images', u8Words(elementsOf(m.input)), 'u8') : b.act('images', elementsOf(m.input));
  return { b, images, labels: b.act('labels', 1, 'i32') };
}

/**
 * The cpu training's options: `bnOnePassStats` false is the cpuBnOnePassStats ablation, `wgradSpreadPrefetch` false the
 * cpuWgradSpreadPrefetch one, `bnPoolBackward` false the cpuBnPoolBackward one, `bnStatsInConv` true the
 * cpuBnStatsInConv opt-in (compiler/ablations.ts OPT_INS).
 */
export interface CpuTrainOptions {
  readonly bnOnePassStats?: boolean;
  readonly wgradSpreadPrefetch?: boolean;
  readonly bnPoolBackward?: boolean;
  readonly bnStatsInConv?: boolean;
}

/**
 * Whether the conv at position i records the BN statistics of its output in its GEMM epilogue (runtime
 * bn_moments.h, conv_gemm.h) for the affine BN that is its only reader, which then reads x only to normalise it:
 * a conv the training forward runs as the implicit GEMM (the Winograd ones record none yet) writing its own
 * output (not a concat's slice, which a BN-read conv never is).
 */
export function momentsTaker(layers: readonly ShapedLayer[], reads: readonly number[], i: number, stem?: U8Stem): boolean {
  const l = layers[i];
  const next = layers[i + 1];
  if (l.kind !== 'conv' || reads[i] !== 1 || next?.kind !== 'bn' || !next.attrs.affine || inputsOf(layers, i + 1)[0] !== i) return false;
  return (stem !== undefined && inputsOf(layers, i)[0] < 0) || chooseTrainingConvAlgorithm(windowShape(l)) === 'implicit_gemm';
}
type WgradConsts = { readonly burstPrefetch?: true };
/** A conv weight gradient's consts for how the 1x1 form prefetches: none by default (spread between pixels, conv_wgrad_1x1.h). */
const trainWgradConsts = (options: CpuTrainOptions): WgradConsts => (options.wgradSpreadPrefetch === false ? { burstPrefetch: true } : {});
type BnStatsConsts = { readonly twoPassStats?: true };
/** A BN forward's consts for how it takes its batch statistics: none by default (one pass, batchnorm.h channel_moments). */
const trainStatsConsts = (options: CpuTrainOptions): BnStatsConsts => (options.bnOnePassStats === false ? { twoPassStats: true } : {});

/** `stem`: the model takes uint8 images, which its first conv normalises (u8-input.ts). */
export function lowerTrainForwardBackward(m: ShapedModel, stem?: U8Stem, options: CpuTrainOptions = {}): { program: Program; builder: ProgramBuilder } {
  const bnStats = trainStatsConsts(options);
  const wgradConsts = trainWgradConsts(options);
  const last = logSoftmaxHead(m);
  const { b, images, labels } = trainingInputs(m, stem);
  const saved: Saved[] = [];
  const value = (p: number) => (p < 0 ? images : saved[p].y);
  // A residual add whose only reader is a ReLU applies it in the same pass; the ReLU's backward reads that output as its own.
  const reads = readers(m.layers);
  const addRelu = (i: number) => m.layers[i].kind === 'add' && reluFollows(m.layers, reads, i);
  // A BN closing a residual block's branch (chain.ts closingAdd) adds the shortcut and applies the block's
  // ReLU in its own pass: the add (and ReLU) layers then have that pass's output and no kernel. The backward
  // is unchanged: the ReLU's reads that output, the add passes its gradient to both branches.
  const closingBn = new Map<number, { at: number; shortcut: number; relu: boolean }>();
  m.layers.forEach((l, i) => {
    const c = l.kind === 'bn' && l.attrs.affine ? closingAdd(m.layers, reads, i, i) : undefined;
    if (c) closingBn.set(i, { ...c, relu: reluFollows(m.layers, reads, c.at) });
  });
  // Any other affine BN whose only reader is a ReLU applies it in its own pass, and its backward takes the
  // ReLU's gradient (batchnorm.h): no ReLU kernel either way, one fewer pass over the activation each way.
  const bnRelu = (i: number) => m.layers[i].kind === 'bn' && !closingBn.has(i) && reluFollows(m.layers, reads, i);
  const fusedOutputs = new Map<number, string>(); // the add's and ReLU's positions → the BN pass's output
  // A concat branch ending in a ReLU (alone, or applied by the BN before it) that only the concat reads writes its
  // channels of the concat's output itself, and its backward reads its gradient there: no copy either way.
  const slots = concatSlots(m.layers, reads, (p) => addRelu(p) || closingReluAt(closingBn, p), bnRelu);
  const concatOutputs = new Map<number, string>();
  const concatOutput = (at: number) => {
    const y = concatOutputs.get(at) ?? b.act(`concat${m.layers[at].index}.out`, elementsOf(m.layers[at].output));
    concatOutputs.set(at, y);
    return y;
  };
  const slotAt = (p: number): ConcatSlot | undefined => {
    const s = slots.get(p);
    return s && { y: concatOutput(s.at), slice: s.slice };
  };
  // The per-tile BN sums each conv that momentsTaker picks records, by the conv's position.
  const moments = new Map<number, string>();
  m.layers.forEach((l, i) => {
    if (options.bnStatsInConv === true && momentsTaker(m.layers, reads, i, stem)) moments.set(i, b.act(`conv${l.index}.bn_moments`, bnMomentFloats(l.output[0], elementsOf(l.output.slice(1)))));
  });
  const momentsOf = (i: number) => moments.get(i) ?? (m.layers[i].kind === 'bn' ? moments.get(inputsOf(m.layers, i)[0]) : undefined);
  m.layers.forEach((l, i) => {
    const from = inputsOf(m.layers, i).map(value);
    const closing = closingBn.get(i);
    const fused = fusedOutputs.get(i);
    if (closing && l.kind === 'bn') {
      const add = m.layers[closing.at];
      const y = b.act(`add${add.index}.out`, elementsOf(add.output));
      const mean = b.fixed(`bn${l.index}.save_mean`, l.attrs.nFeatures);
      const invstd = b.fixed(`bn${l.index}.save_invstd`, l.attrs.nFeatures);
      const p = (f: string) => paramId(l, f);
      const taken = momentsOf(i);
      b.step(l, 'bn_fwd_train', { x: from[0], gamma: p('weight'), beta: p('bias'), running_mean: p('running_mean'), running_var: p('running_var'), r: value(closing.shortcut), moments: taken, y, save_mean: mean, save_invstd: invstd }, { ...bnConsts(l), ...bnStats, ...convMomentsConsts(taken), residual: true, relu: closing.relu });
      saved.push({ x: from[0], y, saveMean: mean, saveInvstd: invstd });
      fusedOutputs.set(closing.at, y);
      if (closing.relu) fusedOutputs.set(closing.at + 1, y);
    } else if (fused) saved.push({ x: from[0], y: fused });
    else if (i > 0 && (addRelu(i - 1) || bnRelu(i - 1))) saved.push({ x: from[0], y: from[0] });
    else if (l.kind === 'concat') saved.push(concatForward(b, l, from, m.layers, inputsOf(m.layers, i), concatOutput(i), slots));
    else saved.push(isMerge(l) ? mergeForward(b, l, from, m.layers, inputsOf(m.layers, i), addRelu(i)) : forwardLayer(b, l, from[0], from[0] === images ? stem : undefined, bnRelu(i), slotAt(bnRelu(i) ? i + 1 : i), bnStats, momentsOf(i)));
  });
  const x = value(m.layers.length - 1);
  const classes = elementsOf(last.output);
  const loss = b.fixed('loss', 1);
  // The gradient of each layer's output; a value several layers read (a block's input) sums theirs.
  const grads = new Map<number, string>([[m.layers.length - 1, b.act('loss.grad_in', classes)]]);
  // A slot's gradient is its concat's whole gradient: the channels its backward reads there.
  const gradSlices = new Map<number, Slice>();
  b.step(undefined, 'nll_loss', { logp: x, labels, loss, dlogp: grads.get(m.layers.length - 1) }, { classes });
  const accumulate = (p: number, g: string, what: ShapedLayer) => {
    const seen = grads.get(p);
    if (seen === undefined) return void grads.set(p, g);
    const sum = b.act(`grad${p + 1}.sum`, elementsOf(what.output));
    b.step(what, 'add', { a: seen, b: g, y: sum }, { count: elementsOf(what.output), relu: false });
    grads.set(p, sum);
  };
  // A layer needs its input gradient only when a layer before it on the path from the input has parameters.
  const need = needsGradient(m.layers);
  // A max pool that alone reads a BN+ReLU's output (NIN's three) leaves its backward to the BN's: its gradient and
  // argmax, by the BN's position (pooledBnBackward).
  const pooledBn = new Map<number, PooledGradient>();
  const poolsBnRelu = (i: number) =>
    options.bnPoolBackward !== false && m.layers[i].kind === 'maxpool' && i >= 2 && inputsOf(m.layers, i)[0] === i - 1 && m.layers[i - 1].kind === 'relu' &&
    bnRelu(i - 2) && reads[i - 1] === 1 && need[i - 1] && !slots.has(i) && !slots.has(i - 1) && !gradSlices.has(i);
  for (let i = m.layers.length - 1; i >= 0; i--) {
    const l = m.layers[i];
    const g = grads.get(i);
    if (g === undefined || !need[i]) continue;
    const from = inputsOf(m.layers, i);
    const wanted = (p: number) => p >= 0 && need[p];
    if (isMerge(l)) {
      mergeBackward(b, l, g, m.layers, from, slots).forEach((d, k) => {
        if (!wanted(from[k])) return;
        accumulate(from[k], d, m.layers[from[k]]);
        const slot = slots.get(from[k]);
        if (slot) gradSlices.set(from[k], slot.slice); // the slot's only reader is this concat: d is its whole gradient
      });
      continue;
    }
    if (l.kind === 'relu' && i > 0 && bnRelu(i - 1)) {
      accumulate(i - 1, g, m.layers[i - 1]); // the BN's backward applies the ReLU's
      const slice = gradSlices.get(i);
      if (slice) gradSlices.set(i - 1, slice);
      continue;
    }
    if (l.kind === 'maxpool' && poolsBnRelu(i)) {
      pooledBn.set(i - 2, { pool: l, g, argmax: saved[i].argmax! });
      grads.set(i - 2, g); // the ReLU between has no gradient of its own, so no kernel
      continue;
    }
    // A conv whose input already has a gradient (a fanned-out value) sums it in its backward-data pass.
    const prior = l.kind === 'conv' && wanted(from[0]) ? grads.get(from[0]) : undefined;
    const pooled = pooledBn.get(i);
    const d = pooled ? pooledBnBackward(b, l, saved[i], pooled) : backwardLayer(b, l, saved[i], g, wanted(from[0]), prior, gradSlices.get(i), wgradConsts);
    if (d !== undefined && prior !== undefined) grads.set(from[0], d);
    else if (d !== undefined && wanted(from[0])) accumulate(from[0], d, m.layers[from[0]]);
  }
  return { program: { name: 'train_forward_backward', inputs: { images, labels }, outputs: { output: x, loss }, steps: b.steps }, builder: b };
}

/** A max pool's output gradient and argmax, whose backward a BN+ReLU's takes (poolsBnRelu). */
interface PooledGradient {
  readonly pool: ShapedLayer & { readonly kind: 'maxpool' };
  readonly g: string;
  readonly argmax: string;
}

/**
 * The backward of a BN+ReLU whose output only a max pool reads, with the pool's: the pool's gradient scattered
 * into dx plane by plane as the BN's pass reads it (runtime bn_pool_backward.h), bit for bit the two kernels.
 */
function pooledBnBackward(b: ProgramBuilder, l: ShapedOpLayer, s: Saved, pooled: PooledGradient): string {
  if (l.kind !== 'bn' || !s.reluFused) throw new Error(`internal error: a max pool's backward taken by ${l.kind} ${l.index}, not a BN+ReLU's`);
  const dx = b.act(`${l.kind}${l.index}.grad_in`, elementsOf(l.input));
  const p = (f: string) => paramId(l, f);
  b.step(l, 'bn_relu_maxpool_bwd', { x: s.x, g: pooled.g, argmax: pooled.argmax, y: s.y, gamma: p('weight'), save_mean: s.saveMean, save_invstd: s.saveInvstd, dx, dgamma: gradId(l, 'weight'), dbeta: gradId(l, 'bias') }, windowShape(pooled.pool));
  return dx;
}

/** A block's merge: the branches' sum (nn.CAddTable) or their outputs joined along channels (nn.Concat(2)). */
function mergeForward(b: ProgramBuilder, l: ShapedLayer & { kind: 'add' | 'concat' }, from: readonly string[], layers: readonly ShapedLayer[], positions: readonly number[], relu: boolean): Saved {
  const count = elementsOf(l.output);
  if (l.kind === 'add') {
    let y = from[0];
    for (const [k, next] of from.slice(1).entries()) {
      const sum = b.act(`add${l.index}.out`, count);
      b.step(l, 'add', { a: y, b: next, y: sum }, { count, relu: relu && k === from.length - 2 });
      y = sum;
    }
    return { x: from[0], y };
  }
  return concatForward(b, l, from, layers, positions, b.act(`concat${l.index}.out`, count), new Map());
}

/** A concat: each branch end not written in place (a slot) copied into its channels of y. */
function concatForward(b: ProgramBuilder, l: ShapedLayer, from: readonly string[], layers: readonly ShapedLayer[], positions: readonly number[], y: string, slots: ReadonlyMap<number, unknown>): Saved {
  concatSlices(l, layers, positions).forEach((c, k) => slots.has(positions[k]) || b.step(l, 'concat_place', { x: from[k], y }, c, concatPlaceKernel(l, k)));
  return { x: from[0], y };
}

/**
 * The copy of a concat's branch k: k<N>_concat_place, then _2, _3… by branch, in every program (inference copies
 * every branch or none), so one kernel name means one slice whichever branches a program writes in place.
 */
export const concatPlaceKernel = (l: ShapedLayer, k: number) => `k${l.index}_concat_place${k === 0 ? '' : `_${k + 1}`}`;

/** The layers whose output, a concat branch's end, their own pass writes into its slice of the concat's output (concatSlots). */
export const SLOT_ENDS = ['relu', 'bn', 'tanh', 'maxpool', 'avgpool', 'conv'] as const;

/**
 * The concat branch ends that write their slice of the concat's output in place, by position: a layer of
 * SLOT_ENDS that only the concat reads (once), its backward reading its gradient slice there too. A ReLU is one
 * alone (`fusedRelu` false for the layer before it: not applied by an add's pass) or applied by the BN before it
 * (`bnRelu`), which then writes the slice. Others (an add's output, a zoo layer's but Tanh's, a conv reading the
 * model's input, which may be uint8 images) are copied (concat_place).
 */
export function concatSlots(layers: readonly ShapedLayer[], reads: readonly number[], fusedRelu: (p: number) => boolean, bnRelu: (p: number) => boolean) {
  const slots = new Map<number, { readonly at: number; readonly slice: Slice }>();
  layers.forEach((l, at) => {
    if (l.kind !== 'concat') return;
    const positions = inputsOf(layers, at);
    concatSlices(l, layers, positions).forEach((slice, k) => {
      const p = positions[k];
      const end = layers[p];
      if (!(SLOT_ENDS as readonly string[]).includes(end.kind) || reads[p] !== 1 || positions.indexOf(p) !== k) return;
      if (end.kind === 'relu' && p > 0 && fusedRelu(p - 1) && !bnRelu(p - 1)) return;
      if (end.kind === 'conv' && inputsOf(layers, p)[0] < 0) return;
      slots.set(p, { at, slice });
    });
  });
  return slots;
}

/** Whether position p is a residual add that a closing BN's pass computes along with the ReLU after it. */
const closingReluAt = (closingBn: ReadonlyMap<number, { at: number; relu: boolean }>, p: number) => [...closingBn.values()].some((c) => c.at === p && c.relu);

/** Each input's gradient: an add passes its gradient to every input, a concat each input its channels. */
function mergeBackward(b: ProgramBuilder, l: ShapedLayer & { kind: 'add' | 'concat' }, g: string, layers: readonly ShapedLayer[], positions: readonly number[], slots: ReadonlyMap<number, unknown>): string[] {
  if (l.kind === 'add') return positions.map(() => g);
  return concatSlices(l, layers, positions).map((c, k) => {
    if (slots.has(positions[k])) return g; // a slot's backward reads its channels of the concat's gradient in place
    const dx = b.act(`concat${l.index}.grad_in${k + 1}`, c.C * c.HW);
    b.step(l, 'concat_take', { g, dx }, c);
    return dx;
  });
}

/** The channel slice of the concat's output each of its inputs fills. */
export function concatSlices(l: ShapedLayer, layers: readonly ShapedLayer[], positions: readonly number[]) {
  const HW = elementsOf(l.output.slice(1));
  let offset = 0;
  return positions.map((p) => {
    if (p < 0) throw new Error(`internal error: concat ${l.index} reads the model input directly (a branch is never empty)`);
    const C = layers[p].output[0];
    const slice = { C, HW, total: l.output[0], offset };
    offset += C;
    return slice;
  });
}

/** `copies`: the convs whose weights an sgd_conv_bf16 step updates, writing their bf16 copies (lower/sgd-weight-copies.ts). */
export function lowerSgdUpdate(m: ShapedModel, layout: ParamLayout, copies: readonly SgdWeightCopy[] = []): Program {
  const b = new ProgramBuilder('sgd');
  if (layout.paramSize === 0) throw new LoweringError(`${m.file}: the model has no parameters to train`);
  const layerOf = (index: number) => m.layers.find((l) => l.index === index)!;
  const weights = copies.map((c) => layout.buffers.find((b) => b.id === paramId(layerOf(c.layer), 'weight'))!).sort((x, y) => x.offset! - y.offset!);
  const skip = weights.flatMap((b) => [b.offset!, b.size]);
  // One kernel over the rest of the parameter space: torch/optim's sgd treats the flattened parameters alike.
  if (skip.length === 0 || skip.filter((_, i) => i % 2 === 1).reduce((a, n) => a + n, 0) < layout.paramSize) {
    b.step(undefined, 'sgd_update', { w: wholeSpaceId('param'), g: wholeSpaceId('grad'), mom: wholeSpaceId('momentum') }, { count: layout.paramSize, ...(skip.length > 0 ? { skip } : {}) });
  }
  for (const c of copies) {
    const l = layerOf(c.layer);
    b.step(l, 'sgd_conv_bf16', { w: paramId(l, 'weight'), g: gradId(l, 'weight'), mom: momentumId(l, 'weight'), wb: c.wb, wbd: c.wbd }, c.consts);
  }
  return { name: 'sgd_update', inputs: {}, outputs: {}, steps: b.steps };
}

/** Why a model has no training programs (plan.json's `untrainable`, report.txt), or undefined when it has them. */
export function whyUntrainable(model: ShapedModel, layout: ParamLayout): string | undefined {
  if (model.layers[model.layers.length - 1]?.kind !== 'logsoftmax') return 'training with the nll criterion needs a model that ends in logsoftmax';
  if (layout.paramSize === 0) return 'the model has no parameters to train';
  return undefined;
}
