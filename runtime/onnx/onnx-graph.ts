// Layer IR + tensors → the ONNX inference graph (eval mode): one or a few ONNX nodes per Torch layer,
// blocks as the values their branches read and the Add/Concat that merges them, BN folded into the conv
// before it exactly as nincc's `prepare_infer` folds it, dropout and nn.Identity dropped.
import { basename } from 'node:path';
import type { ShapedLayer, ShapedModel } from '../../compiler/ir.js';
import { inputsOf, readers } from '../../compiler/lower/chain.js';
import { GraphBuilder, type NamedTensors } from './graph-builder.js';
import { layerNodes, type BatchNormLayer } from './onnx-layers.js';
import type { OnnxGraph } from './onnx-proto.js';

export type { NamedTensors };

export interface OnnxGraphOptions {
  /** BatchNormalization nodes instead of folding BN into the conv before it. */
  readonly keepBatchNorm?: boolean;
}

export const INPUT_NAME = 'images';
export const OUTPUT_NAME = 'output';
export const BATCH_DIM = 'N';

/** The BN that nincc folds into conv i: an affine BN that reads only the conv's output, which nothing else reads (compiler/lower/infer.ts). */
function foldedBatchNorm(layers: readonly ShapedLayer[], i: number, reads: readonly number[]): BatchNormLayer | undefined {
  const next = layers[i + 1];
  if (next?.kind !== 'bn' || !next.attrs.affine) return undefined;
  return reads[i] === 1 && inputsOf(layers, i + 1).join() === String(i) ? next : undefined;
}

/** The inference graph of a shaped model: input `images` [N, C, H, W], output `output` [N, …]. */
export function onnxGraph(model: ShapedModel, tensors: NamedTensors, options: OnnxGraphOptions = {}): OnnxGraph {
  const g = new GraphBuilder(tensors);
  const layers = model.layers;
  const reads = readers(layers);
  // The ONNX value holding each layer's output, by chain position (−1: the images).
  const values = new Map<number, string>([[-1, INPUT_NAME]]);
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i];
    const inputs = inputsOf(layers, i).map((p) => values.get(p)!);
    const bn = l.kind === 'conv' && !options.keepBatchNorm ? foldedBatchNorm(layers, i, reads) : undefined;
    values.set(i, layerNodes(g, l, inputs, bn));
    if (bn) values.set(++i, values.get(i - 1)!);
  }
  const result = values.get(layers.length - 1)!;
  const nodes = g.nodes;
  const last = nodes[nodes.length - 1];
  // The last node's output becomes `output` unless another node reads it too (or it is not the result).
  if (last && last.outputs[0] === result && !nodes.some((n) => n.inputs.includes(result))) nodes[nodes.length - 1] = { ...last, outputs: [OUTPUT_NAME] };
  else nodes.push({ opType: 'Identity', name: 'output', inputs: [result], outputs: [OUTPUT_NAME], docString: 'the model output' });
  return {
    name: model.name,
    nodes,
    initializers: g.initializers,
    inputs: [{ name: INPUT_NAME, shape: [BATCH_DIM, ...model.input], docString: 'float32 NCHW images, normalised as the spec\'s transform says' }],
    outputs: [{ name: OUTPUT_NAME, shape: [BATCH_DIM, ...model.output] }],
    docString: `${model.name} from ${basename(model.file)}, eval mode`,
  };
}
