// The packed dataset's on-disk format (docs/packed-dataset.md): shard files of length-framed, checksummed
// JPEG records and one index.json naming every record; the record header codec and the index reader,
// whose every complaint names the file and the field or byte offset.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { DataLayoutError } from './folder.js';

export const INDEX_FILE = 'index.json';
export const PACK_FORMAT = 'nincc-packed-imagenet';
export const PACK_VERSION = 1;

/** 'NREC' as a little-endian u32: the first bytes of every record, so a reader out of step knows at once. */
export const RECORD_MAGIC = 0x4345524e;
/** magic u32, payload length u32, CRC-32 of the payload u32, stored width u16, stored height u16. */
export const RECORD_HEADER_BYTES = 16;

export type Split = 'train' | 'val';
export const SPLITS: readonly Split[] = ['train', 'val'];

export interface ShardEntry {
  readonly file: string; // relative to the dataset directory
  readonly split: Split;
  readonly bytes: number;
  readonly sha256: string;
}

/** One split's records, as columns (an object per image would triple the index for ImageNet's 1.3M images). */
export interface RecordTable {
  readonly shard: readonly number[]; // index into PackIndex.shards
  readonly offset: readonly number[]; // byte offset of the record header in its shard
  readonly length: readonly number[]; // payload bytes (the JPEG)
  readonly label: readonly number[];
  readonly width: readonly number[]; // stored image size
  readonly height: readonly number[];
  readonly name: readonly string[]; // the source file, relative to the split's directory
}

/** Where one packed image is: its shard's place in the index, the header's byte offset, the payload's length, its stored size. */
export interface RecordRef {
  readonly shard: number;
  readonly offset: number;
  readonly length: number;
  readonly width: number;
  readonly height: number;
}

export interface SkippedSource {
  readonly path: string;
  readonly reason: string;
}

export interface PackIndex {
  readonly format: typeof PACK_FORMAT;
  readonly version: typeof PACK_VERSION;
  readonly imageSize: number; // short side the images were stored at (smaller sources kept as they were)
  readonly quality: number; // JPEG quality of re-encoded images
  readonly source: string; // the ImageNet folder packed
  readonly classes: readonly string[];
  readonly shards: readonly ShardEntry[];
  readonly splits: Readonly<Record<Split, RecordTable & { readonly skipped: readonly SkippedSource[] }>>;
}

export function emptyTable(): { [K in keyof RecordTable]: RecordTable[K] extends readonly (infer T)[] ? T[] : never } {
  return { shard: [], offset: [], length: [], label: [], width: [], height: [], name: [] };
}

export function encodeRecordHeader(payload: Uint8Array, width: number, height: number): Buffer {
  if (width > 0xffff || height > 0xffff) throw new RangeError(`a ${width}×${height} image does not fit a record header (65535 at most)`);
  const h = Buffer.alloc(RECORD_HEADER_BYTES);
  h.writeUInt32LE(RECORD_MAGIC, 0);
  h.writeUInt32LE(payload.length, 4);
  h.writeUInt32LE(crc32(payload), 8);
  h.writeUInt16LE(width, 12);
  h.writeUInt16LE(height, 14);
  return h;
}

/**
 * What is wrong with the record read at `record` (header then payload) that the index says is
 * `length` payload bytes of a width×height image, or undefined when it is whole.
 */
export function recordProblem(record: Uint8Array, length: number, width: number, height: number): string | undefined {
  if (record.length < RECORD_HEADER_BYTES + length) return `the shard ends ${RECORD_HEADER_BYTES + length - record.length} bytes into the record`;
  const h = Buffer.from(record.buffer, record.byteOffset, RECORD_HEADER_BYTES);
  if (h.readUInt32LE(0) !== RECORD_MAGIC) return 'no record starts here (bad magic)';
  if (h.readUInt32LE(4) !== length) return `the record says ${h.readUInt32LE(4)} bytes, the index ${length}`;
  if (h.readUInt16LE(12) !== width || h.readUInt16LE(14) !== height) return `the record says ${h.readUInt16LE(12)}×${h.readUInt16LE(14)}, the index ${width}×${height}`;
  if (crc32(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + length)) !== h.readUInt32LE(8)) return 'checksum mismatch (the bytes changed after packing)';
  return undefined;
}

/** The message for a bad record: the shard file and the byte offset, as the brief asks every corrupt shard be named. */
export function corruptRecord(shardPath: string, offset: number, why: string): string {
  return `${shardPath}: corrupt record at byte ${offset}: ${why}`;
}

/** True when DIR holds a packed dataset's index (what `--data` checks before trying an ImageNet folder). */
export function isPackedDataset(dir: string): boolean {
  return existsSync(join(dir, INDEX_FILE));
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Reads and checks DIR/index.json: every field present and consistent, every shard the size the index says. */
export function readPackIndex(dir: string): PackIndex {
  const path = join(dir, INDEX_FILE);
  if (!existsSync(path)) throw new DataLayoutError(`${path}: no such file (not a packed dataset: run 'nincc pack --data IMAGENET_DIR -o ${dir}')`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DataLayoutError(`${path}: not JSON (${e instanceof Error ? e.message : String(e)}); pack the dataset again`);
  }
  const bad = (field: string, why: string) => new DataLayoutError(`${path}: ${field}: ${why}`);
  if (typeof raw !== 'object' || raw === null) throw bad('(top level)', 'not an object');
  const o = raw as Record<string, unknown>;
  if (o.format !== PACK_FORMAT) throw bad('format', `expected '${PACK_FORMAT}', got ${JSON.stringify(o.format)}`);
  if (o.version !== PACK_VERSION) throw bad('version', `this nincc reads version ${PACK_VERSION}, got ${JSON.stringify(o.version)}: pack the dataset again`);
  if (!isCount(o.imageSize) || o.imageSize < 1) throw bad('imageSize', `expected a positive integer, got ${JSON.stringify(o.imageSize)}`);
  if (!isCount(o.quality) || o.quality < 1 || o.quality > 100) throw bad('quality', `expected 1..100, got ${JSON.stringify(o.quality)}`);
  if (typeof o.source !== 'string') throw bad('source', 'expected a string');
  if (!Array.isArray(o.classes) || o.classes.length === 0 || o.classes.some((c) => typeof c !== 'string')) throw bad('classes', 'expected a non-empty list of class names');
  if (!Array.isArray(o.shards)) throw bad('shards', 'expected a list');
  const shards = o.shards.map((s: unknown, i): ShardEntry => {
    const e = (s ?? {}) as Record<string, unknown>;
    if (typeof e.file !== 'string' || e.file.includes('/') || e.file.startsWith('.')) throw bad(`shards[${i}].file`, 'expected a file name inside the dataset directory');
    if (e.split !== 'train' && e.split !== 'val') throw bad(`shards[${i}].split`, "expected 'train' or 'val'");
    if (!isCount(e.bytes)) throw bad(`shards[${i}].bytes`, 'expected a byte count');
    if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) throw bad(`shards[${i}].sha256`, 'expected 64 hex digits');
    return { file: e.file, split: e.split, bytes: e.bytes, sha256: e.sha256 };
  });
  const splitsRaw = (o.splits ?? {}) as Record<string, unknown>;
  const splits = {} as Record<Split, PackIndex['splits'][Split]>;
  for (const split of SPLITS) {
    const t = (splitsRaw[split] ?? undefined) as Record<string, unknown> | undefined;
    if (!t) throw bad(`splits.${split}`, 'missing');
    const columns = ['shard', 'offset', 'length', 'label', 'width', 'height', 'name'] as const;
    const n = Array.isArray(t.name) ? t.name.length : -1;
    for (const c of columns) {
      const col = t[c];
      if (!Array.isArray(col) || col.length !== n) throw bad(`splits.${split}.${c}`, `expected a list of ${n < 0 ? 'one entry per image' : `${n} entries (one per image)`}`);
      const k = col.findIndex((v) => (c === 'name' ? typeof v !== 'string' : !isCount(v)));
      if (k >= 0) throw bad(`splits.${split}.${c}[${k}]`, `expected ${c === 'name' ? 'a string' : 'a non-negative integer'}, got ${JSON.stringify(col[k])}`);
    }
    const nums = (c: Exclude<keyof RecordTable, 'name'>) => t[c] as number[];
    const table: RecordTable = { shard: nums('shard'), offset: nums('offset'), length: nums('length'), label: nums('label'), width: nums('width'), height: nums('height'), name: t.name as string[] };
    for (let k = 0; k < n; k++) {
      const s = table.shard[k];
      if (s >= shards.length || shards[s].split !== split) throw bad(`splits.${split}.shard[${k}]`, `${s} is not one of the ${split} shards`);
      if (table.label[k] >= o.classes.length) throw bad(`splits.${split}.label[${k}]`, `${table.label[k]} is not a label of the ${o.classes.length} classes`);
      if (table.offset[k] + RECORD_HEADER_BYTES + table.length[k] > shards[s].bytes) throw bad(`splits.${split}.offset[${k}]`, `the record runs past the end of ${shards[s].file} (${shards[s].bytes} bytes)`);
    }
    const skipped = Array.isArray(t.skipped) ? (t.skipped as SkippedSource[]) : [];
    splits[split] = { ...table, skipped };
  }
  for (const s of shards) {
    const file = join(dir, s.file);
    if (!existsSync(file)) throw new DataLayoutError(`${file}: missing (the index ${path} lists it)`);
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size !== s.bytes) throw new DataLayoutError(`${file}: ${size} bytes, the index says ${s.bytes} (a shard cut short or replaced: run 'nincc pack --verify ${dir}')`);
    } finally {
      closeSync(fd);
    }
  }
  return { format: PACK_FORMAT, version: PACK_VERSION, imageSize: o.imageSize, quality: o.quality, source: o.source, classes: o.classes as string[], shards, splits };
}

/** Reads one record (header and payload, one read) into `into` (grown when short); returns the bytes used. */
export function readRecord(fd: number, offset: number, length: number, into: Buffer): Buffer {
  const total = RECORD_HEADER_BYTES + length;
  const buf = into.length >= total ? into : Buffer.allocUnsafeSlow(total);
  let got = 0;
  while (got < total) {
    const n = readSync(fd, buf, got, total - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}
