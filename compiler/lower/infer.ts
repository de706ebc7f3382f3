// Pass: the inference programs: BN folded into the conv before it (and its weights packed once for the
// GEMM), ReLU fused into conv/linear epilogues; a residual block's add (and its ReLU) in the epilogue of
// the conv that closes a branch, and a concat's branches written by their last convs into their slices.
import { convPackedWeightsFloats } from '../schedule/cpu-conv-algorithm.js';
import { chooseBlockBands } from '../schedule/cpu-block-bands.js';
import { choosePairRegion } from '../schedule/cpu-pointwise-pair-region.js';
import type { ShapedLayer, ShapedModel } from '../ir.js';
import { closingAdd, inputsOf, readers } from './chain.js';
import { bf16WeightFloats } from './ops.js';
import { paramId } from './params.js';
import type { Program } from './program-ir.js';
import { channelShape, elementsOf, lrnConsts, padConsts, ProgramBuilder, windowShape } from './program-builder.js';
import { concatPlaceKernel, concatSlices } from './train.js';
import { stemConsts, u8Words, type U8Stem } from './u8-input.js';

type BatchNormLayer = ShapedLayer & { readonly kind: 'bn' };
type ConvLayer = ShapedLayer & { readonly kind: 'conv' };
const isAffineBatchNorm = (l: ShapedLayer | undefined): l is BatchNormLayer => l?.kind === 'bn' && l.attrs.affine;

/**
 * A run of layers that becomes one inference kernel: conv (→ bn) (→ add) (→ relu), linear (→ relu), or
 * a residual add (→ relu) that no conv closes. `add`: the residual add that reads the conv's output
 * and the value at position `shortcut`, which the conv's epilogue adds before the ReLU.
 */
export interface InferenceGroup {
  readonly head: ShapedLayer;
  readonly headAt: number; // the head's position in the chain: what the group reads is its input
  readonly bn?: BatchNormLayer;
  readonly add?: { readonly layer: ShapedLayer; readonly shortcut: number };
  readonly relu?: ShapedLayer;
  readonly last: ShapedLayer;
  readonly at: number; // the position of `last` in the chain: where the group's output is
}

export function groupForInference(layers: readonly ShapedLayer[]): InferenceGroup[] {
  const groups: InferenceGroup[] = [];
  const reads = readers(layers);
  // Layer i + 1 can join layer i's kernel when it reads only i's output and nothing else reads it.
  const follows = (i: number) => i + 1 < layers.length && reads[i] === 1 && inputsOf(layers, i + 1).join() === String(i);
  for (let i = 0; i < layers.length; i++) {
    const head = layers[i];
    const headAt = i;
    let bn: BatchNormLayer | undefined;
    let add: InferenceGroup['add'];
    let relu: ShapedLayer | undefined;
    const next = layers[i + 1];
    if (head.kind === 'conv' && follows(i) && isAffineBatchNorm(next)) {
      bn = next;
      i++;
    }
    const closing = head.kind === 'conv' ? closingAdd(layers, reads, headAt, i) : undefined;
    if (closing) {
      i = closing.at;
      add = { layer: layers[i], shortcut: closing.shortcut };
    }
    if ((head.kind === 'conv' || head.kind === 'linear' || head.kind === 'add') && follows(i) && layers[i + 1].kind === 'relu') relu = layers[++i];
    groups.push({ head, headAt, ...(bn ? { bn } : {}), ...(add ? { add } : {}), ...(relu ? { relu } : {}), last: layers[i], at: i });
  }
  return groups;
}

/**
 * The concat inputs a conv group writes in place: by the group's output position, the concat's position
 * and the channel slice. An input is written in place when it is a conv group's output that nothing but
 * the concat reads and no residual epilogue reads back (it would be laid out as the concat); the other
 * branches are copied (concat_place, named by branch: train.ts concatPlaceKernel).
 */
export function concatsInPlace(layers: readonly ShapedLayer[], groups: readonly InferenceGroup[]) {
  const reads = readers(layers);
  const convEnds = new Set(groups.filter((g) => g.head.kind === 'conv' && !g.add).map((g) => g.at));
  const places = new Map<number, { readonly at: number; readonly slice: ReturnType<typeof concatSlices>[number] }>();
  layers.forEach((l, at) => {
    if (l.kind !== 'concat') return;
    const from = inputsOf(layers, at);
    concatSlices(l, layers, from).forEach((slice, k) => convEnds.has(from[k]) && reads[from[k]] === 1 && from.indexOf(from[k]) === k && places.set(from[k], { at, slice }));
  });
  return places;
}

/**
 * The cpu's pair regions (schedule/cpu-pointwise-pair-region.ts): by the index of a group whose conv (BN folded,
 * ReLU) is read only by the next group's conv (the same), where the cost model takes the two as one region.
 */
function pairRegions(layers: readonly ShapedLayer[], groups: readonly InferenceGroup[], inPlace: ReadonlyMap<number, unknown>, maxBatch: number | undefined, l3Bytes: number | undefined): Set<number> {
  const reads = readers(layers);
  const plainConv = (g: InferenceGroup) => g.bn !== undefined && g.relu !== undefined && !g.add && !inPlace.has(g.at);
  const starts = new Set<number>();
  for (let i = 0; i + 1 < groups.length; i++) {
    const [a, b] = [groups[i], groups[i + 1]];
    const [first, second] = [a.head, b.head];
    if (first.kind !== 'conv' || second.kind !== 'conv' || !plainConv(a) || !plainConv(b) || reads[a.at] !== 1 || a.headAt === 0) continue;
    if (inputsOf(layers, b.headAt).join() !== String(a.at)) continue;
    const bounded = (l: ConvLayer) => ({ ...windowShape(l), ...(maxBatch !== undefined && { maxBatch }), ...(l3Bytes !== undefined && { l3Bytes }) });
    if (choosePairRegion(bounded(first), bounded(second), true).fuse) {
      starts.add(i);
      i += 1;
    }
  }
  return starts;
}

/**
 * The cpu's block regions (schedule/cpu-block-bands.ts): by the index of a group whose conv (BN folded, ReLU, not a
 * uint8 stem) is read only by two 1x1 convs K -> K (the same), one after the other, and whether a max pool that alone
 * reads the second joins them, where the cost model takes them as one region.
 */
function blockRegions(layers: readonly ShapedLayer[], groups: readonly InferenceGroup[], inPlace: ReadonlyMap<number, unknown>, u8Stem: boolean): Map<number, { readonly pooled: boolean }> {
  const reads = readers(layers);
  const plainConv = (g: InferenceGroup | undefined): g is InferenceGroup & { head: ConvLayer } =>
    g?.head.kind === 'conv' && g.bn !== undefined && g.relu !== undefined && !g.add && !inPlace.has(g.at) && reads[g.at] === 1;
  const readsOnly = (g: InferenceGroup, from: InferenceGroup) => inputsOf(layers, g.headAt).join() === String(from.at);
  const starts = new Map<number, { readonly pooled: boolean }>();
  for (let i = 0; i + 2 < groups.length; i++) {
    const [conv, one, two, next] = groups.slice(i, i + 4);
    if (!plainConv(conv) || !plainConv(one) || !plainConv(two) || (u8Stem && conv.headAt === 0)) continue;
    if (!readsOnly(one, conv) || !readsOnly(two, one)) continue;
    const k = conv.head.attrs.nOut;
    const pointwise = (g: InferenceGroup & { head: ConvLayer }) => {
      const c = windowShape(g.head);
      return c.R === 1 && c.S === 1 && c.sh === 1 && c.sw === 1 && c.ph === 0 && c.pw === 0 && c.C === k && c.K === k;
    };
    if (!pointwise(one) || !pointwise(two)) continue;
    // Without a max pool after it, the block ends at the pair: a 1x1 window of stride 1 (block_band.h is_identity).
    const pooled = next?.head.kind === 'maxpool' && readsOnly(next, two);
    const w = pooled ? windowShape(next.head as ShapedLayer & { kind: 'maxpool' }) : { ...windowShape(two.head), R: 1, sh: 1, ph: 0 };
    if (chooseBlockBands(windowShape(conv.head), { C: w.C, H: w.H, W: w.W, P: w.P, R: w.R, sh: w.sh, ph: w.ph, ...(w.ceil && { ceil: true }) }, true).fuse) {
      starts.set(i, { pooled });
      i += pooled ? 3 : 2;
    }
  }
  return starts;
}

export interface InferPrograms {
  readonly prepare: Program; // folds BN into conv weights; rerun whenever parameters or running stats change
  readonly infer: Program;
  readonly builders: readonly ProgramBuilder[];
  readonly groups: readonly InferenceGroup[];
}

/**
 * `stem`: the model takes uint8 NHWC images, which its first conv normalises on load (u8-input.ts).
 * `maxBatch`: the most images a call runs, which bounds the packed convs' algorithms (cpu-conv-algorithm.ts).
 * `bf16Weights`: the bf16 tensor-core k×k convs (R·S > 1, not a uint8 stem) stage B from a bf16 copy of their
 * (folded) weights that the prepare program writes after the fold (conv_weight_bf16: the training forward's
 * copy, in the order its kernel reads, tap-major where conv-mma-taps-halo.ts applies). The same fp32 values
 * rounded the same way: where the k order is the channel-major one, outputs are bitwise those of the fp32
 * staging. The cpu library's conv reads its packed fp32 weights, never the copy.
 */
export function lowerInference(m: ShapedModel, stem?: U8Stem, maxBatch?: number, options: { readonly bf16Weights?: boolean; readonly cpuL3Bytes?: number; readonly winogradFullTiles?: boolean; readonly wideTails?: boolean; readonly cpuPairBands?: boolean; readonly cpuBlockBands?: boolean; readonly gatheredPointwise?: boolean; readonly lastTileWeightPrefetch?: boolean; readonly ruledMaxPool?: boolean; readonly unfetchedPoolRows?: boolean } = {}): InferPrograms {
  const prep = new ProgramBuilder('fold');
  const b = new ProgramBuilder('infer');
  const images = stem ? b.act('images', u8Words(elementsOf(m.input)), 'u8') : b.act('images', elementsOf(m.input));
  const groups = groupForInference(m.layers);
  const inPlace = concatsInPlace(m.layers, groups);
  // A concat's output buffer, made by the first of its branches that writes it (or by the concat).
  const concatOutputs = new Map<number, string>();
  const concatOutput = (at: number) => {
    const l = m.layers[at];
    const y = concatOutputs.get(at) ?? b.act(`concat${l.index}.out`, elementsOf(l.output));
    concatOutputs.set(at, y);
    return y;
  };
  // Each group's output buffer by the position of its last layer; what a group reads is its head's input.
  const values = new Map<number, string>([[-1, images]]);
  const valueAt = (p: number) => {
    const v = values.get(p);
    if (v === undefined) throw new Error(`internal error: inference reads layer ${p + 1}'s output, which no kernel wrote`);
    return v;
  };
  const blocks = options.cpuBlockBands ? blockRegions(m.layers, groups, inPlace, stem !== undefined) : new Map<number, { readonly pooled: boolean }>();
  const regions = options.cpuPairBands ? pairRegions(m.layers, groups, inPlace, maxBatch, options.cpuL3Bytes) : new Set<number>();
  /**
   * BN folded into conv l's weights by the prepare program: w and fb. `packed`: the folded weights also packed
   * once for the CPU's conv algorithm (GEMM row panels or Winograd-transformed ones,
   * compiler/schedule/cpu-conv-algorithm.ts) into pw, so inference never repacks them.
   */
  const fold = (l: ConvLayer, bn: BatchNormLayer, packed: boolean) => {
    const p = (f: string) => paramId(l, f);
    const q = (f: string) => paramId(bn, f);
    const CRS = l.attrs.nIn * l.attrs.kH * l.attrs.kW;
    const w = prep.fixed(`conv${l.index}.folded_weight`, l.params - (l.attrs.bias ? l.attrs.nOut : 0));
    const fb = prep.fixed(`conv${l.index}.folded_bias`, l.attrs.nOut);
    const bnArgs = { w: p('weight'), bias: l.attrs.bias ? p('bias') : undefined, gamma: q('weight'), beta: q('bias'), mean: q('running_mean'), var: q('running_var'), w_out: w, b_out: fb };
    const bounded = { ...windowShape(l), ...(maxBatch !== undefined && { maxBatch }), ...(options.cpuL3Bytes !== undefined && { l3Bytes: options.cpuL3Bytes }) };
    if (!packed) {
      prep.step(l, 'fold_bn', bnArgs, { ...windowShape(l), CRS, eps: bn.attrs.eps, bias: l.attrs.bias, packed: false });
      return { w, fb, pw: w, bounded };
    }
    const pw = prep.fixed(`conv${l.index}.packed_weight`, convPackedWeightsFloats(bounded));
    prep.step(l, 'fold_bn', { ...bnArgs, packed: pw }, { ...bounded, CRS, eps: bn.attrs.eps, bias: l.attrs.bias, packed: true });
    return { w, fb, pw, bounded };
  };
  let x = images;
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi];
    const l = g.head;
    const second = groups[gi + 1];
    const [one, two, next] = groups.slice(gi + 1, gi + 4);
    const block = blocks.get(gi);
    if (block && l.kind === 'conv' && g.bn && one.head.kind === 'conv' && one.bn && two.head.kind === 'conv' && two.bn) {
      // A k×k conv, two 1x1s and a max pool (or none: a 1x1 window of stride 1) as one region: its kernel is named by the
      // conv's layer, its output is the pool's (or the second 1x1's).
      const [a, b1, b2] = [fold(l, g.bn, true), fold(one.head, one.bn, true), fold(two.head, two.bn, true)];
      const last = block.pooled ? next : two;
      const w = block.pooled && next.head.kind === 'maxpool' ? windowShape(next.head) : { ...windowShape(two.head), R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0 };
      const y = b.act(block.pooled ? `maxpool${next.head.index}.out` : `conv${two.head.index}.out`, elementsOf(last.last.output));
      b.step(l, 'block_band_infer', { x: valueAt(inputsOf(m.layers, g.headAt)[0]), w0: a.pw, b0: a.fb, w1: b1.pw, b1: b1.fb, w2: b2.pw, b2: b2.fb, y }, {
        ...windowShape(l), MP: w.P, MQ: w.Q, mR: w.R, mS: w.S, msh: w.sh, msw: w.sw, mph: w.ph, mpw: w.pw,
        w0Floats: convPackedWeightsFloats(a.bounded), w1Floats: convPackedWeightsFloats(b1.bounded), w2Floats: convPackedWeightsFloats(b2.bounded),
        ...(maxBatch !== undefined && { maxBatch }), ...(options.cpuL3Bytes !== undefined && { l3Bytes: options.cpuL3Bytes }),
        ...(options.winogradFullTiles && { winogradFullTiles: true }), ...(options.wideTails && { wideTails: true }), ...(options.gatheredPointwise && { gatheredPointwise: true }),
        ...(options.lastTileWeightPrefetch && { lastTileWeightPrefetch: true }), ...(options.ruledMaxPool && { ruledMax: true }), ...(options.unfetchedPoolRows && { unfetchedRows: true }),
      }, `k${l.index}_block_band`);
      values.set(g.at, y).set(one.at, y).set(two.at, y).set(last.at, y);
      x = y;
      gi += block.pooled ? 3 : 2;
      continue;
    }
    if (regions.has(gi) && l.kind === 'conv' && second.head.kind === 'conv' && g.bn && second.bn) {
      // Two 1x1 convs as one region: its kernel is named by the first conv's layer, its output is the second's.
      const one = fold(l, g.bn, true), two = fold(second.head, second.bn, true);
      const y = b.act(`conv${second.head.index}.out`, elementsOf(second.last.output));
      b.step(l, 'pointwise_pair_infer', { x: valueAt(inputsOf(m.layers, g.headAt)[0]), w1: one.pw, b1: one.fb, w2: two.pw, b2: two.fb, y },
        { C: l.attrs.nIn, H: one.bounded.H, W: one.bounded.W, K: l.attrs.nOut, w1Floats: convPackedWeightsFloats(one.bounded), w2Floats: convPackedWeightsFloats(two.bounded), ...(maxBatch !== undefined && { maxBatch }), ...(options.cpuL3Bytes !== undefined && { l3Bytes: options.cpuL3Bytes }) }, `k${l.index}_pointwise_pair`);
      values.set(g.at, y).set(second.at, y);
      x = y;
      gi += 1;
      continue;
    }
    const from = inputsOf(m.layers, g.headAt).map(valueAt);
    x = from[0];
    const out = elementsOf(g.last.output);
    const p = (f: string) => paramId(l, f);
    switch (l.kind) {
      case 'conv': {
        const place = inPlace.get(g.at);
        const y = place ? concatOutput(place.at) : b.act(`conv${l.index}.out`, out);
        const r = g.add ? valueAt(g.add.shortcut) : undefined;
        const shape = windowShape(l);
        const u8 = stemConsts(x === images ? stem : undefined);
        const output = { ...(r ? { residual: true } : {}), ...(place ? { yTotal: place.slice.total, yOffset: place.slice.offset } : {}) };
        /** The bf16 copy of weights `w` (K × C·R·S rows), written once `w` is, and the flag that reads it. */
        const copy = (w: string) => {
          if (!options.bf16Weights || shape.R * shape.S === 1 || (x === images && stem)) return { wb: undefined, bf16w: {} };
          const wb = prep.fixed(`conv${l.index}.infer_weight_bf16`, bf16WeightFloats(shape, false));
          // Its own name: the training program's forward copy of the same shape reads the parameters, not the fold.
          prep.step(l, 'conv_weight_bf16', { w, wb }, { ...shape, dgrad: false }, `k${l.index}_conv_weight_bf16_infer`);
          return { wb, bf16w: { bf16w: true } };
        };
        const flags = { relu: g.relu !== undefined, bnFolded: g.bn !== undefined, ...output };
        if (!g.bn) {
          const { wb, bf16w } = copy(p('weight'));
          b.step(l, 'conv_infer', { x, w: p('weight'), wb, b: l.attrs.bias ? p('bias') : undefined, r, y }, { ...shape, bias: l.attrs.bias, ...flags, ...u8, ...bf16w });
          x = y;
          break;
        }
        const bn = g.bn;
        if (x === images && stem) {
          // The uint8 stem gathers through its own loader (implicit GEMM only): its folded weights stay unpacked.
          const { w, fb } = fold(l, bn, false);
          b.step(l, 'conv_infer', { x, w, b: fb, r, y }, { ...shape, bias: true, ...flags, ...u8 });
          x = y;
          break;
        }
        const { w, fb, pw, bounded } = fold(l, bn, true);
        const { wb, bf16w } = copy(w);
        b.step(l, 'conv_infer', { x, w: pw, wb, b: fb, r, y }, { ...bounded, bias: true, ...flags, packed: true, ...bf16w, ...(options.winogradFullTiles && { winogradFullTiles: true }), ...(options.wideTails && { wideTails: true }), ...(options.gatheredPointwise && { gatheredPointwise: true }), ...(options.lastTileWeightPrefetch && { lastTileWeightPrefetch: true }) });
        x = y;
        break;
      }
      case 'linear': {
        const y = b.act(`linear${l.index}.out`, out);
        b.step(l, 'linear_infer', { x, w: p('weight'), b: l.attrs.bias ? p('bias') : undefined, y }, { in: l.attrs.nIn, out: l.attrs.nOut, bias: l.attrs.bias, relu: g.relu !== undefined, bnFolded: false });
        x = y;
        break;
      }
      case 'bn': {
        const y = b.act(`bn${l.index}.out`, out);
        b.step(l, 'bn_eval', { x, gamma: p('weight'), beta: p('bias'), mean: p('running_mean'), var: p('running_var'), y }, { ...channelShape(l), eps: l.attrs.eps });
        x = y;
        break;
      }
      case 'maxpool':
      case 'avgpool': {
        const y = b.act(`${l.kind}${l.index}.out`, out);
        b.step(l, l.kind === 'maxpool' ? 'maxpool_fwd_infer' : 'avgpool_fwd', { x, y }, { ...windowShape(l), ...(l.kind === 'maxpool' && options.ruledMaxPool && { ruledMax: true }), ...(l.kind === 'maxpool' && options.unfetchedPoolRows && { unfetchedRows: true }) });
        x = y;
        break;
      }
      case 'relu':
      case 'tanh':
      case 'sigmoid': {
        const y = b.act(`${l.kind}${l.index}.out`, out);
        b.step(l, `${l.kind}_fwd`, { x, y }, { count: out });
        x = y;
        break;
      }
      case 'threshold': {
        const y = b.act(`threshold${l.index}.out`, out);
        b.step(l, 'threshold_fwd', { x, y }, { count: out, th: l.attrs.th, v: l.attrs.v });
        x = y;
        break;
      }
      case 'zeropad': {
        const y = b.act(`zeropad${l.index}.out`, out);
        b.step(l, 'zeropad_fwd', { x, y }, padConsts(l));
        x = y;
        break;
      }
      case 'lrn': {
        const y = b.act(`lrn${l.index}.out`, out);
        b.step(l, 'lrn_fwd', { x, y, scale: b.act(`lrn${l.index}.scale`, out) }, lrnConsts(l));
        x = y;
        break;
      }
      case 'add': {
        // The branches' sum, the ReLU after the block applied as it is written (one pass over the activations).
        for (const [k, next] of from.slice(1).entries()) {
          const y = b.act(`add${l.index}.out`, out);
          b.step(l, 'add_infer', { a: x, b: next, y }, { count: out, relu: g.relu !== undefined && k === from.length - 2 });
          x = y;
        }
        break;
      }
      case 'concat': {
        const y = concatOutput(g.at);
        const positions = inputsOf(m.layers, g.at);
        concatSlices(l, m.layers, positions).forEach((c, k) => inPlace.get(positions[k])?.at !== g.at && b.step(l, 'concat_place', { x: from[k], y }, c, concatPlaceKernel(l, k)));
        x = y;
        break;
      }
      case 'logsoftmax':
      case 'softmax': {
        const y = b.act(`${l.kind}${l.index}.out`, out);
        b.step(l, `${l.kind}_fwd`, { x, y }, { classes: out });
        x = y;
        break;
      }
      case 'view':
      case 'dropout':
      case 'identity':
        break; // the same memory: a view reshapes, dropout and nn.Identity are the identity at inference
    }
    values.set(g.at, x);
  }
  return {
    prepare: { name: 'prepare_infer', inputs: {}, outputs: {}, steps: prep.steps, oneShot: true },
    infer: { name: 'infer', inputs: { images }, outputs: { output: x }, steps: b.steps },
    builders: [prep, b],
    groups,
  };
}
