// Pass: the training programs: forward in training mode, NLL loss, backward, and the SGD update.
import type { ShapedLayer, ShapedModel } from '../ir.js';
import { gradId, paramId, wholeSpaceId, type ParamLayout } from './params.js';
import type { Program } from './program-ir.js';
import { elementsOf, ProgramBuilder, spatialConsts } from './program-builder.js';

export class LoweringError extends Error {}

interface Saved {
  readonly x: string; // input activation
  readonly y: string; // output activation
  readonly extra: readonly string[]; // saved for backward: BN mean/invstd, pool argmax, dropout mask
}

function layerConsts(l: ShapedLayer): Record<string, number | boolean> {
  switch (l.kind) {
    case 'conv': {
      const a = l.attrs;
      return { ...spatialConsts(l), R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW, bias: a.bias };
    }
    case 'maxpool':
    case 'avgpool': {
      const a = l.attrs;
      return { ...spatialConsts(l), R: a.kH, S: a.kW, sh: a.dH, sw: a.dW, ph: a.padH, pw: a.padW };
    }
    case 'bn':
      return { C: l.input[0], HW: l.input[1] * l.input[2], eps: l.attrs.eps, momentum: l.attrs.momentum };
    case 'linear':
      return { in: l.attrs.nIn, out: l.attrs.nOut, bias: l.attrs.bias };
    case 'dropout':
      return { count: elementsOf(l.input), p: l.attrs.p };
    case 'logsoftmax':
    case 'softmax':
      return { classes: l.input[0] };
    default:
      return { count: elementsOf(l.input) };
  }
}

function forwardLayer(b: ProgramBuilder, l: ShapedLayer, x: string): Saved {
  const out = elementsOf(l.output);
  const c = layerConsts(l);
  const p = (f: string) => paramId(l, f);
  switch (l.kind) {
    case 'conv':
    case 'linear': {
      const y = b.act(`${l.kind}${l.index}.out`, out);
      b.step(l, l.kind === 'conv' ? 'conv_fwd' : 'linear_fwd', [x, p('weight'), ...(l.attrs.bias ? [p('bias')] : []), y], { ...c, relu: false });
      return { x, y, extra: [] };
    }
    case 'bn': {
      if (!l.attrs.affine) throw new LoweringError(`${l.span.file}:${l.span.start.line}:${l.span.start.column}: bn with affine=0 is not supported by the code generator`);
      const y = b.act(`bn${l.index}.out`, out);
      const mean = b.fixed(`bn${l.index}.save_mean`, l.attrs.nFeatures);
      const invstd = b.fixed(`bn${l.index}.save_invstd`, l.attrs.nFeatures);
      b.step(l, 'bn_fwd_train', [x, p('weight'), p('bias'), p('running_mean'), p('running_var'), y, mean, invstd], c);
      return { x, y, extra: [mean, invstd] };
    }
    case 'maxpool': {
      const y = b.act(`maxpool${l.index}.out`, out);
      const argmax = b.act(`maxpool${l.index}.argmax`, out, 'i32');
      b.step(l, 'maxpool_fwd', [x, y, argmax], c);
      return { x, y, extra: [argmax] };
    }
    case 'dropout': {
      // No mask buffer: the mask is a hash of (call seed, layer, element), recomputed by the backward.
      const y = b.act(`dropout${l.index}.out`, out);
      b.step(l, 'dropout_fwd', [x, y], c);
      return { x, y, extra: [] };
    }
    case 'view':
      return { x, y: x, extra: [] }; // a view is the same memory
    case 'relu':
    case 'avgpool':
    case 'logsoftmax':
    case 'softmax': {
      const y = b.act(`${l.kind}${l.index}.out`, out);
      b.step(l, `${l.kind}_fwd`, [x, y], c);
      return { x, y, extra: [] };
    }
  }
}

/** Emits the backward of one layer; returns the gradient w.r.t. its input (undefined when not needed). */
function backwardLayer(b: ProgramBuilder, l: ShapedLayer, s: Saved, dy: string, needDx: boolean): string | undefined {
  const inSize = elementsOf(l.input);
  const c = layerConsts(l);
  const p = (f: string) => paramId(l, f);
  const g = (f: string) => gradId(l, f);
  const dx = () => b.act(`${l.kind}${l.index}.grad_in`, inSize);
  switch (l.kind) {
    case 'conv':
    case 'linear': {
      const bias = l.attrs.bias;
      b.step(l, l.kind === 'conv' ? 'conv_bwd_weight' : 'linear_bwd_weight', [s.x, dy, g('weight'), ...(bias ? [g('bias')] : [])], c);
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, l.kind === 'conv' ? 'conv_bwd_data' : 'linear_bwd_data', [dy, p('weight'), d], c);
      return d;
    }
    case 'bn': {
      const d = dx();
      b.step(l, 'bn_bwd', [s.x, dy, p('weight'), s.extra[0], s.extra[1], d, g('weight'), g('bias')], c);
      return d;
    }
    case 'view':
      return dy;
    case 'maxpool': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, 'maxpool_bwd', [dy, s.extra[0], d], c);
      return d;
    }
    case 'avgpool':
    case 'dropout': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, `${l.kind}_bwd`, [dy, d], c);
      return d;
    }
    case 'relu':
    case 'logsoftmax':
    case 'softmax': {
      if (!needDx) return undefined;
      const d = dx();
      b.step(l, `${l.kind}_bwd`, [s.y, dy, d], c);
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

/** A training program's builder and its two inputs: the images and one int32 label per image. */
export function trainingInputs(m: ShapedModel): { b: ProgramBuilder; images: string; labels: string } {
  const b = new ProgramBuilder('train');
  return { b, images: b.act('images', elementsOf(m.input)), labels: b.act('labels', 1, 'i32') };
}

export function lowerTrainForwardBackward(m: ShapedModel): { program: Program; builder: ProgramBuilder } {
  const last = logSoftmaxHead(m);
  const { b, images, labels } = trainingInputs(m);
  const saved: Saved[] = [];
  let x = images;
  for (const l of m.layers) {
    const s = forwardLayer(b, l, x);
    saved.push(s);
    x = s.y;
  }
  const classes = elementsOf(last.output);
  const loss = b.fixed('loss', 1);
  let dy = b.act('loss.grad_in', classes);
  b.step(undefined, 'nll_loss', [x, labels, loss, dy], { classes });
  // A layer needs its input gradient only when some layer before it has parameters.
  const firstWithParams = m.layers.findIndex((l) => l.params > 0);
  for (let i = m.layers.length - 1; i >= 0 && i >= firstWithParams; i--) {
    const next = backwardLayer(b, m.layers[i], saved[i], dy, i > firstWithParams);
    if (next === undefined) break;
    dy = next;
  }
  return { program: { name: 'train_forward_backward', inputs: { images, labels }, outputs: { output: x, loss }, steps: b.steps }, builder: b };
}

export function lowerSgdUpdate(m: ShapedModel, layout: ParamLayout): Program {
  const b = new ProgramBuilder('sgd');
  if (layout.paramSize === 0) throw new LoweringError(`${m.file}: the model has no parameters to train`);
  // One kernel over the whole parameter space: torch/optim's sgd treats the flattened parameters alike.
  b.step(undefined, 'sgd_update', [wholeSpaceId('param'), wholeSpaceId('grad'), wholeSpaceId('momentum')], { count: layout.paramSize }, ['lr', 'wd', 'momentum', 'first']);
  return { name: 'sgd_update', inputs: {}, outputs: {}, steps: b.steps };
}

/** Why a model has no training programs (plan.json's `untrainable`, report.txt), or undefined when it has them. */
export function whyUntrainable(model: ShapedModel, layout: ParamLayout): string | undefined {
  if (model.layers[model.layers.length - 1]?.kind !== 'logsoftmax') return 'training with the nll criterion needs a model that ends in logsoftmax';
  if (layout.paramSize === 0) return 'the model has no parameters to train';
  return undefined;
}
