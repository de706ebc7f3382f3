// The ONNX graph under construction: its nodes, named after the Torch layer each comes from, and its
// initializers (the model's tensors and the constants the nodes need), each added once.
import { basename } from 'node:path';
import type { ShapedLayer } from '../../compiler/ir.js';
import { torchModuleString } from '../../compiler/report/torch-print.js';
import type { OnnxAttribute, OnnxNode, OnnxTensor } from './onnx-proto.js';

/** Tensors by nincc's names (`conv1.weight`, `bn2.running_var`, …), float32 in Torch's layouts. */
export type NamedTensors = ReadonlyMap<string, Float32Array>;

/** `nin.model:12:5`, as the generated kernels name their layer (no directories from the build machine). */
export const place = (l: ShapedLayer) => `${basename(l.span.file)}:${l.span.start.line}:${l.span.start.column}`;

/** Builds the node list in layer order; a layer's nodes read the values it is given and name theirs after it. */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();

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
    if (!this.used.has(name)) {
      this.used.add(name);
      this.initializers.push({ name, dims: [values.length], dataType: 'int64', data: BigInt64Array.from(values.map(BigInt)) });
    }
    return name;
  }

  /**
   * Appends a node of layer l reading `inputs`; returns its output's name. `part` tells apart the nodes of
   * a layer that needs several (Threshold's Greater and Where): the last one has none.
   */
  node(l: ShapedLayer, opType: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, note = '', part = ''): string {
    const name = `${l.kind}${l.index}${part ? `.${part}` : ''}`;
    const output = `${name}.out`;
    this.nodes.push({ opType, name, inputs, outputs: [output], attributes, docString: `${torchModuleString(l)} at ${place(l)}${note}` });
    return output;
  }
}

