// The part of ONNX's protobuf schema (onnx.proto) that an inference graph uses, as plain data
// types and one encoder per message. Field numbers are those of the public onnx.proto.
import { ProtoWriter } from './protobuf-writer.js';

/** An attribute value; the wrapper says the ONNX attribute type (an INT 1 and a FLOAT 1 differ on the wire). */
export type OnnxAttribute = { readonly int: number } | { readonly ints: readonly number[] } | { readonly float: number } | { readonly string: string };

export interface OnnxNode {
  readonly opType: string;
  readonly name: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: Readonly<Record<string, OnnxAttribute>>;
  readonly docString?: string;
}

/** A constant tensor (initializer). float32 or int64, stored little-endian in raw_data. */
export type OnnxTensor = {
  readonly name: string;
  readonly dims: readonly number[];
  readonly docString?: string;
} & ({ readonly dataType: 'float'; readonly data: Float32Array } | { readonly dataType: 'int64'; readonly data: BigInt64Array });

/** A graph input or output: a float32 tensor whose dims are sizes or symbolic names (dynamic batch). */
export interface OnnxValueInfo {
  readonly name: string;
  readonly shape: readonly (number | string)[];
  readonly docString?: string;
}

export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly docString?: string;
}

export interface OnnxModel {
  readonly irVersion: number;
  readonly opsetVersion: number; // of the default domain ai.onnx
  readonly producerName: string;
  readonly producerVersion: string;
  readonly graph: OnnxGraph;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly docString?: string;
}

/** TensorProto.DataType */
const DATA_TYPE = { float: 1, int64: 7 } as const;
/** AttributeProto.AttributeType */
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function littleEndianBytes(t: OnnxTensor): Uint8Array {
  const d = t.data;
  if (LITTLE_ENDIAN) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  const out = new Uint8Array(d.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < d.length; i++) {
    if (t.dataType === 'float') view.setFloat32(i * 4, t.data[i], true);
    else view.setBigInt64(i * 8, t.data[i], true);
  }
  return out;
}

function encodeAttribute(name: string, a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, name); // name
  if ('int' in a) return w.varint(3, a.int).varint(20, ATTRIBUTE_TYPE.INT); // i, type
  if ('ints' in a) return w.repeatedVarint(8, a.ints).varint(20, ATTRIBUTE_TYPE.INTS); // ints, type
  if ('float' in a) return w.float(2, a.float).varint(20, ATTRIBUTE_TYPE.FLOAT); // f, type
  return w.string(4, a.string).varint(20, ATTRIBUTE_TYPE.STRING); // s, type
}

function encodeNode(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i); // input
  for (const o of n.outputs) w.string(2, o); // output
  w.string(3, n.name).string(4, n.opType); // name, op_type
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(name, a)); // attribute
  if (n.docString) w.string(6, n.docString); // doc_string
  return w;
}

function encodeTensor(t: OnnxTensor): ProtoWriter {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== expected) throw new RangeError(`ONNX initializer ${t.name}: ${t.data.length} values for dims [${t.dims.join(', ')}]`);
  const w = new ProtoWriter().repeatedVarint(1, t.dims).varint(2, DATA_TYPE[t.dataType]).string(8, t.name); // dims, data_type, name
  w.bytes(9, littleEndianBytes(t)); // raw_data
  if (t.docString) w.string(12, t.docString); // doc_string
  return w;
}

function encodeValueInfo(v: OnnxValueInfo): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    // TensorShapeProto.Dimension: dim_value (1) or dim_param (2)
    shape.message(1, typeof d === 'number' ? new ProtoWriter().varint(1, d) : new ProtoWriter().string(2, d));
  }
  const tensorType = new ProtoWriter().varint(1, DATA_TYPE.float).message(2, shape); // elem_type, shape
  const type = new ProtoWriter().message(1, tensorType); // TypeProto.tensor_type
  const w = new ProtoWriter().string(1, v.name).message(2, type); // name, type
  if (v.docString) w.string(3, v.docString);
  return w;
}

function encodeGraph(g: OnnxGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n)); // node
  w.string(2, g.name); // name
  for (const t of g.initializers) w.message(5, encodeTensor(t)); // initializer
  if (g.docString) w.string(10, g.docString); // doc_string
  for (const i of g.inputs) w.message(11, encodeValueInfo(i)); // input
  for (const o of g.outputs) w.message(12, encodeValueInfo(o)); // output
  return w;
}

/** The bytes of a `.onnx` file: one serialised ModelProto. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter().varint(1, m.irVersion); // ir_version
  w.string(2, m.producerName).string(3, m.producerVersion); // producer_name, producer_version
  if (m.docString) w.string(6, m.docString); // doc_string
  w.message(7, encodeGraph(m.graph)); // graph
  w.message(8, new ProtoWriter().string(1, '').varint(2, m.opsetVersion)); // opset_import: default domain
  for (const [key, value] of Object.entries(m.metadata ?? {})) w.message(14, new ProtoWriter().string(1, key).string(2, value)); // metadata_props
  return w.finish();
}
