// IDX reader: round trips plain and gzipped, and each error message on real Fashion-MNIST bytes
// from the shipped mini subset, sliced or with bytes flipped.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { decodeIdx, encodeIdx, isGzip, readIdxFile } from '../runtime/data/idx.js';

const MINI = path.join(import.meta.dirname, 'data', 'fashion-mnist-mini');
const TEST_IMAGES = path.join(MINI, 't10k-images-idx3-ubyte.gz');
const TEST_LABELS = path.join(MINI, 't10k-labels-idx1-ubyte.gz');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nincc-idx-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Writes `bytes` to a temporary file so the error can be checked to name it. */
function tmpFile(name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

describe('IDX round trip', () => {
  const array = { dims: [2, 3, 4], data: Uint8Array.from({ length: 24 }, (_, i) => i * 10) };

  it('gzipped (the default) and plain', () => {
    for (const gzip of [true, false]) {
      const bytes = encodeIdx(array, { gzip });
      expect(isGzip(bytes)).toBe(gzip);
      const back = decodeIdx(bytes, 'x.idx');
      expect(back.dims).toEqual(array.dims);
      expect([...back.data]).toEqual([...array.data]);
    }
  });

  it('encodes the header as 00 00 08 <ndims> and big-endian dims', () => {
    const bytes = encodeIdx({ dims: [258], data: new Uint8Array(258) }, { gzip: false });
    expect([...bytes.subarray(0, 8)]).toEqual([0, 0, 8, 1, 0, 0, 1, 2]);
  });

  it('reads the shipped Fashion-MNIST files, gzipped or gunzipped', () => {
    const images = readIdxFile(TEST_IMAGES);
    expect(images.dims).toEqual([1000, 28, 28]);
    expect(images.data.length).toBe(784000);
    const plain = readIdxFile(tmpFile('t10k-labels-idx1-ubyte', zlib.gunzipSync(fs.readFileSync(TEST_LABELS))));
    expect(plain.dims).toEqual([1000]);
    expect([...plain.data]).toEqual([...readIdxFile(TEST_LABELS).data]);
  });
});

describe('IDX errors name the file and say what is wrong', () => {
  const raw = zlib.gunzipSync(fs.readFileSync(TEST_LABELS)); // 8-byte header + 1000 labels

  it('bad magic', () => {
    const bytes = Buffer.from(raw);
    bytes[0] = 0x50;
    const file = tmpFile('bad-magic', bytes);
    expect(() => readIdxFile(file)).toThrow(`${file}: bad IDX magic 50 00 08 01 (expected 00 00 <dtype> <ndims>; not an IDX file?)`);
  });

  it('a file too short for the magic', () => {
    const file = tmpFile('tiny', raw.subarray(0, 3));
    expect(() => readIdxFile(file)).toThrow(`${file}: file is 3 bytes, too short for the 4-byte IDX magic`);
  });

  it('a known but unsupported dtype, and an unknown one', () => {
    const floats = Buffer.from(raw);
    floats[2] = 0x0d;
    const file = tmpFile('floats', floats);
    expect(() => readIdxFile(file)).toThrow(
      `${file}: unsupported IDX dtype: float (float32) elements (code 0x0d); only unsigned byte (0x08) is supported`,
    );
    floats[2] = 0x42;
    expect(() => decodeIdx(floats, 'odd.idx')).toThrow(
      'odd.idx: unsupported IDX dtype: unknown dtype code 0x42; only unsigned byte (0x08) is supported',
    );
  });

  it('a truncated plain file reports expected and actual byte counts', () => {
    const file = tmpFile('cut-labels', raw.subarray(0, 508));
    expect(() => readIdxFile(file)).toThrow(`${file}: truncated: dims [1000] need 1000 data bytes but the file has 500`);
  });

  it('a file cut inside the dimensions', () => {
    const images = zlib.gunzipSync(fs.readFileSync(TEST_IMAGES));
    const file = tmpFile('cut-dims', images.subarray(0, 10));
    expect(() => readIdxFile(file)).toThrow(`${file}: truncated header: 3 dimensions need 16 bytes but the file has 10`);
  });

  it('a gzipped file whose payload is short', () => {
    const file = tmpFile('short.gz', zlib.gzipSync(raw.subarray(0, 108)));
    expect(() => readIdxFile(file)).toThrow(
      `${file}: truncated: dims [1000] need 1000 data bytes after gunzip but the file has 100`,
    );
  });

  it('a truncated gzip download reports how much of the payload arrived', () => {
    const gz = fs.readFileSync(TEST_IMAGES);
    const file = tmpFile('cut-images.gz', gz.subarray(0, gz.length >> 1));
    expect(() => readIdxFile(file)).toThrow(
      new RegExp(
        `^${file}: truncated gzip file \\(${gz.length >> 1} compressed bytes\\): ` +
          `expected 784016 bytes after gunzip but only \\d+ could be recovered \\(unexpected end of file\\)$`,
      ),
    );
  });

  it('corrupt gzip data', () => {
    const gz = Buffer.from(fs.readFileSync(TEST_LABELS));
    gz.writeUInt32LE(gz.readUInt32LE(gz.length - 8) ^ 0xffffffff, gz.length - 8); // break the CRC
    const file = tmpFile('bad-crc.gz', gz);
    expect(() => readIdxFile(file)).toThrow(new RegExp(`^${file}: corrupt gzip data \\(${gz.length} compressed bytes\\): incorrect data check$`));
  });

  it('trailing bytes', () => {
    const file = tmpFile('long', Buffer.concat([raw, Buffer.alloc(3)]));
    expect(() => readIdxFile(file)).toThrow(`${file}: dims [1000] need 1000 data bytes but the file has 1003 (3 trailing)`);
  });

  it('encodeIdx rejects data that does not fit the dims', () => {
    expect(() => encodeIdx({ dims: [2, 2], data: new Uint8Array(3) })).toThrow(
      'encodeIdx: dims [2, 2] need 4 bytes but data has 3',
    );
  });
});
