// The public runtime API (docs/design.md §1): load an artifact, infer, trainStep, evaluate, save/loadWeights.
// Validates every argument so that a mistake is a clear JS error, never a crash in native code.
// A model runs one call at a time: asynchronous calls queue behind each other in call order (the
// arena is one set of buffers), and dispose() waits for the queue to drain.
import type { Plan } from '../compiler/emit/plan.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, fromNative, InvalidArgumentError, NinccError, OutOfRangeError } from './errors.js';
import { hostCpuFlags, missingCpuFeatures } from './cpu-features.js';
import { initialValues } from './init.js';
import { writeFileAtomic } from './io/atomic-write.js';
import { decodeSafetensors, encodeSafetensorsChunks, type SafeTensor } from './io/safetensors.js';
import { loadNative, type NativeModel, type NativeReduce, type NativeModelInfo, type NativeTensorInfo } from './native.js';
import { ScoreTally, type Scores } from './scoring.js';

export type Device = 'cpu' | 'cuda' | 'emu';

export interface LoadOptions {
  readonly device?: Device;
  /** Seed for Torch7-rule parameter init (default 1), used unless `weights` is given. */
  readonly seed?: number;
  /** A safetensors checkpoint to load after init. */
  readonly weights?: string;
}

/** Every field defaults from the spec's train block: its first regime row's lr and wd, its optimizer momentum (else 0.9). */
export interface TrainStepOptions {
  readonly lr?: number;
  readonly weightDecay?: number;
  readonly momentum?: number;
}

/** What plan.json records beyond the native info: the spec's train block, transform and image size. */
/** The fields of plan.json this class reads (the plan's one schema is compiler/emit/plan.ts). */
export type PlanExtras = Pick<Plan, 'untrainable' | 'train' | 'transform' | 'imageSize' | 'cpuFeatures' | 'imageInput'> & {
  readonly programs?: { readonly infer?: Pick<Plan['programs'][string], 'inlineMaxBatch'> };
};

import type { Images } from './dataset.js';
export type { Images };

/**
 * `count` synthetic images for `model` (benchmarks, profiles): values wave(i) in [−1, 1] as float32, or, for
 * an artifact that takes uint8 images (plan.json imageInput), the same wave as bytes 0…255.
 */
export function syntheticImages(model: Model, count: number, wave: (i: number) => number): Images {
  const n = count * model.imageElements;
  if (model.plan.imageInput) return Uint8Array.from({ length: n }, (_, i) => Math.round((wave(i) + 1) * 127.5));
  return Float32Array.from({ length: n }, (_, i) => wave(i));
}

export interface Evaluation {
  readonly top1: number; // fractions in [0, 1]
  readonly top5: number;
  readonly loss: number; // mean NLL, when the output is log-probabilities
  readonly count: number;
}

/** Checkpoint metadata (safetensors __metadata__ is a string map). */
export type CheckpointMeta = Record<string, string>;

/** The arena spaces whose whole contents training owns: parameters, their gradients and momentum, BN running statistics. */
export type TrainingSpace = 'param' | 'grad' | 'momentum' | 'state';
const TRAINING_SPACES: readonly TrainingSpace[] = ['param', 'grad', 'momentum', 'state'];

export const CHECKPOINT_FORMAT = 'nincc-checkpoint-1';

/** The program that converts the weights to the training's bf16 copies, in builds whose SGD update rewrites them (compiler/lower/sgd-weight-copies.ts WEIGHT_COPIES_PROGRAM). */
const WEIGHT_COPIES_PROGRAM = 'train_weight_copies';

export class Model {
  readonly info: NativeModelInfo;
  readonly dir: string;
  readonly plan: PlanExtras;
  private native: NativeModel | undefined;
  private disposing = false; // set by dispose(): calls made after it are refused
  private queue: Promise<unknown> = Promise.resolve(); // settles when the last queued call has
  private pending = 0; // queued or running asynchronous calls
  private foldedStale = true; // inference weights must be refolded after any parameter change
  private weightCopiesStale = true; // the training's bf16 weight copies must be rewritten (plan's train_weight_copies) after a parameter write other than the SGD update's
  private freshOptimizer = true; // the next update starts the momentum buffers from the gradient
  private prefetched: { program: string; images: Images }[] = []; // what prefetch() staged, oldest first
  private discardsQueued = 0; // discardPrefetched() calls not yet settled: prefetch() is refused meanwhile
  private stepSeed = 0;

  private constructor(dir: string, native: NativeModel, plan: PlanExtras) {
    this.dir = dir;
    this.native = native;
    this.info = native.info();
    this.plan = plan;
  }

  static async load(dir: string, options?: LoadOptions | null): Promise<Model> {
    if (typeof dir !== 'string' || dir === '') throw new InvalidArgumentError(`load: dir must be an artifact directory (a non-empty string), got ${describe(dir)}`);
    const o = optionsObject(options, 'load', 'options');
    const device = o.device ?? 'cpu';
    if (!['cpu', 'cuda', 'emu'].includes(device)) throw new InvalidArgumentError(`load: device must be 'cpu', 'cuda' or 'emu', got ${JSON.stringify(device)}`);
    const seed = o.seed ?? 1;
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) throw new InvalidArgumentError(`load: seed must be a non-negative integer, got ${describe(seed)}`);
    if (o.weights !== undefined && typeof o.weights !== 'string') throw new InvalidArgumentError(`load: weights must be a file path (a string), got ${describe(o.weights)}`);
    let planText: string;
    try {
      planText = await readFile(join(dir, 'plan.json'), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new NinccError(ErrorCodes.runtime, code === 'ENOENT' || code === 'ENOTDIR' ? `${dir}: not an artifact directory (no plan.json); build one with 'nincc build SPEC -o DIR'` : `${dir}/plan.json: ${(e as Error).message}`, { cause: e });
    }
    const plan = JSON.parse(planText) as PlanExtras;
    if (device === 'cpu') checkCpuFeatures(dir, plan.cpuFeatures);
    let addon;
    try {
      addon = loadNative();
    } catch (e) {
      throw new NinccError(ErrorCodes.addon, (e as Error).message, { cause: e });
    }
    let native: NativeModel;
    try {
      native = addon.load(dir, device);
    } catch (e) {
      throw fromNative(e);
    }
    const m = new Model(dir, native, plan);
    m.initialize(seed, true);
    if (o.weights !== undefined) {
      try {
        await m.loadWeights(o.weights);
      } catch (e) {
        await m.dispose();
        throw e;
      }
    }
    return m;
  }

  /**
   * Runs `call` after every call queued before it. The promise of a call that fails rejects; the
   * queue goes on. Calls made after dispose() reject at once.
   */
  private enqueue<T>(what: string, call: (native: NativeModel) => Promise<T>): Promise<T> {
    if (this.disposing) return Promise.reject(disposedError(what));
    this.pending++;
    const run = this.queue.then(async () => {
      try {
        return await call(this.handle(what));
      } catch (e) {
        throw fromNative(e);
      } finally {
        this.pending--;
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  get device(): string {
    return this.info.device;
  }
  get maxBatch(): number {
    return this.info.maxBatch;
  }
  get imageElements(): number {
    return this.info.input.reduce((a, b) => a * b, 1);
  }
  get outputElements(): number {
    return this.info.output.reduce((a, b) => a * b, 1);
  }
  get trainable(): boolean {
    return 'train_forward_backward' in this.info.programs;
  }

  private handle(what: string): NativeModel {
    if (!this.native) throw disposedError(what);
    return this.native;
  }

  /** The native model for a synchronous call: refused while an asynchronous call is queued or running. */
  private idleHandle(what: string): NativeModel {
    if (this.disposing) throw disposedError(what);
    if (this.pending > 0) throw new NinccError(ErrorCodes.busy, `${what}: ${this.pending} asynchronous call${this.pending === 1 ? ' is' : 's are'} queued or running on this model; await ${this.pending === 1 ? 'it' : 'them'} first`);
    return this.handle(what);
  }

  /** Torch7-rule init of every parameter, and running stats (mean 0, var 1); resets the optimizer. */
  initParameters(seed: number): void {
    this.initialize(seed, false);
  }

  private initialize(seed: number, momentumZeroed: boolean): void {
    if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0) throw new InvalidArgumentError(`initParameters: seed must be a non-negative integer, got ${describe(seed)}`);
    const native = this.idleHandle('initParameters');
    for (const p of this.info.params) native.write('param', p.offset, initialValues(p, seed));
    for (const s of this.info.state) native.write('state', s.offset, initialValues(s, seed));
    // A fresh arena is zero-filled (the device contract): at load, writing zeros again would only
    // fault in every page of the momentum space (load of nin-fashion: 11.8 ms with it, 8.2 without).
    if (!momentumZeroed) native.write('momentum', 0, new Float32Array(this.info.spaces.param));
    this.weightsWritten();
    this.freshOptimizer = true;
    this.stepSeed = seed;
  }

  private checkBatch(n: number, what: string): void {
    if (!Number.isInteger(n) || n < 1) throw new OutOfRangeError(`${what}: the batch size must be a positive integer, got ${n}`);
    if (n > this.maxBatch) throw new OutOfRangeError(`${what}: batch ${n} is over the maximum ${this.maxBatch} this artifact was built for (rebuild with --max-batch ${n})`);
  }

  private checkImages(images: unknown, what: string): number {
    const [C, H, W] = this.info.input;
    if (this.plan.imageInput) {
      // uint8 artifacts take exactly the pixels the loader crops: no float batch is converted behind the caller's back.
      if (!(images instanceof Uint8Array)) throw new InvalidArgumentError(`${what}: this artifact takes uint8 images (plan.json imageInput): pass a Uint8Array (N×${H}×${W}×${C}, NHWC), got ${describe(images)}`);
      const bytes = this.imageElements;
      if (images.length === 0 || images.length % bytes !== 0) {
        throw new OutOfRangeError(`${what}: images has ${images.length} bytes, not a whole number of ${H}×${W}×${C} images (${bytes} bytes each)`);
      }
      return images.length / bytes;
    }
    if (!(images instanceof Float32Array)) throw new InvalidArgumentError(`${what}: images must be a Float32Array (N×${this.info.input.join('×')}, NCHW), got ${describe(images)}`);
    const per = this.imageElements;
    if (images.length === 0 || images.length % per !== 0) {
      throw new OutOfRangeError(`${what}: images has ${images.length} floats, not a whole number of ${this.info.input.join('×')} images (${per} floats each)`);
    }
    for (let i = 0; i < images.length; i++) {
      if (!Number.isFinite(images[i])) throw new OutOfRangeError(`${what}: images[${i}] is ${images[i]} (image ${Math.floor(i / per)})`);
    }
    return images.length / per;
  }

  private checkLabels(labels: unknown, n: number, what: string): Int32Array {
    const arr = labels instanceof Int32Array ? labels : Array.isArray(labels) ? Int32Array.from(labels as number[]) : undefined;
    if (!arr) throw new InvalidArgumentError(`${what}: labels must be an Int32Array or an array of integers, got ${describe(labels)}`);
    if (arr.length !== n) throw new OutOfRangeError(`${what}: ${arr.length} labels for ${n} images`);
    const classes = this.info.classes;
    for (let i = 0; i < n; i++) {
      const v = Array.isArray(labels) ? (labels as number[])[i] : arr[i];
      if (!Number.isInteger(v) || v < 0 || v >= classes) throw new OutOfRangeError(`${what}: labels[${i}] is ${v}, outside 0..${classes - 1}`);
    }
    return arr;
  }

  /**
   * Network output (log-probabilities for NIN) in eval mode: BN uses running statistics. Calls may
   * overlap: each waits for the ones before it. `images` is read when the call runs, so leave it
   * unchanged until the promise settles.
   */
  async infer(images: Images, n?: number): Promise<Float32Array> {
    const count = this.checkImages(images, 'infer');
    if (n !== undefined && n !== count) throw new OutOfRangeError(`infer: n is ${n} but images holds ${count} images`);
    return this.enqueue('infer', (native) => this.inferQueued(native, images, count));
  }

  private async inferQueued(native: NativeModel, images: Images, count: number): Promise<Float32Array> {
    if (this.foldedStale) {
      await native.run('prepare_infer', 1, {}, 0);
      this.foldedStale = false;
    }
    // One chunk: getOutput's fresh array is the result (one copy in, one copy out, nothing else allocated).
    if (count <= this.maxBatch) return this.inferChunk(native, images, count);
    const per = this.imageElements;
    const out = new Float32Array(count * this.outputElements);
    for (let start = 0; start < count; start += this.maxBatch) {
      const k = Math.min(this.maxBatch, count - start);
      out.set(await this.inferChunk(native, images.subarray(start * per, (start + k) * per), k), start * this.outputElements);
    }
    return out;
  }

  /** The infer program on k ≤ maxBatch images; its output copied out of the arena. */
  private async inferChunk(native: NativeModel, images: Images, k: number): Promise<Float32Array> {
    if (!this.takesPrefetched('infer', images)) native.setInput('infer', 'images', images, k);
    // A call small enough (the compiler's inlineMaxBatch, schedule/cpu-region-inline-call.ts) runs on this thread: no hop to a worker.
    if (this.info.device === 'cpu' && k <= (this.plan.programs?.infer?.inlineMaxBatch ?? 0)) native.runInline('infer', k, {}, 0);
    else await native.run('infer', k, {}, 0);
    return native.getOutput('infer', 'output', k) as Float32Array;
  }

  /**
   * Forward + backward in training mode; gradients land in the grad space. With `reduce` (data-parallel
   * training, runtime/distributed/data-parallel.ts) they are then summed across ranks by the runtime.
   */
  async forwardBackward(images: Images, labels: Int32Array | readonly number[], reduce?: NativeReduce): Promise<{ loss: number; output: Float32Array }> {
    const { n, l } = this.checkTrainingBatch(images, labels, 'forwardBackward');
    return this.enqueue('forwardBackward', (native) => this.forwardBackwardQueued(native, images, l, n, reduce));
  }

  private checkTrainingBatch(images: unknown, labels: unknown, what: string): { n: number; l: Int32Array } {
    if (!this.trainable) throw new NinccError(ErrorCodes.notTrainable, `${what}: ${this.dir} has no training programs (${this.plan.untrainable ?? 'training with nll needs a model that ends in logsoftmax'})`);
    const n = this.checkImages(images, what);
    this.checkBatch(n, what);
    return { n, l: this.checkLabels(labels, n, what) };
  }

  /**
   * Hands over the batch of a later step now, even while a step runs: on cuda its host→device copy then
   * overlaps that step (docs/design.md#staged-input). With labels, the batch of the next trainStep or
   * forwardBackward on these same `images`; without, of the next infer or evaluate on them (at most
   * maxBatch images). At most two batches are prefetched and not yet run; the arrays may be reused when it
   * returns.
   */
  prefetch(images: Images, labels?: Int32Array | readonly number[]): void {
    const training = labels !== undefined ? this.checkTrainingBatch(images, labels, 'prefetch') : undefined;
    const n = training?.n ?? this.checkImages(images, 'prefetch');
    this.checkBatch(n, 'prefetch');
    const program = training ? 'train_forward_backward' : 'infer';
    if (this.disposing) throw disposedError('prefetch');
    // A queued discard would drop this batch too, and the caller may already be reusing its arrays.
    if (this.discardsQueued > 0) throw new NinccError(ErrorCodes.busy, 'prefetch: a discardPrefetched() call is queued on this model and would drop this batch; await it first');
    try {
      this.handle('prefetch').stageInputs(program, n, training ? { images, labels: training.l } : { images });
    } catch (e) {
      throw fromNative(e);
    }
    this.prefetched.push({ program, images });
  }

  /**
   * Drops the batches prefetch() staged that no call has taken, once the calls queued before it have run
   * (they take theirs first); resolves to how many it dropped. For a loop that stops with its next batch
   * staged (the training and evaluation loops call it on every way out): without it the model's next call
   * on other images would be refused, and one on the same array would run on the staged contents.
   * prefetch() is refused until it has run.
   */
  async discardPrefetched(): Promise<number> {
    this.discardsQueued++;
    try {
      return await this.enqueue('discardPrefetched', async (native) => {
        this.prefetched = [];
        return native.discardStaged();
      });
    } finally {
      this.discardsQueued--;
    }
  }

  /** Whether the run of `program` on `images` takes the batch prefetched first (else it sets its inputs). */
  private takesPrefetched(program: string, images: Images): boolean {
    const first = this.prefetched[0];
    if (!first || first.program !== program) return false;
    if (first.images !== images) {
      throw new InvalidArgumentError(`${program === 'infer' ? 'an inference' : 'a training step'} got other images than the batch prefetch() staged first (${this.prefetched.length} staged): run the batches in the order they were prefetched`);
    }
    this.prefetched.shift();
    return true;
  }

  private async forwardBackwardQueued(native: NativeModel, images: Images, l: Int32Array, n: number, reduce?: NativeReduce): Promise<{ loss: number; output: Float32Array }> {
    // The SGD update keeps the bf16 copies true; any other write of the weights leaves them to be converted once here.
    if (this.weightCopiesStale && WEIGHT_COPIES_PROGRAM in this.info.programs) await native.run(WEIGHT_COPIES_PROGRAM, 1, {}, 0);
    this.weightCopiesStale = false;
    if (!this.takesPrefetched('train_forward_backward', images)) {
      native.setInput('train_forward_backward', 'images', images, n);
      native.setInput('train_forward_backward', 'labels', l, n);
    }
    this.stepSeed = (this.stepSeed + 1) >>> 0;
    await native.run('train_forward_backward', n, {}, this.stepSeed, reduce);
    this.foldedStale = true; // running statistics moved
    const loss = (native.getOutput('train_forward_backward', 'loss', n) as Float32Array)[0];
    return { loss, output: native.getOutput('train_forward_backward', 'output', n) as Float32Array };
  }

  /** One SGD step (torch/optim semantics, docs/design.md §3); options default from the spec's train block. */
  async trainStep(images: Images, labels: Int32Array | readonly number[], options?: TrainStepOptions | null): Promise<{ loss: number; output: Float32Array }> {
    const hyper = this.sgdOptions(options, 'trainStep');
    const { n, l } = this.checkTrainingBatch(images, labels, 'trainStep');
    return this.enqueue('trainStep', async (native) => {
      const r = await this.forwardBackwardQueued(native, images, l, n);
      await this.sgdQueued(native, hyper);
      return r;
    });
  }

  /**
   * The SGD step of trainStep alone, from whatever the grad space holds: after forwardBackward and a
   * change of the gradients in between (data-parallel training sums them across ranks first).
   */
  async update(options?: TrainStepOptions | null): Promise<void> {
    const hyper = this.sgdOptions(options, 'update');
    if (!this.trainable) throw new NinccError(ErrorCodes.notTrainable, `update: ${this.dir} has no training programs`);
    return this.enqueue('update', (native) => this.sgdQueued(native, hyper));
  }

  private async sgdQueued(native: NativeModel, h: { lr: number; wd: number; momentum: number }): Promise<void> {
    await native.run('sgd_update', 1, { ...h, first: this.freshOptimizer ? 1 : 0 }, 0);
    this.freshOptimizer = false;
    this.foldedStale = true;
  }

  /** The parameters were written other than by the SGD update: the folded inference weights and the bf16 copies follow them at their next use. */
  private weightsWritten(): void {
    this.foldedStale = true;
    this.weightCopiesStale = true;
  }

  private sgdOptions(options: TrainStepOptions | null | undefined, what: string): { lr: number; wd: number; momentum: number } {
    const o = optionsObject(options, what, 'options');
    const first = this.plan.train?.regime[0];
    const lr = o.lr ?? first?.lr;
    if (lr === undefined) throw new InvalidArgumentError(`${what}: options.lr is required: ${this.dir}'s spec has no train block to take it from`);
    const wd = o.weightDecay ?? first?.wd ?? 0;
    const momentum = o.momentum ?? this.plan.train?.optimizer.momentum ?? 0.9;
    for (const [k, v] of [['lr', lr], ['weightDecay', wd], ['momentum', momentum]] as const) {
      if (typeof v !== 'number') throw new InvalidArgumentError(`${what}: options.${k} must be a number, got ${describe(v)}`);
      if (!Number.isFinite(v) || v < 0) throw new OutOfRangeError(`${what}: ${k} must be a finite non-negative number, got ${v}`);
    }
    return { lr, wd, momentum };
  }

  /** A copy of `count` elements of an arena space from `offset` (whole-space access for data-parallel reductions and digests). */
  readSpace(space: TrainingSpace, offset: number, count: number): Float32Array {
    this.checkSpaceRange(space, offset, count, 'readSpace');
    return this.idleHandle('readSpace').read(space, offset, count);
  }

  /** Overwrites `data.length` elements of an arena space from `offset`. */
  writeSpace(space: TrainingSpace, offset: number, data: Float32Array): void {
    if (!(data instanceof Float32Array)) throw new InvalidArgumentError(`writeSpace: data must be a Float32Array, got ${describe(data)}`);
    this.checkSpaceRange(space, offset, data.length, 'writeSpace');
    this.idleHandle('writeSpace').write(space, offset, data);
    if (space === 'param') this.weightsWritten();
    else if (space !== 'grad') this.foldedStale = true;
  }

  private checkSpaceRange(space: TrainingSpace, offset: number, count: number, what: string): void {
    if (!TRAINING_SPACES.includes(space)) throw new InvalidArgumentError(`${what}: space must be one of ${TRAINING_SPACES.join(', ')}, got ${describe(space)}`);
    const total = this.info.spaces[space];
    if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 0 || offset + count > total) {
      throw new OutOfRangeError(`${what}: elements ${offset}..${offset + count} are outside the ${space} space (${total} elements)`);
    }
  }

  /** A fresh optimizer state: the next step sets the momentum buffers to the gradient (regime boundaries). */
  resetOptimizer(): void {
    this.idleHandle('resetOptimizer').write('momentum', 0, new Float32Array(this.info.spaces.param));
    this.freshOptimizer = true;
  }

  /** Top-1/top-5 accuracy and mean NLL over a labelled set, in eval mode, in batches of at most maxBatch. */
  async evaluate(images: Images, labels: Int32Array | readonly number[]): Promise<Evaluation> {
    const n = this.checkImages(images, 'evaluate');
    const l = this.checkLabels(labels, n, 'evaluate');
    const out = await this.infer(images);
    return scoreOutputs(out, l, this.outputElements);
  }

  /** Per-launch timing on the device, for nincc tune on a GPU: false where the device cannot time its launches (only cuda can). */
  timeLaunches(on: boolean): boolean {
    return this.idleHandle('timeLaunches').timeLaunches(on);
  }

  /** The launches timed since the last call, in launch order: each kernel's µs on the device. */
  launchTimes(): { kernel: string; micros: number }[] {
    return this.idleHandle('launchTimes').launchTimes();
  }

  tensorNames(): string[] {
    return [...this.info.params, ...this.info.state].map((t) => t.name);
  }

  private findTensor(name: string): { t: NativeTensorInfo; space: 'param' | 'state' } {
    if (typeof name !== 'string') throw new InvalidArgumentError(`tensor name must be a string, got ${describe(name)}`);
    const p = this.info.params.find((t) => t.name === name);
    if (p) return { t: p, space: 'param' };
    const s = this.info.state.find((t) => t.name === name);
    if (s) return { t: s, space: 'state' };
    throw new OutOfRangeError(`no tensor named '${name}' (this model has: ${this.tensorNames().join(', ')})`);
  }

  getTensor(name: string): Float32Array {
    const { t, space } = this.findTensor(name);
    return this.idleHandle('getTensor').read(space, t.offset, t.size);
  }

  getGradient(name: string): Float32Array {
    const t = this.info.params.find((x) => x.name === name);
    if (!t) throw new OutOfRangeError(`no parameter named '${String(name)}'`);
    return this.idleHandle('getGradient').read('grad', t.offset, t.size);
  }

  setTensor(name: string, data: Float32Array): void {
    const { t, space } = this.findTensor(name);
    if (!(data instanceof Float32Array)) throw new InvalidArgumentError(`${name}: expected a Float32Array of ${t.size} values (${t.shape.join('×')}), got ${describe(data)}`);
    if (data.length !== t.size) throw new OutOfRangeError(`${name}: expected a Float32Array of ${t.size} values (${t.shape.join('×')}), got ${describe(data)}`);
    this.idleHandle('setTensor').write(space, t.offset, data);
    if (space === 'param') this.weightsWritten();
    else this.foldedStale = true;
  }

  /** Parameters and running statistics (and, with optimizer, the momentum buffers) as safetensors, written atomically. */
  async save(path: string, meta?: CheckpointMeta | null, options?: { optimizer?: boolean } | null): Promise<void> {
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError(`save: path must be a file path (a non-empty string), got ${describe(path)}`);
    const m = optionsObject(meta, 'save', 'meta') as CheckpointMeta;
    for (const [k, v] of Object.entries(m)) if (typeof v !== 'string') throw new InvalidArgumentError(`save: meta.${k} must be a string (safetensors metadata is a string map), got ${describe(v)}`);
    const o = optionsObject(options, 'save', 'options');
    const encoded = await this.enqueue('save', async (native) => {
      const tensors = new Map<string, SafeTensor>();
      for (const t of this.info.params) tensors.set(t.name, { dtype: 'F32', shape: t.shape, data: native.read('param', t.offset, t.size) });
      for (const t of this.info.state) tensors.set(t.name, { dtype: 'F32', shape: t.shape, data: native.read('state', t.offset, t.size) });
      if (o.optimizer) {
        for (const t of this.info.params) tensors.set(`optimizer.momentum.${t.name}`, { dtype: 'F32', shape: t.shape, data: native.read('momentum', t.offset, t.size) });
      }
      return encodeSafetensorsChunks(tensors, {
        format: CHECKPOINT_FORMAT,
        model: this.info.model,
        ...(o.optimizer ? { optimizer_fresh: this.freshOptimizer ? '1' : '0', step_seed: String(this.stepSeed) } : {}),
        ...m,
      });
    });
    await writeFileAtomic(path, encoded);
  }

  /** Loads a checkpoint written by save() (or an import); every tensor of the model must be present with its shape. */
  async loadWeights(path: string): Promise<CheckpointMeta> {
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError(`loadWeights: path must be a file path (a non-empty string), got ${describe(path)}`);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new NinccError(ErrorCodes.weights, code === 'ENOENT' ? `weights ${path}: no such file` : `weights ${path}: ${(e as Error).message}`, { cause: e });
    }
    return this.enqueue('loadWeights', async (native) => this.applyWeights(native, path, bytes));
  }

  private applyWeights(native: NativeModel, path: string, bytes: Uint8Array): CheckpointMeta {
    let decoded;
    try {
      decoded = decodeSafetensors(bytes, path);
    } catch (e) {
      throw new NinccError(ErrorCodes.weights, (e as Error).message, { cause: e });
    }
    const { tensors, metadata } = decoded;
    const problems: string[] = [];
    for (const t of [...this.info.params, ...this.info.state]) {
      const s = tensors.get(t.name);
      if (!s) problems.push(`missing ${t.name} (${t.shape.join('×')})`);
      else if (s.dtype !== 'F32') problems.push(`${t.name} is ${s.dtype}, expected F32`);
      else if (s.shape.join('×') !== t.shape.join('×')) problems.push(`${t.name} is ${s.shape.join('×')}, expected ${t.shape.join('×')}`);
    }
    const known = new Set(this.tensorNames());
    const extra = [...tensors.keys()].filter((k) => !known.has(k) && !k.startsWith('optimizer.')).sort();
    if (extra.length > 0) problems.push(`tensors this model does not have: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', …' : ''}`);
    if (problems.length > 0) throw new NinccError(ErrorCodes.weights, `${path} does not fit model ${this.info.model}:\n  ${problems.join('\n  ')}`);
    for (const t of this.info.params) native.write('param', t.offset, tensors.get(t.name)!.data as Float32Array);
    for (const t of this.info.state) native.write('state', t.offset, tensors.get(t.name)!.data as Float32Array);
    const momentum = this.info.params.every((t) => tensors.has(`optimizer.momentum.${t.name}`));
    if (momentum) {
      for (const t of this.info.params) native.write('momentum', t.offset, tensors.get(`optimizer.momentum.${t.name}`)!.data as Float32Array);
      this.freshOptimizer = metadata.optimizer_fresh === '1';
      if (metadata.step_seed !== undefined) this.stepSeed = Number(metadata.step_seed) >>> 0;
    } else {
      native.write('momentum', 0, new Float32Array(this.info.spaces.param));
      this.freshOptimizer = true;
    }
    this.weightsWritten();
    return metadata;
  }

  /**
   * Frees the native memory and unloads the kernel library once the calls queued before it have
   * settled; calls made after it reject with code ERR_NINCC_DISPOSED. Calling it again is harmless.
   * A model dropped without dispose() is freed when it is garbage-collected.
   */
  async dispose(): Promise<void> {
    this.disposing = true;
    await this.queue;
    this.native?.dispose(); // frees staged batches too (on cuda, once their copies are done)
    this.native = undefined;
    this.prefetched = [];
  }

  get disposed(): boolean {
    return this.disposing;
  }
}

/** Top-1/top-5 hits and mean NLL of per-image class scores (log-probabilities for NLL to mean anything); a row with NaN/Inf is never a hit and is counted. */
export function scoreOutputs(out: Float32Array, labels: Int32Array, classes: number): Scores {
  const tally = new ScoreTally();
  tally.add(out, labels, classes);
  return tally.result();
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${'length' in v ? String(v.length) : `${v.byteLength} bytes`})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${String(v)}`;
  return typeof v;
}

/** An options argument: undefined and null mean "all defaults"; anything else must be a plain object. */
function optionsObject<T extends object>(value: T | null | undefined, call: string, name: string): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(`${call}: ${name} must be an object, got ${describe(value)}`);
  return value;
}

/** Refuses a cpu artifact whose kernels need CPU features this machine lacks (before they can fault). */
export function checkCpuFeatures(dir: string, required: readonly string[] | undefined, host = hostCpuFlags()): void {
  if (!required || !host) return;
  const missing = missingCpuFeatures(required, host);
  if (missing.length > 0) {
    throw new NinccError(ErrorCodes.cpu, `${dir}: its cpu kernels were compiled for a CPU with ${required.join(', ')}; this machine lacks ${missing.join(', ')}: rebuild the artifact on this machine, or with 'nincc build --cpu portable' for any x86-64`);
  }
}

function disposedError(call: string): NinccError {
  return new NinccError(ErrorCodes.disposed, `${call}: this model was disposed`);
}

export async function load(dir: string, options?: LoadOptions | null): Promise<Model> {
  return Model.load(dir, options);
}
