// Fuzz: thousands of corrupted .t7, safetensors and IDX files; every reader ends in a value or an error that
// names the file and where it went wrong — never a crash, a hang, or an anonymous exception.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeIdx, encodeIdx } from '../runtime/data/idx.js';
import { uniformStream } from '../runtime/init.js';
import { decodeSafetensors, encodeSafetensors } from '../runtime/io/safetensors.js';
import { readT7 } from '../runtime/t7/reader.js';
import { root } from './cli-run.js';

type Mutation = (bytes: Uint8Array, rand: () => number) => Uint8Array;
const pick = (rand: () => number, n: number) => Math.floor(rand() * n);

const mutations: Record<string, Mutation> = {
  truncate: (b, r) => b.slice(0, pick(r, b.length)),
  flip: (b, r) => {
    const x = b.slice();
    for (let i = 0, k = 1 + pick(r, 4); i < k; i++) x[pick(r, x.length)] ^= 1 << pick(r, 8);
    return x;
  },
  overwrite: (b, r) => {
    const x = b.slice();
    for (let i = 0, k = 1 + pick(r, 4); i < k; i++) x[pick(r, x.length)] = pick(r, 256);
    return x;
  },
  insert: (b, r) => {
    const at = pick(r, b.length + 1);
    const extra = Uint8Array.from({ length: 1 + pick(r, 8) }, () => pick(r, 256));
    return Uint8Array.from([...b.subarray(0, at), ...extra, ...b.subarray(at)]);
  },
  duplicateChunk: (b, r) => {
    const at = pick(r, b.length);
    const chunk = b.subarray(at, at + 1 + pick(r, 16));
    return Uint8Array.from([...b.subarray(0, at), ...chunk, ...b.subarray(at)]);
  },
};

// An error says where: a byte offset, a field path, a tensor, or what part of the file failed.
const SAYS_WHERE = /byte|offset|position|while reading|tensor '|header|data section|gzip|IDX|magic|dims|labels|images|dtype/i;

function fuzz(name: string, original: Uint8Array, decode: (b: Uint8Array) => unknown, count: number, seed: number) {
  const rand = uniformStream(seed);
  const kinds = Object.keys(mutations);
  let failures = 0;
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length];
    const bytes = mutations[kind](original, rand);
    try {
      decode(bytes);
    } catch (e) {
      failures++;
      if (!(e instanceof Error)) throw new Error(`${name} #${i} (${kind}): threw a non-Error ${String(e)}`);
      if (!e.message.startsWith(name) || !SAYS_WHERE.test(e.message)) {
        throw new Error(`${name} #${i} (${kind}): unhelpful error ${e.constructor.name}: ${e.message}`);
      }
    }
  }
  return failures;
}

describe('fuzzing the readers with corrupted files', () => {
  it('2,500 corrupted .t7 fixtures', () => {
    const dir = join(root, 'test/data/t7');
    const files = readdirSync(dir).filter((f) => f.endsWith('.t7'));
    let failures = 0;
    files.forEach((f, k) => {
      const bytes = readFileSync(join(dir, f));
      failures += fuzz(f, bytes, (b) => readT7(b, f), Math.ceil(2500 / files.length), 100 + k);
    });
    expect(failures).toBeGreaterThan(1000); // most variants are broken, and were reported as such
  });

  it('1,500 corrupted safetensors checkpoints', () => {
    const bytes = encodeSafetensors(
      new Map([
        ['conv1.weight', { dtype: 'F32' as const, shape: [2, 1, 3, 3], data: new Float32Array(18).map((_, i) => i) }],
        ['conv1.bias', { dtype: 'F32' as const, shape: [2], data: new Float32Array(2) }],
        ['steps', { dtype: 'I32' as const, shape: [1], data: new Int32Array([7]) }],
      ]),
      { format: 'nincc-checkpoint-1', epoch: '3' },
    );
    expect(fuzz('ck.safetensors', bytes, (b) => decodeSafetensors(b, 'ck.safetensors'), 1500, 7)).toBeGreaterThan(700);
  });

  it('1,500 corrupted IDX files, gzipped and raw', () => {
    const gz = readFileSync(join(root, 'test/data/fashion-mnist-mini/t10k-labels-idx1-ubyte.gz'));
    const raw = encodeIdx({ dims: [5, 3, 2], data: Uint8Array.from({ length: 30 }, (_, i) => i) }, { gzip: false });
    let failures = fuzz('labels.gz', gz, (b) => decodeIdx(b, 'labels.gz'), 750, 11);
    failures += fuzz('raw.idx', raw, (b) => decodeIdx(b, 'raw.idx'), 750, 13);
    expect(failures).toBeGreaterThan(700);
  });
});
