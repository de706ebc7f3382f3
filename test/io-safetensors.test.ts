// safetensors: round trips of every dtype, deterministic layout, atomic writes, and one test per
// reader error with its exact message (corrupt inputs are real files sliced or with bytes flipped).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  type SafeTensor,
} from '../runtime/io/safetensors.js';
import { FAULT_WRITE_ENV } from '../runtime/io/atomic-write.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nincc-safetensors-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  delete process.env[FAULT_WRITE_ENV];
});

function sampleTensors(): Record<string, SafeTensor> {
  return {
    'conv1.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-8, -1e30]) },
    'bn.running_var': { dtype: 'F64', shape: [3], data: Float64Array.from([0.1, 0.2, Math.PI]) },
    step: { dtype: 'I64', shape: [], data: BigInt64Array.from([123456789012345n]) },
    'labels': { dtype: 'I32', shape: [4], data: Int32Array.from([0, 9, -1, 2147483647]) },
    mask: { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 2, 254, 255]) },
    half: { dtype: 'F16', shape: [1], data: Uint16Array.from([0x3c00]) },
    brain: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xbf80]) },
    small: { dtype: 'I8', shape: [2], data: Int8Array.from([-128, 127]) },
    shorts: { dtype: 'I16', shape: [1], data: Int16Array.from([-300]) },
    flags: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

/** Builds a file from a hand-written header, to reach errors the writer would never produce. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([head, json, data]);
}

const SOURCE = 'ckpt.safetensors';
const decode = (bytes: Uint8Array) => () => decodeSafetensors(bytes, SOURCE);

describe('safetensors round trip', () => {
  it('reads back every dtype, shape and the metadata', () => {
    const file = path.join(dir, 'all.safetensors');
    writeSafetensors(file, sampleTensors(), { epoch: '3', model: 'nin-cifar10' });
    const { tensors, metadata } = readSafetensors(file);
    expect(metadata).toEqual({ epoch: '3', model: 'nin-cifar10' });
    const expected = sampleTensors();
    expect([...tensors.keys()].sort()).toEqual(Object.keys(expected).sort());
    for (const [name, tensor] of Object.entries(expected)) {
      const got = tensors.get(name)!;
      expect(got.dtype, name).toBe(tensor.dtype);
      expect(got.shape, name).toEqual(tensor.shape);
      expect(got.data.constructor, name).toBe(tensor.data.constructor);
      expect([...got.data], name).toEqual([...tensor.data]);
    }
  });

  it('is deterministic: insertion order and Map vs object do not change the bytes', () => {
    const entries = Object.entries(sampleTensors());
    const a = encodeSafetensors(Object.fromEntries(entries), { b: '2', a: '1' });
    const b = encodeSafetensors(new Map(entries.reverse()), { a: '1', b: '2' });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });

  it('pads the header with spaces to 8 bytes and aligns every tensor to its element size', () => {
    const bytes = encodeSafetensors(sampleTensors(), { note: 'x' });
    const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const text = Buffer.from(bytes.subarray(8, 8 + headerLength)).toString('utf8');
    expect(text).toMatch(/^\{"__metadata__":\{"note":"x"\},.*\} *$/);
    const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const sizes: Record<string, number> = { F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      expect((8 + headerLength + entry.data_offsets[0]) % sizes[entry.dtype], name).toBe(0);
    }
  });

  it('writes no __metadata__ key when there is none, and reads it back as {}', () => {
    const bytes = encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
    expect(Buffer.from(bytes).toString('utf8')).not.toContain('__metadata__');
    expect(decodeSafetensors(bytes, SOURCE).metadata).toEqual({});
  });

  it('reads tensors out of a file whose header length is not a multiple of 8', () => {
    const data = new Uint8Array(Float32Array.of(1.5, -2.5).buffer);
    const bytes = craft({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data);
    expect([...decodeSafetensors(bytes, SOURCE).tensors.get('w')!.data]).toEqual([1.5, -2.5]);
  });
});

describe('safetensors writer errors', () => {
  const f32 = (data: Float32Array, shape: number[]): SafeTensor => ({ dtype: 'F32', shape, data });
  it('rejects data of the wrong typed array', () => {
    expect(() => encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: Float64Array.of(1) } })).toThrow(
      "safetensors tensor 'w': dtype F32 needs a Float32Array, got Float64Array",
    );
  });
  it('rejects a shape that does not match the element count', () => {
    expect(() => encodeSafetensors({ w: f32(new Float32Array(5), [2, 3]) })).toThrow(
      "safetensors tensor 'w': shape [2, 3] has 6 elements but data has 5",
    );
  });
  it('rejects the reserved name and non-string metadata', () => {
    expect(() => encodeSafetensors({ __metadata__: f32(new Float32Array(1), [1]) })).toThrow(/reserved for metadata/);
    expect(() => encodeSafetensors({}, { epoch: 3 as unknown as string })).toThrow(
      "safetensors metadata 'epoch' must be a string, got number",
    );
  });
});

describe('safetensors reader errors', () => {
  const real = encodeSafetensors(
    { a: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }, b: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) } },
    { k: 'v' },
  );
  const headerLength = Number(Buffer.from(real).readBigUInt64LE(0));
  const dataLength = real.length - 8 - headerLength; // 16 + 3

  it('names the file when reading from disk', () => {
    const file = path.join(dir, 'truncated.safetensors');
    fs.writeFileSync(file, real.subarray(0, real.length - 1));
    expect(() => readSafetensors(file)).toThrow(
      `${file}: tensor 'b': data_offsets [16, 19] run past the 18-byte data section (truncated?)`,
    );
  });

  it('a file shorter than the length prefix', () => {
    expect(decode(real.subarray(0, 5))).toThrow(`${SOURCE}: file is 5 bytes, too short for the 8-byte header length`);
  });

  it('a file cut inside the header', () => {
    expect(decode(real.subarray(0, 20))).toThrow(
      `${SOURCE}: header length ${headerLength} needs at least ${8 + headerLength} bytes but the file has 20 (truncated?)`,
    );
  });

  it('an absurd header length', () => {
    const bytes = Buffer.from(real);
    bytes.writeBigUInt64LE(1n << 40n, 0);
    expect(decode(bytes)).toThrow(
      `${SOURCE}: header length 1099511627776 exceeds the 100000000-byte limit (corrupt or not a safetensors file)`,
    );
  });

  it('a flipped first header byte', () => {
    const bytes = Buffer.from(real);
    bytes[8] ^= 0xff;
    expect(decode(bytes)).toThrow(`${SOURCE}: header is not valid UTF-8`);
    bytes[8] = 'x'.charCodeAt(0);
    expect(decode(bytes)).toThrow(`${SOURCE}: header does not start with '{' (not a safetensors file?)`);
  });

  it('a header that is not JSON, or not an object', () => {
    const bytes = Buffer.from(real);
    const quote = bytes.indexOf('"', 9);
    bytes[quote] = '!'.charCodeAt(0);
    expect(decode(bytes)).toThrow(new RegExp(`^${SOURCE}: header is not valid JSON: `));
    expect(decode(craft('{"a": 1} extra'))).toThrow(/header is not valid JSON/);
  });

  it('trailing bytes after the last tensor', () => {
    expect(decode(Buffer.concat([real, Buffer.from([0, 0])]))).toThrow(
      `${SOURCE}: data section is ${dataLength + 2} bytes but tensors cover only ${dataLength} (2 trailing bytes)`,
    );
  });

  it('an unknown dtype', () => {
    expect(decode(craft({ w: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)))).toThrow(
      `${SOURCE}: tensor 'w': unknown dtype "F8" (known: F64, I64, F32, I32, F16, BF16, I16, I8, U8, BOOL)`,
    );
  });

  it('a byte length that does not match shape × dtype size', () => {
    expect(decode(craft({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(20)))).toThrow(
      `${SOURCE}: tensor 'w': F32 [2, 3] needs 24 bytes but data_offsets [0, 20] span 20`,
    );
  });

  it('bad shapes and offsets', () => {
    expect(decode(craft({ w: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }))).toThrow(
      `${SOURCE}: tensor 'w': shape [-1] is not a list of non-negative integers`,
    );
    expect(decode(craft({ w: { dtype: 'U8', shape: [1], data_offsets: [1, 0] } }, new Uint8Array(1)))).toThrow(
      `${SOURCE}: tensor 'w': data_offsets [1,0] is not [begin, end] with 0 <= begin <= end`,
    );
    expect(decode(craft({ w: { dtype: 'U8', shape: [1] } }))).toThrow(
      `${SOURCE}: tensor 'w': data_offsets undefined is not [begin, end] with 0 <= begin <= end`,
    );
    expect(decode(craft({ w: [1, 2] }))).toThrow(`${SOURCE}: tensor 'w': entry is not an object`);
    expect(decode(craft({ w: { dtype: 'U8', shape: [0], data_offsets: [0, 0], extra: 1 } }))).toThrow(
      `${SOURCE}: tensor 'w': unexpected field(s) extra`,
    );
  });

  it('overlapping tensors', () => {
    const header = {
      a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
      b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] },
    };
    expect(decode(craft(header, new Uint8Array(6)))).toThrow(
      `${SOURCE}: tensor 'b' at [2, 6] overlaps tensor 'a' which ends at 4`,
    );
  });

  it('gaps between tensors or before the first', () => {
    const gap = {
      a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
      b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
    };
    expect(decode(craft(gap, new Uint8Array(6)))).toThrow(
      `${SOURCE}: gap of 2 bytes after tensor 'a' (tensor 'b' starts at 4, expected 2)`,
    );
    expect(decode(craft({ a: { dtype: 'U8', shape: [1], data_offsets: [1, 2] } }, new Uint8Array(2)))).toThrow(
      `${SOURCE}: gap of 1 bytes at the start of the data section (tensor 'a' starts at 1, expected 0)`,
    );
  });

  it('bad __metadata__', () => {
    expect(decode(craft({ __metadata__: { epoch: 3 } }))).toThrow(`${SOURCE}: __metadata__['epoch'] must be a string, got 3`);
    expect(decode(craft({ __metadata__: ['x'] }))).toThrow(`${SOURCE}: __metadata__ must be an object of strings`);
  });
});

describe('safetensors atomic write', () => {
  it('a simulated full disk leaves the previous checkpoint byte-identical and no tmp file', () => {
    const file = path.join(dir, 'ckpt.safetensors');
    writeSafetensors(file, sampleTensors(), { epoch: '1' });
    const before = fs.readFileSync(file);
    process.env[FAULT_WRITE_ENV] = 'ENOSPC';
    expect(() => writeSafetensors(file, { w: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) } }, { epoch: '2' })).toThrow(
      /^ENOSPC: no space left on device/,
    );
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((name) => name.startsWith('ckpt.safetensors.tmp-'))).toEqual([]);
    delete process.env[FAULT_WRITE_ENV];
    expect(readSafetensors(file).metadata).toEqual({ epoch: '1' });
  });
});
