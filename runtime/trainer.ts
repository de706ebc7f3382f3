// The training loop: epochs over a shuffled set, the spec's regime (fresh optimizer at each row),
// evaluation and an atomic checkpoint at every epoch end, and resume from the last checkpoint.
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { LabelledImages } from './dataset.js';
import type { Model } from './model.js';
import { progressBar } from './progress.js';
import { uniformStream } from './init.js';

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
}

export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  readonly trainTop1: number;
  readonly top1: number;
  readonly top5: number;
  readonly testLoss: number;
  readonly evaluated: number;
  readonly lr: number;
  readonly wd: number;
  readonly imagesPerSecond: number;
  readonly seconds: number;
}

export class TrainingError extends Error {}

/** The row in force at an epoch; past the table (and in gaps) the last row that started keeps going. */
export function regimeAt(regime: readonly RegimeRow[], epoch: number): RegimeRow {
  let row = regime[0];
  for (const r of regime) if (r.from <= epoch) row = r;
  return row;
}

/** The epoch's order of examples: a Fisher–Yates shuffle seeded by (seed, epoch) alone, so a resumed run sees the same order. */
export function epochOrder(count: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const next = uniformStream((Math.imul(seed, 0x85ebca6b) ^ Math.imul(epoch, 0xc2b2ae35)) >>> 0);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

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

export async function train(model: Model, trainSet: LabelledImages, testSet: LabelledImages, o: TrainOptions): Promise<EpochRecord[]> {
  if (o.regime.length === 0) throw new TrainingError('no learning rate: the spec has no regime rows (train { regime { epochs 1..N lr X wd Y } })');
  if (o.batch > model.maxBatch) throw new TrainingError(`batch ${o.batch} is over the artifact's maximum ${model.maxBatch}: rebuild with --max-batch ${o.batch}`);
  mkdirSync(o.runDir, { recursive: true });
  const checkpoint = join(o.runDir, CHECKPOINT_FILE);
  let startEpoch = 1;
  if (o.resume && existsSync(checkpoint)) {
    const meta = await model.loadWeights(checkpoint);
    const done = Number(meta.epoch);
    if (!Number.isInteger(done) || done < 0) throw new TrainingError(`${checkpoint}: no epoch in its metadata, cannot resume from it`);
    if (meta.seed !== undefined && Number(meta.seed) !== o.seed) throw new TrainingError(`${checkpoint} was written by a run with --seed ${meta.seed}, not ${o.seed}`);
    startEpoch = done + 1;
    process.stderr.write(`resuming from ${checkpoint} after epoch ${done}\n`);
  } else if (o.resume && !o.quiet) {
    process.stderr.write(`no checkpoint in ${o.runDir} yet: starting from epoch 1\n`);
  }
  const per = trainSet.images.length / trainSet.count;
  const batchImages = new Float32Array(o.batch * per);
  const batchLabels = new Int32Array(o.batch);
  const records: EpochRecord[] = [];
  for (let epoch = startEpoch; epoch <= o.epochs; epoch++) {
    const row = regimeAt(o.regime, epoch);
    // imagenet-multiGPU.torch builds a new optimState when a regime row starts: momentum restarts.
    if (epoch === row.from) model.resetOptimizer();
    const order = epochOrder(trainSet.count, o.seed, epoch);
    const steps = Math.ceil(trainSet.count / o.batch);
    const bar = progressBar(`epoch ${epoch}/${o.epochs}`, steps, process.stderr, o.quiet);
    const started = Date.now();
    let lossSum = 0;
    let correct = 0;
    for (let s = 0; s < steps; s++) {
      const first = s * o.batch;
      const n = Math.min(o.batch, trainSet.count - first);
      for (let i = 0; i < n; i++) {
        const src = order[first + i];
        batchImages.set(trainSet.images.subarray(src * per, (src + 1) * per), i * per);
        batchLabels[i] = trainSet.labels[src];
      }
      const r = await model.trainStep(batchImages.subarray(0, n * per), batchLabels.subarray(0, n), { lr: row.lr, weightDecay: row.wd, momentum: o.momentum });
      if (!Number.isFinite(r.loss)) {
        throw new TrainingError(`the loss became ${r.loss} at epoch ${epoch}, step ${s + 1}: training stopped and the last checkpoint (${existsSync(checkpoint) ? checkpoint : 'none yet'}) is kept; try a smaller learning rate (lr ${row.lr})`);
      }
      lossSum += r.loss * n;
      const classes = r.output.length / n;
      for (let i = 0; i < n; i++) {
        const rowOut = r.output.subarray(i * classes, (i + 1) * classes);
        let best = 0;
        for (let c = 1; c < classes; c++) if (rowOut[c] > rowOut[best]) best = c;
        if (best === batchLabels[i]) correct++;
      }
      const elapsed = (Date.now() - started) / 1000;
      bar.update(s + 1, { loss: (lossSum / (first + n)).toFixed(4), lr: String(row.lr), 'img/s': ((first + n) / Math.max(elapsed, 1e-9)).toFixed(0) });
    }
    const seconds = (Date.now() - started) / 1000;
    const ev = await model.evaluate(testSet.images, testSet.labels);
    const record: EpochRecord = {
      epoch,
      loss: lossSum / trainSet.count,
      trainTop1: correct / trainSet.count,
      top1: ev.top1,
      top5: ev.top5,
      testLoss: ev.loss,
      evaluated: ev.count,
      lr: row.lr,
      wd: row.wd,
      imagesPerSecond: trainSet.count / seconds,
      seconds,
    };
    bar.finish(
      `epoch ${epoch}/${o.epochs}: loss ${record.loss.toFixed(4)}, train top-1 ${(100 * record.trainTop1).toFixed(2)}%, ` +
        `test top-1 ${(100 * ev.top1).toFixed(2)}% top-5 ${(100 * ev.top5).toFixed(2)}% on ${ev.count} images, ` +
        `${record.imagesPerSecond.toFixed(0)} img/s, ${seconds.toFixed(1)} s`,
    );
    await model.save(checkpoint, { epoch: String(epoch), seed: String(o.seed), top1: String(ev.top1) }, { optimizer: true });
    appendDurably(join(o.runDir, LOG_FILE), JSON.stringify(record) + '\n');
    records.push(record);
    o.onEpoch?.(record);
  }
  return records;
}
