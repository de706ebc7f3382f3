// Staged input (issue #20, docs/design.md#staged-input): Model.prefetch hands over the next training batch
// while a step runs, and the trainer does so on cuda. Here on cpu, whose runtime keeps a staged batch on the
// host (the cuda protocol itself is runtime/core/tests/cuda_device_test.cc `staged`): same steps, same results;
// and a loop that throws or stops with its next batch staged leaves nothing staged (Model.discardPrefetched).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildSpec, type Built } from './reference/artifacts.js';
import { API_CALLS } from './reference/specs.js';
import { ErrorCodes, InvalidArgumentError, load, Model } from '../runtime/index.js';
import { train, type EpochRecord } from '../runtime/trainer.js';
import { inMemoryEvalSource, type Batch, type EvalSource } from '../runtime/dataset.js';
import { expectEvaluationLeftNothing, expectNothingLeftStaged, images, labelledSet, labels, stepsAfterAnEndedEpoch } from './reference/staged-loops.js';

/** The same batches, each copied into one pair of buffers the next batch overwrites. */
function reusingBuffers(source: EvalSource): EvalSource {
  return {
    ...source,
    async *batches(batch: number): AsyncGenerator<Batch> {
      let images = new Float32Array(0);
      const labels = new Int32Array(batch);
      for await (const b of source.batches(batch)) {
        if (images.length < b.images.length) images = new Float32Array(b.images.length);
        images.set(b.images);
        labels.set(b.labels);
        yield { images: images.subarray(0, b.images.length), labels: labels.subarray(0, b.count), count: b.count };
      }
    },
  };
}

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

  it('an inference batch prefetched while the one before it runs scores as one set before it', async () => {
    const m = await fresh();
    const batches = [0, 1, 2].map((k) => images(k === 2 ? 3 : 4, 0.2 * k));
    const plain: Float32Array[] = [];
    for (const x of batches) plain.push(await m.infer(x));
    const staged: Float32Array[] = [];
    m.prefetch(batches[0]);
    for (let k = 0; k < batches.length; k++) {
      const inferring = m.infer(batches[k]);
      if (k + 1 < batches.length) m.prefetch(batches[k + 1]);
      staged.push(await inferring);
    }
    expect(staged).toEqual(plain);
    m.prefetch(batches[0]);
    expect(String(await m.infer(batches[1]).catch((e: unknown) => e))).toContain('an inference got other images than the batch prefetch() staged first (1 staged)');
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
    const trainSet = labelledSet('train', 11, 0.2); // a short last batch too
    // As the ImageNet sources do, the test source yields every batch in the same buffers.
    const testSet = reusingBuffers(inMemoryEvalSource(labelledSet('test', 6, 0.4)));
    const prefetched = { training: 0, test: 0 };
    const run = async (prefetch: boolean): Promise<EpochRecord[]> => {
      const m = await fresh();
      vi.spyOn(m, 'prefetch').mockImplementation(function (this: Model, ...args: Parameters<Model['prefetch']>) {
        prefetched[args[1] ? 'training' : 'test']++;
        return Model.prototype.prefetch.apply(this, args);
      });
      const o = { epochs: 2, batch: 4, regime: [{ from: 1, to: 2, lr: 0.1, wd: 5e-4 }], momentum: 0.5, seed: 5, runDir: join(work, String(prefetch)), resume: false, prefetch };
      const r = await train(m, trainSet, testSet, o);
      return r.records.map((e) => ({ ...e, imagesPerSecond: 0, seconds: 0, evalSeconds: 0 }));
    };
    const without = await run(false);
    expect(prefetched).toEqual({ training: 0, test: 0 });
    expect(await run(true)).toEqual(without);
    // Each batch handed over before its step: 3 training steps and 2 test batches (6 images) in each of 2 epochs.
    expect(prefetched).toEqual({ training: 6, test: 4 });
    expect(without.length).toBe(2);
  });

  // The model goes on after a loop that ended with its next batch staged: its next calls, on the array
  // staged (given new contents) and on another, must match a model that ran the same without prefetch.
  for (const ending of ['throws', 'stops'] as const) {
    it(`a training epoch that ${ending} with its next batch staged leaves nothing staged`, async () => {
      const plain = await stepsAfterAnEndedEpoch(await fresh(), ending, false, work);
      const staged = await stepsAfterAnEndedEpoch(await fresh(), ending, true, work);
      expectNothingLeftStaged(plain, staged, ending);
    });
  }

  it('an evaluation that throws with its next batch staged leaves nothing staged; dispose after it', async () => {
    const m = await fresh();
    await expectEvaluationLeftNothing(m, await fresh());
    await m.dispose();
    expect(String(await m.infer(images(4, 0.8)).catch((e: unknown) => e))).toContain('infer: this model was disposed');
  });

  it('discardPrefetched drops what the calls queued before it did not take, and refuses a prefetch meanwhile', async () => {
    const m = await fresh();
    const reference = await fresh();
    const [a, b, c] = [0.1, 0.5, 0.9].map((v) => images(4, v));
    m.prefetch(a);
    m.prefetch(b);
    const first = m.infer(a); // queued before the discard: takes its staged batch
    const discarding = m.discardPrefetched();
    expect(() => m.prefetch(c)).toThrow(expect.objectContaining({ code: ErrorCodes.busy, message: expect.stringContaining('a discardPrefetched() call is queued') }));
    expect(await first).toEqual(await reference.infer(a));
    expect(await discarding).toBe(1); // b
    b.set(c);
    expect(await m.infer(b)).toEqual(await reference.infer(c)); // b's new contents, not the dropped batch
    m.prefetch(c); // allowed again, and the next inference on c takes c, not a dropped batch
    expect(await m.infer(c)).toEqual(await reference.infer(c));
    m.prefetch(a);
    expect(await m.discardPrefetched()).toBe(1);
  });
});
