// Layer IR + tensors → the ONNX inference graph (eval mode): one or two ONNX nodes per Torch layer,
// BN folded into the conv before it exactly as nincc's `prepare_infer` folds it, dropout dropped.
import { basename } from 'node:path';
import type { ShapedLayer, ShapedModel } from '../../compiler/ir.js';
import { paramId } from '../../compiler/lower/params.js';
import { torchModuleString } from '../../compiler/report/torch-print.js';
import type { OnnxAttribute, OnnxGraph, OnnxNode, OnnxTensor } from './onnx-proto.js';

/** Tensors by nincc's names (`conv1.weight`, `bn2.running_var`, …), float32 in Torch's layouts. */
export type NamedTensors = ReadonlyMap<string, Float32Array>;

export interface OnnxGraphOptions {
  /** BatchNormalization nodes instead of folding BN into the conv before it. */
  readonly keepBatchNorm?: boolean;
}

export const INPUT_NAME = 'images';
export const OUTPUT_NAME = 'output';
export const BATCH_DIM = 'N';

type BatchNormLayer = ShapedLayer & { readonly kind: 'bn' };
type ConvLayer = ShapedLayer & { readonly kind: 'conv' };

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

/** `nin.model:12:5`, as the generated kernels name their layer (no directories from the build machine). */
const place = (l: ShapedLayer) => `${basename(l.span.file)}:${l.span.start.line}:${l.span.start.column}`;

const ints = (values: readonly number[]): OnnxAttribute => ({ ints: values });
const int = (value: number): OnnxAttribute => ({ int: value });

/** Builds the node list in layer order, naming each value after the layer that makes it. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();
  current = INPUT_NAME;

  constructor(private readonly tensors: NamedTensors) {}

  /** One of the model's tensors, by nincc name. */
  read(name: string): Float32Array {
    const data = this.tensors.get(name);
    if (!data) throw new Error(`ONNX export: tensor ${name} is missing`);
    return data;
  }

  /** A float initializer from one of the model's tensors, added once. */
  tensor(name: string, dims: readonly number[]): string {
    return this.constant(name, dims, this.read(name));
  }

  constant(name: string, dims: readonly number[], data: Float32Array, docString?: string): string {
    if (!this.used.has(name)) {
      this.used.add(name);
      this.initializers.push({ name, dims, dataType: 'float', data, ...(docString ? { docString } : {}) });
    }
    return name;
  }

  int64Constant(name: string, values: readonly number[]): string {
    this.used.add(name);
    this.initializers.push({ name, dims: [values.length], dataType: 'int64', data: BigInt64Array.from(values.map(BigInt)) });
    return name;
  }

  /** Appends a node fed by the current value; its output becomes the current value. */
  node(l: ShapedLayer, opType: string, extraInputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, note = ''): void {
    const name = `${l.kind}${l.index}`;
    const output = `${name}.out`;
    this.nodes.push({
      opType,
      name,
      inputs: [this.current, ...extraInputs],
      outputs: [output],
      attributes,
      docString: `${torchModuleString(l)} at ${place(l)}${note}`,
    });
    this.current = output;
  }
}

function convNode(g: GraphBuilder, l: ConvLayer, bn: BatchNormLayer | undefined): void {
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
  g.node(l, 'Conv', bias ? [weight, bias] : [weight], {
    kernel_shape: ints([a.kH, a.kW]),
    strides: ints([a.dH, a.dW]),
    pads: ints([a.padH, a.padW, a.padH, a.padW]), // [H begin, W begin, H end, W end]
    dilations: ints([1, 1]),
    group: int(1),
  }, bn ? ` + ${torchModuleString(bn)} at ${place(bn)} (folded)` : '');
}

function batchNormNode(g: GraphBuilder, l: BatchNormLayer): void {
  const c = l.attrs.nFeatures;
  // Without affine, Torch's BN has no γ and β: ONNX needs them, so they are the identity.
  const scale = l.attrs.affine ? g.tensor(paramId(l, 'weight'), [c]) : g.constant(`bn${l.index}.unit_scale`, [c], new Float32Array(c).fill(1));
  const shift = l.attrs.affine ? g.tensor(paramId(l, 'bias'), [c]) : g.constant(`bn${l.index}.zero_shift`, [c], new Float32Array(c));
  g.node(l, 'BatchNormalization', [scale, shift, g.tensor(paramId(l, 'running_mean'), [c]), g.tensor(paramId(l, 'running_var'), [c])], {
    epsilon: { float: l.attrs.eps },
    // ONNX weighs the old running value by momentum; Torch weighs the new batch statistic by it.
    momentum: { float: 1 - l.attrs.momentum },
  });
}

function poolNode(g: GraphBuilder, l: ShapedLayer & { readonly kind: 'maxpool' | 'avgpool' }): void {
  const a = l.attrs;
  const attributes: Record<string, OnnxAttribute> = {
    kernel_shape: ints([a.kH, a.kW]),
    strides: ints([a.dH, a.dW]),
    pads: ints([a.padH, a.padW, a.padH, a.padW]),
    ceil_mode: int(0), // Torch's floor mode
  };
  // MaxPool's padding never wins a max (-inf, as in Torch); AveragePool divides by the whole window.
  if (l.kind === 'avgpool') attributes.count_include_pad = int(1);
  g.node(l, l.kind === 'maxpool' ? 'MaxPool' : 'AveragePool', [], attributes);
}

function viewNode(g: GraphBuilder, l: ShapedLayer & { readonly kind: 'view' }): void {
  if (l.input.join('x') === l.output.join('x')) return; // reshapes nothing
  if (l.output.length === 1) {
    g.node(l, 'Flatten', [], { axis: int(1) });
    return;
  }
  // 0 keeps the batch dimension, whatever N is at run time.
  g.node(l, 'Reshape', [g.int64Constant(`view${l.index}.shape`, [0, ...l.output])]);
}

function linearNode(g: GraphBuilder, l: ShapedLayer & { readonly kind: 'linear' }): void {
  const a = l.attrs;
  const weight = g.tensor(paramId(l, 'weight'), [a.nOut, a.nIn]); // Torch's out×in: hence transB
  const inputs = a.bias ? [weight, g.tensor(paramId(l, 'bias'), [a.nOut])] : [weight];
  g.node(l, 'Gemm', inputs, { transB: int(1) });
}

/** The inference graph of a shaped model: input `images` [N, C, H, W], output `output` [N, …]. */
export function onnxGraph(model: ShapedModel, tensors: NamedTensors, options: OnnxGraphOptions = {}): OnnxGraph {
  const g = new GraphBuilder(tensors);
  const layers = model.layers;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    switch (l.kind) {
      case 'conv': {
        const next = layers[i + 1];
        // nincc folds an affine BN that directly follows a conv (compiler/lower/infer.ts); anything else stays a BN.
        const fold = !options.keepBatchNorm && next?.kind === 'bn' && next.attrs.affine ? next : undefined;
        convNode(g, l, fold);
        if (fold) i++;
        break;
      }
      case 'bn':
        batchNormNode(g, l);
        break;
      case 'relu':
        g.node(l, 'Relu', []);
        break;
      case 'maxpool':
      case 'avgpool':
        poolNode(g, l);
        break;
      case 'view':
        viewNode(g, l);
        break;
      case 'linear':
        linearNode(g, l);
        break;
      case 'logsoftmax':
      case 'softmax':
        // Flat features per image (infer-shapes checks it), so axis 1 is the whole row, as in Torch.
        g.node(l, l.kind === 'logsoftmax' ? 'LogSoftmax' : 'Softmax', [], { axis: int(1) });
        break;
      case 'dropout':
        break; // the identity in eval mode
      default:
        throw new Error(`ONNX export: layer ${l.index} (${l.kind}) at ${place(l)} is not exported yet (issue #17)`);
    }
  }
  const nodes = g.nodes;
  const last = nodes[nodes.length - 1];
  if (last) nodes[nodes.length - 1] = { ...last, outputs: [OUTPUT_NAME] };
  else nodes.push({ opType: 'Identity', name: 'identity', inputs: [INPUT_NAME], outputs: [OUTPUT_NAME], docString: 'a model of only identity layers' });
  return {
    name: model.name,
    nodes,
    initializers: g.initializers,
    inputs: [{ name: INPUT_NAME, shape: [BATCH_DIM, ...model.input], docString: 'float32 NCHW images, normalised as the spec\'s transform says' }],
    outputs: [{ name: OUTPUT_NAME, shape: [BATCH_DIM, ...model.output] }],
    docString: `${model.name} from ${basename(model.file)}, eval mode`,
  };
}
