// Pass: the inference programs: BN folded into the conv before it (and its weights packed once for the
// GEMM), ReLU fused into conv/linear epilogues.
import { convPackedWeightsFloats } from '../schedule/cpu-conv-algorithm.js';
import type { ShapedLayer, ShapedModel } from '../ir.js';
import { paramId } from './params.js';
import type { Program } from './program-ir.js';
import { channelShape, elementsOf, ProgramBuilder, windowShape } from './program-builder.js';

type BatchNormLayer = ShapedLayer & { readonly kind: 'bn' };
const isAffineBatchNorm = (l: ShapedLayer | undefined): l is BatchNormLayer => l?.kind === 'bn' && l.attrs.affine;

/** A run of layers that becomes one inference kernel: conv (→ bn) (→ relu), or linear (→ relu). */
interface Group {
  readonly head: ShapedLayer;
  readonly bn?: BatchNormLayer;
  readonly relu?: ShapedLayer;
  readonly last: ShapedLayer;
}

export function groupForInference(layers: readonly ShapedLayer[]): Group[] {
  const groups: Group[] = [];
  for (let i = 0; i < layers.length; i++) {
    const head = layers[i];
    let bn: BatchNormLayer | undefined;
    let relu: ShapedLayer | undefined;
    const next = layers[i + 1];
    if (head.kind === 'conv' && isAffineBatchNorm(next)) {
      bn = next;
      i++;
    }
    if ((head.kind === 'conv' || head.kind === 'linear') && layers[i + 1]?.kind === 'relu') relu = layers[++i];
    groups.push({ head, ...(bn ? { bn } : {}), ...(relu ? { relu } : {}), last: layers[i] });
  }
  return groups;
}

export interface InferPrograms {
  readonly prepare: Program; // folds BN into conv weights; rerun whenever parameters or running stats change
  readonly infer: Program;
  readonly builders: readonly ProgramBuilder[];
  readonly groups: readonly Group[];
}

export function lowerInference(m: ShapedModel): InferPrograms {
  const prep = new ProgramBuilder('fold');
  const b = new ProgramBuilder('infer');
  const images = b.act('images', elementsOf(m.input));
  const groups = groupForInference(m.layers);
  let x = images;
  for (const g of groups) {
    const l = g.head;
    const out = elementsOf(g.last.output);
    const p = (f: string) => paramId(l, f);
    switch (l.kind) {
      case 'conv': {
        const y = b.act(`conv${l.index}.out`, out);
        const shape = windowShape(l);
        const flags = { relu: g.relu !== undefined, bnFolded: g.bn !== undefined };
        if (!g.bn) {
          b.step(l, 'conv_infer', { x, w: p('weight'), b: l.attrs.bias ? p('bias') : undefined, y }, { ...shape, bias: l.attrs.bias, ...flags });
          x = y;
          break;
        }
        const bn = g.bn;
        const CRS = l.attrs.nIn * l.attrs.kH * l.attrs.kW;
        const w = prep.fixed(`conv${l.index}.folded_weight`, l.params - (l.attrs.bias ? l.attrs.nOut : 0));
        const fb = prep.fixed(`conv${l.index}.folded_bias`, l.attrs.nOut);
        // The folded weights are also packed once for the CPU's conv algorithm (GEMM row panels or
        // Winograd-transformed ones, compiler/schedule/cpu-conv-algorithm.ts), so inference never repacks them.
        const pw = prep.fixed(`conv${l.index}.packed_weight`, convPackedWeightsFloats(shape));
        const q = (f: string) => paramId(bn, f);
        prep.step(l, 'fold_bn', {
          w: p('weight'), bias: l.attrs.bias ? p('bias') : undefined, gamma: q('weight'), beta: q('bias'), mean: q('running_mean'), var: q('running_var'), w_out: w, b_out: fb, packed: pw,
        }, { ...shape, CRS, eps: bn.attrs.eps, bias: l.attrs.bias, packed: true });
        b.step(l, 'conv_infer', { x, w: pw, b: fb, y }, { ...shape, bias: true, ...flags, packed: true });
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
        b.step(l, l.kind === 'maxpool' ? 'maxpool_fwd_infer' : 'avgpool_fwd', { x, y }, windowShape(l));
        x = y;
        break;
      }
      case 'relu': {
        const y = b.act(`relu${l.index}.out`, out);
        b.step(l, 'relu_fwd', { x, y }, { count: out });
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
        break; // the same memory: a view reshapes, dropout is the identity at inference
    }
  }
  return {
    prepare: { name: 'prepare_infer', inputs: {}, outputs: {}, steps: prep.steps },
    infer: { name: 'infer', inputs: { images }, outputs: { output: x }, steps: b.steps },
    builders: [prep, b],
    groups,
  };
}
