// Torch7 files built to exhaust the reader (issue #21, finding 3): nesting far past the JS stack and
// nn.Sequentials that contain themselves. Each must end in exit 1 and a message naming the file and place.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findNetwork } from '../runtime/t7/nn-modules.js';
import { MAX_NESTING, readT7 } from '../runtime/t7/reader.js';
import { T7Table } from '../runtime/t7/values.js';
import { importT7 } from './t7/run-import.js';
import { list, object, writeT7 } from './t7/writer.js';

const scratch = mkdtempSync(join(tmpdir(), 'nincc-t7-hostile-'));
const int32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  return b;
};

/** `{ {1} }` nested `depth` times, written by hand: the test writer itself recurses per level. */
function nestedTables(depth: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 1; i <= depth; i++) parts.push(int32(3), int32(i), int32(1), int32(1), Buffer.from(new Float64Array([1]).buffer));
  parts.push(int32(0)); // the innermost value is nil
  return Buffer.concat(parts);
}

/** A function whose upvalues are a function whose upvalues are …, `depth` times (tag 6 has no index). */
function nestedFunctions(depth: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < depth; i++) parts.push(int32(6), int32(0));
  parts.push(int32(0));
  return Buffer.concat(parts);
}

describe('deep Torch7 values', () => {
  it(`tables nested ${MAX_NESTING} deep still read; one level more is an error at its byte offset`, () => {
    // MAX_NESTING reads: the root and MAX_NESTING - 1 tables inside it, then the nil at the bottom is one more.
    expect(readT7(nestedTables(MAX_NESTING - 1), 'ok.t7')).toBeInstanceOf(T7Table);
    // Each level is 24 bytes (tag, index, count, key tag, key); the key of the last table is one read too deep.
    const at = (MAX_NESTING - 1) * 24 + 12;
    expect(() => readT7(nestedTables(MAX_NESTING), 'deep.t7')).toThrow(
      `deep.t7: values nested deeper than ${MAX_NESTING} levels at byte ${at} while reading [1][1][1][1]…(${MAX_NESTING - 8} more)…[1][1][1][key 1]`,
    );
  });

  it('a chain of 100,000 tables or functions is exit 1 naming the file and the byte, not a stack overflow', () => {
    for (const [name, bytes, at] of [
      ['tables', nestedTables(100_000), (MAX_NESTING - 1) * 24 + 12],
      ['functions', nestedFunctions(100_000), MAX_NESTING * 8],
    ] as const) {
      const file = join(scratch, `${name}.t7`);
      writeFileSync(file, bytes);
      const r = importT7([file, '--print']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^nincc import-t7: ${file}: values nested deeper than ${MAX_NESTING} levels at byte ${at} while reading `));
      expect(r.stderr).not.toMatch(/call stack/);
    }
  });
});

describe('nn.Sequential that contains itself', () => {
  const relu = () => object('nn.ReLU', { threshold: 0, val: 0, inplace: false });

  it('directly: its own modules list holds it', () => {
    const net = object('nn.Sequential', {});
    net.fields.entries.set('modules', list([relu(), net]));
    expect(() => findNetwork(readT7(writeT7(net), 'self.t7'))).toThrow('module (2) is an nn.Sequential that contains itself: it is the network, which encloses it');
  });

  it('through another container, and through the CLI', () => {
    const outer = object('nn.Sequential', {});
    const inner = object('nn.Sequential', {});
    inner.fields.entries.set('modules', list([relu(), outer]));
    outer.fields.entries.set('modules', list([relu(), relu(), inner]));
    const file = join(scratch, 'cycle.t7');
    writeFileSync(file, writeT7(outer));
    const r = importT7([file, '--print']);
    expect([r.code, r.stdout, r.stderr]).toEqual([1, '', `nincc import-t7: ${file}: module (3)(2) is an nn.Sequential that contains itself: it is the network, which encloses it\n`]);
  });

  it('a Sequential shared twice side by side is not a cycle', () => {
    const shared = object('nn.Sequential', {});
    shared.fields.entries.set('modules', list([relu()]));
    const net = object('nn.Sequential', { modules: list([shared, shared]) });
    expect(findNetwork(readT7(writeT7(net), 'shared.t7')).modules.map((m) => m.position)).toEqual([[1, 1], [2, 1]]);
  });
});
