// build() runs the compiler and g++ in a worker thread: the caller's event loop keeps turning
// (was: buildArtifact blocked it for seconds), and spec errors come back as a SpecError.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build, ErrorCodes, SpecError } from '../runtime/index.js';
import { withEnv } from './reference/env.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-build-async-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('build()', () => {
  it('keeps the event loop turning while g++ compiles', async () => {
    // A model name no earlier run used and a cache of its own, so the kernel library is really compiled
    // (the kernels' source does not name the model: a shared cache that an earlier run filled hits).
    const name = `fresh_${process.pid}_${Date.now()}`;
    const source = `model ${name} {\n  input 2x8x8\n  conv(2, 4, 3, 3) bn(4) relu\n  view(-1) linear(144, 3) logsoftmax\n}\n`;
    let last = performance.now();
    let longestGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
    }, 20);
    try {
      const r = await withEnv({ NINCC_CACHE_DIR: join(work, 'cache') }, () => build(`${name}.model`, { source, outDir: join(work, name), maxBatch: 2 }));
      expect(r.cached).toBe(false);
      expect(r.seconds).toBeGreaterThan(0.3);
      // Loose bounds: other test files share the two cores. A blocking build ticks once at most,
      // after a gap as long as the build.
      expect(ticks).toBeGreaterThan(5);
      expect(longestGap).toBeLessThan((r.seconds * 1000) / 2);
    } finally {
      clearInterval(timer);
    }
  });

  it('rejects a spec with errors with a SpecError carrying the diagnostics and their rendering', async () => {
    const e = await build('bad.model', { source: 'model bad {\n  input 1x4x4\n  relux\n}\n', outDir: join(work, 'bad') }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SpecError);
    expect((e as SpecError).code).toBe(ErrorCodes.spec);
    expect((e as SpecError).diagnostics.map((d) => d.code)).toEqual(['E010']);
    expect((e as SpecError).report).toContain("bad.model:3:3: error E010: unknown layer 'relux' (did you mean 'relu'?)");
  });
});
