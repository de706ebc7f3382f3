// test/slow-first-sequencer.ts: the files it runs first exist (a renamed one would drop silently back into vitest's
// own order), and the order it gives.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SLOW_FIRST, slowFirst } from './slow-first-sequencer.js';

describe('slow-first file order', () => {
  it('names only test files that exist, each once', () => {
    for (const file of SLOW_FIRST) expect(existsSync(file), file).toBe(true);
    expect(new Set(SLOW_FIRST).size).toBe(SLOW_FIRST.length);
  });

  it('puts the listed files first in the listed order, the rest after in their own order', () => {
    const paths = ['test/a.test.ts', 'test/emu-infer.test.ts', 'test/b.test.ts', 'test/emu-train.test.ts', 'test/c.test.ts'];
    expect(slowFirst(paths).map((i) => paths[i])).toEqual(['test/emu-train.test.ts', 'test/emu-infer.test.ts', 'test/a.test.ts', 'test/b.test.ts', 'test/c.test.ts']);
  });
});
