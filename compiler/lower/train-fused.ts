// Pass: the training program for the cuda/emu target, with the BN+ReLU fusion of docs/design.md §4.
//
// A value flowing through the forward is a raw buffer plus an optional *pending* transform
// a = relu?(scale·y + shift) that no kernel has applied yet: BN contributes per-channel scale/shift
// (from a finalize kernel over per-tile statistics the producing conv wrote in its epilogue), ReLU a
// flag. Consumers that can (conv, maxpool, avgpool, a residual add, a concat) apply the pending transform while loading; any
// other consumer gets it materialized once (act_apply). So conv→bn→relu is one conv kernel plus one
// small finalize, and its activation is written once.
//
// Backward mirrors it. A gradient is the gradient of some value; when that value has a pending BN,
// the kernel producing the gradient (conv dgrad, pool backward, or act_bwd_stats) also writes
// per-tile Σdz and Σdz·x̂ (dz = da·[z > 0], x̂ = (y − μ)·invstd); a finalize reduces them in a fixed
// order into the BN's dβ and dγ; and the conv below rebuilds dy = γ·invstd·(dz − dβ/M − x̂·dγ/M)
// while loading, in its wgrad and dgrad (docs/design.md §4). No float atomics anywhere: every
// reduction is per tile or per split and then summed in a fixed order (docs/design.md §5).
import type { ShapedLayer, ShapedModel } from '../ir.js';
import { firstReaderOfAdd, inputsOf, needsGradient, poolTakingAdd, readers, soleReluAfter } from './chain.js';
import { gradId, paramId } from './params.js';
import { concatSlices, LoweringError, logSoftmaxHead, trainingInputs } from './train.js';
import type { Program } from './program-ir.js';
import { elementsOf, lrnConsts, padConsts, type ProgramBuilder } from './program-builder.js';
import { bf16WeightFloats, maskFromEnds, storageWords, wgradTicketsBound, type ConvShape, type OpConsts } from './ops.js';
import { stemConsts, type U8Stem } from './u8-input.js';
import { convOutBf16 } from './conv-out-bf16-readers.js';
import { isStem } from '../backends/cuda/conv-mma-stem-geometry.js';
import { centreTapCoversInput } from '../backends/cuda/conv.js';
import { REBUILD_1X1_MIN_CHANNELS, type FusedTrainOptions } from './train-fused-options.js';

/** Positions per statistics tile: the x extent of the 32×8 blocks every per-channel kernel uses. */
export const STAT_TILE = 32;
/** The weight gradient's reduction over the batch is split this many ways, then summed in order … */
export const WGRAD_SPLITS = 4;
/** … and a layer with fewer weights than the largest into more (up to this many), in the same scratch, so its grid still fills the GPU. */
export const WGRAD_MAX_SPLITS = 32;

/** The splits of a conv's weight gradient: WGRAD_SPLITS for the largest layer, more for smaller ones, never more than the batch. */
export const wgradSplits = (weights: number, maxWeights: number, maxBatch: number) =>
  Math.max(1, Math.min(maxBatch, WGRAD_MAX_SPLITS, Math.floor((WGRAD_SPLITS * maxWeights) / weights)));

const tilesOf = (positions: number) => Math.ceil(positions / STAT_TILE);

interface BnPending {
  readonly layer: ShapedLayer;
  readonly scale: string;
  readonly shift: string;
  readonly mean: string;
  readonly invstd: string;
}

interface Pending {
  readonly bn?: BnPending;
  readonly relu: boolean;
}

/** A value of the forward: `buf` holds raw data of shape [C, H, W]; `pending` is still to apply. */
interface Value {
  readonly buf: string;
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly pending?: Pending;
  readonly stats?: { readonly mean: string; readonly m2: string }; // per-tile statistics of buf
  /**
   * A residual add never stored (its only reader an average pool, which sums it on load): `buf` is only its
   * name (the key of its gradient), `ends` the two branch ends, `relu` the block's ReLU after the sum.
   */
  readonly sum?: { readonly layer: ShapedLayer; readonly ends: readonly [Value, Value]; readonly relu: boolean };
  /**
   * A residual add that its first reader, a conv, computes as it loads and stores in `buf` for the others
   * (FusedTrainOptions.addInNextConv): `ends` the two branch ends, `relu` the block's ReLU after the sum.
   */
  readonly addOnLoad?: { readonly ends: readonly [Value, Value]; readonly relu: boolean };
}

type Node =
  | { readonly kind: 'conv'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value }
  | { readonly kind: 'pool'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value; readonly argmax?: string }
  | { readonly kind: 'linear'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value }
  | { readonly kind: 'softmax'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value; readonly log: boolean }
  | { readonly kind: 'dropout'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value }
  | { readonly kind: 'zoo'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value; readonly scale?: string }
  | { readonly kind: 'bn'; readonly l: ShapedLayer; readonly pos: number; readonly bn: BnPending }
  | { readonly kind: 'materialize'; readonly l: ShapedLayer; readonly pos: number; readonly input: Value; readonly output: Value }
  | { readonly kind: 'merge'; readonly l: ShapedLayer; readonly pos: number; readonly inputs: readonly Value[]; readonly output: Value; readonly fused?: { readonly relu: boolean } };

const shape3 = (s: readonly number[]): [number, number, number] => [s[0], s[1] ?? 1, s[2] ?? 1];

type Named<N extends string> = { readonly [name in N]?: string };

/** The prologue's extra buffers (ops.ts names) and flags for a value's pending transform. */
function pendingArgs(v: Value): { buffers: Named<'in_scale' | 'in_shift'>; consts: { inBn: boolean; inRelu: boolean } } {
  const bn = v.pending?.bn;
  return { buffers: bn ? { in_scale: bn.scale, in_shift: bn.shift } : {}, consts: { inBn: bn !== undefined, inRelu: v.pending?.relu ?? false } };
}

/** The pending BN/ReLU flags of a residual add's two branch ends. */
function endFlags(a: Value, b: Value) {
  const pa = pendingArgs(a).consts, pb = pendingArgs(b).consts;
  return { aBn: pa.inBn, aRelu: pa.inRelu, bBn: pb.inBn, bRelu: pb.inRelu };
}

function poolConsts(l: ShapedLayer & { kind: 'maxpool' | 'avgpool' }, v: Value): ConvShape & { readonly ceil?: true } {
  const [K, P, Q] = shape3(l.output);
  const a = l.attrs;
  return { C: v.C, H: v.H, W: v.W, K, P, Q, R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW, ...(a.ceil ? { ceil: true as const } : {}) };
}

export { REBUILD_1X1_MIN_CHANNELS, type FusedTrainOptions } from './train-fused-options.js';

/** `stem`: the model takes uint8 images, which its first conv normalises on load, forward and weight gradient (u8-input.ts). */
export function lowerTrainFused(m: ShapedModel, maxBatch: number, stem?: U8Stem, options: FusedTrainOptions = {}): { program: Program; builder: ProgramBuilder } {
  const last = logSoftmaxHead(m);
  const { b, images, labels } = trainingInputs(m, stem);
  const stemOf = (buf: string) => stemConsts(buf === images ? stem : undefined);
  /** Buffers stored in bf16 that their readers widen: max pool outputs (bf16Pooled) and conv outputs (bf16ConvOut). */
  const bf16Inputs = new Set<string>();
  /** The consts `flag: true` when buffer `buf` is stored in bf16, else none. */
  const bf16Flag = (buf: string | undefined, flag: 'xBf16' | 'gyBf16' | 'eyBf16') => (buf !== undefined && bf16Inputs.has(buf) ? { [flag]: true } : {});
  /** Gradients stored in bf16 (FusedTrainOptions.bf16Gradients): their readers widen each load. */
  const bf16Gradients = new Set<string>();
  /** A step writing conv l's weights as bf16 in its forward's (or data gradient's) B order: the buffer. */
  // `gBn`: the data gradient reading the copy rebuilds dY' itself, from a shared table (the copy's k order depends on it: conv-mma-taps-halo.ts tapsOrder).
  const weightCopy = (l: ShapedLayer, c: ConvShape, dgrad: boolean, gBn = false): string => {
    const wb = b.fixed(`conv${l.index}.weight_bf16${dgrad ? '_dgrad' : ''}`, bf16WeightFloats(c, dgrad));
    const { C, H, W, K, P, Q, R, S, sh, sw, ph, pw } = c;
    b.step(l, 'conv_weight_bf16', { w: paramId(l, 'weight'), wb }, { C, H, W, K, P, Q, R, S, sh, sw, ph, pw, dgrad, ...(gBn ? { gBn } : {}) });
    return wb;
  };
  const nodes: Node[] = [];
  const [C0, H0, W0] = shape3(m.input);
  const input: Value = { buf: images, C: C0, H: H0, W: W0 };
  let v: Value = input;
  // Blocks (front/lowerable.ts): each layer's output value by position; a value several layers read (a
  // block's input) is materialized once, by its first reader, so every reader sees plain data and the
  // readers' gradients of it are summed before the materialize node's backward runs.
  const values: Value[] = [];
  const reads = readers(m.layers);
  const need = needsGradient(m.layers);
  const valueAt = (p: number) => (p < 0 ? input : values[p]);

  // One scratch pair for every conv's weight-gradient partials: the wgrad steps run one after another.
  const convs = m.layers.filter((l) => l.kind === 'conv');
  const weightsOf = (l: ShapedLayer) => (l.kind === 'conv' ? l.attrs.nOut * l.attrs.nIn * l.attrs.kH * l.attrs.kW : 0);
  const maxWeights = Math.max(0, ...convs.map(weightsOf));
  // A stem whose splits the GPU's waves choose (stemWaveSplits; not a uint8 stem's fp32 kernel) may take up to the batch's: the partials are sized for them.
  const waveSplitStem = (l: ShapedLayer) =>
    options.stemWaveSplits === true && options.wgradSplitsFor !== undefined && stem === undefined && l.kind === 'conv' && isStem({ C: l.attrs.nIn, R: l.attrs.kH, S: l.attrs.kW, sh: l.attrs.dH, sw: l.attrs.dW });
  const splitsOf = (l: ShapedLayer) => (waveSplitStem(l) ? Math.max(1, maxBatch) : wgradSplits(weightsOf(l), maxWeights, maxBatch));
  const wgradPartials = convs.length > 0 ? b.fixed('wgrad.partials', Math.max(...convs.map((l) => splitsOf(l) * weightsOf(l)))) : '';
  const biasPartials = convs.length > 0 ? b.fixed('wgrad.bias_partials', Math.max(...convs.map((l) => splitsOf(l) * (l.kind === 'conv' ? l.attrs.nOut : 0)))) : '';
  // The tiles' tickets, shared as the partials are: a weight gradient that ran to its end leaves every ticket 0.
  const lastSplit = (x: string) => options.wgradLastSplit === true && !stemOf(x).u8Mean;
  const wgradTickets = options.wgradLastSplit === true && convs.length > 0
    ? b.tickets('wgrad.tickets', Math.max(...convs.map((l) => (l.kind === 'conv' ? wgradTicketsBound(l.attrs.nIn * l.attrs.kH * l.attrs.kW, l.attrs.nOut) : 0))))
    : '';

  // The chain position whose output each buffer holds (−1: the images), for whether its gradient is needed.
  const position = new Map<string, number>([[images, -1]]);
  const materialize = (l: ShapedLayer, pos: number, x: Value): Value => {
    if (x.sum) throw new Error(`internal error: the unstored sum of layer ${x.sum.layer.index} read by layer ${l.index}`);
    if (!x.pending) return x;
    const out = b.act(`${l.kind}${l.index}.in_applied`, x.C * x.H * x.W);
    const p = pendingArgs(x);
    b.step(l, 'act_apply', { x: x.buf, ...p.buffers, y: out }, { C: x.C, HW: x.H * x.W, ...p.consts });
    position.set(out, position.get(x.buf) ?? -1);
    const y: Value = { buf: out, C: x.C, H: x.H, W: x.W };
    nodes.push({ kind: 'materialize', l, pos, input: x, output: y });
    return y;
  };

  // The ReLUs a residual add applied in its own pass (add_apply): the ReLU layer is then no kernel and no pending flag.
  const absorbed = new Set<number>();
  m.layers.forEach((l, pos) => {
    const from = inputsOf(m.layers, pos);
    for (const p of from) if (p >= 0 && reads[p] > 1 && values[p].pending) values[p] = materialize(l, pos, values[p]);
    v = valueAt(from[0]);
    forwardLayer(l, pos, from);
    values.push(v);
    position.set(v.buf, pos);
  });

  function forwardLayer(l: ShapedLayer, pos: number, from: readonly number[]): void {
    switch (l.kind) {
      case 'conv': {
        const a = l.attrs;
        const [K, P, Q] = shape3(l.output);
        // The conv's epilogue writes the statistics of the BN that reads it, when nothing else does.
        const stats = m.layers[pos + 1]?.kind === 'bn' && reads[pos] === 1 && inputsOf(m.layers, pos + 1).join() === String(pos);
        // A uint8 stem runs the fp32 kernels (its forward and weight gradient), which read and write fp32 only.
        const yBf16 = options.bf16ConvOut === true && !stemOf(v.buf).u8Mean && convOutBf16(m.layers, reads, pos);
        const y = yBf16 ? b.act(`conv${l.index}.out`, storageWords('bf16', K * P * Q), 'bf16') : b.act(`conv${l.index}.out`, K * P * Q);
        if (yBf16) bf16Inputs.add(y);
        const st = stats ? { mean: b.act(`conv${l.index}.stat_mean`, tilesOf(P * Q) * K), m2: b.act(`conv${l.index}.stat_m2`, tilesOf(P * Q) * K) } : undefined;
        const p = pendingArgs(v);
        const consts = { C: v.C, H: v.H, W: v.W, K, P, Q, R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW, bias: a.bias, ...p.consts, stats, ...stemOf(v.buf) };
        const wb = options.bf16Weights && a.kH * a.kW > 1 && !consts.u8Mean ? weightCopy(l, consts, false) : undefined;
        const input = v.addOnLoad ? sumOnLoad(v, v.addOnLoad) : { buffers: { x: v.buf }, consts: {} };
        b.step(l, 'conv_fwd_fused', { ...input.buffers, ...p.buffers, w: paramId(l, 'weight'), wb, b: a.bias ? paramId(l, 'bias') : undefined, y, st_mean: st?.mean, st_m2: st?.m2 }, { ...consts, ...input.consts, ...(wb ? { bf16w: true } : {}), ...bf16Flag(v.buf, 'xBf16'), ...(yBf16 ? { yBf16: true } : {}) });
        const out: Value = { buf: y, C: K, H: P, W: Q, ...(st ? { stats: st } : {}) };
        nodes.push({ kind: 'conv', l, pos, input: v.addOnLoad ? stored(v) : v, output: out });
        v = out;
        return;
      }
      case 'bn': {
        if (!l.attrs.affine) throw new LoweringError(`${l.span.file}:${l.span.start.line}:${l.span.start.column}: bn with affine=0 is not supported by the code generator`);
        v = materialize(l, pos, v);
        const HW = v.H * v.W;
        let stats = v.stats;
        if (!stats) {
          stats = { mean: b.act(`bn${l.index}.stat_mean`, tilesOf(HW) * v.C), m2: b.act(`bn${l.index}.stat_m2`, tilesOf(HW) * v.C) };
          b.step(l, 'bn_stats', { x: v.buf, st_mean: stats.mean, st_m2: stats.m2 }, { C: v.C, HW });
        }
        const fixed = (what: string) => b.fixed(`bn${l.index}.${what}`, v.C);
        const bn: BnPending = { layer: l, scale: fixed('scale'), shift: fixed('shift'), mean: fixed('save_mean'), invstd: fixed('save_invstd') };
        const p = (f: string) => paramId(l, f);
        b.step(l, 'bn_finalize', { st_mean: stats.mean, st_m2: stats.m2, gamma: p('weight'), beta: p('bias'), running_mean: p('running_mean'), running_var: p('running_var'), save_mean: bn.mean, save_invstd: bn.invstd, scale: bn.scale, shift: bn.shift }, {
          C: v.C,
          HW,
          eps: l.attrs.eps,
          momentum: l.attrs.momentum,
        });
        nodes.push({ kind: 'bn', l, pos, bn });
        v = { buf: v.buf, C: v.C, H: v.H, W: v.W, pending: { bn, relu: false } };
        return;
      }
      case 'relu':
        if (absorbed.has(pos)) return; // applied by the residual add before it
        // relu∘relu = relu, and BN's pending transform takes the flag: no kernel.
        v = { buf: v.buf, C: v.C, H: v.H, W: v.W, pending: { ...(v.pending?.bn ? { bn: v.pending.bn } : {}), relu: true } };
        return;
      case 'identity':
        return; // nn.Identity: the same value
      case 'tanh':
      case 'sigmoid':
      case 'threshold':
      case 'lrn':
      case 'zeropad':
        return zooForward(l, pos);
      case 'concat':
        return concatInPlace(l, pos, from);
      case 'add': {
        if (new Set(from).size === from.length) return residualAdd(l, pos, from);
        // An add that reads one value twice: the branches' ends applied (a branch may end in a pending BN), then summed.
        const ins = from.map((p) => materialize(l, pos, valueAt(p)));
        const [C, H, W] = shape3(l.output);
        let y = b.act(`add${l.index}.out`, C * H * W);
        b.step(l, 'add', { a: ins[0].buf, b: ins[1].buf, y }, { count: C * H * W, relu: false });
        for (const x of ins.slice(2)) {
          const sum = b.act(`add${l.index}.out`, C * H * W);
          b.step(l, 'add', { a: y, b: x.buf, y: sum }, { count: C * H * W, relu: false });
          y = sum;
        }
        const out: Value = { buf: y, C, H, W };
        nodes.push({ kind: 'merge', l, pos, inputs: ins, output: out });
        v = out;
        return;
      }
      case 'maxpool':
      case 'avgpool': {
        const c = poolConsts(l, v);
        if (v.sum && l.kind === 'avgpool') {
          const [ea, eb] = v.sum.ends;
          const pa = pendingArgs(ea), pb = pendingArgs(eb);
          const y = b.act(`avgpool${l.index}.out`, c.K * c.P * c.Q);
          b.step(l, 'avgpool_add_fwd', { a: ea.buf, a_scale: pa.buffers.in_scale, a_shift: pa.buffers.in_shift, b: eb.buf, b_scale: pb.buffers.in_scale, b_shift: pb.buffers.in_shift, y }, { ...c, ...endFlags(ea, eb), relu: v.sum.relu });
          const out: Value = { buf: y, C: c.K, H: c.P, W: c.Q };
          nodes.push({ kind: 'pool', l, pos, input: v, output: out });
          v = out;
          return;
        }
        const readersOfPool = m.layers.filter((_, i) => inputsOf(m.layers, i).includes(pos));
        const onlyConvsRead = readersOfPool.length > 0 && readersOfPool.every((r) => r.kind === 'conv');
        const storeBf16 = l.kind === 'maxpool' && options.bf16Pooled === true && onlyConvsRead;
        const y = storeBf16 ? b.act(`${l.kind}${l.index}.out`, storageWords('bf16', c.K * c.P * c.Q), 'bf16') : b.act(`${l.kind}${l.index}.out`, c.K * c.P * c.Q);
        if (storeBf16) bf16Inputs.add(y);
        const argmax = l.kind === 'maxpool' ? b.act(`maxpool${l.index}.argmax`, c.K * c.P * c.Q, 'i32') : undefined;
        const p = pendingArgs(v);
        b.step(l, l.kind === 'maxpool' ? 'maxpool_fwd_fused' : 'avgpool_fwd_fused', { x: v.buf, ...p.buffers, y, argmax }, { ...c, ...p.consts, ...(storeBf16 ? { bf16: true } : {}), ...bf16Flag(v.buf, 'xBf16') });
        const out: Value = { buf: y, C: c.K, H: c.P, W: c.Q };
        nodes.push({ kind: 'pool', l, pos, input: v, output: out, ...(argmax ? { argmax } : {}) });
        v = out;
        return;
      }
      case 'view': {
        // Flattening keeps NCHW element order; a per-channel pending transform survives only a 1×1 plane.
        if (v.H * v.W > 1) v = materialize(l, pos, v);
        const [C, H, W] = shape3(l.output);
        v = { ...v, C, H, W };
        return;
      }
      case 'linear': {
        v = materialize(l, pos, v);
        const y = b.act(`linear${l.index}.out`, l.attrs.nOut);
        b.step(l, 'linear_fwd', { x: v.buf, w: paramId(l, 'weight'), b: l.attrs.bias ? paramId(l, 'bias') : undefined, y }, { in: l.attrs.nIn, out: l.attrs.nOut, bias: l.attrs.bias, relu: false });
        const out: Value = { buf: y, C: l.attrs.nOut, H: 1, W: 1 };
        nodes.push({ kind: 'linear', l, pos, input: v, output: out });
        v = out;
        return;
      }
      case 'logsoftmax':
      case 'softmax': {
        v = materialize(l, pos, v);
        const y = b.act(`${l.kind}${l.index}.out`, elementsOf(l.output));
        b.step(l, `${l.kind}_fwd`, { x: v.buf, y }, { classes: l.input[0] });
        const out: Value = { buf: y, C: v.C, H: 1, W: 1 };
        nodes.push({ kind: 'softmax', l, pos, input: v, output: out, log: l.kind === 'logsoftmax' });
        v = out;
        return;
      }
      case 'dropout': {
        // The mask is the cpu kernels' hash of (call seed, layer, element), recomputed by the backward.
        v = materialize(l, pos, v);
        const y = b.act(`dropout${l.index}.out`, v.C * v.H * v.W);
        b.step(l, 'dropout_fwd', { x: v.buf, y }, { count: v.C * v.H * v.W, p: l.attrs.p });
        const out: Value = { buf: y, C: v.C, H: v.H, W: v.W };
        nodes.push({ kind: 'dropout', l, pos, input: v, output: out });
        v = out;
        return;
      }
    }
  }

  /**
   * The buffers and consts of a conv_fwd_fused that computes its input, the residual sum x, as it loads (addInNextConv)
   * and stores it in x's buffer; from then on x is plain data for its other readers.
   */
  function sumOnLoad(x: Value, add: NonNullable<Value['addOnLoad']>) {
    const [ea, eb] = add.ends;
    const pa = pendingArgs(ea), pb = pendingArgs(eb);
    const f = endFlags(ea, eb);
    const plain = stored(x);
    values.forEach((value, p) => value === x && (values[p] = plain));
    return {
      buffers: { xa: ea.buf, xa_scale: pa.buffers.in_scale, xa_shift: pa.buffers.in_shift, xb: eb.buf, xb_scale: pb.buffers.in_scale, xb_shift: pb.buffers.in_shift, x_out: x.buf },
      consts: { sumInput: true, ...(f.aBn ? { aBn: true } : {}), ...(f.aRelu ? { aRelu: true } : {}), ...(f.bBn ? { bBn: true } : {}), ...(f.bRelu ? { bRelu: true } : {}), ...(add.relu ? { sumRelu: true } : {}) },
    };
  }
  /** A value stored in its buffer: no pending transform, no sum left to compute. */
  function stored(x: Value): Value {
    return { buf: x.buf, C: x.C, H: x.H, W: x.W };
  }

  /**
   * Torch7's zoo layers (Tanh, Sigmoid, Threshold, cross-map LRN, zero padding): kernels of their own over
   * plain data, so the input's pending BN/ReLU is materialized first, as for any reader that cannot apply it.
   */
  function zooForward(l: ShapedLayer, pos: number): void {
    const x = materialize(l, pos, v);
    const [C, H, W] = shape3(l.output);
    const y = b.act(`${l.kind}${l.index}.out`, C * H * W);
    let scale: string | undefined;
    if (l.kind === 'tanh' || l.kind === 'sigmoid') b.step(l, `${l.kind}_fwd`, { x: x.buf, y }, { count: C * H * W });
    else if (l.kind === 'threshold') b.step(l, 'threshold_fwd', { x: x.buf, y }, { count: C * H * W, th: l.attrs.th, v: l.attrs.v });
    else if (l.kind === 'zeropad') b.step(l, 'zeropad_fwd', { x: x.buf, y }, padConsts(l));
    else if (l.kind === 'lrn') {
      scale = b.act(`lrn${l.index}.scale`, C * H * W);
      b.step(l, 'lrn_fwd', { x: x.buf, y, scale }, lrnConsts(l));
    }
    const out: Value = { buf: y, C, H, W };
    nodes.push({ kind: 'zoo', l, pos, input: x, output: out, ...(scale ? { scale } : {}) });
    v = out;
  }

  /** The gradient of a zoo layer's input from its output's (raw: the layer's output is never pending). */
  function zooBackward(node: Node & { kind: 'zoo' }, dy: string): string {
    const l = node.l;
    const x = node.input;
    const dx = b.act(`${l.kind}${l.index}.grad_in`, x.C * x.H * x.W);
    const count = x.C * x.H * x.W;
    if (l.kind === 'tanh' || l.kind === 'sigmoid') b.step(l, `${l.kind}_bwd`, { y: node.output.buf, g: dy, dx }, { count });
    else if (l.kind === 'threshold') b.step(l, 'threshold_bwd', { x: x.buf, g: dy, dx }, { count, th: l.attrs.th });
    else if (l.kind === 'zeropad') b.step(l, 'zeropad_bwd', { g: dy, dx }, padConsts(l));
    else if (l.kind === 'lrn') b.step(l, 'lrn_bwd', { x: x.buf, y: node.output.buf, scale: node.scale, g: dy, dx }, lrnConsts(l));
    else throw new Error(`internal error: no backward of the zoo layer at position ${node.pos}`);
    return dx;
  }

  /**
   * A residual add as one pass per branch after the first (add_apply): each branch end's pending BN/ReLU
   * applied on load (the closing conv's BN-apply), summed into the running sum (plain data), and the
   * block's ReLU applied by the last pass when only that ReLU reads the sum.
   */
  function residualAdd(l: ShapedLayer, pos: number, from: readonly number[]): void {
    const [C, H, W] = shape3(l.output);
    const relu = soleReluAfter(m.layers, reads, pos);
    if (relu) absorbed.add(pos + 1);
    // An add whose value (after the ReLU) only an average pool reads is left to that pool (the sum never stored).
    if (poolTakingAdd(m.layers, pos) !== undefined) {
      v = { buf: `add${l.index}.unstored`, C, H, W, sum: { layer: l, ends: [valueAt(from[0]), valueAt(from[1])], relu } };
      return;
    }
    // An add whose first reader is a conv reaching each element once at one tap is left to that conv, which stores the sum:
    // any such conv (addInNextConv), or a 1×1 one (addInNextPointwiseConv), which loads each element once per channel tile.
    const first = (options.addInNextConv === true || options.addInNextPointwiseConv === true) && from.length === 2 ? firstReaderOfAdd(m.layers, pos) : undefined;
    const reader = first === undefined ? undefined : m.layers[first];
    if (reader?.kind === 'conv' && (options.addInNextConv === true || reader.attrs.kH * reader.attrs.kW === 1)) {
      const [, P, Q] = shape3(reader.output);
      const ra = reader.attrs;
      if (centreTapCoversInput({ C, H, W, K: ra.nOut, P, Q, R: ra.kH, S: ra.kW, sh: ra.dH, sw: ra.dW, ph: ra.padH, pw: ra.padW })) {
        const ends = [valueAt(from[0]), valueAt(from[1])] as const;
        const y = b.act(`add${l.index}.out`, C * H * W);
        v = { buf: y, C, H, W, addOnLoad: { ends, relu } };
        nodes.push({ kind: 'merge', l, pos, inputs: ends, output: stored(v), fused: { relu } });
        return;
      }
    }
    let sum = valueAt(from[0]);
    from.slice(1).forEach((p, k) => {
      const c = valueAt(p);
      const last = k === from.length - 2;
      const y = b.act(`add${l.index}.out`, C * H * W);
      const pa = pendingArgs(sum), pc = pendingArgs(c);
      b.step(l, 'add_apply', { a: sum.buf, a_scale: pa.buffers.in_scale, a_shift: pa.buffers.in_shift, b: c.buf, b_scale: pc.buffers.in_scale, b_shift: pc.buffers.in_shift, y }, { C, HW: H * W, ...endFlags(sum, c), relu: relu && last });
      const out: Value = { buf: y, C, H, W };
      // A partial sum is the add layer's value too: its gradient is needed when the layer's is.
      if (!last) position.set(y, pos);
      nodes.push({ kind: 'merge', l, pos, inputs: [sum, c], output: out, fused: { relu: relu && last } });
      sum = out;
    });
    v = sum;
  }

  /**
   * A concat: each branch end written into its channels of the joined buffer by one pass (concat_apply),
   * which applies the end's pending BN/ReLU on the way instead of materializing it and then copying; an
   * end without one (a raw conv output, a pool's, an add's) is copied. (Not concat_place, whose kernel
   * names the inference program numbers after its own copies: one name would mean two kernels.)
   */
  function concatInPlace(l: ShapedLayer, pos: number, from: readonly number[]): void {
    const [C, H, W] = shape3(l.output);
    const y = b.act(`concat${l.index}.out`, C * H * W);
    const ins = from.map(valueAt);
    concatSlices(l, m.layers, from).forEach((c, k) => {
      const x = ins[k];
      const p = pendingArgs(x);
      b.step(l, 'concat_apply', { x: x.buf, ...p.buffers, y }, { ...c, ...p.consts });
    });
    const out: Value = { buf: y, C, H, W };
    nodes.push({ kind: 'merge', l, pos, inputs: ins, output: out });
    v = out;
  }

  const classes = elementsOf(last.output);
  const loss = b.fixed('loss', 1);
  const output = v.buf;
  // The gradient of each value, by its buffer: `of` is the value (raw, or with its pending transform) it is the gradient of.
  type Grad = { readonly buf: string; readonly of: Value };
  const grads = new Map<string, Grad>([[v.buf, { buf: b.act('loss.grad_in', classes), of: v }]]);
  b.step(undefined, 'nll_loss', { logp: output, labels, loss, dlogp: grads.get(v.buf)!.buf }, { classes });
  // A value read by several layers gets the sum of their gradients (all of plain data: it was materialized).
  const accumulate = (l: ShapedLayer, g: Grad) => {
    const seen = grads.get(g.of.buf);
    if (!seen) return void grads.set(g.of.buf, g);
    if (seen.of.pending || g.of.pending) throw new Error(`internal error: gradients of a pending value summed at layer ${l.index}`);
    // Named after the layer whose output it is (as lower/train.ts names it), not the reader that adds to it.
    const p = position.get(g.of.buf) ?? -1;
    const owner = p >= 0 ? m.layers[p] : l;
    const sum = b.act(`grad${owner.index}.sum`, g.of.C * g.of.H * g.of.W);
    b.step(owner, 'add', { a: seen.buf, b: g.buf, y: sum }, { count: g.of.C * g.of.H * g.of.W, relu: false });
    grads.set(g.of.buf, { buf: sum, of: g.of });
  };

  // Backward. Per pending BN: the Σdz and Σdz·x̂ partials of the gradient of its value.
  const bwdStats = new Map<number, { dz: string; dzx: string }>();
  const statsFor = (x: Value) => {
    const bn = x.pending?.bn;
    if (!bn) return undefined;
    const s = { dz: b.act(`bn${bn.layer.index}.stat_dz`, tilesOf(x.H * x.W) * x.C), dzx: b.act(`bn${bn.layer.index}.stat_dzx`, tilesOf(x.H * x.W) * x.C) };
    bwdStats.set(bn.layer.index, s);
    return s;
  };
  // What a kernel needs to compute those partials for the gradient of value x (its epilogue).
  const epilogue = (x: Value) => {
    const s = statsFor(x);
    const bn = x.pending?.bn;
    const buffers: Named<'e_y' | 'e_scale' | 'e_shift' | 'e_mean' | 'e_invstd' | 'e_dz' | 'e_dzx'> = s && bn ? { e_y: x.buf, e_scale: bn.scale, e_shift: bn.shift, e_mean: bn.mean, e_invstd: bn.invstd, e_dz: s.dz, e_dzx: s.dzx } : {};
    return { buffers, consts: { outStats: s !== undefined, outRelu: x.pending?.relu ?? false, ...bf16Flag(buffers.e_y, 'eyBf16') } };
  };
  // What a kernel needs to rebuild the gradient of x's raw buffer from the gradient of x (its prologue).
  const rebuild = (x: Value) => {
    const bn = x.pending?.bn;
    const buffers: Named<'g_y' | 'g_scale' | 'g_shift' | 'g_gamma' | 'g_mean' | 'g_invstd' | 'g_dgamma' | 'g_dbeta'> = !x.pending
      ? {}
      : bn
        ? { g_y: x.buf, g_scale: bn.scale, g_shift: bn.shift, g_gamma: paramId(bn.layer, 'weight'), g_mean: bn.mean, g_invstd: bn.invstd, g_dgamma: gradId(bn.layer, 'weight'), g_dbeta: gradId(bn.layer, 'bias') }
        : { g_y: x.buf };
    return { buffers, consts: { gBn: bn !== undefined, gRelu: x.pending?.relu ?? false, ...bf16Flag(buffers.g_y, 'gyBf16') } };
  };
  // A gradient of a pending value turned into one of its raw buffer, for consumers without the prologue.
  // bf16: stored rounded to bf16, for readers that only stage it rounded (FusedTrainOptions bf16Rebuilt).
  const rawGradient = (l: ShapedLayer, g: { buf: string; of: Value }, bf16 = false) => {
    if (!g.of.pending) return g.buf;
    const dtype = bf16 ? 'bf16' : 'f32';
    const out = b.act(`${l.kind}${l.index}.grad_raw`, storageWords(dtype, g.of.C * g.of.H * g.of.W), dtype);
    const r = rebuild(g.of);
    b.step(l, 'grad_rebuild', { g: g.buf, ...r.buffers, dx: out }, { C: g.of.C, HW: g.of.H * g.of.W, ...r.consts, ...(bf16 ? { bf16: true } : {}), ...(bf16Gradients.has(g.buf) ? { gBf16: true } : {}) });
    return out;
  };

  /**
   * Whether the gradient of value x is stored in bf16 (FusedTrainOptions.bf16Gradients): x has a pending BN and a
   * conv produced it (its pass or gradient kernels rebuild dY' from the gradient, widening each load), or x is a
   * max pool's output that one layer reads (the pool's backward widens g as it stages it).
   */
  const storesGradientBf16 = (x: Value): boolean => {
    if (options.bf16Gradients !== true) return false;
    const producer = nodes.find((n) => n.kind !== 'merge' && n.kind !== 'bn' && n.output.buf === x.buf);
    if (x.pending?.bn) return producer?.kind === 'conv' && stemOf(producer.input.buf).u8Mean === undefined;
    return !x.pending && !x.sum && producer?.kind === 'pool' && producer.l.kind === 'maxpool' && reads[producer.pos] === 1;
  };
  /** A gradient buffer of value x, bf16 where storesGradientBf16 says so. */
  const gradientBuffer = (name: string, x: Value, bf16: boolean): string => {
    if (!bf16) return b.act(name, x.C * x.H * x.W);
    const buf = b.act(name, storageWords('bf16', x.C * x.H * x.W), 'bf16');
    bf16Gradients.add(buf);
    return buf;
  };

  // Whether the value x (a node's input) needs a gradient: it comes from a layer with parameters, or through one.
  const needs = (x: Value) => {
    const p = position.get(x.buf) ?? -1;
    return p >= 0 && need[p];
  };
  /**
   * add_apply's backward in one pass: dz = dy·[y > 0] when it applied the block's ReLU, passed to both
   * branch ends as the gradient of their pending values (their consumers rebuild it on load), and the
   * Σdz, Σdz·x̂ partials of each end's pending BN. No pass at all when there is neither.
   */
  function residualAddBackward(l: ShapedLayer, inputs: readonly Value[], output: Value, dy: string, relu: boolean): void {
    const add = addBackwardArgs(inputs, output, relu);
    const dz = relu ? b.act(`add${l.index}.grad_in`, output.C * output.H * output.W) : undefined;
    if (dz || add.consts.aStats || add.consts.bStats) {
      const { y, ...sides } = add.buffers;
      b.step(l, 'add_bwd_fused', { g: dy, y, dz, ...sides }, { C: output.C, HW: output.H * output.W, ...add.consts });
    }
    for (const x of inputs) if (needs(x)) accumulate(l, { buf: dz ?? dy, of: x });
  }

  /**
   * What the backward of a two-branch residual add reads and writes besides its gradient (add_bwd_fused's, or the
   * epilogue's of the data gradient that does it, addBwdInDgrad): the block output `y` where the ReLU's mask is read
   * from it, and each end's raw value and BN parameters and the Σdz, Σdz·x̂ partials of its pending BN.
   */
  function addBackwardArgs(inputs: readonly Value[], output: Value, relu: boolean) {
    const [a, c] = inputs;
    const sa = statsFor(a), sc = statsFor(c);
    const bnA = sa && a.pending?.bn, bnC = sc && c.pending?.bn;
    const sideA = bnA ? { a_y: a.buf, a_scale: bnA.scale, a_shift: bnA.shift, a_mean: bnA.mean, a_invstd: bnA.invstd, a_dz: sa.dz, a_dzx: sa.dzx } : {};
    const sideB = bnC ? { b_y: c.buf, b_scale: bnC.scale, b_shift: bnC.shift, b_mean: bnC.mean, b_invstd: bnC.invstd, b_dz: sc.dz, b_dzx: sc.dzx } : {};
    const consts = {
      relu,
      aStats: sa !== undefined,
      aRelu: sa !== undefined && (a.pending?.relu ?? false),
      bStats: sc !== undefined,
      bRelu: sc !== undefined && (c.pending?.relu ?? false),
    };
    return { buffers: { y: relu && !maskFromEnds(consts) ? output.buf : undefined, ...sideA, ...sideB }, consts };
  }

  /**
   * The two-branch residual add whose output x is, when this conv (at pos) reads it first (addBwdInDgrad): its data
   * gradient, the last of x's gradients to be produced (the readers' backwards run in reverse chain order), can do
   * the add's backward in its epilogue. Undefined otherwise.
   */
  const addReadFirstBy = (x: Value, pos: number) =>
    options.addBwdInDgrad === true
      ? nodes.find((n): n is Node & { kind: 'merge' } => n.kind === 'merge' && n.fused !== undefined && n.inputs.length === 2 && n.output.buf === x.buf && firstReaderOfAdd(m.layers, n.pos) === pos)
      : undefined;
  /** The merge nodes whose backward a conv's data gradient did (addReadFirstBy): their gradient is already dz. */
  const addsInDgrad = new Set<Node>();

  /**
   * avgpool_add_fwd's backward in one pass (avgpool_add_bwd): the pool's gradient, masked by the block's ReLU,
   * is dz, the gradient of both branch ends' pending values, with each end's BN partials; as
   * residualAddBackward's, but the mask is recomputed from the ends (the sum was never stored).
   */
  function pooledAddBackward(l: ShapedLayer, sum: NonNullable<Value['sum']>, c: ReturnType<typeof poolConsts>, dy: string): void {
    const [ea, eb] = sum.ends;
    const sa = statsFor(ea), sb = statsFor(eb);
    const dz = b.act(`add${sum.layer.index}.grad_in`, c.C * c.H * c.W);
    const side = (p: 'a' | 'b', x: Value, s: ReturnType<typeof statsFor>) => {
      const bn = x.pending?.bn;
      const read = bn || sum.relu ? { [`${p}_y`]: x.buf } : {};
      return bn && s ? { ...read, [`${p}_scale`]: bn.scale, [`${p}_shift`]: bn.shift, [`${p}_mean`]: bn.mean, [`${p}_invstd`]: bn.invstd, [`${p}_dz`]: s.dz, [`${p}_dzx`]: s.dzx } : read;
    };
    b.step(l, 'avgpool_add_bwd', { g: dy, dz, ...side('a', ea, sa), ...side('b', eb, sb) }, { ...c, ...endFlags(ea, eb), relu: sum.relu });
    for (const x of sum.ends) if (needs(x)) accumulate(sum.layer, { buf: dz, of: x });
  }

  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const l = node.l;
    const out = node.kind === 'bn' ? undefined : grads.get(node.output.buf);
    if (node.kind !== 'bn' && !out) continue; // no gradient reaches it (nothing before it has parameters)
    let grad: Grad = out ?? { buf: '', of: input };
    const needDx = node.kind !== 'bn' && node.kind !== 'merge' && needs(node.input);
    const pass = () => accumulate(l, grad);
    switch (node.kind) {
      case 'softmax': {
        const dy = rawGradient(l, grad);
        const dx = b.act(`${l.kind}${l.index}.grad_in`, node.input.C);
        b.step(l, node.log ? 'logsoftmax_bwd' : 'softmax_bwd', { y: node.output.buf, g: dy, dx }, { classes: node.input.C });
        grad = { buf: dx, of: node.input };
        pass();
        break;
      }
      case 'linear': {
        const a = l.kind === 'linear' ? l.attrs : undefined;
        if (!a) break;
        const c = { in: a.nIn, out: a.nOut, bias: a.bias };
        const dy = rawGradient(l, grad);
        b.step(l, 'linear_bwd_weight', { x: node.input.buf, g: dy, dw: gradId(l, 'weight'), db: a.bias ? gradId(l, 'bias') : undefined }, c);
        if (!needDx) break;
        const dx = b.act(`linear${l.index}.grad_in`, a.nIn);
        b.step(l, 'linear_bwd_data', { g: dy, w: paramId(l, 'weight'), dx }, c);
        grad = { buf: dx, of: node.input };
        pass();
        break;
      }
      case 'materialize': {
        // The applied buffer is the input value, so its raw gradient is the value's gradient; only the BN partials are new.
        const dy = rawGradient(l, grad);
        const e = epilogue(node.input);
        if (e.consts.outStats) b.step(l, 'act_bwd_stats', { g: dy, ...e.buffers }, { C: node.input.C, HW: node.input.H * node.input.W, outRelu: e.consts.outRelu });
        if (needs(node.input)) accumulate(l, { buf: dy, of: node.input });
        break;
      }
      case 'dropout': {
        if (!needDx) break;
        const dy = rawGradient(l, grad);
        const dx = b.act(`dropout${l.index}.grad_in`, node.input.C * node.input.H * node.input.W);
        b.step(l, 'dropout_bwd', { g: dy, dx }, { count: node.input.C * node.input.H * node.input.W, p: l.kind === 'dropout' ? l.attrs.p : 0 });
        grad = { buf: dx, of: node.input };
        pass();
        break;
      }
      case 'zoo': {
        if (!needDx) break;
        grad = { buf: zooBackward(node, rawGradient(l, grad)), of: node.input };
        pass();
        break;
      }
      case 'pool': {
        if (!needDx) break;
        if (l.kind !== 'maxpool' && l.kind !== 'avgpool') break;
        const dy = rawGradient(l, grad);
        const c = poolConsts(l, node.input);
        const sum = node.input.sum;
        if (sum && l.kind === 'avgpool') {
          pooledAddBackward(l, sum, c, dy);
          break;
        }
        const dxBf16 = l.kind === 'maxpool' && storesGradientBf16(node.input);
        const dx = gradientBuffer(`${l.kind}${l.index}.grad_in`, node.input, dxBf16);
        const e = epilogue(node.input);
        const storage = { ...(bf16Gradients.has(dy) ? { gBf16: true } : {}), ...(dxBf16 ? { dxBf16: true } : {}) };
        b.step(l, l.kind === 'maxpool' ? 'maxpool_bwd_fused' : 'avgpool_bwd_fused', { g: dy, argmax: node.argmax, dx, ...e.buffers }, { ...c, ...e.consts, ...storage });
        grad = { buf: dx, of: node.input };
        pass();
        break;
      }
      case 'bn': {
        const s = bwdStats.get(l.index);
        if (!s) throw new Error(`internal error: no backward statistics for bn layer ${l.index}`);
        const [, H, W] = shape3(l.input);
        const c = { C: node.bn.layer.kind === 'bn' ? node.bn.layer.attrs.nFeatures : 0, HW: H * W };
        b.step(l, 'bn_bwd_finalize', { st_dz: s.dz, st_dzx: s.dzx, dgamma: gradId(l, 'weight'), dbeta: gradId(l, 'bias') }, c);
        break;
      }
      case 'merge': {
        // An add passes its raw gradient to both branch ends; a concat each end its channels.
        const dy = rawGradient(l, grad);
        // Its backward done by the data gradient of the conv that reads it first (addBwdInDgrad): dy is dz already.
        if (addsInDgrad.has(node)) node.inputs.forEach((x) => needs(x) && accumulate(l, { buf: dy, of: x }));
        else if (node.fused) residualAddBackward(l, node.inputs, node.output, dy, node.fused.relu);
        else if (l.kind === 'add') node.inputs.forEach((x) => needs(x) && accumulate(l, { buf: dy, of: x }));
        else {
          concatSlices(l, m.layers, inputsOf(m.layers, node.pos)).forEach((c, k) => {
            const x = node.inputs[k];
            if (!needs(x)) return;
            const dx = b.act(`concat${l.index}.grad_in${k + 1}`, c.C * c.HW);
            // dx is the gradient of the end's pending value (its consumers rebuild the raw one); a pending BN's partials come from it, in the same pass.
            const e = epilogue(x);
            if (e.consts.outStats) b.step(l, 'concat_take_stats', { g: dy, dx, ...e.buffers }, { ...c, outRelu: e.consts.outRelu });
            else b.step(l, 'concat_take', { g: dy, dx }, c);
            accumulate(l, { buf: dx, of: x });
          });
        }
        break;
      }
      case 'conv': {
        if (l.kind !== 'conv') break;
        const a = l.attrs;
        const x = node.input;
        const o = node.output;
        const rebuiltFirst = options.rebuildPass && grad.of.pending?.bn && (a.kH * a.kW > 1 || x.C >= REBUILD_1X1_MIN_CHANNELS) && needDx;
        const rebuiltBf16 = rebuiltFirst === true && options.bf16Rebuilt === true;
        // rebuildInWgrad: a 1×1 conv's weight gradient rebuilds from the pending gradient and stores dY' (bf16) for the data gradient.
        const inWgrad = rebuiltBf16 && options.rebuildInWgrad === true && a.kH * a.kW === 1;
        const dyRaw = inWgrad ? b.act(`${l.kind}${l.index}.grad_raw`, storageWords('bf16', grad.of.C * grad.of.H * grad.of.W), 'bf16') : undefined;
        const pending = grad;
        if (rebuiltFirst) grad = { buf: dyRaw ?? rawGradient(l, grad, rebuiltBf16), of: { buf: grad.of.buf, C: grad.of.C, H: grad.of.H, W: grad.of.W } };
        const gBf16 = rebuiltFirst ? rebuiltBf16 : bf16Gradients.has(grad.buf);
        const gStorage = gBf16 ? { gBf16: true } : {};
        const r = rebuild(grad.of);
        // The weight gradient's g and its rebuild: the pending gradient's where it rebuilds dY' itself.
        const wgradGrad = dyRaw ? pending : grad;
        const wr = dyRaw ? rebuild(pending.of) : r;
        const wgradStorage = dyRaw ? { ...(bf16Gradients.has(pending.buf) ? { gBf16: true } : {}), dyOut: true } : gStorage;
        const p = pendingArgs(x);
        const shape = { C: x.C, H: x.H, W: x.W, K: o.C, P: o.H, Q: o.W, R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW, bias: a.bias };
        const dW = { dw: gradId(l, 'weight'), db: a.bias ? gradId(l, 'bias') : undefined };
        const waveStem = waveSplitStem(l);
        const folded = lastSplit(x.buf) && !waveStem;
        const wgradConsts: OpConsts['conv_wgrad_fused'] = { ...shape, ...wr.consts, ...p.consts, splits: splitsOf(l), ...stemOf(x.buf), ...wgradStorage, ...bf16Flag(x.buf, 'xBf16'), ...(folded ? { lastSplit: true } : {}), ...(waveStem ? { waveSplits: true } : {}) };
        const { splits, waveTile, residentBlocks } = (folded || waveStem) && options.wgradSplitsFor ? options.wgradSplitsFor(l, wgradConsts) : { splits: wgradConsts.splits, waveTile: undefined, residentBlocks: undefined };
        if (splits < 1 || splits > wgradConsts.splits) throw new Error(`internal error: layer ${l.index}'s weight gradient in ${splits} splits, its partials sized for 1 to ${wgradConsts.splits}`);
        b.step(l, 'conv_wgrad_fused', { g: wgradGrad.buf, ...wr.buffers, ...(dyRaw ? { dy_raw: dyRaw } : {}), x: x.buf, ...p.buffers, wpart: wgradPartials, bpart: biasPartials, ...(folded ? { ...dW, tickets: wgradTickets } : {}) }, { ...wgradConsts, splits, ...(waveTile !== undefined ? { waveTile } : {}), ...(residentBlocks !== undefined ? { residentBlocks } : {}) });
        if (!folded) b.step(l, 'wgrad_reduce', { wpart: wgradPartials, bpart: biasPartials, ...dW }, { count: o.C * x.C * a.kH * a.kW, K: o.C, bias: a.bias, splits });
        if (!needDx) break;
        const dxBf16 = storesGradientBf16(x);
        // The residual add that x is, when this conv reads it first: its backward in this epilogue, the dx stored being dz.
        // (A split bf16 data gradient runs the same epilogue on the splits' sum: conv-mma-dgrad-splits.ts.)
        const foldedAdd = !dxBf16 ? addReadFirstBy(x, node.pos) : undefined;
        const addArgs = foldedAdd?.fused ? addBackwardArgs(foldedAdd.inputs, foldedAdd.output, foldedAdd.fused.relu) : undefined;
        const dx = gradientBuffer(`conv${l.index}.grad_in`, x, dxBf16);
        const e = epilogue(x);
        // Another reader's gradient of x (a fanned-out value, plain data) is summed in this epilogue, not by an add pass.
        const prior = x.pending ? undefined : grads.get(x.buf);
        const addend = prior ? { g_add: prior.buf } : {};
        const wb = options.bf16Weights && a.kH * a.kW > 1 ? weightCopy(l, shape, true, r.consts.gBn === true) : undefined;
        const addConsts = addArgs ? { addBwd: true, sumRelu: addArgs.consts.relu, aStats: addArgs.consts.aStats, aRelu: addArgs.consts.aRelu, bStats: addArgs.consts.bStats, bRelu: addArgs.consts.bRelu } : {};
        const dgradConsts: OpConsts['conv_dgrad_fused'] = { ...shape, ...r.consts, ...e.consts, ...(prior ? { addend: true } : {}), ...(wb ? { bf16w: true } : {}), ...gStorage, ...(dxBf16 ? { dxBf16: true } : {}), ...addConsts };
        // Its reduction in splits where the GPU's waves say so, each split's partials and the tiles' tickets this layer's own.
        const dgradSplit = options.dgradSplitsFor?.(dgradConsts);
        const splitBuffers = dgradSplit
          ? { dpart: b.fixed(`conv${l.index}.dgrad.partials`, dgradSplit.splits * dgradSplit.tiles * dgradSplit.area), dtickets: b.tickets(`conv${l.index}.dgrad.tickets`, dgradSplit.tiles) }
          : {};
        const splitConsts = dgradSplit ? { splits: dgradSplit.splits, splitTiles: dgradSplit.tiles, splitArea: dgradSplit.area } : {};
        b.step(l, 'conv_dgrad_fused', { g: grad.buf, ...r.buffers, w: paramId(l, 'weight'), wb, ...addend, dx, ...e.buffers, ...splitBuffers, ...addArgs?.buffers }, { ...dgradConsts, ...splitConsts });
        if (foldedAdd) addsInDgrad.add(foldedAdd);
        grad = { buf: dx, of: x };
        if (prior) grads.set(x.buf, grad);
        else pass();
        break;
      }
    }
  }
  return { program: { name: 'train_forward_backward', inputs: { images, labels }, outputs: { output, loss }, steps: b.steps }, builder: b };
}
