// What the numerics tests share besides the interpreter: building a spec into an artifact, moving weights
// between a loaded Model and float64 maps, seeded random data, arena poisoning and float32 tolerances.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Ablations } from '../../compiler/ablations.js';
import { buildArtifact } from '../../compiler/build.js';
import type { ShapedModel } from '../../compiler/ir.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { uniformStream } from '../../runtime/init.js';
import { type Device, load, type Model } from '../../runtime/model.js';
import type { NativeModel } from '../../runtime/native.js';
import { inputBatch, runGraph } from './interpret.js';
import { channelStats, elementsOf } from './layers.js';

let buildRoot: string | undefined;

export interface Built {
  readonly model: ShapedModel;
  readonly dir: string;
}

/**
 * Front end + g++ build of one spec into this process's scratch directory (the kernel library is cached by content);
 * `ablations`: the switches the build turns off or on (compiler/ablations.ts).
 */
export function buildSpec(name: string, source: string, maxBatch = 4, ablations?: Ablations): Built {
  const r = compileSpec(source, `${name}.model`);
  if (!r.model) throw new Error(`${name}: ${r.diagnostics.map((d) => `${d.code} ${d.message}`).join('; ')}`);
  buildRoot ??= mkdtempSync(join(tmpdir(), 'nincc-numerics-'));
  const dir = join(buildRoot, name);
  buildArtifact(r.model, source, { outDir: dir, target: 'cpu', maxBatch, ...(ablations ? { ablations } : {}) });
  return { model: r.model, dir };
}

export function removeBuilds(): void {
  if (buildRoot) rmSync(buildRoot, { recursive: true, force: true });
  buildRoot = undefined;
}

export async function loadBuilt(b: Built, seed = 1): Promise<Model> {
  return load(b.dir, { device: 'cpu', seed });
}

/** Seeded (the runtime's init stream), so a failing case replays exactly. */
export const rng = uniformStream;

export const uniform = (count: number, lo: number, hi: number, next: () => number) => Float32Array.from({ length: count }, () => lo + (hi - lo) * next());

export function randomImages(m: ShapedModel, n: number, next: () => number): Float32Array {
  return uniform(n * elementsOf(m.input), -1.5, 1.5, next);
}

export function randomLabels(m: ShapedModel, n: number, next: () => number): Int32Array {
  const classes = elementsOf(m.output);
  return Int32Array.from({ length: n }, () => Math.floor(next() * classes));
}

/** Every parameter and running statistic of the loaded model, widened to float64. */
export function readWeights(model: Model): Map<string, Float64Array> {
  return new Map(model.tensorNames().map((name) => [name, Float64Array.from(model.getTensor(name))]));
}

/** Non-trivial BN shifts and biases (init leaves β at 0), so folding and the affine paths are exercised. */
/** An artifact loaded on `device` with the named tensors replaced. */
export async function loadWith(dir: string, device: Device, seed: number, tensors: ReadonlyMap<string, Float32Array>): Promise<Model> {
  const m = await load(dir, { device, seed });
  for (const [name, v] of tensors) m.setTensor(name, v);
  return m;
}

/** One forward+backward of each model on the batch; with exactLossLinear every logit is its bias exactly, so every output row is the same. */
export async function stepWithExactLogits(models: readonly Model[], images: Float32Array, labels: Int32Array, classes: number): Promise<void> {
  for (const { output } of await Promise.all(models.map((m) => m.forwardBackward(images, labels))))
    for (let img = 1; img < labels.length; img++) expect(Array.from(output.slice(img * classes, (img + 1) * classes))).toEqual(Array.from(output.slice(0, classes)));
}

export function randomizeAffine(model: Model, next: () => number): void {
  for (const t of model.info.params) {
    if (t.name.startsWith('bn') && t.name.endsWith('.bias')) model.setTensor(t.name, uniform(t.size, -0.3, 0.3, next));
    if (t.name.startsWith('bn') && t.name.endsWith('.weight')) model.setTensor(t.name, uniform(t.size, 0.5, 1.5, next));
  }
}

/**
 * Running statistics near the real ones (so eval-mode activations neither vanish nor explode through a
 * deep net, as a trained model's would not): the batch statistics of a calibration batch, each BN layer
 * calibrated on the eval-mode output of the layers before it, then scaled by a random factor.
 */
export function calibrateRunningStats(model: Model, spec: ShapedModel, images: Float32Array, n: number, next: () => number): void {
  const w = readWeights(model);
  runGraph(spec.layers, inputBatch(spec, images, n), w, { mode: 'eval' }, 0, [], (l, x) => {
    if (l.kind === 'bn') {
      const s = channelStats(x);
      const mean = Float32Array.from(s.mean, (v) => v + 0.1 * (next() - 0.5));
      const variance = Float32Array.from(s.unbiasedVar, (v) => v * (0.7 + 0.6 * next()) + 1e-3);
      model.setTensor(`bn${l.index}.running_mean`, mean);
      model.setTensor(`bn${l.index}.running_var`, variance);
      w.set(`bn${l.index}.running_mean`, Float64Array.from(mean));
      w.set(`bn${l.index}.running_var`, Float64Array.from(variance));
    }
  });
}

/**
 * A built spec loaded for a numerics test: random BN affine parameters and calibrated running
 * statistics, and the random stream (seeded from `seed`) the test goes on drawing inputs from.
 */
export async function preparedModel(b: Built, seed: number): Promise<{ m: Model; b: Built; next: () => number }> {
  const m = await loadBuilt(b, seed);
  const next = rng(seed * 7919 + 17);
  randomizeAffine(m, next);
  calibrateRunningStats(m, b.model, randomImages(b.model, 4, next), 4, next);
  return { m, b, next };
}

/**
 * Fills the whole activation arena (act × maxBatch) and the fixed scratch with `value`, so a kernel that
 * reads a buffer before writing it, or reads past what it wrote, shows. The fixed space also holds the
 * BN-folded inference weights, so the model is marked stale (setTensor) to refold them before the next infer.
 * `fixed` false leaves the fixed space alone: a bf16 build keeps there the weight gradients' split tickets, which
 * must start at zero (conv-mma-last-cta-wgrad.ts), so poisoning them breaks its weight gradients, not a missing write.
 */
export function poisonArena(model: Model, value: number, fixed = true): void {
  const native = (model as unknown as { native?: NativeModel }).native;
  if (!native || typeof native.write !== 'function') throw new Error('poisonArena: Model no longer keeps its native handle in `native`; update test/reference/artifacts.ts');
  const spaces = model.info.spaces;
  native.write('act', 0, new Float32Array(spaces.act * model.maxBatch).fill(value));
  if (fixed && spaces.fixed > 0) native.write('fixed', 0, new Float32Array(spaces.fixed).fill(value));
  const first = model.info.params[0] ?? model.info.state[0];
  if (first) model.setTensor(first.name, model.getTensor(first.name));
}

/** The largest |a − b| and where it is, with max |b| as the scale. */
export function maxError(actual: ArrayLike<number>, expected: ArrayLike<number>): { err: number; at: number; scale: number } {
  let err = 0;
  let at = -1;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i] - expected[i]);
    if (!(e <= err)) {
      err = e;
      at = i; // NaN also lands here and stays
      if (Number.isNaN(e)) err = Infinity;
    }
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return { err, at, scale };
}

/** The absolute floor of every comparison: below float32 rounding of unit-scale values, so only true zeros lean on it. */
export const ATOL = 1e-7;

/**
 * Asserts max|actual − expected| ≤ rtol·max|expected| + atol over one tensor: a bound relative to that
 * tensor's own scale (a per-element relative bound would fail on sums cancelling to near zero, and one
 * bound over several tensors, or rtol·(1 + scale), lets a 1% error in a small tensor pass).
 */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string, atol = ATOL): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const { err, at, scale } = maxError(actual, expected);
  const bound = rtol * scale + atol;
  // NINCC_NUMERICS_LOG=1 prints every comparison's margin, to see how much room a tolerance leaves.
  if (process.env.NINCC_NUMERICS_LOG) console.log(`${what}: err/bound = ${(err / bound).toExponential(2)} (rtol ${rtol}, scale ${scale.toExponential(2)})`);
  expect(err, `${what}: max error ${err.toExponential(2)} at [${at}] (got ${actual[at]}, expected ${expected[at]}), bound ${bound.toExponential(2)} = ${rtol}·${scale.toExponential(2)} + ${atol}`).toBeLessThanOrEqual(bound);
}

/**
 * Every parameter gradient of `actual` against `expected`, each within rtol·max|expected| + ATOL of its own
 * scale, so a 1% error in a small gradient fails. A gradient that is exactly 0 in exact arithmetic (a conv
 * bias before BN) is float32 noise, up to ~3e-7 measured, relative to nothing: a tensor whose expected
 * gradient is under 1e-5 of the model's largest need only stay under that.
 */
export function expectGradientsClose(actual: Model, expected: Model, rtol: number, what: string): void {
  const names = expected.info.params.map((t) => t.name);
  const largest = Math.max(...names.map((t) => Math.max(...Array.from(expected.getGradient(t), Math.abs))));
  const zero = 1e-5 * largest;
  for (const t of names) {
    const g = expected.getGradient(t);
    const scale = Math.max(...Array.from(g, Math.abs));
    if (scale > zero) expectClose(actual.getGradient(t), g, rtol, `${what}: gradient ${t}`);
    else expectClose(actual.getGradient(t), g, 0, `${what}: gradient ${t} (numerically zero: under 1e-5 of the largest)`, zero);
  }
}
