// Torch7 networks for a spec, built the way Torch saves them: an nn.Sequential of modules with all the
// fields Torch writes (gradients, buffers, flags), optionally with getParameters()'s flat shared storages,
// cudnn classes, old layouts (2-D conv weights, version-1 BN), nesting, and the published files' wrapper.
import type { ShapedLayer, ShapedModel } from '../../compiler/ir.js';
import { lowerParams } from '../../compiler/lower/params.js';
import type { T7Object, T7Storage, T7Table, T7Tensor, T7Value } from '../../runtime/t7/values.js';
import { applyLayer, inputBatch, type Weights } from '../reference/interpret.js';
import { channelStats } from '../reference/layers.js';
import { list, luaFunction, object, storage, table, tensor } from './writer.js';

export interface TorchNetOptions {
  /** Parameters as views into one flat storage and gradients into another, as model:getParameters() leaves them. */
  readonly flatParameters?: boolean;
  /** cudnn.SpatialConvolution, cudnn.ReLU, … wherever cudnn has the class. */
  readonly cudnn?: boolean;
  /** nn.SpatialConvolutionMM instead of nn.SpatialConvolution (without cudnn). */
  readonly convolutionMM?: boolean;
  /** Conv weights as nOut × (nIn·kH·kW), as old SpatialConvolutionMM files have them. */
  readonly convWeights2d?: boolean;
  /** 1: BN stores running_std = 1/sqrt(var + eps) (older nn); 2: running_var. */
  readonly bnVersion?: 1 | 2;
  readonly dtype?: 'float32' | 'float64';
  /** Each run of modules up to and including a pooling layer in its own nested nn.Sequential. */
  readonly nest?: boolean;
  /** Leave off the last n modules (the published NIN files have no LogSoftMax). */
  readonly omitLast?: number;
  /** The linear weight as a transposed view of an in × out storage (strides [1, out]). */
  readonly transposedLinear?: boolean;
  /** nn.View's size field (default: the spec's sizes). */
  readonly viewSize?: readonly number[];
}

/** He-uniform conv weights keep activations at a steady scale through a deep ReLU net; all values are float32. */
export function randomWeights(model: ShapedModel, next: () => number): Map<string, Float64Array> {
  const w = new Map<string, Float64Array>();
  const uniform = (n: number, lo: number, hi: number) => Float64Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * next()));
  const layout = lowerParams(model);
  for (const e of [...layout.params, ...layout.state]) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const fanIn = e.shape.slice(1).reduce((a, b) => a * b, 1);
    const field = e.name.slice(e.name.indexOf('.') + 1);
    const isBn = e.name.startsWith('bn');
    if (isBn && field === 'weight') w.set(e.name, uniform(n, 0.5, 1.5));
    else if (isBn && field === 'running_var') w.set(e.name, uniform(n, 0.5, 2));
    else if (isBn) w.set(e.name, uniform(n, -0.3, 0.3));
    else if (field === 'weight') w.set(e.name, uniform(n, -Math.sqrt(6 / fanIn), Math.sqrt(6 / fanIn)));
    else w.set(e.name, uniform(n, -0.1, 0.1));
  }
  return w;
}

/**
 * The float64 eval-mode forward of one batch. With `calibrate`, each BN layer's running statistics are first
 * set near the batch statistics of its input (as a trained network's would be), so the deep net neither
 * vanishes nor explodes; the weights map is updated with them.
 */
export function referenceForward(model: ShapedModel, w: Map<string, Float64Array>, images: ArrayLike<number>, n: number, calibrate?: () => number): Float64Array {
  let x = inputBatch(model, images, n);
  for (const l of model.layers) {
    if (l.kind === 'bn' && calibrate) {
      const s = channelStats(x);
      w.set(`bn${l.index}.running_mean`, Float64Array.from(s.mean, (v) => Math.fround(v + 0.1 * (calibrate() - 0.5))));
      w.set(`bn${l.index}.running_var`, Float64Array.from(s.unbiasedVar, (v) => Math.fround(v * (0.7 + 0.6 * calibrate()) + 1e-3)));
    }
    x = applyLayer(l, x, w, { mode: 'eval' });
  }
  return x.data;
}

/** Torch semantics of a version-1 BN file: eval normalises by the stored running_std, i.e. var = std^-2 − eps exactly. */
export function versionOneWeights(model: ShapedModel, w: Weights): Map<string, Float64Array> {
  const out = new Map(w);
  for (const l of model.layers) {
    if (l.kind !== 'bn') continue;
    const std = Float64Array.from(w.get(`bn${l.index}.running_var`)!, (v) => Math.fround(1 / Math.sqrt(v + l.attrs.eps)));
    out.set(`bn${l.index}.running_var`, std.map((s) => 1 / (s * s) - l.attrs.eps));
  }
  return out;
}

/** The runningStd values written to a version-1 file (float32, as Torch stored them). */
const runningStd = (l: ShapedLayer & { kind: 'bn' }, w: Weights) => Float64Array.from(w.get(`bn${l.index}.running_var`)!, (v) => Math.fround(1 / Math.sqrt(v + l.attrs.eps)));

export function torchNetwork(model: ShapedModel, w: Weights, options: TorchNetOptions = {}): T7Object {
  const dtype = options.dtype ?? 'float32';
  const typeName = dtype === 'float32' ? (options.cudnn ? 'torch.CudaTensor' : 'torch.FloatTensor') : 'torch.DoubleTensor';
  const cuda = options.cudnn === true && dtype === 'float32';
  const make = (values: ArrayLike<number>) => storage(dtype, dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values), cuda);
  const empty = () => tensor(make([]), []); // Torch's cleared buffers: 0-dim tensors
  const get = (l: ShapedLayer, field: string) => {
    const t = w.get(`${l.kind}${l.index}.${field}`);
    if (!t) throw new Error(`torchNetwork: no weights for ${l.kind}${l.index}.${field}`);
    return t;
  };

  // getParameters(): every weight and bias, module by module, packed into one storage; the gradients likewise.
  const layout = lowerParams(model);
  const flat = options.flatParameters ? make(new Float64Array(layout.paramSize)) : undefined;
  const flatGrad = options.flatParameters ? make(new Float64Array(layout.paramSize)) : undefined;
  const offsets = new Map<string, number>();
  if (flat) {
    let at = 0;
    for (const p of layout.params) {
      offsets.set(p.name, at);
      (flat.data as Float32Array | Float64Array).set(w.get(p.name)!, at);
      at += p.shape.reduce((a, b) => a * b, 1);
    }
  }
  const param = (l: ShapedLayer, field: string, sizes: readonly number[]): [T7Tensor, T7Tensor] => {
    const name = `${l.kind}${l.index}.${field}`;
    if (flat && flatGrad) return [tensor(flat, sizes, { offset: offsets.get(name)! }), tensor(flatGrad, sizes, { offset: offsets.get(name)! })];
    return [tensor(make(get(l, field)), sizes), tensor(make(new Float64Array(get(l, field).length)), sizes)];
  };
  const cls = (nn: string, hasCudnn = true) => (options.cudnn && hasCudnn ? nn.replace(/^nn\./, 'cudnn.') : nn);
  const buffers = () => ({ output: empty(), gradInput: empty(), _type: typeName, train: false });

  const moduleFor = (l: ShapedLayer): T7Object => {
    switch (l.kind) {
      case 'conv': {
        const a = l.attrs;
        const sizes = options.convWeights2d ? [a.nOut, a.nIn * a.kH * a.kW] : [a.nOut, a.nIn, a.kH, a.kW];
        const [weight, gradWeight] = param(l, 'weight', sizes);
        const [bias, gradBias] = param(l, 'bias', [a.nOut]);
        const name = options.cudnn ? 'cudnn.SpatialConvolution' : options.convolutionMM ? 'nn.SpatialConvolutionMM' : 'nn.SpatialConvolution';
        const extra: Record<string, T7Value> = options.cudnn ? { groups: 1 } : options.convolutionMM ? { finput: empty(), fgradInput: empty() } : {};
        return object(name, { nInputPlane: a.nIn, nOutputPlane: a.nOut, kW: a.kW, kH: a.kH, dW: a.dW, dH: a.dH, padW: a.padW, padH: a.padH, weight, bias, gradWeight, gradBias, ...extra, ...buffers() });
      }
      case 'bn': {
        const a = l.attrs;
        const [weight, gradWeight] = param(l, 'weight', [a.nFeatures]);
        const [bias, gradBias] = param(l, 'bias', [a.nFeatures]);
        const running: Record<string, T7Value> = options.bnVersion === 1
          ? { running_std: tensor(make(runningStd(l, w)), [a.nFeatures]) }
          : { running_var: tensor(make(get(l, 'running_var')), [a.nFeatures]) };
        return object(cls('nn.SpatialBatchNormalization'), { eps: a.eps, momentum: a.momentum, affine: a.affine, running_mean: tensor(make(get(l, 'running_mean')), [a.nFeatures]), ...running, weight, bias, gradWeight, gradBias, ...buffers() }, options.bnVersion ?? 2);
      }
      case 'relu':
        return object(cls('nn.ReLU'), { threshold: 0, val: 0, inplace: true, ...buffers() });
      case 'maxpool':
      case 'avgpool': {
        const a = l.attrs;
        const pool = { kW: a.kW, kH: a.kH, dW: a.dW, dH: a.dH, padW: a.padW, padH: a.padH, ceil_mode: a.ceil === true, ...buffers() };
        if (l.kind === 'maxpool') return object(cls('nn.SpatialMaxPooling'), { ...pool, indices: tensor(storage('int64', new BigInt64Array(0)), []) });
        return object(cls('nn.SpatialAveragePooling'), { ...pool, count_include_pad: true, divide: true });
      }
      case 'view': {
        const sizes = options.viewSize ?? l.attrs.sizes;
        return object('nn.View', { size: storage('int64', BigInt64Array.from(sizes, BigInt)), numElements: l.output.reduce((a, b) => a * b, 1), numInputDims: l.input.length, ...buffers() });
      }
      case 'linear': {
        const a = l.attrs;
        const [weight, gradWeight] = options.transposedLinear ? [transposed(make, get(l, 'weight'), a.nOut, a.nIn), empty()] : param(l, 'weight', [a.nOut, a.nIn]);
        const [bias, gradBias] = a.bias ? param(l, 'bias', [a.nOut]) : [null, null];
        return object('nn.Linear', { weight, bias, gradWeight, gradBias, ...buffers() });
      }
      case 'logsoftmax':
        return object(cls('nn.LogSoftMax'), buffers());
      case 'softmax':
        return object(cls('nn.SoftMax'), buffers());
      case 'dropout':
        return object('nn.Dropout', { p: l.attrs.p, v2: true, noise: empty(), ...buffers() });
      case 'lrn': {
        const a = l.attrs;
        return object(cls('nn.SpatialCrossMapLRN'), { size: a.size, alpha: a.alpha, beta: a.beta, k: a.k, scale: empty(), ...buffers() });
      }
      case 'threshold':
        return object('nn.Threshold', { threshold: l.attrs.th, val: l.attrs.v, inplace: false, ...buffers() });
      case 'tanh':
        return object(cls('nn.Tanh'), buffers());
      case 'sigmoid':
        return object(cls('nn.Sigmoid'), buffers());
      case 'identity':
        return object('nn.Identity', buffers());
      case 'zeropad': {
        const a = l.attrs;
        return object('nn.SpatialZeroPadding', { pad_l: a.l, pad_r: a.r, pad_t: a.t, pad_b: a.b, ...buffers() });
      }
      default:
        throw new Error(`torch-nets: no Torch7 file writer for ${l.kind} yet`);
    }
  };

  const modules = model.layers.slice(0, model.layers.length - (options.omitLast ?? 0)).map(moduleFor);
  if (!options.nest) return object('nn.Sequential', { modules: list(modules), ...buffers() });
  // One nested Sequential per run of modules ending in a pooling layer; the rest stay at the top level.
  const groups: T7Object[] = [];
  let run: T7Object[] = [];
  for (const m of modules) {
    run.push(m);
    if (/Pooling$/.test(m.className)) {
      groups.push(object('nn.Sequential', { modules: list(run), ...buffers() }));
      run = [];
    }
  }
  return object('nn.Sequential', { modules: list([...groups, ...run]), ...buffers() });
}

/** W (out × in, row-major) stored as its transpose: the tensor views an in × out storage with strides [1, out]. */
function transposed(make: (v: ArrayLike<number>) => T7Storage, w: Float64Array, out: number, inputs: number): T7Tensor {
  const t = new Float64Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inputs; i++) t[i * out + o] = w[o * inputs + i];
  return tensor(make(t), [out, inputs], { strides: [1, out] });
}

/** The published nin_*_final.t7 layout: { model = net, transform = {mean, std}, unpack = function }. */
export function publishedFile(network: T7Object, transform?: { mean: readonly number[]; std: readonly number[] }): T7Table {
  const t: Record<string, T7Value> = { model: network, unpack: luaFunction(list([table({ name: 'self', value: network })])) };
  if (transform) t.transform = table({ mean: list([...transform.mean]), std: list([...transform.std]) });
  return table(t);
}
