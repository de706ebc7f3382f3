// One Torch layer (or a block's merge) as ONNX nodes, each with Torch7's eval-mode numerics: what each
// node computes is ONNX's definition, chosen to equal Torch's (docs/onnx.md has the table).
import type { ShapedLayer } from '../../compiler/ir.js';
import { paramId } from '../../compiler/lower/params.js';
import { torchModuleString } from '../../compiler/report/torch-print.js';
import { place, type GraphBuilder } from './graph-builder.js';
import type { OnnxAttribute } from './onnx-proto.js';

export type BatchNormLayer = ShapedLayer & { readonly kind: 'bn' };
type Layer<K extends ShapedLayer['kind']> = ShapedLayer & { readonly kind: K };

const ints = (values: readonly number[]): OnnxAttribute => ({ ints: values });
const int = (value: number): OnnxAttribute => ({ int: value });

/**
 * w' = w·γ/sqrt(rv+eps), b' = (b−rm)·γ/sqrt(rv+eps)+β per output channel, in float64 and rounded
 * once to float32: the same arithmetic as fold_batchnorm in runtime/include/nincc/cpu/batchnorm.h,
 * so the exported weights are the bits nincc's own inference uses.
 */
export function foldBatchNorm(
  weight: Float32Array,
  bias: Float32Array | undefined,
  bn: { gamma: Float32Array; beta: Float32Array; runningMean: Float32Array; runningVar: Float32Array; eps: number },
): { weight: Float32Array; bias: Float32Array } {
  const channels = bn.runningVar.length;
  const fanIn = weight.length / channels;
  const w = new Float32Array(weight.length);
  const b = new Float32Array(channels);
  for (let k = 0; k < channels; k++) {
    const scale = bn.gamma[k] / Math.sqrt(bn.runningVar[k] + bn.eps);
    for (let i = k * fanIn; i < (k + 1) * fanIn; i++) w[i] = weight[i] * scale;
    b[k] = ((bias ? bias[k] : 0) - bn.runningMean[k]) * scale + bn.beta[k];
  }
  return { weight: w, bias: b };
}

function convNode(g: GraphBuilder, l: Layer<'conv'>, x: string, bn: BatchNormLayer | undefined): string {
  const a = l.attrs;
  const weightDims = [a.nOut, a.nIn, a.kH, a.kW];
  let weight: string;
  let bias: string | undefined;
  if (bn) {
    const get = (name: string) => g.read(name);
    const folded = foldBatchNorm(get(paramId(l, 'weight')), a.bias ? get(paramId(l, 'bias')) : undefined, {
      gamma: get(paramId(bn, 'weight')),
      beta: get(paramId(bn, 'bias')),
      runningMean: get(paramId(bn, 'running_mean')),
      runningVar: get(paramId(bn, 'running_var')),
      eps: bn.attrs.eps,
    });
    // Named like the buffers of nincc's prepare_infer program, which holds the same values.
    const why = `${paramId(l, 'weight')} with bn${bn.index} folded in`;
    weight = g.constant(`conv${l.index}.folded_weight`, weightDims, folded.weight, why);
    bias = g.constant(`conv${l.index}.folded_bias`, [a.nOut], folded.bias, why);
  } else {
    weight = g.tensor(paramId(l, 'weight'), weightDims);
    if (a.bias) bias = g.tensor(paramId(l, 'bias'), [a.nOut]);
  }
  return g.node(l, 'Conv', bias ? [x, weight, bias] : [x, weight], {
    kernel_shape: ints([a.kH, a.kW]),
    strides: ints([a.dH, a.dW]),
    pads: ints([a.padH, a.padW, a.padH, a.padW]), // [H begin, W begin, H end, W end]
    dilations: ints([1, 1]),
    group: int(1),
  }, bn ? ` + ${torchModuleString(bn)} at ${place(bn)} (folded)` : '');
}

function batchNormNode(g: GraphBuilder, l: BatchNormLayer, x: string): string {
  const c = l.attrs.nFeatures;
  // Without affine, Torch's BN has no γ and β: ONNX needs them, so they are the identity.
  const scale = l.attrs.affine ? g.tensor(paramId(l, 'weight'), [c]) : g.constant(`bn${l.index}.unit_scale`, [c], new Float32Array(c).fill(1));
  const shift = l.attrs.affine ? g.tensor(paramId(l, 'bias'), [c]) : g.constant(`bn${l.index}.zero_shift`, [c], new Float32Array(c));
  return g.node(l, 'BatchNormalization', [x, scale, shift, g.tensor(paramId(l, 'running_mean'), [c]), g.tensor(paramId(l, 'running_var'), [c])], {
    epsilon: { float: l.attrs.eps },
    // ONNX weighs the old running value by momentum; Torch weighs the new batch statistic by it.
    momentum: { float: 1 - l.attrs.momentum },
  });
}

/**
 * The far-side padding that makes ONNX's floor-mode output size `out` (a Torch pool's, ceil mode included)
 * from `size` inputs with `begin` padding before them: the graph states Torch's size (THNN's rule for a last
 * window that would start in the padding included) rather than leave it to a runtime's reading of ceil_mode.
 */
function farPadding(l: ShapedLayer, size: number, begin: number, kernel: number, stride: number, out: number): number {
  const pad = Math.max(begin, (out - 1) * stride + kernel - size - begin);
  // ONNX runtimes refuse padding as large as the kernel: a window wholly in padding (ceil mode without padding and a stride over the kernel).
  if (pad >= kernel) throw new Error(`ONNX export: ${l.kind} ${l.index} at ${place(l)} has a last window wholly past the input (ceil mode), which ONNX pooling cannot express`);
  return pad;
}

function poolNode(g: GraphBuilder, l: Layer<'maxpool' | 'avgpool'>, x: string): string {
  const a = l.attrs;
  const [, inH, inW] = l.input;
  const [, outH, outW] = l.output;
  const window = { kernel_shape: ints([a.kH, a.kW]), strides: ints([a.dH, a.dW]), ceil_mode: int(0) };
  if (l.kind === 'maxpool') {
    // Padding never wins a max (-inf, as in Torch), so padding ceil mode's last windows on the far side changes no value.
    const pads = [a.padH, a.padW, farPadding(l, inH, a.padH, a.kH, a.dH, outH), farPadding(l, inW, a.padW, a.kW, a.dW, outW)];
    return g.node(l, 'MaxPool', [x], { ...window, pads: ints(pads) });
  }
  if (!a.ceil) {
    // Floor mode: every window lies in the padded image, whose zeros count in the divisor (Torch's count_include_pad).
    return g.node(l, 'AveragePool', [x], { ...window, pads: ints([a.padH, a.padW, a.padH, a.padW]), count_include_pad: int(1) });
  }
  // Ceil mode: Torch divides by the window clipped to the padded image. So: the padding as zeros (a Pad node),
  // then windows over that image whose overhang ONNX leaves out of the divisor (count_include_pad 0).
  const padded = a.padH > 0 || a.padW > 0 ? g.node(l, 'Pad', [x, g.int64Constant(`${l.kind}${l.index}.pads`, [0, 0, a.padH, a.padW, 0, 0, a.padH, a.padW])], {}, ' (its zero padding)', 'pad') : x;
  const pads = [0, 0, farPadding(l, inH + 2 * a.padH, 0, a.kH, a.dH, outH), farPadding(l, inW + 2 * a.padW, 0, a.kW, a.dW, outW)];
  return g.node(l, 'AveragePool', [padded], { ...window, pads: ints(pads), count_include_pad: int(0) });
}

function viewNode(g: GraphBuilder, l: Layer<'view'>, x: string): string {
  if (l.input.join('x') === l.output.join('x')) return x; // reshapes nothing
  if (l.output.length === 1) return g.node(l, 'Flatten', [x], { axis: int(1) });
  // 0 keeps the batch dimension, whatever N is at run time.
  return g.node(l, 'Reshape', [x, g.int64Constant(`view${l.index}.shape`, [0, ...l.output])]);
}

function linearNode(g: GraphBuilder, l: Layer<'linear'>, x: string): string {
  const a = l.attrs;
  const weight = g.tensor(paramId(l, 'weight'), [a.nOut, a.nIn]); // Torch's out×in: hence transB
  const inputs = a.bias ? [x, weight, g.tensor(paramId(l, 'bias'), [a.nOut])] : [x, weight];
  return g.node(l, 'Gemm', inputs, { transB: int(1) });
}

/** nn.Threshold(th, v): y = x > th ? x : v. Where(Greater(x, th), x, v): a NaN input gives v, as in Torch. */
function thresholdNode(g: GraphBuilder, l: Layer<'threshold'>, x: string): string {
  const th = g.constant(`threshold${l.index}.th`, [], Float32Array.of(l.attrs.th));
  const v = g.constant(`threshold${l.index}.v`, [], Float32Array.of(l.attrs.v));
  return g.node(l, 'Where', [g.node(l, 'Greater', [x, th], {}, ' (x > th)', 'above'), x, v]);
}

/**
 * ONNX's LRN is Torch's SpatialCrossMapLRN term for term: x / (bias + alpha/size · Σ x²)^beta, the sum over
 * channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉ that exist (onnx.ai/onnx/operators/onnx__LRN.html).
 */
function lrnNode(g: GraphBuilder, l: Layer<'lrn'>, x: string): string {
  const a = l.attrs;
  return g.node(l, 'LRN', [x], { size: int(a.size), alpha: { float: a.alpha }, beta: { float: a.beta }, bias: { float: a.k } });
}

/** nn.SpatialZeroPadding(l, r, t, b): zeros around H and W; a negative amount crops (ONNX's Pad removes then). */
function zeroPadNode(g: GraphBuilder, l: Layer<'zeropad'>, x: string): string {
  const a = l.attrs;
  return g.node(l, 'Pad', [x, g.int64Constant(`zeropad${l.index}.pads`, [0, 0, a.t, a.l, 0, 0, a.b, a.r])]);
}

/** The merge of a residual block: the branches summed in order, ((b1 + b2) + b3) as nincc's add_infer sums them. */
function addNodes(g: GraphBuilder, l: ShapedLayer, inputs: readonly string[]): string {
  return inputs.slice(1).reduce((sum, next, k) => g.node(l, 'Add', [sum, next], {}, '', k === inputs.length - 2 ? '' : `sum${k + 1}`), inputs[0]);
}

/**
 * The ONNX nodes of layer l, fed `inputs` (one value; a merge's, one per branch); returns the value that
 * holds its output. `bn`: the BN layer after a conv that is folded into it.
 */
export function layerNodes(g: GraphBuilder, l: ShapedLayer, inputs: readonly string[], bn?: BatchNormLayer): string {
  const x = inputs[0];
  switch (l.kind) {
    case 'conv':
      return convNode(g, l, x, bn);
    case 'bn':
      return batchNormNode(g, l, x);
    case 'relu':
      return g.node(l, 'Relu', [x]);
    case 'tanh':
      return g.node(l, 'Tanh', [x]);
    case 'sigmoid':
      return g.node(l, 'Sigmoid', [x]);
    case 'threshold':
      return thresholdNode(g, l, x);
    case 'lrn':
      return lrnNode(g, l, x);
    case 'zeropad':
      return zeroPadNode(g, l, x);
    case 'maxpool':
    case 'avgpool':
      return poolNode(g, l, x);
    case 'view':
      return viewNode(g, l, x);
    case 'linear':
      return linearNode(g, l, x);
    case 'logsoftmax':
    case 'softmax':
      // Flat features per image (infer-shapes checks it), so axis 1 is the whole row, as in Torch.
      return g.node(l, l.kind === 'logsoftmax' ? 'LogSoftmax' : 'Softmax', [x], { axis: int(1) });
    case 'add':
      return addNodes(g, l, inputs);
    case 'concat':
      // Channels in branch order (nn.Concat(2); nn.DepthConcat(2) too, its smaller maps already centred by the zeropad layers lowering adds).
      return g.node(l, 'Concat', inputs, { axis: int(1) });
    case 'dropout':
    case 'identity':
      return x; // the identity in eval mode
  }
}
