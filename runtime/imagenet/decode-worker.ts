// A decode worker thread (started by decode-pool.ts): decodes and resizes a file with sharp, places the
// crop as donkey.lua's train or test hook would, and writes the normalised C×H×W floats straight into
// the batch's SharedArrayBuffer. Replies with where the crop was, or why the file could not be read.
import { parentPort, workerData } from 'node:worker_threads';
import { centerCrop, cropToTensor, randomCrop, type Size, type Transform } from './donkey.js';
import { configureSharpForWorkers, decodeResized, UnreadableImageError } from './decode.js';

export interface WorkerSetup {
  readonly imageSize: number;
  readonly crop: Size & { readonly channels: 1 | 3 };
  readonly transform: Transform;
}

export interface DecodeRequest {
  readonly id: number;
  readonly file: string;
  readonly out: SharedArrayBuffer;
  readonly offset: number; // in floats
  readonly mode: 'train' | 'eval';
  readonly uY: number;
  readonly uX: number;
  readonly uFlip: number;
}

export type DecodeReply =
  | { readonly id: number; readonly ok: true; readonly x: number; readonly y: number; readonly flip: boolean; readonly resized: Size; readonly warning?: string }
  | { readonly id: number; readonly ok: false; readonly reason: string };

async function handle(job: DecodeRequest, setup: WorkerSetup, per: number): Promise<DecodeReply> {
  try {
    const img = await decodeResized(job.file, setup.imageSize, setup.crop.channels);
    const placement = job.mode === 'train' ? randomCrop(img, setup.crop, job) : centerCrop(img, setup.crop);
    cropToTensor(img.pixels, img, setup.crop, placement, setup.transform, new Float32Array(job.out, job.offset * 4, per));
    return { id: job.id, ok: true, x: placement.x, y: placement.y, flip: placement.flip, resized: { width: img.width, height: img.height }, ...(img.warning ? { warning: img.warning } : {}) };
  } catch (e) {
    return { id: job.id, ok: false, reason: e instanceof UnreadableImageError ? e.reason : String(e instanceof Error ? e.message : e) };
  }
}

if (parentPort) {
  const port = parentPort;
  const setup = workerData as WorkerSetup;
  const per = setup.crop.channels * setup.crop.height * setup.crop.width;
  configureSharpForWorkers();
  port.on('message', (job: DecodeRequest) => {
    void handle(job, setup, per).then((reply) => port.postMessage(reply));
  });
}
