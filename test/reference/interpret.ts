// The float64 reference interpreter of the layer IR (ShapedModel): Torch7's forward pass in training or
// evaluation mode, and the size-averaged NLL loss. Independent of the lowering, the plan and the kernels.
import { isMerge, type ShapedLayer, type ShapedModel } from '../../compiler/ir.js';
import * as L from './layers.js';
import type { Batch } from './layers.js';

/** Parameters and running statistics by their plan names (`conv1.weight`, `bn2.running_var`, …), in float64. */
export type Weights = ReadonlyMap<string, Float64Array>;

export type Mode = 'train' | 'eval';

export interface ForwardOptions {
  readonly mode: Mode;
  /** Training-mode dropout masks by layer index (1 = kept); a layer with p > 0 and no mask is an error. */
  readonly dropoutMasks?: ReadonlyMap<number, Uint8Array>;
}

export interface ForwardResult {
  readonly output: Batch;
  /** Every layer's output, in layer order (activations[i] is layers[i]'s output). */
  readonly activations: readonly Batch[];
  /** Training mode: running statistics after Torch's update, by name (`bn2.running_mean`, …). */
  readonly state: ReadonlyMap<string, Float64Array>;
  /** Training mode: each BN layer's batch statistics, by layer index. */
  readonly batchStats: ReadonlyMap<number, L.ChannelStats>;
}

function weight(w: Weights, l: ShapedLayer, field: string): Float64Array {
  const t = w.get(`${l.kind}${l.index}.${field}`);
  if (!t) throw new Error(`reference: no tensor ${l.kind}${l.index}.${field}`);
  return t;
}

/** Running statistics and batch statistics a training-mode forward collects. */
interface Collected {
  readonly state: Map<string, Float64Array>;
  readonly batchStats: Map<number, L.ChannelStats>;
}

/** One layer's forward pass on x (a block's merge takes several inputs: runGraph applies it). */
export function applyLayer(l: ShapedLayer, x: Batch, w: Weights, options: ForwardOptions, collected?: Collected): Batch {
  switch (l.kind) {
    case 'add':
    case 'concat':
      throw new Error(`reference: layer ${l.index} (${l.kind}) merges several inputs; runGraph applies it`);
    case 'identity':
      return x;
    case 'tanh':
      return L.tanh(x);
    case 'sigmoid':
      return L.sigmoid(x);
    case 'threshold':
      return L.threshold(x, l.attrs);
    case 'lrn':
      return L.lrn(x, l.attrs);
    case 'zeropad':
      return L.zeroPad(x, l.attrs);
    case 'conv':
      return L.conv(x, l.attrs, weight(w, l, 'weight'), l.attrs.bias ? weight(w, l, 'bias') : undefined);
    case 'bn': {
      const a = l.attrs;
      const C = a.nFeatures;
      const gamma = a.affine ? weight(w, l, 'weight') : new Float64Array(C).fill(1);
      const beta = a.affine ? weight(w, l, 'bias') : new Float64Array(C);
      const rm = weight(w, l, 'running_mean');
      const rv = weight(w, l, 'running_var');
      if (options.mode === 'eval') return L.normalize(x, rm, rv, a.eps, gamma, beta);
      // Training: normalise with the biased batch variance; the running variance takes the unbiased one.
      const s = L.channelStats(x);
      collected?.batchStats.set(l.index, s);
      collected?.state.set(`bn${l.index}.running_mean`, rm.map((v, c) => (1 - a.momentum) * v + a.momentum * s.mean[c]));
      collected?.state.set(`bn${l.index}.running_var`, rv.map((v, c) => (1 - a.momentum) * v + a.momentum * s.unbiasedVar[c]));
      return L.normalize(x, s.mean, s.biasedVar, a.eps, gamma, beta);
    }
    case 'relu':
      return L.relu(x);
    case 'maxpool':
      return L.maxPool(x, l.attrs);
    case 'avgpool':
      return L.avgPool(x, l.attrs);
    case 'view':
      return { ...x, shape: l.output };
    case 'linear':
      return L.linear(x, weight(w, l, 'weight'), l.attrs.bias ? weight(w, l, 'bias') : undefined, l.attrs.nOut);
    case 'logsoftmax':
      return L.logSoftmax(x);
    case 'softmax':
      return L.softmax(x);
    case 'dropout': {
      if (options.mode === 'eval' || l.attrs.p === 0) return x; // identity
      const mask = options.dropoutMasks?.get(l.index);
      if (!mask) throw new Error(`reference: dropout layer ${l.index} (p=${l.attrs.p}) needs a mask in training mode`);
      return L.dropout(x, l.attrs.p, mask);
    }
  }
}

export function inputBatch(model: ShapedModel, images: ArrayLike<number>, n: number): Batch {
  const perImage = L.elementsOf(model.input);
  if (images.length !== n * perImage) throw new Error(`reference: ${images.length} input values for ${n} images of ${model.input.join('x')}`);
  return { n, shape: model.input, data: Float64Array.from(images) };
}

export function forward(model: ShapedModel, w: Weights, images: ArrayLike<number>, n: number, options: ForwardOptions): ForwardResult {
  return runGraph(model.layers, inputBatch(model, images, n), w, options);
}

/** The forward pass of a run of chained layers (no merges) from x. */
export function runLayers(layers: readonly ShapedLayer[], x: Batch, w: Weights, options: ForwardOptions): ForwardResult {
  return runGraph(layers, x, w, options);
}

/**
 * The forward pass of a chain opened from blocks (each layer reads the outputs its `from` names; −1 the input),
 * from layer `start` on, the outputs of the layers before it given as `cached`. `beforeLayer` sees each
 * layer's first input before it runs (to calibrate a BN's running statistics on it).
 */
export function runGraph(
  layers: readonly ShapedLayer[], input: Batch, w: Weights, options: ForwardOptions, start = 0, cached: readonly Batch[] = [],
  beforeLayer?: (l: ShapedLayer, x: Batch) => void,
): ForwardResult {
  const activations: Batch[] = cached.slice(0, start);
  const collected: Collected = { state: new Map(), batchStats: new Map() };
  for (let i = start; i < layers.length; i++) {
    const l = layers[i];
    const inputs = (l.from ?? [i - 1]).map((p) => (p < 0 ? input : activations[p]));
    beforeLayer?.(l, inputs[0]);
    const y = !isMerge(l) ? applyLayer(l, inputs[0], w, options, collected) : l.kind === 'add' ? L.add(inputs) : L.concat(inputs);
    if (y.shape.join('x') !== l.output.join('x')) throw new Error(`reference: layer ${l.index} (${l.kind}) gave ${y.shape.join('x')}, the IR says ${l.output.join('x')}`);
    activations.push(y);
  }
  return { output: activations[activations.length - 1] ?? input, activations, state: collected.state, batchStats: collected.batchStats };
}

/** The training-mode loss (batch statistics, size-averaged NLL): what forwardBackward minimises. */
export function trainLoss(model: ShapedModel, w: Weights, images: ArrayLike<number>, labels: ArrayLike<number>, masks?: ReadonlyMap<number, Uint8Array>): number {
  const r = forward(model, w, images, labels.length, { mode: 'train', ...(masks ? { dropoutMasks: masks } : {}) });
  return L.nllLoss(r.output, labels);
}

/**
 * The training-mode loss as a function of the weights, for finite differences: a change to the parameters
 * of layer `layer` (1-based) reruns only that layer and those after it, from activations cached at `w0`.
 */
export function trainLossFrom(model: ShapedModel, w0: Weights, images: ArrayLike<number>, labels: ArrayLike<number>, masks?: ReadonlyMap<number, Uint8Array>): (w: Weights, layer: number) => number {
  const options: ForwardOptions = { mode: 'train', ...(masks ? { dropoutMasks: masks } : {}) };
  const input = inputBatch(model, images, labels.length);
  const cached = forward(model, w0, images, labels.length, options).activations;
  return (w, layer) => L.nllLoss(runGraph(model.layers, input, w, options, layer - 1, cached).output, labels);
}
