// Pass: the inference programs: BN folded into the conv before it (and its weights packed once for the
// GEMM), ReLU fused into conv/linear epilogues.
import { convPackedWeightsFloats, type ConvConsts } from '../schedule/cpu-conv-algorithm.js';
import type { ShapedLayer, ShapedModel } from '../ir.js';
import { paramId } from './params.js';
import type { Program } from './program-ir.js';
import { elementsOf, ProgramBuilder, spatialConsts } from './program-builder.js';

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
      case 'conv':
      case 'linear': {
        const y = b.act(`${l.kind}${l.index}.out`, out);
        let weights = [p('weight'), ...(l.attrs.bias ? [p('bias')] : [])];
        const shape: Record<string, number> = l.kind === 'conv'
          ? { ...spatialConsts(l), R: l.attrs.kH, S: l.attrs.kW, sh: l.attrs.dH, sw: l.attrs.dW, ph: l.attrs.padH, pw: l.attrs.padW }
          : { in: l.attrs.nIn, out: l.attrs.nOut };
        let bias = l.attrs.bias;
        let packed = false;
        if (g.bn && l.kind === 'conv') {
          const bn = g.bn;
          const CRS = l.attrs.nIn * l.attrs.kH * l.attrs.kW;
          const w = prep.fixed(`conv${l.index}.folded_weight`, l.params - (l.attrs.bias ? l.attrs.nOut : 0));
          const fb = prep.fixed(`conv${l.index}.folded_bias`, l.attrs.nOut);
          // The folded weights are also packed once for the CPU's conv algorithm (GEMM row panels or
          // Winograd-transformed ones, compiler/schedule/cpu-conv-algorithm.ts), so inference never repacks them.
          const pw = prep.fixed(`conv${l.index}.packed_weight`, convPackedWeightsFloats(shape as unknown as ConvConsts));
          const q = (f: string) => paramId(bn, f);
          prep.step(l, 'fold_bn', [...weights, q('weight'), q('bias'), q('running_mean'), q('running_var'), w, fb, pw], {
            ...shape, CRS, eps: bn.attrs.eps, bias: l.attrs.bias, packed: true,
          });
          weights = [pw, fb];
          bias = true;
          packed = true;
        }
        b.step(l, l.kind === 'conv' ? 'conv_infer' : 'linear_infer', [x, ...weights, y], { ...shape, bias, relu: g.relu !== undefined, bnFolded: g.bn !== undefined, ...(packed ? { packed } : {}) });
        x = y;
        break;
      }
      case 'bn': {
        const y = b.act(`bn${l.index}.out`, out);
        b.step(l, 'bn_eval', [x, p('weight'), p('bias'), p('running_mean'), p('running_var'), y], { C: l.input[0], HW: l.input[1] * l.input[2], eps: l.attrs.eps });
        x = y;
        break;
      }
      case 'maxpool':
      case 'avgpool': {
        const y = b.act(`${l.kind}${l.index}.out`, out);
        const a = l.attrs;
        b.step(l, l.kind === 'maxpool' ? 'maxpool_fwd_infer' : 'avgpool_fwd', [x, y], { ...spatialConsts(l), R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW });
        x = y;
        break;
      }
      case 'relu': {
        const y = b.act(`relu${l.index}.out`, out);
        b.step(l, 'relu_fwd', [x, y], { count: out });
        x = y;
        break;
      }
      case 'logsoftmax':
      case 'softmax': {
        const y = b.act(`${l.kind}${l.index}.out`, out);
        b.step(l, `${l.kind}_fwd`, [x, y], { classes: out });
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
