// A pool of decode worker threads (node:worker_threads) fed from one FIFO of jobs (image files or packed
// records, the latter decoded by libjpeg-turbo where nincc_jpeg.node is built), a few jobs in flight per worker so none waits on a message round trip. An unreadable file is an answer ({ ok: false }),
// never an exception; a worker that dies fails every job it held and the pool with it.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { CropDraws, Size, Transform } from './donkey.js';
import type { DecodeReply, DecodeRequest, WorkerSetup } from './decode-worker.js';
import type { RecordRef } from './pack-format.js';
import { nativeJpeg } from './decode-native.js';

export interface DecodePoolOptions {
  readonly workers: number;
  readonly imageSize: number;
  readonly crop: Size & { readonly channels: 1 | 3 };
  readonly transform: Transform;
  /** Jobs handed to a worker before its first answer comes back (default 2; 4 for packed records decoded natively). */
  readonly depth?: number;
  /** A packed dataset's shard paths (index order), for jobs that name a record. */
  readonly shards?: readonly string[];
  /** u8: crops as H×W×C bytes for a model that takes uint8 images; absent: normalised float32 C×H×W. */
  readonly output?: 'u8';
  /** How packed records decode: 'native' (default; libjpeg-turbo, nincc_jpeg.node, where built) or 'sharp'. */
  readonly decoder?: 'native' | 'sharp';
}

export interface DecodeJob {
  readonly file: string;
  readonly record?: RecordRef; // a packed image: read from its shard (`file` then only names it in messages)
  readonly mode: 'train' | 'eval';
  readonly draws?: CropDraws; // train mode
  readonly out: SharedArrayBuffer;
  readonly offset: number; // in elements of the batch: floats, or bytes for output 'u8'
}

export type DecodeResult = DistributiveOmit<DecodeReply, 'id'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  readonly request: DecodeRequest;
  readonly resolve: (r: DecodeResult) => void;
  readonly reject: (e: Error) => void;
}

/** A default that leaves one core to the training loop. */
export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(16, availableParallelism() - 1));
}

/**
 * The compiled worker script. Beside this module in dist/; when this module runs from its .ts
 * source (vitest), the compiled copy under dist/ — workers cannot load TypeScript.
 */
function workerScript(): URL {
  const here = new URL('./decode-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const compiled = new URL('../../dist/runtime/imagenet/decode-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return compiled;
  throw new Error(`the decode worker ${fileURLToPath(compiled)} is not built: run 'npx tsc -p tsconfig.json'`);
}

let saidNoNativeJpeg = false;

/** 'native' when asked for and built; else 'sharp', with a one-line note (once per process) when native was asked for. */
function packedDecoder(o: DecodePoolOptions): 'native' | 'sharp' {
  if (o.decoder === 'sharp') return 'sharp';
  const native = nativeJpeg();
  if (native.ok) return 'native';
  if (o.shards && !saidNoNativeJpeg) {
    saidNoNativeJpeg = true;
    process.stderr.write(`nincc: packed records decode with sharp: ${native.why}\n`);
  }
  return 'sharp';
}

export class DecodePool {
  readonly size: number;
  /** The element type of the batches the workers write (DecodePoolOptions.output). */
  readonly output: 'f32' | 'u8';
  /** How this pool decodes packed records. */
  readonly decoder: 'native' | 'sharp';
  private readonly workers: Worker[] = [];
  private readonly busy: Map<number, Pending>[] = [];
  private readonly queue: Pending[] = [];
  private readonly depth: number;
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;

  constructor(o: DecodePoolOptions) {
    if (!Number.isInteger(o.workers) || o.workers < 1) throw new RangeError(`workers must be a positive integer, got ${o.workers}`);
    this.size = o.workers;
    this.decoder = packedDecoder(o);
    // A native decode runs on the worker's own thread and takes ~0.5 ms: with only 2 jobs in hand the worker
    // idles whenever the main thread is slow to send the next (measured on the loaded 2-core VM, 2 workers,
    // batch 64: 297–335 img/s at depth 2, 469–587 at 4, 482–511 at 8).
    this.depth = o.depth ?? (this.decoder === 'native' && o.shards ? 4 : 2);
    this.output = o.output ?? 'f32';
    // sharp decodes on libuv's thread pool (4 threads unless told otherwise), shared with the native
    // training step: room for every job in flight plus two spare threads, so a train step never
    // queues behind decodes. The pool starts on first use, so this only counts when nothing used it yet.
    process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, o.workers * this.depth + 2));
    const setup: WorkerSetup = { imageSize: o.imageSize, crop: o.crop, transform: { mean: [...o.transform.mean], std: [...o.transform.std] }, decoder: this.decoder, ...(o.shards ? { shards: [...o.shards] } : {}), ...(o.output ? { output: o.output } : {}) };
    const script = workerScript();
    for (let w = 0; w < o.workers; w++) {
      const worker = new Worker(script, { workerData: setup });
      const held = new Map<number, Pending>();
      worker.on('message', (reply: DecodeReply) => {
        const p = held.get(reply.id);
        if (!p) return;
        held.delete(reply.id);
        const { id: _id, ...result } = reply;
        p.resolve(result as DecodeResult);
        this.dispatch();
      });
      const die = (why: string) => {
        if (this.closed) return;
        this.fail(new Error(`decode worker ${w + 1} of ${o.workers} ${why}`));
      };
      worker.on('error', (e) => die(`failed: ${e.message}`));
      worker.on('exit', (code) => die(`exited with code ${code}`));
      this.workers.push(worker);
      this.busy.push(held);
    }
  }

  /** Decodes one file into `out` at `offset`; resolves with the crop's placement or the reason the file is unreadable. */
  decode(job: DecodeJob): Promise<DecodeResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('the decode pool is closed'));
    const d = job.draws ?? { uY: 0, uX: 0, uFlip: 0 };
    const request: DecodeRequest = { id: this.nextId++, file: job.file, ...(job.record ? { record: job.record } : {}), out: job.out, offset: job.offset, mode: job.mode, uY: d.uY, uX: d.uX, uFlip: d.uFlip };
    return new Promise<DecodeResult>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // The least busy worker; ties to the lowest index, so a lone job always goes to worker 1.
      let best = -1;
      for (let w = 0; w < this.workers.length; w++) {
        if (this.busy[w].size < this.depth && (best < 0 || this.busy[w].size < this.busy[best].size)) best = w;
      }
      if (best < 0) return;
      const p = this.queue.shift()!;
      this.busy[best].set(p.request.id, p);
      this.workers[best].postMessage(p.request);
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const held of this.busy) {
      for (const p of held.values()) p.reject(e);
      held.clear();
    }
    for (const p of this.queue.splice(0)) p.reject(e);
    void this.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new Error('the decode pool was closed');
    for (const p of this.queue.splice(0)) p.reject(gone);
    for (const held of this.busy) {
      for (const p of held.values()) p.reject(gone);
      held.clear();
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
