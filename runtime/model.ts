// The public runtime API (docs/design.md §1): load an artifact, infer, trainStep, evaluate, save/loadWeights.
// Validates every argument so that a mistake is a clear JS error, never a crash in native code.
import type { Plan } from '../compiler/emit/plan.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initialValues } from './init.js';
import { loadNative, type NativeModel, type NativeModelInfo, type NativeTensorInfo } from './native.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from './io/safetensors.js';
import { ScoreTally, type Scores } from './scoring.js';

export type Device = 'cpu' | 'cuda' | 'emu';

export interface LoadOptions {
  readonly device?: Device;
  /** Seed for Torch7-rule parameter init (default 1), used unless `weights` is given. */
  readonly seed?: number;
  /** A safetensors checkpoint to load after init. */
  readonly weights?: string;
}

export interface TrainStepOptions {
  readonly lr: number;
  readonly weightDecay?: number;
  readonly momentum?: number; // default: the spec's optimizer momentum, else 0.9
}

export interface Evaluation {
  readonly top1: number; // fractions in [0, 1]
  readonly top5: number;
  readonly loss: number; // mean NLL, when the output is log-probabilities
  readonly count: number;
}

/** Checkpoint metadata (safetensors __metadata__ is a string map). */
export type CheckpointMeta = Record<string, string>;

export const CHECKPOINT_FORMAT = 'nincc-checkpoint-1';

export class Model {
  readonly info: NativeModelInfo;
  readonly dir: string;
  readonly plan: Pick<Plan, 'untrainable' | 'train' | 'transform' | 'imageSize'>; // the fields of plan.json this class reads
  private native: NativeModel | undefined;
  private foldedStale = true; // inference weights must be refolded after any parameter change
  private freshOptimizer = true; // the next update starts the momentum buffers from the gradient
  private stepSeed = 0;

  private constructor(dir: string, native: NativeModel) {
    this.dir = dir;
    this.native = native;
    this.info = native.info();
    this.plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
  }

  static async load(dir: string, options: LoadOptions = {}): Promise<Model> {
    const device = options.device ?? 'cpu';
    if (!['cpu', 'cuda', 'emu'].includes(device)) throw new TypeError(`device must be 'cpu', 'cuda' or 'emu', got ${JSON.stringify(device)}`);
    const addon = loadNative();
    const m = new Model(dir, addon.load(dir, device));
    m.initParameters(options.seed ?? 1);
    if (options.weights) await m.loadWeights(options.weights);
    return m;
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

  private handle(): NativeModel {
    if (!this.native) throw new Error('this model was disposed');
    return this.native;
  }

  /** Torch7-rule init of every parameter, and running stats (mean 0, var 1); resets the optimizer. */
  initParameters(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0) throw new TypeError(`seed must be a non-negative integer, got ${seed}`);
    for (const p of this.info.params) this.handle().write('param', p.offset, initialValues(p, seed));
    for (const s of this.info.state) this.handle().write('state', s.offset, initialValues(s, seed));
    this.handle().write('momentum', 0, new Float32Array(this.info.spaces.param));
    this.foldedStale = true;
    this.freshOptimizer = true;
    this.stepSeed = seed;
  }

  private checkBatch(n: number, what: string): void {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${what}: the batch size must be a positive integer, got ${n}`);
    if (n > this.maxBatch) throw new RangeError(`${what}: batch ${n} is over the maximum ${this.maxBatch} this artifact was built for (rebuild with --max-batch ${n})`);
  }

  private checkImages(images: unknown, what: string): number {
    if (!(images instanceof Float32Array)) throw new TypeError(`${what}: images must be a Float32Array (N×${this.info.input.join('×')}, NCHW), got ${describe(images)}`);
    const per = this.imageElements;
    if (images.length === 0 || images.length % per !== 0) {
      throw new RangeError(`${what}: images has ${images.length} floats, not a whole number of ${this.info.input.join('×')} images (${per} floats each)`);
    }
    for (let i = 0; i < images.length; i++) {
      if (!Number.isFinite(images[i])) throw new RangeError(`${what}: images[${i}] is ${images[i]} (image ${Math.floor(i / per)})`);
    }
    return images.length / per;
  }

  private checkLabels(labels: unknown, n: number, what: string): Int32Array {
    const arr = labels instanceof Int32Array ? labels : Array.isArray(labels) ? Int32Array.from(labels as number[]) : undefined;
    if (!arr) throw new TypeError(`${what}: labels must be an Int32Array or an array of integers, got ${describe(labels)}`);
    if (arr.length !== n) throw new RangeError(`${what}: ${arr.length} labels for ${n} images`);
    const classes = this.info.classes;
    for (let i = 0; i < n; i++) {
      const v = Array.isArray(labels) ? (labels as number[])[i] : arr[i];
      if (!Number.isInteger(v) || v < 0 || v >= classes) throw new RangeError(`${what}: labels[${i}] is ${v}, outside 0..${classes - 1}`);
    }
    return arr;
  }

  /** Network output (log-probabilities for NIN) in eval mode: BN uses running statistics. */
  async infer(images: Float32Array, n?: number): Promise<Float32Array> {
    const count = this.checkImages(images, 'infer');
    if (n !== undefined && n !== count) throw new RangeError(`infer: n is ${n} but images holds ${count} images`);
    const native = this.handle();
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
  private async inferChunk(native: NativeModel, images: Float32Array, k: number): Promise<Float32Array> {
    native.setInput('infer', 'images', images, k);
    await native.run('infer', k, {}, 0);
    return native.getOutput('infer', 'output', k) as Float32Array;
  }

  /** Forward + backward in training mode; gradients land in the grad space. */
  async forwardBackward(images: Float32Array, labels: Int32Array | readonly number[]): Promise<{ loss: number; output: Float32Array }> {
    if (!this.trainable) throw new Error(`${this.dir}: this model has no training programs (${this.plan.untrainable ?? 'training with nll needs a model that ends in logsoftmax'})`);
    const n = this.checkImages(images, 'trainStep');
    this.checkBatch(n, 'trainStep');
    const l = this.checkLabels(labels, n, 'trainStep');
    const native = this.handle();
    native.setInput('train_forward_backward', 'images', images, n);
    native.setInput('train_forward_backward', 'labels', l, n);
    this.stepSeed = (this.stepSeed + 1) >>> 0;
    await native.run('train_forward_backward', n, {}, this.stepSeed);
    this.foldedStale = true; // running statistics moved
    const loss = (native.getOutput('train_forward_backward', 'loss', n) as Float32Array)[0];
    return { loss, output: native.getOutput('train_forward_backward', 'output', n) as Float32Array };
  }

  /** One SGD step (torch/optim semantics, docs/design.md §3). */
  async trainStep(images: Float32Array, labels: Int32Array | readonly number[], options: TrainStepOptions): Promise<{ loss: number; output: Float32Array }> {
    const lr = options.lr;
    const wd = options.weightDecay ?? 0;
    const momentum = options.momentum ?? this.plan.train?.optimizer.momentum ?? 0.9;
    for (const [k, v] of [['lr', lr], ['weightDecay', wd], ['momentum', momentum]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`trainStep: ${k} must be a finite non-negative number, got ${v}`);
    }
    const r = await this.forwardBackward(images, labels);
    await this.handle().run('sgd_update', 1, { lr, wd, momentum, first: this.freshOptimizer ? 1 : 0 }, 0);
    this.freshOptimizer = false;
    return r;
  }

  /** A fresh optimizer state: the next step sets the momentum buffers to the gradient (regime boundaries). */
  resetOptimizer(): void {
    this.freshOptimizer = true;
    this.handle().write('momentum', 0, new Float32Array(this.info.spaces.param));
  }

  /** Top-1/top-5 accuracy and mean NLL over a labelled set, in eval mode, in batches of at most maxBatch. */
  async evaluate(images: Float32Array, labels: Int32Array | readonly number[]): Promise<Evaluation> {
    const n = this.checkImages(images, 'evaluate');
    const l = this.checkLabels(labels, n, 'evaluate');
    const out = await this.infer(images);
    return scoreOutputs(out, l, this.outputElements);
  }

  tensorNames(): string[] {
    return [...this.info.params, ...this.info.state].map((t) => t.name);
  }

  private findTensor(name: string): { t: NativeTensorInfo; space: 'param' | 'state' } {
    const p = this.info.params.find((t) => t.name === name);
    if (p) return { t: p, space: 'param' };
    const s = this.info.state.find((t) => t.name === name);
    if (s) return { t: s, space: 'state' };
    throw new RangeError(`no tensor named '${name}' (this model has: ${this.tensorNames().join(', ')})`);
  }

  getTensor(name: string): Float32Array {
    const { t, space } = this.findTensor(name);
    return this.handle().read(space, t.offset, t.size);
  }

  getGradient(name: string): Float32Array {
    const t = this.info.params.find((x) => x.name === name);
    if (!t) throw new RangeError(`no parameter named '${name}'`);
    return this.handle().read('grad', t.offset, t.size);
  }

  setTensor(name: string, data: Float32Array): void {
    const { t, space } = this.findTensor(name);
    if (!(data instanceof Float32Array) || data.length !== t.size) throw new RangeError(`${name}: expected a Float32Array of ${t.size} values (${t.shape.join('×')}), got ${describe(data)}`);
    this.handle().write(space, t.offset, data);
    this.foldedStale = true;
  }

  /** Parameters and running statistics (and, with optimizer, the momentum buffers) as safetensors. */
  async save(path: string, meta: CheckpointMeta = {}, options: { optimizer?: boolean } = {}): Promise<void> {
    const tensors = new Map<string, SafeTensor>();
    for (const t of [...this.info.params, ...this.info.state]) tensors.set(t.name, { dtype: 'F32', shape: t.shape, data: this.getTensor(t.name) });
    if (options.optimizer) {
      for (const t of this.info.params) tensors.set(`optimizer.momentum.${t.name}`, { dtype: 'F32', shape: t.shape, data: this.handle().read('momentum', t.offset, t.size) });
    }
    writeSafetensors(path, tensors, {
      format: CHECKPOINT_FORMAT,
      model: this.info.model,
      ...(options.optimizer ? { optimizer_fresh: this.freshOptimizer ? '1' : '0', step_seed: String(this.stepSeed) } : {}),
      ...meta,
    });
  }

  /** Loads a checkpoint written by save() (or an import); every tensor of the model must be present with its shape. */
  async loadWeights(path: string): Promise<CheckpointMeta> {
    if (!existsSync(path)) throw new Error(`weights ${path}: no such file`);
    const { tensors, metadata } = readSafetensors(path);
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
    if (problems.length > 0) throw new Error(`${path} does not fit model ${this.info.model}:\n  ${problems.join('\n  ')}`);
    for (const t of [...this.info.params, ...this.info.state]) this.setTensor(t.name, tensors.get(t.name)!.data as Float32Array);
    const momentum = this.info.params.every((t) => tensors.has(`optimizer.momentum.${t.name}`));
    if (momentum) {
      for (const t of this.info.params) this.handle().write('momentum', t.offset, tensors.get(`optimizer.momentum.${t.name}`)!.data as Float32Array);
      this.freshOptimizer = metadata.optimizer_fresh === '1';
      if (metadata.step_seed !== undefined) this.stepSeed = Number(metadata.step_seed) >>> 0;
    } else this.resetOptimizer();
    this.foldedStale = true;
    return metadata;
  }

  dispose(): void {
    this.native?.dispose();
    this.native = undefined;
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
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length: number }).length})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v;
}

export async function load(dir: string, options: LoadOptions = {}): Promise<Model> {
  return Model.load(dir, options);
}
