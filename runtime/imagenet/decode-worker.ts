// A decode worker thread (started by decode-pool.ts): decodes and resizes an image — a file of an ImageNet
// folder with sharp, or a record of a packed dataset read from its shard at its offset, with the native
// libjpeg-turbo crop decoder where it is built and the stored size allows, else sharp — places the crop as
// donkey.lua's train or test hook would, and writes the normalised C×H×W floats (or, for a uint8 model, the
// H×W×C bytes) straight into the batch's SharedArrayBuffer; the native decoder writes a uint8 crop, flipped
// or not, into its batch slot itself, with no buffer between. Replies with where the crop was, or why the
// image could not be read.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { centerCrop, cropToBytes, cropToTensor, randomCrop, scaledSize, type CropPlacement, type Size, type Transform } from './donkey.js';
import { configureSharpForWorkers, decodeRecord, decodeRecordRegion, decodeResized, UnreadableImageError, type DecodedImage } from './decode.js';
import { nativeCropDecoder, dctScale, type NativeCropDecoder } from './decode-native.js';
import { corruptRecord, readRecord, RECORD_HEADER_BYTES, recordProblem, type RecordRef } from './pack-format.js';

export interface WorkerSetup {
  readonly imageSize: number;
  readonly crop: Size & { readonly channels: 1 | 3 };
  readonly transform: Transform;
  readonly shards?: readonly string[]; // a packed dataset's shard paths, by their place in its index
  readonly output?: 'u8'; // crops as H×W×C bytes for a uint8 model (cropToBytes); absent: normalised C×H×W floats
  readonly decoder: 'native' | 'sharp'; // for packed records (the pool chose sharp where the native one is not built)
}

export interface DecodeRequest {
  readonly id: number;
  readonly file: string;
  readonly record?: RecordRef; // read this instead of opening `file` (then only a name for messages)
  readonly out: SharedArrayBuffer;
  readonly offset: number; // in elements of the batch: floats, or bytes for output 'u8'
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
export class ShardReader {
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

  /** Names a record's place for an error: SHARD: corrupt record at byte OFFSET: why. */
  corrupt(r: RecordRef, why: string): CorruptRecordError {
    return new CorruptRecordError(corruptRecord(this.shards[r.shard] ?? `shard ${r.shard}`, r.offset, why));
  }

  /** Takes a buffer back once sharp is done with it (sharp reads its input while the decode runs). */
  release(buffer: Buffer): void {
    if (this.spare.length < 8) this.spare.push(buffer);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
  }
}

/**
 * The pixels to crop from, the crop's place in them, and where that crop lies in the whole resized image (reported back);
 * inSlot: the native decoder already wrote the crop into the batch slot it was given (img.pixels is that slot).
 */
export type Placed = { readonly img: DecodedImage; readonly placement: CropPlacement; readonly origin: CropPlacement; readonly resized: Size; readonly inSlot?: true };

function place(job: DecodeRequest, setup: WorkerSetup, image: Size): CropPlacement {
  return job.mode === 'train' ? randomCrop(image, setup.crop, job) : centerCrop(image, setup.crop);
}

/**
 * Decodes and places the crop: `img` with the crop at `placement` (a record at the model's size arrives already cut out).
 * `slot`: the batch's H×W×C bytes for this image (a uint8 model), which the native decoder fills in place.
 */
export async function decodePlaced(job: DecodeRequest, setup: WorkerSetup, reader: ShardReader | undefined, native?: NativeCropDecoder, slot?: Uint8Array): Promise<Placed> {
  if (!job.record) {
    const img = await decodeResized(job.file, setup.imageSize, setup.crop.channels);
    const placement = place(job, setup, img);
    return { img, placement, origin: placement, resized: img };
  }
  if (!reader) throw new CorruptRecordError('a packed record, but the pool has no shards');
  const stored = { width: job.record.width, height: job.record.height };
  const target = scaledSize(stored.width, stored.height, setup.imageSize);
  const { buffer, record } = reader.read(job.record);
  try {
    const jpeg = record.subarray(RECORD_HEADER_BYTES);
    const scale = native ? dctScale(stored, target) : undefined;
    if (native && scale !== undefined) {
      // libjpeg decodes just the crop (at scale/8 in the DCT domain when smaller), mirrored, into the batch slot (uint8)
      // or else the worker's bytes, synchronously: handle() normalises those before this thread takes its next message.
      const at = place(job, setup, target);
      const { width, height } = setup.crop;
      const out = slot ?? native.bytes;
      let done: boolean;
      try {
        done = native.addon.decodeCrop(jpeg, scale, target.width, target.height, at.x, at.y, width, height, at.flip, out);
      } catch (e) {
        throw reader.corrupt(job.record, e instanceof Error ? e.message : String(e));
      }
      if (done) return { img: { width, height, channels: 3, pixels: out, source: stored }, placement: { x: 0, y: 0, flip: false }, origin: at, resized: target, ...(slot ? { inSlot: true as const } : {}) };
    }
    if (target.width !== stored.width || target.height !== stored.height) {
      const img = await decodeRecord(jpeg, stored, setup.imageSize, setup.crop.channels);
      const placement = place(job, setup, img);
      return { img, placement, origin: placement, resized: img };
    }
    // Stored at the model's size: the placement is known before decoding, so only the crop is decoded out.
    const at = place(job, setup, stored);
    const img = await decodeRecordRegion(jpeg, { x: at.x, y: at.y, width: setup.crop.width, height: setup.crop.height }, setup.crop.channels);
    return { img, placement: { x: 0, y: 0, flip: at.flip }, origin: at, resized: stored };
  } finally {
    reader.release(buffer);
  }
}

async function handle(job: DecodeRequest, setup: WorkerSetup, per: number, reader: ShardReader | undefined, native: NativeCropDecoder | undefined): Promise<DecodeReply> {
  try {
    // A view of the shared batch, not a copy: the native decoder writes its crop there, cropToBytes the others.
    const slot = setup.output === 'u8' ? new Uint8Array(job.out, job.offset, per) : undefined;
    const { img, placement, origin, resized, inSlot } = await decodePlaced(job, setup, reader, native, slot);
    if (slot) {
      if (!inSlot) cropToBytes(img.pixels, img, setup.crop, placement, slot);
    } else cropToTensor(img.pixels, img, setup.crop, placement, setup.transform, new Float32Array(job.out, job.offset * 4, per));
    return { id: job.id, ok: true, x: origin.x, y: origin.y, flip: origin.flip, resized: { width: resized.width, height: resized.height }, ...(img.warning ? { warning: img.warning } : {}) };
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
  const native = setup.decoder === 'native' ? nativeCropDecoder(setup.crop) : undefined;
  configureSharpForWorkers();
  port.on('message', (job: DecodeRequest) => {
    void handle(job, setup, per, reader, native).then((reply) => port.postMessage(reply));
  });
  port.on('close', () => reader?.close());
}
