// Staged input (issue #20, docs/design.md#staged-input): Model.prefetch hands over the next training batch
// while a step runs, and the trainer does so on cuda. Here on cpu, whose runtime keeps a staged batch on the
// host (the cuda protocol itself is runtime/core/tests/cuda_device_test.cc `staged`): same steps, same results.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildSpec, type Built } from './reference/artifacts.js';
import { API_CALLS } from './reference/specs.js';
import { InvalidArgumentError, load, Model } from '../runtime/index.js';
import { train, type EpochRecord } from '../runtime/trainer.js';
import type { LabelledImages } from '../runtime/dataset.js';

const images = (n: number, v: number) => new Float32Array(n * 72).map((_, i) => v + ((i * 7) % 11) * 0.03);
const labels = (n: number, k: number) => Int32Array.from({ length: n }, (_, i) => (i + k) % 5);

describe('staged input (prefetch)', () => {
  let built: Built;
  const models: Model[] = [];
  let work: string;
  const fresh = async () => {
    const m = await load(built.dir, { seed: 3 });
    models.push(m);
    return m;
  };
  beforeAll(() => {
    built = buildSpec('calls', API_CALLS, 4) // the same kernels as test/api-calls.test.ts: built once;
    work = mkdtempSync(join(tmpdir(), 'nincc-staged-'));
  });
  afterAll(async () => {
    for (const m of models) await m.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a batch prefetched while the step before it runs trains exactly as one set before its step', async () => {
    const batches = [0, 1, 2, 3].map((k) => ({ x: images(4, 0.1 * k), y: labels(4, k) }));
    const plain = await fresh();
    const staged = await fresh();
    const plainLosses: number[] = [];
    for (const b of batches) plainLosses.push((await plain.trainStep(b.x, b.y)).loss);
    const stagedLosses: number[] = [];
    staged.prefetch(batches[0].x, batches[0].y);
    for (let k = 0; k < batches.length; k++) {
      const stepping = staged.trainStep(batches[k].x, batches[k].y);
      if (k + 1 < batches.length) staged.prefetch(batches[k + 1].x, batches[k + 1].y); // while step k is queued or running
      stagedLosses.push((await stepping).loss);
    }
    expect(stagedLosses).toEqual(plainLosses);
    expect(staged.readSpace('param', 0, 40)).toEqual(plain.readSpace('param', 0, 40));
  });

  it('refuses a step on other images than the batch staged first, and a third staged batch', async () => {
    const m = await fresh();
    m.prefetch(images(4, 0.2), labels(4, 0));
    const other = await m.trainStep(images(4, 0.3), labels(4, 1)).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(InvalidArgumentError);
    expect(String(other)).toContain('a training step got other images than the batch prefetch() staged first (1 staged)');
    m.prefetch(images(4, 0.4), labels(4, 2));
    expect(() => m.prefetch(images(4, 0.5), labels(4, 3))).toThrow('stageInputs("train_forward_backward"): 2 batches are staged and not yet run; run one first');
    expect(() => m.prefetch(images(3, 0.5), labels(4, 3))).toThrow();
  });

  it('the trainer with prefetch gives the epoch records it gives without', async () => {
    const set = (name: string, count: number, v: number): LabelledImages => ({ name, images: images(count, v), labels: labels(count, 1), count, shape: [2, 6, 6], classes: 5 });
    const trainSet = set('train', 11, 0.2); // a short last batch too
    const testSet = set('test', 6, 0.4);
    let prefetched = 0;
    const run = async (prefetch: boolean): Promise<EpochRecord[]> => {
      const m = await fresh();
      vi.spyOn(m, 'prefetch').mockImplementation(function (this: Model, ...args: Parameters<Model['prefetch']>) {
        prefetched++;
        return Model.prototype.prefetch.apply(this, args);
      });
      const o = { epochs: 2, batch: 4, regime: [{ from: 1, to: 2, lr: 0.1, wd: 5e-4 }], momentum: 0.5, seed: 5, runDir: join(work, String(prefetch)), resume: false, prefetch };
      const r = await train(m, trainSet, testSet, o);
      return r.records.map((e) => ({ ...e, imagesPerSecond: 0, seconds: 0, evalSeconds: 0 }));
    };
    const without = await run(false);
    expect(prefetched).toBe(0);
    expect(await run(true)).toEqual(without);
    expect(prefetched).toBe(6); // 3 steps in each of 2 epochs, each batch handed over before its step
    expect(without.length).toBe(2);
  });
});
