// The training loop over any batch source (in-memory sets, the streaming ImageNet loader): the spec's
// regime (fresh optimizer at each row), evaluation, a JSON log line and an atomic checkpoint at every
// epoch end, and resume from the last checkpoint.
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { epochOrder, inMemoryEvalSource, inMemoryTrainSource, type EvalSource, type LabelledImages, type SkipReport, type TrainSource } from './dataset.js';
import type { Evaluation, Model } from './model.js';
import { progressBar } from './progress.js';

export interface RegimeRow {
  readonly from: number;
  readonly to: number;
  readonly lr: number;
  readonly wd: number;
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batch: number;
  readonly regime: readonly RegimeRow[];
  readonly momentum: number;
  readonly seed: number;
  readonly runDir: string;
  readonly resume: boolean;
  readonly quiet?: boolean;
  /** Called after each epoch; tests use it to stop a run early. */
  readonly onEpoch?: (r: EpochRecord) => void;
  /** Set `requested` (e.g. from a SIGINT handler) to stop after the current step with a checkpoint. */
  readonly stop?: { requested: boolean };
}

/** How a run ended: every epoch done, or stopped on request mid-epoch with a checkpoint to resume from. */
export interface TrainResult {
  readonly records: EpochRecord[];
  readonly stopped?: { readonly epoch: number; readonly step: number; readonly checkpoint: string };
}

export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  readonly trainTop1: number;
  readonly top1: number;
  readonly top5: number;
  readonly testLoss: number;
  readonly evaluated: number;
  readonly images: number; // trained this epoch
  readonly skipped: number; // unreadable training files met (each replaced by another image)
  readonly skippedVal: number; // unreadable validation files (left out of `evaluated`)
  readonly lr: number;
  readonly wd: number;
  readonly imagesPerSecond: number; // trained images per second of the training phase
  readonly seconds: number; // the training phase
  readonly evalSeconds: number;
}

export class TrainingError extends Error {}

/** The row in force at an epoch; past the table (and in gaps) the last row that started keeps going. */
export function regimeAt(regime: readonly RegimeRow[], epoch: number): RegimeRow {
  let row = regime[0];
  for (const r of regime) if (r.from <= epoch) row = r;
  return row;
}

export { epochOrder };

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOG_FILE = 'log.jsonl';

function appendDurably(path: string, line: string): void {
  appendFileSync(path, line);
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Top-1/top-5 hits and summed NLL over a whole pass, counted exactly as model.evaluate scores one array. */
class EvalTally {
  private top1 = 0;
  private top5 = 0;
  private nll = 0;
  count = 0;

  add(out: Float32Array, labels: Int32Array, classes: number): void {
    for (let i = 0; i < labels.length; i++) {
      const row = out.subarray(i * classes, (i + 1) * classes);
      const target = row[labels[i]];
      let above = 0; // classes scored strictly higher than the label: ties go the label's way
      for (let c = 0; c < classes; c++) if (row[c] > target) above++;
      if (above === 0) this.top1++;
      if (above < 5) this.top5++;
      this.nll -= target;
    }
    this.count += labels.length;
  }

  result(): Evaluation {
    const n = this.count;
    return { top1: n ? this.top1 / n : 0, top5: n ? this.top5 / n : 0, loss: n ? this.nll / n : NaN, count: n };
  }
}

/** Top-1/top-5 and mean NLL in eval mode over every image an evaluation source yields (no partial batch dropped). */
export async function evaluateSource(model: Model, source: EvalSource, onBatch?: (done: number) => void): Promise<Evaluation> {
  const tally = new EvalTally();
  for await (const b of source.batches(model.maxBatch)) {
    if (b.count === 0) continue;
    const out = await model.infer(b.images, b.count);
    tally.add(out, b.labels, model.outputElements);
    onBatch?.(tally.count);
  }
  return tally.result();
}

const NO_SKIPS: SkipReport = { count: 0, files: new Map() };

function describeSkips(what: string, r: SkipReport): string {
  const names = [...r.files].slice(0, 5).map(([f, why]) => `${f} (${why})`);
  const more = r.files.size > names.length ? `, and ${r.files.size - names.length} more` : '';
  return `${r.count} unreadable ${what} file${r.count === 1 ? '' : 's'}: ${names.join('; ')}${more}`;
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

async function saveCheckpoint(model: Model, path: string, meta: Record<string, string>, lastGood: string): Promise<void> {
  try {
    await model.save(path, meta, { optimizer: true });
  } catch (e) {
    throw new TrainingError(`cannot write the checkpoint ${path}: ${(e as Error).message}; ${lastGood}`);
  }
}

export async function train(model: Model, trainData: TrainSource | LabelledImages, testData: EvalSource | LabelledImages, o: TrainOptions): Promise<TrainResult> {
  if (o.regime.length === 0) throw new TrainingError('no learning rate: the spec has no regime rows (train { regime { epochs 1..N lr X wd Y } })');
  if (o.batch > model.maxBatch) throw new TrainingError(`batch ${o.batch} is over the artifact's maximum ${model.maxBatch}: rebuild with --max-batch ${o.batch}`);
  const trainSource = isLabelledImages(trainData) ? inMemoryTrainSource(trainData) : trainData;
  const testSource = isLabelledImages(testData) ? inMemoryEvalSource(testData) : testData;
  try {
    mkdirSync(o.runDir, { recursive: true });
  } catch (e) {
    throw new TrainingError(`cannot create the run directory ${o.runDir}: ${(e as Error).message}`);
  }
  const checkpoint = join(o.runDir, CHECKPOINT_FILE);
  let startEpoch = 1;
  let resumed: EpochProgress | undefined; // where a run stopped mid-epoch left off
  if (o.resume && existsSync(checkpoint)) {
    const meta = await model.loadWeights(checkpoint);
    const done = Number(meta.epoch);
    if (!Number.isInteger(done) || done < 0) throw new TrainingError(`${checkpoint}: no epoch in its metadata, cannot resume from it`);
    if (meta.seed !== undefined && Number(meta.seed) !== o.seed) throw new TrainingError(`${checkpoint} was written by a run with --seed ${meta.seed}, not ${o.seed}`);
    startEpoch = done + 1;
    if (meta.step !== undefined) {
      resumed = { step: Number(meta.step), lossSum: Number(meta.loss_sum), correct: Number(meta.correct), seen: Number(meta.seen) };
      if (!Object.values(resumed).every(Number.isFinite)) throw new TrainingError(`${checkpoint}: its mid-epoch progress (step, loss_sum, correct, seen) is unreadable`);
      process.stderr.write(`resuming from ${checkpoint} in epoch ${startEpoch} after step ${resumed.step}\n`);
    } else process.stderr.write(`resuming from ${checkpoint} after epoch ${done}\n`);
  } else if (o.resume && !o.quiet) {
    process.stderr.write(`no checkpoint in ${o.runDir} yet: starting from epoch 1\n`);
  }
  const records: EpochRecord[] = [];
  for (let epoch = startEpoch; epoch <= o.epochs; epoch++) {
    const row = regimeAt(o.regime, epoch);
    // imagenet-multiGPU.torch builds a new optimState when a regime row starts: momentum restarts.
    // (Not when resuming mid-epoch: the checkpoint holds the optimizer state the epoch had reached.)
    const progress: EpochProgress = resumed ?? { step: 0, lossSum: 0, correct: 0, seen: 0 };
    if (epoch === row.from && !resumed) model.resetOptimizer();
    resumed = undefined;
    const steps = trainSource.steps(o.batch);
    const bar = progressBar(`epoch ${epoch}/${o.epochs}`, steps, process.stderr, o.quiet);
    const started = Date.now();
    let { lossSum, correct, seen, step } = progress;
    const seenBefore = seen;
    const lastGood = existsSync(checkpoint) ? `the previous checkpoint is intact` : 'no checkpoint was written yet';
    for await (const b of trainSource.batches(epoch, o.batch, o.seed, step)) {
      step++;
      const n = b.count;
      const r = await model.trainStep(b.images, b.labels, { lr: row.lr, weightDecay: row.wd, momentum: o.momentum });
      if (!Number.isFinite(r.loss)) {
        throw new TrainingError(`the loss became ${r.loss} at epoch ${epoch}, step ${step}: training stopped and the last checkpoint (${existsSync(checkpoint) ? checkpoint : 'none yet'}) is kept; try a smaller learning rate (lr ${row.lr})`);
      }
      lossSum += r.loss * n;
      const classes = r.output.length / n;
      for (let i = 0; i < n; i++) {
        const rowOut = r.output.subarray(i * classes, (i + 1) * classes);
        let best = 0;
        for (let c = 1; c < classes; c++) if (rowOut[c] > rowOut[best]) best = c;
        if (best === b.labels[i]) correct++;
      }
      seen += n;
      const elapsed = (Date.now() - started) / 1000;
      bar.update(step, { loss: (lossSum / seen).toFixed(4), lr: String(row.lr), 'img/s': ((seen - seenBefore) / Math.max(elapsed, 1e-9)).toFixed(0) });
      if (o.stop?.requested && step < steps) {
        // Stop between steps: a checkpoint of the half-done epoch, resumable to the same losses.
        const meta = { epoch: String(epoch - 1), step: String(step), loss_sum: String(lossSum), correct: String(correct), seen: String(seen), seed: String(o.seed) };
        await saveCheckpoint(model, checkpoint, meta, lastGood);
        bar.finish(`stopped in epoch ${epoch} after step ${step} of ${steps}; checkpoint ${checkpoint} (continue with --resume)`);
        return { records, stopped: { epoch, step, checkpoint } };
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const trainSkips = trainSource.takeSkipped?.() ?? NO_SKIPS;
    const evalStarted = Date.now();
    const ev = await evaluateSource(model, testSource);
    const evalSeconds = (Date.now() - evalStarted) / 1000;
    const valSkips = testSource.takeSkipped?.() ?? NO_SKIPS;
    const record: EpochRecord = {
      epoch,
      loss: lossSum / seen,
      trainTop1: correct / seen,
      top1: ev.top1,
      top5: ev.top5,
      testLoss: ev.loss,
      evaluated: ev.count,
      images: seen,
      skipped: trainSkips.count,
      skippedVal: valSkips.count,
      lr: row.lr,
      wd: row.wd,
      imagesPerSecond: (seen - seenBefore) / seconds,
      seconds,
      evalSeconds,
    };
    bar.finish(
      `epoch ${epoch}/${o.epochs}: loss ${record.loss.toFixed(4)}, train top-1 ${(100 * record.trainTop1).toFixed(2)}%, ` +
        `test top-1 ${(100 * ev.top1).toFixed(2)}% top-5 ${(100 * ev.top5).toFixed(2)}% on ${ev.count} images, ` +
        `${record.imagesPerSecond.toFixed(0)} img/s, ${seconds.toFixed(1)} s`,
    );
    // Always said, even with --quiet: a skipped file is data the run did not see.
    if (trainSkips.count > 0) process.stderr.write(`epoch ${epoch}: skipped ${describeSkips('training', trainSkips)} (each replaced by another image)\n`);
    if (valSkips.count > 0) process.stderr.write(`epoch ${epoch}: skipped ${describeSkips('validation', valSkips)} (not scored)\n`);
    await saveCheckpoint(model, checkpoint, { epoch: String(epoch), seed: String(o.seed), top1: String(ev.top1) }, lastGood);
    appendDurably(join(o.runDir, LOG_FILE), JSON.stringify(record) + '\n');
    records.push(record);
    o.onEpoch?.(record);
    if (o.stop?.requested && epoch < o.epochs) return { records, stopped: { epoch: epoch + 1, step: 0, checkpoint } };
  }
  return { records };
}
