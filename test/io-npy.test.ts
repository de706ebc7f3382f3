// .npy: round trips for each supported dtype and version, a file laid out byte for byte as numpy
// writes it, and each reader error with its exact message.
import { afterAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeNpy, encodeNpy, readNpy, writeNpy, type NpyArray } from '../runtime/io/npy.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nincc-npy-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SOURCE = 'ref.npy';
const decode = (bytes: Uint8Array) => () => decodeNpy(bytes, SOURCE);

/** A file assembled by hand from a header string, padded as numpy pads it (2-byte length for 1.0). */
function npyFile(header: string, data: Uint8Array, major = 1): Uint8Array {
  const lengthBytes = major === 1 ? 2 : 4;
  const unpadded = 8 + lengthBytes + header.length + 1;
  const padded = header + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0, 0, 0, 0, 0]).subarray(0, 8 + lengthBytes);
  if (major === 1) pre.writeUInt16LE(padded.length, 8);
  else pre.writeUInt32LE(padded.length, 8);
  return Buffer.concat([pre, Buffer.from(padded, 'utf8'), data]);
}

describe('npy round trip', () => {
  const cases: NpyArray[] = [
    { dtype: '<f4', shape: [2, 3], data: Float32Array.from([1, 2.5, -3, 0, 1e-20, 3e38]) },
    { dtype: '<i4', shape: [4], data: Int32Array.from([-2147483648, -1, 0, 2147483647]) },
    { dtype: '<f8', shape: [], data: Float64Array.from([Math.E]) },
    { dtype: '<f8', shape: [2, 0, 3], data: new Float64Array(0) },
    { dtype: '<f4', shape: [1, 1, 2, 2], data: Float32Array.from([NaN, Infinity, -Infinity, -0]) },
  ];
  it.each(cases.map((c) => [c.dtype, c.shape.join('x') || 'scalar', c] as const))('%s %s', (_dtype, _shape, array) => {
    const file = path.join(dir, `rt-${array.dtype.slice(1)}-${array.shape.join('x')}.npy`);
    writeNpy(file, array);
    const back = readNpy(file);
    expect(back.dtype).toBe(array.dtype);
    expect(back.shape).toEqual(array.shape);
    expect(back.data.constructor).toBe(array.data.constructor);
    expect(Object.is(back.data[3], array.data[3])).toBe(true); // keeps -0 and NaN bits where present
    expect([...back.data]).toEqual([...array.data]);
  });

  it('writes exactly what numpy writes for a 2×3 float32 array', () => {
    const array: NpyArray = { dtype: '<f4', shape: [2, 3], data: Float32Array.from([0, 1, 2, 3, 4, 5]) };
    const expected = npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(array.data.buffer));
    expect(Buffer.from(encodeNpy(array)).equals(Buffer.from(expected))).toBe(true);
  });

  it('writes one-element shapes as (n,) and starts data on a 64-byte boundary', () => {
    const bytes = Buffer.from(encodeNpy({ dtype: '<i4', shape: [7], data: new Int32Array(7) }));
    expect(bytes.toString('latin1')).toContain("'shape': (7,), }");
    expect((bytes.length - 28) % 64).toBe(0);
  });

  it('switches to version 2.0 when the header outgrows 64 KiB, and reads it back', () => {
    const shape = new Array<number>(25000).fill(1);
    const bytes = encodeNpy({ dtype: '<f8', shape, data: Float64Array.of(42) });
    expect(bytes[6]).toBe(2);
    const back = decodeNpy(bytes, SOURCE);
    expect(back.shape.length).toBe(25000);
    expect([...back.data]).toEqual([42]);
  });

  it('reads headers written with double quotes, odd spacing, Python 2 longs, and versions 2.0 and 3.0', () => {
    const data = new Uint8Array(Int32Array.of(5, 6).buffer);
    const loose = '{"descr":"<i4","fortran_order":False,"shape":(2L,)}';
    for (const major of [1, 2, 3]) {
      const back = decodeNpy(npyFile(loose, data, major), SOURCE);
      expect(back.shape, `version ${major}`).toEqual([2]);
      expect([...back.data], `version ${major}`).toEqual([5, 6]);
    }
  });
});

describe('npy errors', () => {
  const real = encodeNpy({ dtype: '<f4', shape: [2, 3], data: new Float32Array(6) });

  it('names the file when reading from disk', () => {
    const file = path.join(dir, 'truncated.npy');
    fs.writeFileSync(file, real.subarray(0, real.length - 4));
    expect(() => readNpy(file)).toThrow(`${file}: <f4 [2, 3] needs 24 data bytes but the file has 20 (truncated)`);
  });

  it('bad magic', () => {
    const bytes = Buffer.from(real);
    bytes[1] ^= 0x20;
    expect(decode(bytes)).toThrow(`${SOURCE}: not a .npy file (missing the \\x93NUMPY magic)`);
    expect(decode(new Uint8Array(3))).toThrow(/not a \.npy file/);
  });

  it('unsupported version', () => {
    const bytes = Buffer.from(real);
    bytes[6] = 4;
    expect(decode(bytes)).toThrow(`${SOURCE}: unsupported .npy format version 4.0 (supported: 1.0, 2.0, 3.0)`);
  });

  it('truncated header', () => {
    expect(decode(real.subarray(0, 9))).toThrow(`${SOURCE}: file is 9 bytes, truncated inside the header length`);
    expect(decode(real.subarray(0, 40))).toThrow(`${SOURCE}: header needs 128 bytes but the file has 40 (truncated)`);
  });

  it('trailing bytes', () => {
    expect(decode(Buffer.concat([real, Buffer.alloc(4)]))).toThrow(
      `${SOURCE}: <f4 [2, 3] needs 24 data bytes but the file has 28 (trailing bytes)`,
    );
  });

  it('fortran order', () => {
    const bytes = npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", new Uint8Array(24));
    expect(decode(bytes)).toThrow(
      `${SOURCE}: fortran_order arrays are not supported; save a C-ordered array (np.ascontiguousarray)`,
    );
  });

  it.each(['>f4', '<i8', '|u1', '<c8'])('dtype %s', (descr) => {
    const bytes = npyFile(`{'descr': '${descr}', 'fortran_order': False, 'shape': (2,), }`, new Uint8Array(8));
    expect(decode(bytes)).toThrow(
      `${SOURCE}: dtype "${descr}" is not supported (supported: <f4, <i4, <f8; big-endian and object arrays are not)`,
    );
  });

  it('malformed or incomplete headers', () => {
    expect(decode(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", new Uint8Array(24)))).toThrow(
      new RegExp(`^${SOURCE}: malformed header .*: missing the closing '\\}' at character 57$`),
    );
    expect(decode(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", new Uint8Array(24)))).toThrow(
      /expected a non-negative integer at character 54/,
    );
    expect(decode(npyFile("{'descr': '<f4', 'shape': (2,), }", new Uint8Array(8)))).toThrow(
      `${SOURCE}: header lacks a boolean fortran_order`,
    );
    expect(decode(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", new Uint8Array(8)))).toThrow(
      /expected a string, True, False or a tuple/,
    );
    expect(decode(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 'y'}", new Uint8Array(8)))).toThrow(
      `${SOURCE}: unexpected header key(s) x`,
    );
  });

  it('writer rejects mismatched data', () => {
    expect(() => encodeNpy({ dtype: '<f4', shape: [3], data: new Float64Array(3) })).toThrow(
      'npy: dtype <f4 needs a Float32Array, got Float64Array',
    );
    expect(() => encodeNpy({ dtype: '<i4', shape: [2, 2], data: new Int32Array(3) })).toThrow(
      'npy: shape [2, 2] has 4 elements but data has 3',
    );
  });
});
