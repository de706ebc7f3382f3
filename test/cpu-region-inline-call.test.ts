// The cpu inference call on the JS thread (schedule/cpu-region-inline-call.ts, issue #19): which batches the
// compiler lets run inline (plan.json programs.infer inlineMaxBatch) and report.txt's line; that infer() takes
// runInline for those and the worker-thread run() for larger ones; and that both give the same bits (the same
// program on the same images: only the calling thread differs).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { INLINE_CALL_MAX_MACS, inlineCallMaxBatch, inlineCallReport } from '../compiler/schedule/cpu-region-inline-call.js';
import type { NativeModel } from '../runtime/native.js';
import type { Model } from '../runtime/model.js';
import { buildSpec, loadBuilt, randomImages, removeBuilds, rng, type Built } from './reference/artifacts.js';
import { API_CALLS } from './reference/specs.js';

const plan = (file: string, ablate: boolean) => {
  const m = compileSpec(readFileSync(file, 'utf8'), file).model;
  if (!m) throw new Error(`${file} did not compile`);
  return compileModel(m, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [], ...(ablate ? { ablations: { inlineCall: false } } : {}) }).plan;
};

describe('inlineCallMaxBatch and plan.json', () => {
  it('nin-fashion (12.1 Mi multiply-adds an image) runs every batch up to its 16 inline; NIN and the ablation none', () => {
    const nf = plan('models/nin-fashion.model', false);
    expect(nf.programs.infer.inlineMaxBatch).toBe(16);
    expect(Object.entries(nf.programs).filter(([, p]) => p.inlineMaxBatch !== undefined).map(([name]) => name)).toEqual(['infer']);
    expect(plan('models/nin-fashion.model', true).programs.infer.inlineMaxBatch).toBeUndefined();
    expect(plan('models/nin.model', false).programs.infer.inlineMaxBatch).toBeUndefined();
  });

  it('is the budget over the image\'s work, at most the artifact\'s batch', () => {
    expect(inlineCallMaxBatch(INLINE_CALL_MAX_MACS / 4, 16, true)).toBe(4);
    expect(inlineCallMaxBatch(INLINE_CALL_MAX_MACS / 4 + 1, 16, true)).toBe(3);
    expect(inlineCallMaxBatch(1000, 16, true)).toBe(16);
    expect(inlineCallMaxBatch(1000, 16, false)).toBe(0);
    expect(inlineCallMaxBatch(0, 16, true)).toBe(0);
  });

  it('report.txt says which calls and why', () => {
    expect(inlineCallReport(12.1 * 2 ** 20, 2)[1]).toMatch(/^ {2}a call of at most 2 images runs on the JS thread .*: 12\.1 Mi multiply-adds an image, at most 256 Mi a call inline\./);
    expect(inlineCallReport(700 * 2 ** 20, undefined)[1]).toBe('  every call runs on a worker thread: 700.0 Mi multiply-adds an image is over the 256 Mi a call may do inline.');
    expect(inlineCallReport(12.1 * 2 ** 20, undefined)[1]).toBe('  every call runs on a worker thread: the ablation inlineCall is off.');
  });
});

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('infer() on the JS thread', () => {
  let built: Built;
  let m: Model;
  beforeAll(async () => {
    built = buildSpec('calls', API_CALLS, 4); // the same kernels as test/api-calls.test.ts: built once
    m = await loadBuilt(built, 3);
  });
  afterAll(async () => {
    await m?.dispose();
    removeBuilds();
  });

  it('runs batches up to inlineMaxBatch inline and larger ones on the worker, with the same bits as run()', async () => {
    // A tiny model: every batch inline. Lowered to 3 on the loaded plan (what model.ts reads), so batch 4 takes the worker.
    expect(m.plan.programs?.infer?.inlineMaxBatch).toBe(4);
    (m.plan.programs!.infer as { inlineMaxBatch: number }).inlineMaxBatch = 3;
    const native = (m as unknown as { native: NativeModel }).native;
    const inline = vi.spyOn(native, 'runInline');
    const onWorker = vi.spyOn(native, 'run');
    const next = rng(7);
    await m.infer(randomImages(built.model, 1, next)); // the first call also folds the weights (prepare_infer, on the worker)
    onWorker.mockClear();
    inline.mockClear();
    for (const n of [1, 3, 4]) {
      const x = randomImages(built.model, n, next);
      const got = await m.infer(x);
      expect([inline.mock.calls.length, onWorker.mock.calls.length], `batch ${n}`).toEqual(n <= 3 ? [1, 0] : [0, 1]);
      // The same program on the other thread: the same bits.
      native.setInput('infer', 'images', x, n);
      if (n <= 3) await native.run('infer', n, {}, 0);
      else native.runInline('infer', n, {}, 0);
      expect(bits(native.getOutput('infer', 'output', n) as Float32Array)).toEqual(bits(got));
      expect(got.every(Number.isFinite)).toBe(true);
      inline.mockClear();
      onWorker.mockClear();
    }
    inline.mockRestore();
    onWorker.mockRestore();
  });

  it('a failing inline run throws into infer()\'s promise and the model goes on', async () => {
    const native = (m as unknown as { native: NativeModel }).native;
    expect(() => native.runInline('no_such_program', 1, {}, 0)).toThrow(/no_such_program/);
    expect((await m.infer(randomImages(built.model, 2, rng(9)))).length).toBe(10);
  });
});
