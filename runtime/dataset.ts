// What the trainer reads: batch sources (an epoch of training batches, an evaluation pass), the
// in-memory source for labelled image sets such as Fashion-MNIST, and the loader behind `--data`.
// The streaming ImageNet folder source (runtime/imagenet/) implements the same interfaces.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { loadFashionMnist, resolveFashionMnistDir } from './data/fashion-mnist.js';
import type { Transform } from '../compiler/ir.js';
import { uniformStream } from './init.js';
import { rankShare } from './distributed/shard.js';

export interface LabelledImages {
  readonly name: string;
  readonly images: Float32Array; // count × C × H × W, normalised with the spec's transform
  readonly labels: Int32Array;
  readonly count: number;
  readonly shape: readonly number[]; // C, H, W
  readonly classes: number;
}

// The spec's per-channel normalisation, as the compiler resolved it.
export type { Transform };

/**
 * A batch's images: N×C×H×W float32, normalised, or, for a model that takes uint8 images (plan.json
 * imageInput), N×H×W×C bytes that its first conv normalises.
 */
export type Images = Float32Array | Uint8Array;

/** Images and their labels; valid until the source is asked for the next batch. */
export interface Batch {
  readonly images: Images;
  readonly labels: Int32Array;
  readonly count: number;
  /** Set when the batch is one rank's share of a global batch (see Shard): the global batch's count. */
  readonly total?: number;
}

/** One rank of `size` in data-parallel training: it reads only its share (rankShare) of every global batch. */
export interface Shard {
  readonly rank: number;
  readonly size: number;
}

/** Files a streaming source could not read since it was last asked, each with the reason. */
export interface SkipReport {
  readonly count: number; // times an unreadable file was met (each replaced, or left out of evaluation)
  readonly files: ReadonlyMap<string, string>;
}

export interface TrainSource {
  readonly name: string;
  readonly count: number; // images available
  /** Training steps in one epoch at this batch size. */
  steps(batch: number): number;
  /**
   * One epoch's batches from step `startStep` on (0: the whole epoch); the same (epoch, batch, seed) always
   * gives the same batches, so a run resumed mid-epoch sees what a straight one did. With a shard, each
   * batch is only that rank's share of the global batch, exactly as the whole batch has it, with `total` set.
   */
  batches(epoch: number, batch: number, seed: number, startStep?: number, shard?: Shard): AsyncIterable<Batch>;
  /** Unreadable files met since the last call (sources that cannot meet any may omit this). */
  takeSkipped?(): SkipReport;
}

export interface EvalSource {
  readonly name: string;
  readonly count: number; // images listed; fewer are scored when some cannot be read
  /** Every image once, in a fixed order, in batches of at most `batch` (the last one may be smaller). */
  batches(batch: number): AsyncIterable<Batch>;
  takeSkipped?(): SkipReport;
}

/** (x − mean[c]) / std[c] per channel, in place. */
export function normalizeInPlace(images: Float32Array, shape: readonly number[], t: Transform): void {
  const [c, h, w] = shape;
  const plane = h * w;
  for (let i = 0; i < images.length; i++) {
    const ch = Math.floor(i / plane) % c;
    images[i] = (images[i] - t.mean[ch]) / t.std[ch];
  }
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

/** Whole shuffled passes over a set in memory; the last batch of an epoch may be smaller. */
export function inMemoryTrainSource(set: LabelledImages): TrainSource {
  const per = set.images.length / Math.max(1, set.count);
  return {
    name: set.name,
    count: set.count,
    steps: (batch) => Math.ceil(set.count / batch),
    async *batches(epoch, batch, seed, startStep = 0, shard) {
      const order = epochOrder(set.count, seed, epoch);
      const images = new Float32Array(batch * per);
      const labels = new Int32Array(batch);
      for (let first = startStep * batch; first < set.count; first += batch) {
        const total = Math.min(batch, set.count - first);
        const share = shard ? rankShare(total, shard.rank, shard.size) : { first: 0, count: total };
        const n = share.count;
        for (let i = 0; i < n; i++) {
          const src = order[first + share.first + i];
          images.set(set.images.subarray(src * per, (src + 1) * per), i * per);
          labels[i] = set.labels[src];
        }
        yield { images: images.subarray(0, n * per), labels: labels.subarray(0, n), count: n, ...(shard ? { total } : {}) };
      }
    },
  };
}

/** A set in memory, in its own order, as views (no copies). */
export function inMemoryEvalSource(set: LabelledImages): EvalSource {
  const per = set.images.length / Math.max(1, set.count);
  return {
    name: set.name,
    count: set.count,
    async *batches(batch) {
      for (let first = 0; first < set.count; first += batch) {
        const n = Math.min(batch, set.count - first);
        yield { images: set.images.subarray(first * per, (first + n) * per), labels: set.labels.subarray(first, first + n), count: n };
      }
    },
  };
}

/** `--data fashion-mnist`, or a directory holding IDX files; any other `--data` is an image folder. */
export function isFashionMnistData(data: string): boolean {
  if (data === 'fashion-mnist') return true;
  try {
    return readdirSync(data).some((n) => /-idx\d-ubyte(\.gz)?$/.test(n));
  } catch {
    return false;
  }
}

/** `--data fashion-mnist` (the system copy) or a directory with the four Fashion-MNIST IDX files. */
export function loadLabelledImages(data: string, split: 'train' | 'test', transform: Transform | undefined, limit?: number): LabelledImages {
  if (data !== 'fashion-mnist' && (!existsSync(data) || !statSync(data).isDirectory())) {
    throw new Error(`--data ${data}: not a directory (expected 'fashion-mnist' or a directory of Fashion-MNIST IDX files)`);
  }
  const dir = resolveFashionMnistDir(data);
  const set = loadFashionMnist(dir, split, limit !== undefined ? { limit } : {});
  const shape = [1, 28, 28];
  const images = set.images;
  if (transform) normalizeInPlace(images, shape, transform);
  return { name: `${dir} (${split})`, images, labels: set.labels, count: set.count, shape, classes: set.classes };
}
