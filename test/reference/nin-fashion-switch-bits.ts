// The FULL A/B of a cpu inference switch on nin-fashion: two builds (max batch 16), one with the switch off, whose
// inference gives the same bits at batch 1, 3 and 16 on 2 threads (the caller imports ./two-threads.js).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Ablations } from '../../compiler/ablations.js';
import { buildSpec, loadBuilt, randomImages, rng } from './artifacts.js';
import { root } from '../cli-run.js';

export async function expectNinFashionSameBits(name: string, off: Ablations): Promise<void> {
  const source = readFileSync(join(root, 'models/nin-fashion.model'), 'utf8');
  const a = buildSpec(`${name}-off`, source, 16, off);
  const b = buildSpec(`${name}-on`, source, 16);
  const [ma, mb] = [await loadBuilt(a, 5), await loadBuilt(b, 5)];
  try {
    for (const n of [1, 3, 16]) {
      const x = randomImages(a.model, n, rng(n));
      const [ya, yb] = [await ma.infer(x), await mb.infer(x)];
      expect(yb.every(Number.isFinite)).toBe(true);
      expect(Array.from(new Uint32Array(yb.buffer, yb.byteOffset, yb.length)), `batch ${n}`).toEqual(Array.from(new Uint32Array(ya.buffer, ya.byteOffset, ya.length)));
    }
  } finally {
    await ma.dispose();
    await mb.dispose();
  }
}
