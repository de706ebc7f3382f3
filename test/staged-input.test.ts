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
import { evaluateSource, train, type EpochRecord, type TrainEvent } from '../runtime/trainer.js';
import { inMemoryEvalSource, inMemoryTrainSource, type Batch, type EvalSource, type LabelledImages, type TrainSource } from '../runtime/dataset.js';

const images = (n: number, v: number) => new Float32Array(n * 72).map((_, i) => v + ((i * 7) % 11) * 0.03);
const labels = (n: number, k: number) => Int32Array.from({ length: n }, (_, i) => (i + k) % 5);

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

/** The batches as they come, each also pushed on `seen` (a caller keeps the array the loop staged last). */
async function* recording(batches: AsyncIterable<Batch>, seen: Batch[]): AsyncGenerator<Batch> {
  for await (const b of batches) {
    seen.push(b);
    yield b;
  }
}

const labelledSet = (name: string, count: number, v: number): LabelledImages => ({ name, images: images(count, v), labels: labels(count, 1), count, shape: [2, 6, 6], classes: 5 });

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

  // Step 1's event ends the epoch: a throw from it at once, with batch 2 staged (with prefetch); a stop
  // request set in it after step 2 (read when a step is queued), with batch 3 staged. The model then goes
  // on with a step on that same array, given new contents, and on another array; both must match a model
  // that trained the same steps without prefetch.
  for (const ending of ['throws', 'stops'] as const) {
    it(`a training epoch that ${ending} with its next batch staged leaves nothing staged`, async () => {
      const run = async (prefetch: boolean) => {
        const m = await fresh();
        const inner = inMemoryTrainSource(labelledSet('train', 12, 0.2)); // each run its own arrays: the test rewrites one
        const yielded: Batch[] = [];
        const source: TrainSource = { ...inner, batches: (...args) => recording(inner.batches(...args), yielded) };
        const stop = { requested: false };
        const onEvent = (e: TrainEvent) => {
          if (e.kind !== 'step' || e.step !== 1) return;
          if (ending === 'throws') throw new Error('thrown by the test');
          stop.requested = true;
        };
        const o = { epochs: 1, batch: 4, regime: [{ from: 1, to: 1, lr: 0.1, wd: 5e-4 }], momentum: 0.5, seed: 5, runDir: join(work, `${ending}-${prefetch}`), resume: false, prefetch, test: { every: 0 }, onEvent, stop };
        const trained = train(m, source, labelledSet('test', 4, 0.4), o);
        if (ending === 'throws') await expect(trained).rejects.toThrow('thrown by the test');
        else expect((await trained).stopped?.step).toBe(2);
        const last = yielded[yielded.length - 1].images as Float32Array;
        last.set(images(4, 0.9));
        const same = await m.trainStep(last, labels(4, 3));
        const other = await m.trainStep(images(4, 0.7), labels(4, 2));
        return { yielded: yielded.length, same, other, params: m.readSpace('param', 0, m.info.spaces.param), left: await m.discardPrefetched() };
      };
      const plain = await run(false);
      const staged = await run(true);
      const trainedSteps = ending === 'throws' ? 1 : 2;
      expect([plain.yielded, staged.yielded]).toEqual([trainedSteps, trainedSteps + 1]); // the next batch was fetched and staged
      expect(staged.same).toEqual(plain.same);
      expect(staged.other).toEqual(plain.other);
      expect(staged.params).toEqual(plain.params);
      expect(staged.left).toBe(0);
    });
  }

  it('an evaluation that throws with its next batch staged leaves nothing staged; dispose after it', async () => {
    const m = await fresh();
    const reference = await fresh();
    const inner = inMemoryEvalSource(labelledSet('test', 12, 0.4));
    const yielded: Batch[] = [];
    const source: EvalSource = { ...inner, batches: (n) => recording(inner.batches(n), yielded) };
    const onBatch = (done: number) => {
      if (done === 4) throw new Error('thrown by the test');
    };
    await expect(evaluateSource(m, source, onBatch, true)).rejects.toThrow('thrown by the test');
    expect(yielded.length).toBe(2); // batch 2 staged when the first batch's tally threw
    const last = yielded[1].images as Float32Array;
    last.set(images(4, 0.9));
    expect(await m.infer(last)).toEqual(await reference.infer(images(4, 0.9)));
    expect(await m.infer(images(4, 0.8))).toEqual(await reference.infer(images(4, 0.8)));
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
