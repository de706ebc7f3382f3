// IDX files (the MNIST / Fashion-MNIST container), plain or gzipped: a 4-byte magic
// 00 00 <dtype> <ndims>, ndims big-endian uint32 dimensions, then the elements in C order.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Every IDX element type, so an unsupported file is named precisely rather than as "bad magic". */
const IDX_DTYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'short (int16)',
  0x0c: 'int (int32)',
  0x0d: 'float (float32)',
  0x0e: 'double (float64)',
};
/** Image and label sets are all unsigned bytes; wider types would need a typed result. */
const UNSIGNED_BYTE = 0x08;
const GZIP_MAGIC = [0x1f, 0x8b];

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
}

export function readIdxFile(file: string): IdxArray {
  return decodeIdx(fs.readFileSync(file), file);
}

/** Parses IDX bytes, gunzipping first when they start with the gzip magic. `source` starts every error. */
export function decodeIdx(bytes: Uint8Array, source: string): IdxArray {
  if (!isGzip(bytes)) return parseIdx(bytes, source, { gzipped: false });
  let raw: Uint8Array;
  try {
    raw = zlib.gunzipSync(bytes);
  } catch (err) {
    throw explainBadGzip(bytes, source, err as Error);
  }
  return parseIdx(raw, source, { gzipped: true });
}

function parseIdx(raw: Uint8Array, source: string, how: { gzipped: boolean }): IdxArray {
  const fail = (message: string): Error => new Error(`${source}: ${message}`);
  const unit = how.gzipped ? 'bytes after gunzip' : 'bytes';
  if (raw.length < 4) throw fail(`file is ${raw.length} ${unit}, too short for the 4-byte IDX magic`);
  if (raw[0] !== 0 || raw[1] !== 0) {
    const magic = [...raw.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw fail(`bad IDX magic ${magic} (expected 00 00 <dtype> <ndims>; not an IDX file?)`);
  }
  const dtype = raw[2];
  if (dtype !== UNSIGNED_BYTE) {
    const name = IDX_DTYPE_NAMES[dtype];
    const what = name ? `${name} elements (code 0x${hex(dtype)})` : `unknown dtype code 0x${hex(dtype)}`;
    throw fail(`unsupported IDX dtype: ${what}; only unsigned byte (0x08) is supported`);
  }
  const ndims = raw[3];
  const dataStart = 4 + 4 * ndims;
  if (raw.length < dataStart) {
    throw fail(`truncated header: ${ndims} dimensions need ${dataStart} ${unit} but the file has ${raw.length}`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((n, d) => n * d, 1);
  const actual = raw.length - dataStart;
  if (actual < expected) {
    throw fail(`truncated: dims [${dims.join(', ')}] need ${expected} data ${unit} but the file has ${actual}`);
  }
  if (actual > expected) {
    throw fail(`dims [${dims.join(', ')}] need ${expected} data ${unit} but the file has ${actual} (${actual - expected} trailing)`);
  }
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + dataStart, expected) };
}

/**
 * A cut-off download is the usual reason gunzip fails. Decompress what is there to say how much
 * of the IDX payload arrived, which is more useful than zlib's "unexpected end of file".
 */
function explainBadGzip(bytes: Uint8Array, source: string, cause: Error): Error {
  let partial: Uint8Array | undefined;
  try {
    partial = zlib.gunzipSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  } catch {
    partial = undefined;
  }
  if (partial && partial.length >= 4 + 4 * partial[3] && partial[0] === 0 && partial[1] === 0) {
    const view = new DataView(partial.buffer, partial.byteOffset, partial.byteLength);
    const ndims = partial[3];
    let elements = 1;
    for (let i = 0; i < ndims; i++) elements *= view.getUint32(4 + 4 * i, false);
    const expected = 4 + 4 * ndims + elements; // unsigned-byte elements: one byte each
    if (partial.length < expected) {
      return new Error(
        `${source}: truncated gzip file (${bytes.length} compressed bytes): expected ${expected} bytes after gunzip ` +
          `but only ${partial.length} could be recovered (${cause.message})`,
      );
    }
  }
  return new Error(`${source}: corrupt gzip data (${bytes.length} compressed bytes): ${cause.message}`);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Serialises unsigned-byte IDX data, gzipped by default as the Fashion-MNIST files are. */
export function encodeIdx(array: IdxArray, opts: { gzip?: boolean } = {}): Uint8Array {
  const expected = array.dims.reduce((n, d) => n * d, 1);
  if (array.data.length !== expected) {
    throw new Error(`encodeIdx: dims [${array.dims.join(', ')}] need ${expected} bytes but data has ${array.data.length}`);
  }
  if (array.dims.length > 255) throw new Error(`encodeIdx: ${array.dims.length} dimensions exceed IDX's limit of 255`);
  const raw = Buffer.alloc(4 + 4 * array.dims.length + expected);
  raw[2] = UNSIGNED_BYTE;
  raw[3] = array.dims.length;
  array.dims.forEach((d, i) => raw.writeUInt32BE(d, 4 + 4 * i));
  raw.set(array.data, 4 + 4 * array.dims.length);
  // Level 9 with Node's fixed gzip header (no mtime) makes the output reproducible.
  return opts.gzip === false ? raw : zlib.gzipSync(raw, { level: 9 });
}
