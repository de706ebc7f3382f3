// Training and evaluation loops that end with their next batch staged (docs/design.md#staged-input), then a
// model that goes on: shared by test/staged-input.test.ts (cpu) and test/gpu/cuda-staged-input.test.ts, on
// the API_CALLS spec (2×6×6 images, 5 classes, batch 4).
import { join } from 'node:path';
import { expect } from 'vitest';
import { inMemoryEvalSource, inMemoryTrainSource, type Batch, type EvalSource, type LabelledImages, type TrainSource } from '../../runtime/dataset.js';
import type { Model } from '../../runtime/model.js';
import { evaluateSource, train, type TrainEvent } from '../../runtime/trainer.js';

export const images = (n: number, v: number) => new Float32Array(n * 72).map((_, i) => v + ((i * 7) % 11) * 0.03);
export const labels = (n: number, k: number) => Int32Array.from({ length: n }, (_, i) => (i + k) % 5);
export const labelledSet = (name: string, count: number, v: number): LabelledImages => ({ name, images: images(count, v), labels: labels(count, 1), count, shape: [2, 6, 6], classes: 5 });

/** The batches as they come, each also pushed on `seen` (a caller keeps the array the loop staged last). */
async function* recording(batches: AsyncIterable<Batch>, seen: Batch[]): AsyncGenerator<Batch> {
  for await (const b of batches) {
    seen.push(b);
    yield b;
  }
}

/** What a model did after a loop ended: the batches the loop fetched, and the model's next calls. */
export interface AfterTheLoop<R> {
  readonly fetched: number;
  /** On the array of the batch fetched last (the one staged, with prefetch), given new contents. */
  readonly sameArray: R;
  readonly otherArray: R;
}

/**
 * One epoch of 3 steps that step 1's event ends: a throw from it at once (batch 2 staged, with prefetch), or
 * a stop request set in it, read when step 2 is queued (batch 3 staged). Then a training step on the last
 * fetched array with new contents, one on another array, the parameters, and what is left staged.
 */
export async function stepsAfterAnEndedEpoch(m: Model, ending: 'throws' | 'stops', prefetch: boolean, runDir: string) {
  const inner = inMemoryTrainSource(labelledSet('train', 12, 0.2)); // each run its own arrays: one is rewritten
  const yielded: Batch[] = [];
  const source: TrainSource = { ...inner, batches: (...args) => recording(inner.batches(...args), yielded) };
  const stop = { requested: false };
  const onEvent = (e: TrainEvent) => {
    if (e.kind !== 'step' || e.step !== 1) return;
    if (ending === 'throws') throw new Error('thrown by the test');
    stop.requested = true;
  };
  const o = { epochs: 1, batch: 4, regime: [{ from: 1, to: 1, lr: 0.1, wd: 5e-4 }], momentum: 0.5, seed: 5, runDir: join(runDir, `${ending}-${prefetch}`), resume: false, prefetch, test: { every: 0 }, onEvent, stop };
  const ended = await train(m, source, labelledSet('test', 4, 0.4), o).then(
    (r) => `stopped at step ${r.stopped?.step}`,
    (e: unknown) => String(e),
  );
  const last = yielded[yielded.length - 1].images as Float32Array;
  last.set(images(4, 0.9));
  const after: AfterTheLoop<{ loss: number; output: Float32Array }> = {
    fetched: yielded.length,
    sameArray: await m.trainStep(last, labels(4, 3)),
    otherArray: await m.trainStep(images(4, 0.7), labels(4, 2)),
  };
  return { ended, ...after, params: m.readSpace('param', 0, m.info.spaces.param), leftStaged: await m.discardPrefetched() };
}

/** The run with prefetch against the one without: the same batches fetched but the one staged, then the same calls and weights. */
export function expectNothingLeftStaged(plain: EpochEnding, staged: EpochEnding, ending: 'throws' | 'stops'): void {
  expect(staged.ended).toBe(ending === 'throws' ? 'Error: thrown by the test' : 'stopped at step 2');
  expect([plain.fetched, staged.fetched]).toEqual(ending === 'throws' ? [1, 2] : [2, 3]); // the next batch was fetched and staged
  expect(staged.sameArray).toEqual(plain.sameArray);
  expect(staged.otherArray).toEqual(plain.otherArray);
  expect(staged.params).toEqual(plain.params);
  expect(staged.leftStaged).toBe(0);
}
type EpochEnding = Awaited<ReturnType<typeof stepsAfterAnEndedEpoch>>;

/** The inputs `inferAfterAThrownEvaluation` gives the model after the evaluation threw, for a reference model. */
const AFTER_EVALUATION = { sameArray: images(4, 0.9), otherArray: images(4, 0.8) };

/** An evaluation of 3 batches whose progress callback throws after the first (batch 2 staged, with prefetch); then inferences. */
async function inferAfterAThrownEvaluation(m: Model, prefetch: boolean) {
  const inner = inMemoryEvalSource(labelledSet('test', 12, 0.4));
  const yielded: Batch[] = [];
  const source: EvalSource = { ...inner, batches: (n) => recording(inner.batches(n), yielded) };
  const onBatch = (done: number) => {
    if (done === 4) throw new Error('thrown by the test');
  };
  const ended = await evaluateSource(m, source, onBatch, prefetch).then(
    () => 'finished',
    (e: unknown) => String(e),
  );
  const last = yielded[yielded.length - 1].images as Float32Array;
  last.set(AFTER_EVALUATION.sameArray);
  const after: AfterTheLoop<Float32Array> = { fetched: yielded.length, sameArray: await m.infer(last), otherArray: await m.infer(AFTER_EVALUATION.otherArray) };
  return { ended, ...after };
}

/** An evaluation on `m` that throws with batch 2 staged; then `m`'s inferences must be `reference`'s (same weights). */
export async function expectEvaluationLeftNothing(m: Model, reference: Model): Promise<void> {
  const after = await inferAfterAThrownEvaluation(m, true);
  expect(after.ended).toBe('Error: thrown by the test');
  expect(after.fetched).toBe(2); // batch 2 staged when the first batch's tally threw
  expect(after.sameArray).toEqual(await reference.infer(AFTER_EVALUATION.sameArray));
  expect(after.otherArray).toEqual(await reference.infer(AFTER_EVALUATION.otherArray));
}
