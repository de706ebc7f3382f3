// One data-parallel training step over a Communicator, and the checks that keep ranks identical.
// Every rank holds the same weights and sees the same global batch; it trains on its share (runtime/distributed/
// shard.ts), its gradients are weighted by its share of the batch and summed across ranks bucket by
// bucket (by the runtime, on the arena, while backward still runs: runtime/core/gradient_reducer.h),
// the BN running statistics likewise, and then each rank applies the same SGD update.
// See docs/distributed.md for why the batch is split rather than multiplied.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Batch } from '../dataset.js';
import type { Model, TrainStepOptions } from '../model.js';
import type { NativeReduce } from '../native.js';
import type { ReduceBackend } from './backend.js';
import type { Communicator } from './communicator.js';
import { gradientBuckets, rankShare, type Bucket } from './shard.js';

/** Default bucket: 1 Mi floats (4 MiB), the size PyTorch DDP's first buckets have. */
export const DEFAULT_BUCKET_ELEMENTS = 1 << 20;

export class DistributedError extends Error {}

export interface DataParallel {
  readonly comm: Communicator;
  /** Compare a digest of every rank's weights after every `checkEvery` steps (0: only at epoch ends). */
  readonly checkEvery: number;
  readonly bucketElements?: number;
  /** Reduce buckets while backward still runs (default true); false: after it. The results are bitwise the same. */
  readonly overlap?: boolean;
  /** What sums the gradients (runtime/distributed/backend.ts openBackend); default mpi. */
  readonly backend?: ReduceBackend;
}

/** What a step adds to the epoch's running sums, over the whole global batch. */
export interface StepTally {
  readonly lossSum: number;
  readonly correct: number;
  readonly count: number;
  /** Some rank was asked to stop (SIGINT): all stop after this step, together. */
  readonly stop: boolean;
}

export function countCorrect(output: Float32Array, labels: Int32Array, n: number): number {
  const classes = output.length / n;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = output.subarray(i * classes, (i + 1) * classes);
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    if (best === labels[i]) correct++;
  }
  return correct;
}

/** This rank's share of a global batch, as views. */
export function shardOf(b: Batch, rank: number, size: number): Batch {
  const per = b.images.length / b.count;
  const s = rankShare(b.count, rank, size);
  return { images: b.images.subarray(s.first * per, (s.first + s.count) * per), labels: b.labels.subarray(s.first, s.first + s.count), count: s.count };
}

/**
 * What the runtime's reducer does on a rank that trained on no image of this batch (weight 0): its
 * zeros summed into every bucket, then its zero share of the statistics — the same collectives, in
 * the same order, as the ranks that ran backward make.
 */
export function reduceZeros(model: Model, comm: Communicator, buckets: readonly Bucket[]): void {
  for (const b of buckets) {
    const g = new Float32Array(b.size);
    comm.allreduceSum(g);
    model.writeSpace('grad', b.offset, g);
  }
  const size = model.info.spaces.state;
  if (size === 0) return;
  const s = new Float32Array(size);
  comm.allreduceSum(s);
  model.writeSpace('state', 0, s);
}

/** The runtime's reduction of this step: the buckets' ranges in order, with this rank's weight. */
export function nativeReduce(buckets: readonly Bucket[], weight: number, overlap: boolean, backend: ReduceBackend = 'mpi'): NativeReduce {
  return { backend, buckets: Float64Array.from(buckets.flatMap((b) => [b.offset, b.size])), weight, overlap, state: true };
}

/**
 * A data-parallel step: forward/backward on this rank's share of a global batch (or on the share
 * given), with the gradients (weighted by the share: the gradient of the mean loss over the global
 * batch) and statistics summed over all ranks, then the SGD update.
 */
export async function dataParallelStep(model: Model, dp: DataParallel, b: Batch, hyper: TrainStepOptions, stopRequested: boolean, buckets: readonly Bucket[]): Promise<StepTally> {
  const { comm } = dp;
  // A sharded source gave this rank's share already; any other source gave the whole global batch.
  const mine = b.total !== undefined ? b : shardOf(b, comm.rank, comm.size);
  const weight = mine.count / (b.total ?? b.count);
  let lossSum = 0;
  let correct = 0;
  if (mine.count > 0) {
    const r = await model.forwardBackward(mine.images, mine.labels, nativeReduce(buckets, weight, dp.overlap ?? true, dp.backend));
    lossSum = r.loss * mine.count;
    correct = countCorrect(r.output, mine.labels, mine.count);
  } else if ((dp.backend ?? 'mpi') === 'mpi') {
    reduceZeros(model, comm, buckets);
  } else {
    // The other ranks wait in NCCL collectives that only a run of backward makes on this rank.
    throw new DistributedError(`rank ${comm.rank} has no image of a batch of ${b.total ?? b.count} (the epoch's last, partial one): with NCCL every rank needs at least one; pick a --batch or --limit whose last batch has at least ${comm.size} images`);
  }
  await model.update(hyper);
  const tally = new Float64Array([lossSum, correct, mine.count, stopRequested ? 1 : 0]);
  comm.allreduceSum(tally);
  return { lossSum: tally[0], correct: tally[1], count: tally[2], stop: tally[3] > 0 };
}

export function bucketsOf(model: Model, dp: DataParallel): Bucket[] {
  return gradientBuckets(model.info.params, dp.bucketElements ?? DEFAULT_BUCKET_ELEMENTS);
}

/** SHA-256 of the weights, momentum and running statistics: what must be bitwise equal on every rank. */
export function weightsDigest(model: Model): Uint8Array {
  const h = createHash('sha256');
  for (const space of ['param', 'momentum', 'state'] as const) {
    const n = model.info.spaces[space];
    if (n > 0) h.update(model.readSpace(space, 0, n));
  }
  return new Uint8Array(h.digest());
}

/** SHA-256 of what defines the computation: plan.json (which records the kernel libraries' hashes) and the source hash. */
export async function artifactDigest(model: Model): Promise<Uint8Array> {
  const h = createHash('sha256');
  h.update(await readFile(join(model.dir, 'plan.json')));
  h.update(model.info.sourceHash);
  h.update(model.device);
  return new Uint8Array(h.digest());
}

/** The ranks whose digest differs from rank 0's. */
export function ranksDiffering(digests: readonly Uint8Array[]): number[] {
  const first = Buffer.from(digests[0]);
  return digests.flatMap((d, r) => (first.equals(Buffer.from(d)) ? [] : [r]));
}

function ranksList(ranks: readonly number[]): string {
  return ranks.length === 1 ? `rank ${ranks[0]}` : `ranks ${ranks.join(', ')}`;
}

/** "rank 1 holds" / "ranks 1, 3 hold". */
function ranksDo(ranks: readonly number[], singular: string, plural: string): string {
  return `${ranksList(ranks)} ${ranks.length === 1 ? singular : plural}`;
}

/** At the start: refuse a rank whose artifact, or (after init or resume) weights, differ from rank 0's. */
export async function checkSameStart(model: Model, comm: Communicator, settings: string): Promise<void> {
  const h = createHash('sha256').update(settings).digest();
  const mine = new Uint8Array([...(await artifactDigest(model)), ...h, ...weightsDigest(model)]);
  const all = comm.allgather(mine);
  const part = (d: Uint8Array, i: number) => d.subarray(32 * i, 32 * (i + 1));
  const artifact = ranksDiffering(all.map((d) => part(d, 0)));
  if (artifact.length > 0) throw new DistributedError(`${ranksDo(artifact, 'loaded', 'loaded')} a different artifact (plan.json, kernels or source) than rank 0: every rank must run the same build (this rank's: ${model.dir})`);
  const options = ranksDiffering(all.map((d) => part(d, 1)));
  if (options.length > 0) throw new DistributedError(`${ranksDo(options, 'got', 'got')} different training options (batch, epochs, seed, data, resume) than rank 0: every rank must get the same command line`);
  const weights = ranksDiffering(all.map((d) => part(d, 2)));
  if (weights.length > 0) throw new DistributedError(`${ranksDo(weights, 'starts', 'start')} from different weights than rank 0 (a different --seed, or a different checkpoint read on --resume): refused`);
}

/** After a step: every rank's weights must still be bitwise rank 0's. */
export function checkInSync(model: Model, comm: Communicator, where: string): void {
  const differing = ranksDiffering(comm.allgather(weightsDigest(model)));
  if (differing.length > 0) throw new DistributedError(`${ranksDo(differing, 'holds', 'hold')} different weights from rank 0 after ${where}: the ranks diverged`);
}
