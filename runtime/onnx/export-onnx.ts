// ONNX export as one pure function: a shaped model and its tensors → the bytes of a `.onnx` file.
// The opset is a choice (13 and later); the IR version follows from it.
import { basename } from 'node:path';
import type { ShapedModel } from '../../compiler/ir.js';
import { NINCC_VERSION } from '../../compiler/emit/plan.js';
import { onnxGraph, type NamedTensors } from './onnx-graph.js';
import { encodeOnnxModel } from './onnx-proto.js';

/**
 * The lowest IR version that may carry each default-domain opset (ONNX's versioning table). Every
 * operator used here (Conv, BatchNormalization, Relu, MaxPool, AveragePool, Flatten, Reshape, Gemm,
 * LogSoftmax, Softmax, Add, Concat, LRN, Tanh, Sigmoid, Greater, Where, Pad) keeps the attributes and semantics used here across all of them.
 */
const IR_VERSION_FOR_OPSET: Readonly<Record<number, number>> = {
  13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11,
};

export const MIN_OPSET = 13; // axis semantics of (Log)Softmax as in Torch: one axis, not "flatten from axis"
export const MAX_OPSET = Math.max(...Object.keys(IR_VERSION_FOR_OPSET).map(Number));
/** Widely supported (onnxruntime ≥ 1.12, TensorRT 8.5+, OpenVINO) and new enough for every op here. */
export const DEFAULT_OPSET = 17;

export interface OnnxExportOptions {
  readonly keepBatchNorm?: boolean;
  readonly opset?: number;
  /** Where the weights came from, recorded in the model's metadata (a file name or `seed 1`). */
  readonly weightsSource?: string;
}

export function checkOpset(opset: number): void {
  if (!Number.isInteger(opset) || IR_VERSION_FOR_OPSET[opset] === undefined) {
    throw new RangeError(`opset ${opset} is not supported: nincc exports opsets ${MIN_OPSET} to ${MAX_OPSET}`);
  }
}

export function exportOnnx(model: ShapedModel, tensors: NamedTensors, options: OnnxExportOptions = {}): Uint8Array {
  const opset = options.opset ?? DEFAULT_OPSET;
  checkOpset(opset);
  const metadata: Record<string, string> = {
    'nincc.model': model.name,
    'nincc.spec': basename(model.file),
    'nincc.batch_norm': options.keepBatchNorm ? 'kept' : 'folded',
  };
  if (options.weightsSource) metadata['nincc.weights'] = options.weightsSource;
  // Preprocessing is not in the graph: a consumer needs the spec's crop and normalisation to feed it.
  if (model.imageSize !== undefined) metadata['nincc.image_size'] = String(model.imageSize);
  if (model.transform) {
    metadata['nincc.transform.mean'] = model.transform.mean.join(' ');
    metadata['nincc.transform.std'] = model.transform.std.join(' ');
  }
  return encodeOnnxModel({
    irVersion: IR_VERSION_FOR_OPSET[opset],
    opsetVersion: opset,
    producerName: 'nincc',
    producerVersion: NINCC_VERSION,
    graph: onnxGraph(model, tensors, { keepBatchNorm: options.keepBatchNorm ?? false }),
    metadata,
  });
}
