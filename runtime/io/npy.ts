// NumPy .npy files (format versions 1.0 and 2.0, plus 3.0 which only widens the header to UTF-8)
// for exchanging reference tensors with Python. Little-endian float32/int32/float64, C order only.
import * as fs from 'node:fs';
import { writeFileAtomicSync } from './atomic-write.js';

export type NpyDtype = '<f4' | '<i4' | '<f8';
export type NpyData = Float32Array | Int32Array | Float64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: NpyData;
}

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): NpyData; name: string };

const DTYPES: Record<NpyDtype, { size: number; ctor: ArrayCtor }> = {
  '<f4': { size: 4, ctor: Float32Array },
  '<i4': { size: 4, ctor: Int32Array },
  '<f8': { size: 8, ctor: Float64Array },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const PREAMBLE_BYTES = MAGIC.length + 2; // magic + major + minor
/** numpy pads the header so the data starts on a 64-byte boundary (friendly to mmap and SIMD). */
const HEADER_ALIGNMENT = 64;

function isNpyDtype(descr: unknown): descr is NpyDtype {
  return typeof descr === 'string' && Object.hasOwn(DTYPES, descr);
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Serialises an array as version 1.0, or 2.0 when the header outgrows 1.0's 16-bit length. */
export function encodeNpy(array: NpyArray): Uint8Array {
  if (!isNpyDtype(array.dtype)) {
    throw new Error(`npy: cannot write dtype '${String(array.dtype)}' (supported: ${Object.keys(DTYPES).join(', ')})`);
  }
  const { ctor, size } = DTYPES[array.dtype];
  if (!(array.data instanceof ctor)) {
    throw new Error(`npy: dtype ${array.dtype} needs a ${ctor.name}, got ${array.data.constructor.name}`);
  }
  for (const d of array.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`npy: bad shape [${array.shape.join(', ')}]`);
  }
  const count = elementCount(array.shape);
  if (array.data.length !== count) {
    throw new Error(`npy: shape [${array.shape.join(', ')}] has ${count} elements but data has ${array.data.length}`);
  }

  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  const dict = `{'descr': '${array.dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const paddedHeader = (lengthBytes: number): string => {
    const unpadded = PREAMBLE_BYTES + lengthBytes + dict.length + 1; // + '\n'
    return dict + ' '.repeat((HEADER_ALIGNMENT - (unpadded % HEADER_ALIGNMENT)) % HEADER_ALIGNMENT) + '\n';
  };
  const major = paddedHeader(2).length <= 0xffff ? 1 : 2;
  const lengthBytes = major === 1 ? 2 : 4;
  const headerText = paddedHeader(lengthBytes);

  const dataStart = PREAMBLE_BYTES + lengthBytes + headerText.length;
  const out = Buffer.alloc(dataStart + count * size);
  out.set(MAGIC, 0);
  out[MAGIC.length] = major;
  out[MAGIC.length + 1] = 0;
  if (major === 1) out.writeUInt16LE(headerText.length, PREAMBLE_BYTES);
  else out.writeUInt32LE(headerText.length, PREAMBLE_BYTES);
  out.write(headerText, PREAMBLE_BYTES + lengthBytes, 'latin1');
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), dataStart);
  return out;
}

/** Writes atomically, like every other file nincc produces. */
export function writeNpy(file: string, array: NpyArray): void {
  writeFileAtomicSync(file, encodeNpy(array));
}

export function readNpy(file: string): NpyArray {
  return decodeNpy(fs.readFileSync(file), file);
}

/** Parses .npy bytes; `source` (usually the path) starts every error message. */
export function decodeNpy(bytes: Uint8Array, source: string): NpyArray {
  const fail: (message: string) => never = (message) => {
    throw new Error(`${source}: ${message}`);
  };
  if (bytes.length < PREAMBLE_BYTES || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail(`not a .npy file (missing the \\x93NUMPY magic)`);
  }
  const major = bytes[MAGIC.length];
  const minor = bytes[MAGIC.length + 1];
  if (major < 1 || major > 3 || minor !== 0) fail(`unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < PREAMBLE_BYTES + lengthBytes) fail(`file is ${bytes.length} bytes, truncated inside the header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(PREAMBLE_BYTES, true) : view.getUint32(PREAMBLE_BYTES, true);
  const headerStart = PREAMBLE_BYTES + lengthBytes;
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    fail(`header needs ${dataStart} bytes but the file has ${bytes.length} (truncated)`);
  }
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const header = parseHeaderDict(headerText.trim(), fail);
  const { descr, fortran_order: fortranOrder, shape, ...extra } = header;
  const extraKeys = Object.keys(extra);
  if (extraKeys.length > 0) fail(`unexpected header key(s) ${extraKeys.join(', ')}`);
  if (!isNpyDtype(descr)) {
    fail(`dtype ${JSON.stringify(descr)} is not supported (supported: ${Object.keys(DTYPES).join(', ')}; big-endian and object arrays are not)`);
  }
  if (fortranOrder !== false) {
    fail(fortranOrder === true ? `fortran_order arrays are not supported; save a C-ordered array (np.ascontiguousarray)` : `header lacks a boolean fortran_order`);
  }
  if (!Array.isArray(shape)) fail(`header lacks a shape tuple`);
  const dims = shape as number[];
  const dtype = descr as NpyDtype;
  const { ctor, size } = DTYPES[dtype];
  const expected = elementCount(dims) * size;
  const actual = bytes.length - dataStart;
  if (actual !== expected) {
    const why = actual < expected ? 'truncated' : 'trailing bytes';
    fail(`${dtype} [${dims.join(', ')}] needs ${expected} data bytes but the file has ${actual} (${why})`);
  }
  const copy = new Uint8Array(bytes.subarray(dataStart));
  return { dtype, shape: dims, data: new ctor(copy.buffer, 0, elementCount(dims)) };
}

type HeaderValue = string | boolean | number[];

/**
 * Parses the Python dict literal numpy writes, e.g. {'descr': '<f4', 'fortran_order': False,
 * 'shape': (2, 3), }. Only strings, booleans and integer tuples occur there, so that is all it reads.
 */
function parseHeaderDict(text: string, fail: (m: string) => never): Record<string, HeaderValue> {
  let pos = 0;
  const bad = (what: string): never => fail(`malformed header ${JSON.stringify(text)}: ${what} at character ${pos}`);
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const expect = (ch: string) => {
    skipSpace();
    if (text[pos] !== ch) bad(`expected '${ch}'`);
    pos++;
  };
  const parseString = (): string => {
    skipSpace();
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') bad('expected a quoted string');
    const end = text.indexOf(quote, pos + 1);
    if (end < 0) bad('unterminated string');
    const value = text.slice(pos + 1, end);
    pos = end + 1;
    return value;
  };
  const parseInt = (): number => {
    skipSpace();
    const match = /^\d+L?/.exec(text.slice(pos)); // Python 2 wrote longs as 3L
    if (!match) bad('expected a non-negative integer');
    pos += match![0].length;
    return Number.parseInt(match![0], 10);
  };
  const parseValue = (): HeaderValue => {
    skipSpace();
    for (const [word, value] of [['True', true], ['False', false]] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    if (text[pos] === "'" || text[pos] === '"') return parseString();
    if (text[pos] !== '(') bad('expected a string, True, False or a tuple');
    pos++;
    const items: number[] = [];
    for (;;) {
      skipSpace();
      if (text[pos] === ')') break;
      items.push(parseInt());
      skipSpace();
      if (text[pos] === ',') pos++;
      else if (text[pos] !== ')') bad("expected ',' or ')' in shape");
    }
    pos++;
    return items;
  };

  const result: Record<string, HeaderValue> = {};
  expect('{');
  for (;;) {
    skipSpace();
    if (pos >= text.length) bad("missing the closing '}'");
    if (text[pos] === '}') break;
    const key = parseString();
    expect(':');
    result[key] = parseValue();
    skipSpace();
    if (text[pos] === ',') pos++;
    else if (text[pos] !== '}') bad("expected ',' or '}'");
  }
  pos++;
  skipSpace();
  if (pos !== text.length) bad('unexpected text after the dict');
  return result;
}
