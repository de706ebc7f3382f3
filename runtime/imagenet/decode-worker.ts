// A decode worker thread (started by decode-pool.ts): decodes and resizes an image with sharp — a file of an
// ImageNet folder, or a record of a packed dataset read from its shard at its offset — places the crop as
// donkey.lua's train or test hook would, and writes the normalised C×H×W floats straight into the batch's
// SharedArrayBuffer. Replies with where the crop was, or why the image could not be read.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { centerCrop, cropToTensor, randomCrop, type Size, type Transform } from './donkey.js';
import { configureSharpForWorkers, decodeRecord, decodeResized, UnreadableImageError, type DecodedImage } from './decode.js';
import { corruptRecord, readRecord, RECORD_HEADER_BYTES, recordProblem, type RecordRef } from './pack-format.js';

export interface WorkerSetup {
  readonly imageSize: number;
  readonly crop: Size & { readonly channels: 1 | 3 };
  readonly transform: Transform;
  readonly shards?: readonly string[]; // a packed dataset's shard paths, by their place in its index
}

export interface DecodeRequest {
  readonly id: number;
  readonly file: string;
  readonly record?: RecordRef; // read this instead of opening `file` (then only a name for messages)
  readonly out: SharedArrayBuffer;
  readonly offset: number; // in floats
  readonly mode: 'train' | 'eval';
  readonly uY: number;
  readonly uX: number;
  readonly uFlip: number;
}

export type DecodeReply =
  | { readonly id: number; readonly ok: true; readonly x: number; readonly y: number; readonly flip: boolean; readonly resized: Size; readonly warning?: string }
  | { readonly id: number; readonly ok: false; readonly reason: string; readonly corrupt?: true };

/** A record that fails its checks: not a bad photo to skip, but a damaged dataset to stop on. */
class CorruptRecordError extends Error {}

/** The open shards (one descriptor each, kept for the worker's life) and spare read buffers, reused across images. */
class ShardReader {
  private readonly fds = new Map<number, number>();
  private readonly spare: Buffer[] = [];

  constructor(private readonly shards: readonly string[]) {}

  /** The record checked, in a buffer of the reader's own (give it back with release once decoded). */
  read(r: RecordRef): { readonly buffer: Buffer; readonly record: Buffer } {
    const path = this.shards[r.shard];
    if (path === undefined) throw new CorruptRecordError(`record names shard ${r.shard} of ${this.shards.length}`);
    let fd = this.fds.get(r.shard);
    if (fd === undefined) this.fds.set(r.shard, (fd = openSync(path, 'r')));
    let buffer = this.spare.pop();
    // allocUnsafeSlow: never a slice of Node's shared pool, so reusing it cannot overwrite anyone else's bytes.
    if (!buffer || buffer.length < RECORD_HEADER_BYTES + r.length) buffer = Buffer.allocUnsafeSlow(Math.max(RECORD_HEADER_BYTES + r.length, 1 << 16));
    const record = readRecord(fd, r.offset, r.length, buffer);
    const why = recordProblem(record, r.length, r.width, r.height);
    if (why) {
      this.release(buffer);
      throw new CorruptRecordError(corruptRecord(path, r.offset, why));
    }
    return { buffer, record };
  }

  /** Takes a buffer back once sharp is done with it (sharp reads its input while the decode runs). */
  release(buffer: Buffer): void {
    if (this.spare.length < 8) this.spare.push(buffer);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
  }
}

async function decodeJob(job: DecodeRequest, setup: WorkerSetup, reader: ShardReader | undefined): Promise<DecodedImage> {
  if (!job.record) return decodeResized(job.file, setup.imageSize, setup.crop.channels);
  if (!reader) throw new CorruptRecordError('a packed record, but the pool has no shards');
  const { buffer, record } = reader.read(job.record);
  try {
    return await decodeRecord(record.subarray(RECORD_HEADER_BYTES), job.record, setup.imageSize, setup.crop.channels);
  } finally {
    reader.release(buffer);
  }
}

async function handle(job: DecodeRequest, setup: WorkerSetup, per: number, reader: ShardReader | undefined): Promise<DecodeReply> {
  try {
    const img = await decodeJob(job, setup, reader);
    const placement = job.mode === 'train' ? randomCrop(img, setup.crop, job) : centerCrop(img, setup.crop);
    cropToTensor(img.pixels, img, setup.crop, placement, setup.transform, new Float32Array(job.out, job.offset * 4, per));
    return { id: job.id, ok: true, x: placement.x, y: placement.y, flip: placement.flip, resized: { width: img.width, height: img.height }, ...(img.warning ? { warning: img.warning } : {}) };
  } catch (e) {
    if (e instanceof CorruptRecordError) return { id: job.id, ok: false, reason: e.message, corrupt: true };
    return { id: job.id, ok: false, reason: e instanceof UnreadableImageError ? e.reason : String(e instanceof Error ? e.message : e) };
  }
}

if (parentPort) {
  const port = parentPort;
  const setup = workerData as WorkerSetup;
  const per = setup.crop.channels * setup.crop.height * setup.crop.width;
  const reader = setup.shards ? new ShardReader(setup.shards) : undefined;
  configureSharpForWorkers();
  port.on('message', (job: DecodeRequest) => {
    void handle(job, setup, per, reader).then((reply) => port.postMessage(reply));
  });
  port.on('close', () => reader?.close());
}
