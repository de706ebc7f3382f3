// The training loop as a library over any batch source (in-memory sets, the streaming ImageNet loader):
// the spec's regime (fresh optimizer at each row), a test pass, a JSON log line and an atomic checkpoint
// at every epoch end, and resume. It reports through `onEvent` and never writes to stderr itself.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { epochOrder, inMemoryEvalSource, inMemoryTrainSource, type Batch, type EvalSource, type LabelledImages, type SkipReport, type TrainSource } from './dataset.js';
import type { Model } from './model.js';
import { appendDurably, CHECKPOINT_FILE, LOG_FILE, prepareRunDir, saveCheckpoint, TrainingError } from './run-dir.js';
import { evaluateSource, firstImagesOf, nonFiniteProblem } from './scoring.js';
import { prefetchLoop } from './prefetch-loop.js';
import { bucketsOf, checkInSync, checkSameStart, countCorrect, dataParallelStep, type DataParallel, type StepTally } from './distributed/data-parallel.js';
import type { Bucket } from './distributed/shard.js';

export { CHECKPOINT_FILE, LOG_FILE, TrainingError, epochOrder, evaluateSource };

export interface RegimeRow {
  readonly from: number;
  readonly to: number;
  readonly lr: number;
  readonly wd: number;
}

/** When the test split is scored: every `every` epochs and after the last (0: never), on at most `limit` images. */
export interface TestPlan {
  readonly every: number;
  readonly limit?: number;
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batch: number;
  readonly regime: readonly RegimeRow[];
  readonly momentum: number;
  readonly seed: number;
  readonly runDir: string;
  readonly resume: boolean;
  /** Default: test after every epoch on the whole split. */
  readonly test?: TestPlan;
  /** Everything the run has to say (progress, resume, skipped files, epoch results); tests use it to stop early. */
  readonly onEvent?: (e: TrainEvent) => void;
  /** Set `requested` (e.g. from a SIGINT handler) to stop after the current step with a checkpoint. */
  readonly stop?: { requested: boolean };
  /**
   * Data-parallel over ranks (docs/distributed.md): `batch` stays the global batch, split between the
   * ranks; rank 0 alone writes the run directory and runs the test pass.
   */
  readonly distributed?: DataParallel;
  /**
   * Hand each batch to the model while the step before it runs (Model.prefetch; docs/design.md#staged-input),
   * in training and test passes. Default: on cuda, where its host→device copy then overlaps that step; a
   * distributed run's training steps never prefetch.
   */
  readonly prefetch?: boolean;
}

export type TrainEvent =
  | { readonly kind: 'removed-stale'; readonly files: readonly string[] }
  | { readonly kind: 'resumed'; readonly checkpoint: string; readonly epoch: number; readonly afterStep?: number }
  | { readonly kind: 'no-checkpoint'; readonly runDir: string }
  | { readonly kind: 'epoch-start'; readonly epoch: number; readonly epochs: number; readonly steps: number }
  | { readonly kind: 'step'; readonly epoch: number; readonly step: number; readonly steps: number; readonly loss: number; readonly lr: number; readonly imagesPerSecond: number }
  | { readonly kind: 'skipped'; readonly epoch: number; readonly what: 'training' | 'validation'; readonly report: SkipReport }
  | { readonly kind: 'epoch-end'; readonly record: EpochRecord }
  | { readonly kind: 'stopped'; readonly epoch: number; readonly step: number; readonly steps: number; readonly checkpoint: string };

/** How a run ended: every epoch done, stopped on request with a checkpoint to resume from, or nothing left to do. */
export interface TrainResult {
  readonly records: EpochRecord[];
  readonly stopped?: { readonly epoch: number; readonly step: number; readonly checkpoint: string };
  /** --resume found a checkpoint at or past the last epoch: nothing was trained. */
  readonly alreadyFinished?: { readonly epoch: number; readonly checkpoint: string };
}

export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  readonly trainTop1: number;
  /** Absent in an epoch without a test pass. */
  readonly top1?: number;
  readonly top5?: number;
  readonly testLoss?: number;
  readonly evaluated: number; // test images scored (0: no test pass this epoch)
  readonly images: number; // trained this epoch
  readonly skipped: number; // unreadable training files met (each replaced by another image)
  readonly skippedVal: number; // unreadable validation files (left out of `evaluated`)
  readonly lr: number;
  readonly wd: number;
  readonly imagesPerSecond: number; // trained images per second of the training phase
  readonly seconds: number; // the training phase
  readonly evalSeconds: number;
}

/** The row in force at an epoch; past the table (and in gaps) the last row that started keeps going. */
export function regimeAt(regime: readonly RegimeRow[], epoch: number): RegimeRow {
  let row = regime[0];
  for (const r of regime) if (r.from <= epoch) row = r;
  return row;
}

/** Whether epoch `epoch` of `epochs` gets a test pass under a plan. */
export function testsAfter(plan: TestPlan, epoch: number, epochs: number): boolean {
  return plan.every > 0 && (epoch % plan.every === 0 || epoch === epochs);
}

function isLabelledImages(x: LabelledImages | TrainSource | EvalSource): x is LabelledImages {
  return 'images' in x && x.images instanceof Float32Array;
}

/** The epoch's running sums, saved in a mid-epoch checkpoint so a resumed epoch reports what a straight one would. */
interface EpochProgress {
  step: number;
  lossSum: number;
  correct: number;
  seen: number;
}

/** Where training starts: epoch 1, or after the checkpoint's epoch (and step, when it stopped mid-epoch). */
interface StartPoint {
  readonly epoch: number;
  readonly progress?: EpochProgress;
}

async function resumePoint(model: Model, checkpoint: string, seed: number): Promise<StartPoint> {
  const meta = await model.loadWeights(checkpoint);
  const done = Number(meta.epoch);
  if (!Number.isInteger(done) || done < 0) throw new TrainingError(`${checkpoint}: no epoch in its metadata, cannot resume from it`);
  if (meta.seed !== undefined && Number(meta.seed) !== seed) throw new TrainingError(`${checkpoint} was written by a run with --seed ${meta.seed}, not ${seed}`);
  if (meta.step === undefined) return { epoch: done + 1 };
  const progress = { step: Number(meta.step), lossSum: Number(meta.loss_sum), correct: Number(meta.correct), seen: Number(meta.seen) };
  if (!Object.values(progress).every(Number.isFinite)) throw new TrainingError(`${checkpoint}: its mid-epoch progress (step, loss_sum, correct, seen) is unreadable`);
  return { epoch: done + 1, progress };
}

interface EpochContext {
  readonly model: Model;
  readonly source: TrainSource;
  readonly o: TrainOptions;
  readonly checkpoint: string;
  readonly lastGood: string;
  /** Rank 0 of a distributed run, or the only process: the one that writes the run directory. */
  readonly writer: boolean;
  readonly buckets: readonly Bucket[];
}

/** One training step on a global batch: this process alone, or its share of a data-parallel step. */
async function step(c: EpochContext, b: Batch, row: RegimeRow): Promise<StepTally> {
  const hyper = { lr: row.lr, weightDecay: row.wd, momentum: c.o.momentum };
  const stopRequested = c.o.stop?.requested ?? false;
  if (c.o.distributed) return dataParallelStep(c.model, c.o.distributed, b, hyper, stopRequested, c.buckets);
  const r = await c.model.trainStep(b.images, b.labels, hyper);
  return { lossSum: r.loss * b.count, correct: countCorrect(r.output, b.labels, b.count), count: b.count, stop: stopRequested };
}

/** One epoch's training steps from `progress` on; `stoppedAt` is set when a stop request ended it early. */
async function trainEpoch(c: EpochContext, epoch: number, row: RegimeRow, progress: EpochProgress): Promise<{ progress: EpochProgress; seconds: number; stoppedAt?: number }> {
  const { model, o } = c;
  const steps = c.source.steps(o.batch);
  o.onEvent?.({ kind: 'epoch-start', epoch, epochs: o.epochs, steps });
  const started = Date.now();
  const p = { ...progress };
  const seenBefore = p.seen;
  const shard = o.distributed ? { rank: o.distributed.comm.rank, size: o.distributed.comm.size } : undefined;
  // On cuda each batch is prefetched while the step before it runs, so that its host→device copy
  // overlaps that step; cpu and emu read host memory: nothing to overlap (tests turn it on there).
  const prefetch = (o.prefetch ?? model.device === 'cuda') && !o.distributed;
  let stoppedAt: number | undefined;
  const take = async (t: StepTally): Promise<boolean> => {
    p.step++;
    const loss = t.lossSum / t.count;
    if (!Number.isFinite(loss)) {
      throw new TrainingError(`the loss became ${loss} at epoch ${epoch}, step ${p.step}: training stopped and the last checkpoint (${existsSync(c.checkpoint) ? c.checkpoint : 'none yet'}) is kept; try a smaller learning rate (lr ${row.lr})`);
    }
    p.lossSum += t.lossSum;
    p.correct += t.correct;
    p.seen += t.count;
    const dp = o.distributed;
    if (dp && (p.step === steps || (dp.checkEvery > 0 && p.step % dp.checkEvery === 0))) checkInSync(model, dp.comm, `epoch ${epoch}, step ${p.step}`);
    const elapsed = Math.max((Date.now() - started) / 1000, 1e-9);
    o.onEvent?.({ kind: 'step', epoch, step: p.step, steps, loss: p.lossSum / p.seen, lr: row.lr, imagesPerSecond: (p.seen - seenBefore) / elapsed });
    if (!t.stop || p.step >= steps) return false;
    // Stop between steps: a checkpoint of the half-done epoch, resumable to the same losses.
    const meta = { epoch: String(epoch - 1), step: String(p.step), loss_sum: String(p.lossSum), correct: String(p.correct), seen: String(p.seen), seed: String(o.seed) };
    if (c.writer) await saveCheckpoint(model, c.checkpoint, meta, c.lastGood);
    o.onEvent?.({ kind: 'stopped', epoch, step: p.step, steps, checkpoint: c.checkpoint });
    stoppedAt = p.step;
    return true;
  };
  const batches = c.source.batches(epoch, o.batch, o.seed, p.step, shard);
  await prefetchLoop({ model, batches, prefetch, stageFor: 'training', run: (b) => step(c, b, row), take });
  return { progress: p, seconds: (Date.now() - started) / 1000, ...(stoppedAt !== undefined ? { stoppedAt } : {}) };
}

/** The epoch's test pass; non-finite outputs stop the run like a NaN loss (before the checkpoint is replaced). */
async function testEpoch(model: Model, source: EvalSource, epoch: number, checkpoint: string, prefetch: boolean | undefined) {
  const started = Date.now();
  const ev = await evaluateSource(model, source, undefined, prefetch);
  const problem = nonFiniteProblem(ev, source.name);
  if (problem) throw new TrainingError(`epoch ${epoch}'s test pass: ${problem}; training stopped and the last checkpoint (${existsSync(checkpoint) ? checkpoint : 'none yet'}) is kept`);
  return { ev, seconds: (Date.now() - started) / 1000 };
}

/** Whether to stop at an epoch end: asked here, or (distributed) on any rank, so that all stop together. */
function stopAgreed(o: TrainOptions): boolean {
  const asked = o.stop?.requested ?? false;
  if (!o.distributed) return asked;
  const flag = new Float64Array([asked ? 1 : 0]);
  o.distributed.comm.allreduceSum(flag);
  return flag[0] > 0;
}

const NO_SKIPS: SkipReport = { count: 0, files: new Map() };

export async function train(model: Model, trainData: TrainSource | LabelledImages, testData: EvalSource | LabelledImages, o: TrainOptions): Promise<TrainResult> {
  if (o.regime.length === 0) throw new TrainingError('no learning rate: the spec has no regime rows (train { regime { epochs 1..N lr X wd Y } })');
  // A rank trains on its share of the global batch only.
  const perRank = Math.ceil(o.batch / (o.distributed?.comm.size ?? 1));
  if (perRank > model.maxBatch) throw new TrainingError(`batch ${o.batch}${o.distributed ? ` (${perRank} per rank)` : ''} is over the artifact's maximum ${model.maxBatch}: rebuild with --max-batch ${perRank}`);
  const source = isLabelledImages(trainData) ? inMemoryTrainSource(trainData) : trainData;
  const fullTest = isLabelledImages(testData) ? inMemoryEvalSource(testData) : testData;
  const plan = o.test ?? { every: 1 };
  const testSource = plan.limit !== undefined ? firstImagesOf(fullTest, plan.limit) : fullTest;
  const emit = (e: TrainEvent) => o.onEvent?.(e);

  const dp = o.distributed;
  const writer = !dp || dp.comm.rank === 0;
  if (writer) {
    const removed = prepareRunDir(o.runDir);
    if (removed.length > 0) emit({ kind: 'removed-stale', files: removed });
  }
  dp?.comm.barrier(); // the run directory is ready before any rank looks for a checkpoint in it
  const checkpoint = join(o.runDir, CHECKPOINT_FILE);
  let start: StartPoint = { epoch: 1 };
  if (o.resume && existsSync(checkpoint)) {
    start = await resumePoint(model, checkpoint, o.seed);
  }
  // Before anything can return: every rank reaches this check, which refuses a rank that differs.
  if (dp) await checkSameStart(model, dp.comm, JSON.stringify({ epochs: o.epochs, batch: o.batch, regime: o.regime, momentum: o.momentum, seed: o.seed, resume: o.resume, count: source.count, start }));
  if (o.resume && existsSync(checkpoint)) {
    if (start.epoch > o.epochs && !start.progress) return { records: [], alreadyFinished: { epoch: start.epoch - 1, checkpoint } };
    emit({ kind: 'resumed', checkpoint, epoch: start.epoch, ...(start.progress ? { afterStep: start.progress.step } : {}) });
  } else if (o.resume) emit({ kind: 'no-checkpoint', runDir: o.runDir });
  const buckets = dp ? bucketsOf(model, dp) : [];

  const records: EpochRecord[] = [];
  let resumed = start.progress;
  for (let epoch = start.epoch; epoch <= o.epochs; epoch++) {
    const row = regimeAt(o.regime, epoch);
    // imagenet-multiGPU.torch builds a new optimState when a regime row starts: momentum restarts.
    // (Not when resuming mid-epoch: the checkpoint holds the optimizer state the epoch had reached.)
    if (epoch === row.from && !resumed) model.resetOptimizer();
    const lastGood = existsSync(checkpoint) ? `the previous checkpoint is intact` : 'no checkpoint was written yet';
    const t = await trainEpoch({ model, source, o, checkpoint, lastGood, writer, buckets }, epoch, row, resumed ?? { step: 0, lossSum: 0, correct: 0, seen: 0 });
    if (t.stoppedAt !== undefined) return { records, stopped: { epoch, step: t.stoppedAt, checkpoint } };
    const seenBefore = resumed?.seen ?? 0;
    resumed = undefined;
    const trainSkips = source.takeSkipped?.() ?? NO_SKIPS;
    // In a distributed run rank 0 tests alone; the others wait for it in the next step's reduction.
    const tested = writer && testsAfter(plan, epoch, o.epochs) ? await testEpoch(model, testSource, epoch, checkpoint, o.prefetch) : undefined;
    const valSkips = tested ? testSource.takeSkipped?.() ?? NO_SKIPS : NO_SKIPS;
    const { lossSum, correct, seen } = t.progress;
    const record: EpochRecord = {
      epoch,
      loss: lossSum / seen,
      trainTop1: correct / seen,
      ...(tested ? { top1: tested.ev.top1, top5: tested.ev.top5, testLoss: tested.ev.loss } : {}),
      evaluated: tested?.ev.count ?? 0,
      images: seen,
      skipped: trainSkips.count,
      skippedVal: valSkips.count,
      lr: row.lr,
      wd: row.wd,
      imagesPerSecond: (seen - seenBefore) / t.seconds,
      seconds: t.seconds,
      evalSeconds: tested?.seconds ?? 0,
    };
    emit({ kind: 'epoch-end', record });
    if (trainSkips.count > 0) emit({ kind: 'skipped', epoch, what: 'training', report: trainSkips });
    if (valSkips.count > 0) emit({ kind: 'skipped', epoch, what: 'validation', report: valSkips });
    const meta: Record<string, string> = { epoch: String(epoch), seed: String(o.seed), ...(tested ? { top1: String(tested.ev.top1) } : {}) };
    if (writer) {
      await saveCheckpoint(model, checkpoint, meta, lastGood);
      appendDurably(join(o.runDir, LOG_FILE), JSON.stringify(record) + '\n');
    }
    records.push(record);
    if (stopAgreed(o) && epoch < o.epochs) return { records, stopped: { epoch: epoch + 1, step: 0, checkpoint } };
  }
  return { records };
}
