// safetensors checkpoints: an 8-byte little-endian header length, a JSON header, then raw tensor
// bytes. The writer is deterministic and atomic; the reader trusts nothing and names file and tensor.
import * as fs from 'node:fs';
import { writeFileAtomicSync } from './atomic-write.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** F16 and BF16 travel as their raw 16-bit patterns; BOOL as one byte per element. */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

export interface SafeTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsContents {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): SafetensorsData; name: string };

const DTYPES: Record<SafetensorsDtype, { size: number; ctor: ArrayCtor }> = {
  F64: { size: 8, ctor: Float64Array },
  I64: { size: 8, ctor: BigInt64Array },
  F32: { size: 4, ctor: Float32Array },
  I32: { size: 4, ctor: Int32Array },
  F16: { size: 2, ctor: Uint16Array },
  BF16: { size: 2, ctor: Uint16Array },
  I16: { size: 2, ctor: Int16Array },
  I8: { size: 1, ctor: Int8Array },
  U8: { size: 1, ctor: Uint8Array },
  BOOL: { size: 1, ctor: Uint8Array },
};

const METADATA_KEY = '__metadata__';
const HEADER_LENGTH_BYTES = 8;
/** Same cap as the reference implementation: a larger header is corruption, not a model. */
const MAX_HEADER_BYTES = 100_000_000;

function isDtype(name: unknown): name is SafetensorsDtype {
  return typeof name === 'string' && Object.hasOwn(DTYPES, name);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

type TensorInput = Map<string, SafeTensor> | Record<string, SafeTensor>;

/**
 * Serialises to the chunks of a safetensors file (header, then each tensor's bytes), so a writer
 * can stream them without one big copy. Order is deterministic: larger element sizes first, then
 * by name, which keeps every tensor naturally aligned once the header is padded to 8 bytes.
 */
export function encodeSafetensorsChunks(tensors: TensorInput, metadata: Record<string, string> = {}): Uint8Array[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, tensor] of entries) checkTensorForWrite(name, tensor);
  entries.sort(([nameA, a], [nameB, b]) => {
    const bySize = DTYPES[b.dtype].size - DTYPES[a.dtype].size;
    return bySize !== 0 ? bySize : nameA < nameB ? -1 : nameA > nameB ? 1 : 0;
  });

  const header: Record<string, unknown> = {};
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length > 0) {
    const sorted: Record<string, string> = {};
    for (const key of metaKeys) {
      if (typeof metadata[key] !== 'string') {
        throw new Error(`safetensors metadata '${key}' must be a string, got ${typeof metadata[key]}`);
      }
      sorted[key] = metadata[key];
    }
    header[METADATA_KEY] = sorted;
  }
  let offset = 0;
  for (const [name, tensor] of entries) {
    const end = offset + tensor.data.byteLength;
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }

  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const paddedLength = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(HEADER_LENGTH_BYTES + paddedLength, 0x20);
  head.writeBigUInt64LE(BigInt(paddedLength), 0);
  json.copy(head, HEADER_LENGTH_BYTES);

  const chunks: Uint8Array[] = [head];
  for (const [, tensor] of entries) {
    chunks.push(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  }
  return chunks;
}

/** The whole file as one buffer; see encodeSafetensorsChunks for the layout. */
export function encodeSafetensors(tensors: TensorInput, metadata: Record<string, string> = {}): Uint8Array {
  return Buffer.concat(encodeSafetensorsChunks(tensors, metadata));
}

/** Writes a checkpoint atomically: an interrupted or failed write leaves any previous file as it was. */
export function writeSafetensors(file: string, tensors: TensorInput, metadata: Record<string, string> = {}): void {
  writeFileAtomicSync(file, encodeSafetensorsChunks(tensors, metadata));
}

function checkTensorForWrite(name: string, tensor: SafeTensor): void {
  const where = `safetensors tensor '${name}'`;
  if (name === METADATA_KEY) throw new Error(`${where}: the name ${METADATA_KEY} is reserved for metadata`);
  if (name.length === 0) throw new Error(`safetensors tensor names must not be empty`);
  if (!isDtype(tensor.dtype)) {
    throw new Error(`${where}: unknown dtype '${String(tensor.dtype)}' (known: ${Object.keys(DTYPES).join(', ')})`);
  }
  for (const d of tensor.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: bad shape [${tensor.shape.join(', ')}]`);
  }
  const expectedCtor = DTYPES[tensor.dtype].ctor;
  if (!(tensor.data instanceof expectedCtor)) {
    throw new Error(`${where}: dtype ${tensor.dtype} needs a ${expectedCtor.name}, got ${tensor.data.constructor.name}`);
  }
  const count = elementCount(tensor.shape);
  if (tensor.data.length !== count) {
    throw new Error(`${where}: shape [${tensor.shape.join(', ')}] has ${count} elements but data has ${tensor.data.length}`);
  }
}

/** Reads and fully validates a safetensors file. */
export function readSafetensors(file: string): SafetensorsContents {
  return decodeSafetensors(fs.readFileSync(file), file);
}

/**
 * Parses safetensors bytes; `source` (usually the path) starts every error message.
 * Tensor data is copied out so it is aligned and independent of `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  const fail: (message: string) => never = (message) => {
    throw new Error(`${source}: ${message}`);
  };
  if (bytes.length < HEADER_LENGTH_BYTES) {
    fail(`file is ${bytes.length} bytes, too short for the ${HEADER_LENGTH_BYTES}-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  const headerBytes = Number(headerLength);
  const dataStart = HEADER_LENGTH_BYTES + headerBytes;
  if (dataStart > bytes.length) {
    fail(`header length ${headerBytes} needs at least ${dataStart} bytes but the file has ${bytes.length} (truncated?)`);
  }

  const header = parseHeaderJson(bytes.subarray(HEADER_LENGTH_BYTES, dataStart), fail);
  const dataLength = bytes.length - dataStart;
  const metadata = parseMetadata(header[METADATA_KEY], fail);

  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafeTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const { dtype, shape, begin, end } = parseEntry(name, entry, dataLength, fail);
    spans.push({ name, begin, end });
    const { ctor } = DTYPES[dtype];
    const copy = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end));
    tensors.set(name, { dtype, shape, data: new ctor(copy.buffer, copy.byteOffset, elementCount(shape)) });
  }
  checkSpansTileData(spans, dataLength, fail);
  return { tensors, metadata };
}

function parseHeaderJson(raw: Uint8Array, fail: (m: string) => never): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return fail(`header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) fail(`header does not start with '{' (not a safetensors file?)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return fail(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) fail(`header is not a JSON object`);
  return parsed as Record<string, unknown>;
}

function parseMetadata(raw: unknown, fail: (m: string) => never): Record<string, string> {
  if (raw === undefined) return {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${METADATA_KEY} must be an object of strings`);
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== 'string') fail(`${METADATA_KEY}['${key}'] must be a string, got ${JSON.stringify(value)}`);
    metadata[key] = value as string;
  }
  return metadata;
}

function parseEntry(
  name: string,
  entry: unknown,
  dataLength: number,
  fail: (m: string) => never,
): { dtype: SafetensorsDtype; shape: number[]; begin: number; end: number } {
  const where = `tensor '${name}'`;
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) fail(`${where}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets, ...extra } = entry as Record<string, unknown>;
  const extraKeys = Object.keys(extra);
  if (extraKeys.length > 0) fail(`${where}: unexpected field(s) ${extraKeys.join(', ')}`);
  if (!isDtype(dtype)) fail(`${where}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    fail(`${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) {
    fail(`${where}: data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data section (truncated?)`);
  }
  const dims = shape as number[];
  const expected = elementCount(dims) * DTYPES[dtype as SafetensorsDtype].size;
  if (end - begin !== expected) {
    fail(`${where}: ${dtype} [${dims.join(', ')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { dtype: dtype as SafetensorsDtype, shape: dims, begin, end };
}

/** Tensors must cover the data section exactly: no gaps, no overlaps, no trailing bytes. */
function checkSpansTileData(
  spans: { name: string; begin: number; end: number }[],
  dataLength: number,
  fail: (m: string) => never,
): void {
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous = '';
  for (const span of spans) {
    if (span.begin < cursor) {
      fail(`tensor '${span.name}' at [${span.begin}, ${span.end}] overlaps tensor '${previous}' which ends at ${cursor}`);
    }
    if (span.begin > cursor) {
      const after = previous ? `after tensor '${previous}'` : 'at the start of the data section';
      fail(`gap of ${span.begin - cursor} bytes ${after} (tensor '${span.name}' starts at ${span.begin}, expected ${cursor})`);
    }
    cursor = span.end;
    previous = span.name;
  }
  if (cursor !== dataLength) {
    fail(`data section is ${dataLength} bytes but tensors cover only ${cursor} (${dataLength - cursor} trailing bytes)`);
  }
}
