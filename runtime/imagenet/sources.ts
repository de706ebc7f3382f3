// Streaming batch sources over an ImageNet folder or a packed dataset's split: training batches (random
// crops, flips) and the center-crop evaluation pass, decoded by the worker pool into a bounded ring of
// prefetched batches. An unreadable file is counted and replaced (training) or left out (evaluation), never
// fatal alone; a packed record that fails its checksum stops the run, naming the shard and byte offset.
import type { Batch, EvalSource, Images, Shard, SkipReport, TrainSource } from '../dataset.js';
import { rankShare } from '../distributed/shard.js';
import type { DecodePool, DecodeResult } from './decode-pool.js';
import type { Size } from './donkey.js';
import { DataLayoutError, type ImageList } from './folder.js';
import type { RecordRef } from './pack-format.js';
import { drawCrop, epochPlan, type EpochPlan, type Sampling } from './sampler.js';

export type Crop = Size & { readonly channels: number };

/** The record to read for image i of a packed split (folder images have none: their file is opened). */
const recordOf = (list: ImageList, i: number): { record?: RecordRef } => (list.record ? { record: list.record(i) } : {});

/** A sample that meets this many unreadable files in a row stops the run: the data is not what it claims. */
const MAX_ATTEMPTS = 100;

export class SkipTally {
  private count = 0;
  private files = new Map<string, string>();

  add(file: string, reason: string): void {
    this.count++;
    if (!this.files.has(file)) this.files.set(file, reason);
  }

  take(): SkipReport {
    const r = { count: this.count, files: this.files };
    this.count = 0;
    this.files = new Map();
    return r;
  }
}

/**
 * Runs fill(step, slot) up to `slots` steps ahead of the consumer and yields the results in order.
 * A step reuses slot step % slots only after the consumer has asked for the batch after the one
 * that last used it, so at most slots − 1 batches wait while one is in use.
 */
export async function* prefetched<T>(steps: number, slots: number, fill: (step: number, slot: number) => Promise<T>): AsyncGenerator<T> {
  const inflight: Promise<T>[] = [];
  let started = 0;
  try {
    for (let done = 0; done < steps; done++) {
      while (started < steps && started - done < slots) {
        const p = fill(started, started % slots);
        p.catch(() => {}); // awaited in turn below; this only keeps a later step's failure from counting as unhandled
        inflight.push(p);
        started++;
      }
      yield await inflight.shift()!;
    }
  } finally {
    // Stopped early (or a step failed): let started steps finish before their slots can be reused.
    await Promise.allSettled(inflight);
  }
}

/**
 * Batch buffers shared with the workers, plus the plain copy handed out (the native binding takes no shared
 * memory); `per` elements per image, float32 or (a uint8 model's, DecodePool.output) bytes.
 */
class BatchRing {
  readonly shared: SharedArrayBuffer[];
  readonly labels: Int32Array[];
  readonly images: Images;
  readonly out: Int32Array;
  private readonly bytes: 1 | 4;

  constructor(
    readonly batch: number,
    readonly per: number,
    slots: number,
    readonly output: 'f32' | 'u8',
  ) {
    this.bytes = output === 'u8' ? 1 : 4;
    this.shared = Array.from({ length: slots }, () => new SharedArrayBuffer(batch * per * this.bytes));
    this.labels = Array.from({ length: slots }, () => new Int32Array(batch));
    this.images = output === 'u8' ? new Uint8Array(batch * per) : new Float32Array(batch * per);
    this.out = new Int32Array(batch);
  }

  /** Images i … i + count − 1 of a slot. */
  view(slot: number, i: number, count = 1): Images {
    return this.output === 'u8' ? new Uint8Array(this.shared[slot], i * this.per, count * this.per) : new Float32Array(this.shared[slot], i * this.per * 4, count * this.per);
  }

  /** Copies images of a slot to position `at` of the handed-out batch (both of the ring's element type). */
  copy(slot: number, i: number, count: number, at: number): void {
    this.images.set(this.view(slot, i, count), at * this.per);
  }
}

function ringFor(ring: BatchRing | undefined, batch: number, per: number, slots: number, output: 'f32' | 'u8'): BatchRing {
  return ring && ring.batch === batch && ring.shared.length === slots && ring.output === output ? ring : new BatchRing(batch, per, slots, output);
}

export interface TrainStreamOptions {
  readonly crop: Crop;
  readonly epochSize?: number; // batches per epoch; whole shuffled passes when absent
  readonly sampling: Sampling;
  readonly prefetch: number; // batches decoded ahead of the one in use
}

export class ImageNetTrainSource implements TrainSource {
  readonly name: string;
  readonly count: number;
  private readonly skips = new SkipTally();
  private readonly bad = new Map<number, string>(); // files known unreadable: not decoded again
  private readonly per: number;
  private ring: BatchRing | undefined;

  constructor(
    private readonly pool: DecodePool,
    private readonly list: ImageList,
    private readonly o: TrainStreamOptions,
  ) {
    this.name = list.dir;
    this.count = list.files.length;
    this.per = o.crop.channels * o.crop.height * o.crop.width;
  }

  steps(batch: number): number {
    return this.o.epochSize ?? Math.ceil(this.count / batch);
  }

  /** With a shard, only this rank's share of each batch is decoded (sample k is the same draw either way). */
  async *batches(epoch: number, batch: number, seed: number, startStep = 0, shard?: Shard): AsyncGenerator<Batch> {
    const plan = epochPlan(this.list, { epoch, seed, batch, sampling: this.o.sampling, ...(this.o.epochSize !== undefined ? { epochSize: this.o.epochSize } : {}) });
    const ring = (this.ring = ringFor(this.ring, batch, this.per, this.o.prefetch + 1, this.pool.output));
    const fill = async (step: number, slot: number): Promise<{ slot: number; n: number; total: number }> => {
      const total = Math.min(batch, plan.samples - step * batch);
      const share = shard ? rankShare(total, shard.rank, shard.size) : { first: 0, count: total };
      const first = step * batch + share.first;
      await Promise.all(Array.from({ length: share.count }, (_, i) => this.fillSample(plan, first + i, ring, slot, i)));
      return { slot, n: share.count, total };
    };
    const from = Math.min(startStep, plan.steps);
    for await (const { slot, n, total } of prefetched(plan.steps - from, ring.shared.length, (step, slot) => fill(step + from, slot))) {
      ring.copy(slot, 0, n, 0);
      ring.out.set(ring.labels[slot].subarray(0, n));
      yield { images: ring.images.subarray(0, n * this.per), labels: ring.out.subarray(0, n), count: n, ...(shard ? { total } : {}) };
    }
  }

  /** Sample k of the epoch into position i of a slot; an unreadable file is replaced from the sample's own stream. */
  private async fillSample(plan: EpochPlan, k: number, ring: BatchRing, slot: number, i: number): Promise<void> {
    const { files, labels } = this.list;
    const pick = plan.pick(k);
    let file = pick.file;
    for (let attempt = 1; ; attempt++) {
      const draws = drawCrop(pick.next);
      const known = this.bad.get(file);
      const r: DecodeResult = known !== undefined ? { ok: false, reason: known } : await this.pool.decode({ file: files[file], ...recordOf(this.list, file), mode: 'train', draws, out: ring.shared[slot], offset: i * this.per });
      if (!r.ok && r.corrupt) throw new DataLayoutError(r.reason);
      if (r.ok) {
        ring.labels[slot][i] = labels[file];
        return;
      }
      this.bad.set(file, r.reason);
      this.skips.add(files[file], r.reason);
      if (this.bad.size === files.length) throw new Error(`none of the ${files.length} images in ${this.list.dir} can be read (${files[file]}: ${r.reason})`);
      if (attempt >= MAX_ATTEMPTS) throw new Error(`${MAX_ATTEMPTS} unreadable images in a row in ${this.list.dir} (the last: ${files[file]}: ${r.reason})`);
      file = plan.replace(pick.next);
    }
  }

  takeSkipped(): SkipReport {
    return this.skips.take();
  }
}

/** Every image of a class folder once, in list order, center-cropped; unreadable files are counted and not scored. */
export class ImageFolderEvalSource implements EvalSource {
  readonly name: string;
  readonly count: number;
  private readonly skips = new SkipTally();
  private readonly warnings = new SkipTally(); // scored, but decoded past damage
  private readonly bad = new Map<number, string>();
  private readonly per: number;
  private ring: BatchRing | undefined;

  constructor(
    private readonly pool: DecodePool,
    private readonly list: ImageList,
    private readonly o: { readonly crop: Crop; readonly prefetch: number },
  ) {
    this.name = list.dir;
    this.count = list.files.length;
    this.per = o.crop.channels * o.crop.height * o.crop.width;
  }

  async *batches(batch: number): AsyncGenerator<Batch> {
    const { files, labels } = this.list;
    const ring = (this.ring = ringFor(this.ring, batch, this.per, this.o.prefetch + 1, this.pool.output));
    const fill = async (step: number, slot: number): Promise<{ slot: number; first: number; results: DecodeResult[] }> => {
      const first = step * batch;
      const n = Math.min(batch, files.length - first);
      const results = await Promise.all(
        Array.from({ length: n }, (_, i): Promise<DecodeResult> => {
          const known = this.bad.get(first + i);
          return known !== undefined ? Promise.resolve({ ok: false, reason: known }) : this.pool.decode({ file: files[first + i], ...recordOf(this.list, first + i), mode: 'eval', out: ring.shared[slot], offset: i * this.per });
        }),
      );
      return { slot, first, results };
    };
    for await (const { slot, first, results } of prefetched(Math.ceil(files.length / batch), ring.shared.length, fill)) {
      let k = 0;
      results.forEach((r, i) => {
        if (!r.ok && r.corrupt) throw new DataLayoutError(r.reason);
        if (!r.ok) {
          this.bad.set(first + i, r.reason);
          this.skips.add(files[first + i], r.reason);
          return;
        }
        if (r.warning) this.warnings.add(files[first + i], r.warning);
        ring.copy(slot, i, 1, k);
        ring.out[k++] = labels[first + i];
      });
      if (k > 0) yield { images: ring.images.subarray(0, k * this.per), labels: ring.out.subarray(0, k), count: k };
    }
  }

  takeSkipped(): SkipReport {
    return this.skips.take();
  }

  /** Images scored although the decoder warned (a bad PNG CRC …): counted, each file with its first warning. */
  takeWarnings(): SkipReport {
    return this.warnings.take();
  }
}
