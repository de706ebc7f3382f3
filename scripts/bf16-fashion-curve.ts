// Issue #15 acceptance 1's long run: models/nin-fashion.model trained on emu in bf16 and on cpu in fp32
// side by side, from the same initial weights (seed 19), batch 8 through the mini Fashion-MNIST set at lr
// 0.05, momentum 0.9, weight decay 5e-4, beside a control ensemble: cpu fp32 runs whose initial weights are
// stochastically rounded to bf16 — the test/emu-conv-mma-grad.test.ts NINCC_TEST_FULL run, which calls
// fashionCurves(). As a command, `node dist/scripts/bf16-fashion-curve.js STEPS [WORKDIR] [--controls N]
// [--no-emu]` prints each step's losses as it goes (a long run on a busy machine leaves a partial record).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildArtifact } from '../compiler/build.js';
import { packageRoot } from '../compiler/package-root.js';
import { compileSpec } from '../compiler/pipeline.js';
import { readIdxFile } from '../runtime/data/idx.js';
import { load, type Model } from '../runtime/model.js';

const BATCH = 8;
const SGD = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };

/** Builds the two artifacts under `work` (emu without nvcc: the run needs none). */
export function buildFashion(work: string): { emu: string; cpu: string } {
  const file = join(packageRoot(), 'models/nin-fashion.model');
  const source = readFileSync(file, 'utf8');
  const r = compileSpec(source, 'nin-fashion.model');
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  const dirs = { emu: join(work, 'fashion-emu'), cpu: join(work, 'fashion-cpu') };
  const saved = process.env.NINCC_NVCC;
  process.env.NINCC_NVCC = '0';
  try {
    buildArtifact(r.model, source, { outDir: dirs.emu, target: 'emu', maxBatch: BATCH, precision: 'bf16' });
  } finally {
    if (saved === undefined) delete process.env.NINCC_NVCC;
    else process.env.NINCC_NVCC = saved;
  }
  buildArtifact(r.model, source, { outDir: dirs.cpu, target: 'cpu', maxBatch: BATCH });
  return dirs;
}

/** Step i's batch: the next 8 images of the mini set, normalized as models/nin-fashion.model's data block says. */
export function fashionBatches(): (step: number) => { images: Float32Array; labels: Int32Array } {
  const mini = join(packageRoot(), 'test/data/fashion-mnist-mini');
  const pixels = readIdxFile(join(mini, 'train-images-idx3-ubyte.gz')).data;
  const classes = readIdxFile(join(mini, 'train-labels-idx1-ubyte.gz')).data;
  return (step) => {
    const first = (step * BATCH) % (classes.length - BATCH);
    return {
      images: Float32Array.from(pixels.subarray(first * 784, (first + BATCH) * 784), (v) => (v / 255 - 0.286) / 0.353),
      labels: Int32Array.from(classes.subarray(first, first + BATCH)),
    };
  };
}

/**
 * One trajectory: an artifact on a device. `rounding`: every named tensor (parameters, running statistics)
 * rounded to bf16 before the first step — 'nearest' (ties to even), or a seed: each value to one of its two
 * bf16 neighbours, the farther one with probability its distance from the nearer in bf16 ulps (unbiased; each
 * seed one of many equally valid bf16 roundings of the same weights: a control ensemble's members).
 */
export interface Trajectory {
  readonly dir: string;
  readonly device: 'cpu' | 'emu';
  readonly rounding?: 'nearest' | number;
}

/** Rounds to a bf16 value (finite inputs): to nearest, ties to even, or by `seed`'s stochastic rounding. */
export function roundBf16(data: Float32Array, rounding: 'nearest' | number): Float32Array {
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  let state = typeof rounding === 'number' ? rounding >>> 0 : 0;
  const uniform16 = () => {
    // mulberry32: a seeded stream, enough for picking rounding directions
    state = (state + 0x6d2b79f5) >>> 0;
    let z = Math.imul(state ^ (state >>> 15), state | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) >>> 16;
  };
  for (let i = 0; i < bits.length; i++) {
    const low = bits[i] & 0xffff; // the distance above the truncated magnitude, in 2⁻¹⁶ bf16 ulps
    const up = rounding === 'nearest' ? low + ((bits[i] >>> 16) & 1) > 0x8000 : uniform16() < low;
    bits[i] = ((bits[i] & 0xffff0000) + (up ? 0x10000 : 0)) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

/** `steps` SGD steps of each trajectory (in lockstep, same initial weights and batches), told after each step; returns the losses. */
export async function fashionCurves<K extends string>(runs: Readonly<Record<K, Trajectory>>, steps: number, onStep?: (step: number, losses: Record<K, number>) => void): Promise<Record<K, number[]>> {
  const batch = fashionBatches();
  const names = Object.keys(runs) as K[];
  const models = new Map<K, Model>();
  const curves = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  try {
    for (const n of names) {
      const m = await load(runs[n].dir, { device: runs[n].device, seed: 19 });
      models.set(n, m);
      const rounding = runs[n].rounding;
      if (rounding !== undefined) for (const t of m.tensorNames()) m.setTensor(t, roundBf16(m.getTensor(t), rounding));
    }
    for (let i = 0; i < steps; i++) {
      const { images, labels } = batch(i);
      const losses = {} as Record<K, number>;
      for (const n of names) {
        losses[n] = (await models.get(n)!.trainStep(images, labels, SGD)).loss;
        curves[n].push(losses[n]);
      }
      onStep?.(i, losses);
    }
  } finally {
    for (const m of models.values()) await m.dispose();
  }
  return curves;
}

/** The largest gap between two curves' means over windows of `width` steps (0–width−1, width–2·width−1, …). */
function windowedGap(a: readonly number[], b: readonly number[], width: number): number {
  let largest = 0;
  for (let from = 0; from + width <= a.length; from += width) {
    const mean = (xs: readonly number[]) => xs.slice(from, from + width).reduce((s, x) => s + x, 0) / width;
    largest = Math.max(largest, Math.abs(mean(a) - mean(b)));
  }
  return largest;
}

/** The mean over steps of |a − b|: how far apart two curves run, one number that chaos does not hinge on one step. */
export function meanGap(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0) / a.length;
}

/** The controls' names in a run record: control1..controlN, seeds 1..N. */
export const controlName = (seed: number) => `control${seed}`;

if (process.argv[1]?.endsWith('bf16-fashion-curve.js')) {
  // --controls N: beside emu, N cpu fp32 runs whose initial weights are stochastically rounded to bf16
  // (seeds 1..N) — how far SGD alone carries a perturbation the size of one bf16 rounding on this data.
  // --no-emu: the cpu runs only.
  const flag = process.argv.indexOf('--controls');
  const controls = flag < 0 ? 0 : Number(process.argv[flag + 1]);
  const withEmu = !process.argv.includes('--no-emu');
  const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--controls');
  const steps = Number(args[0] ?? 300);
  if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(controls) || controls < 0) {
    console.error('usage: node dist/scripts/bf16-fashion-curve.js STEPS [WORKDIR] [--controls N] [--no-emu]');
    process.exit(2);
  }
  const work = args[1] ?? mkdtempSync(join(tmpdir(), 'nincc-bf16-curve-'));
  const started = Date.now();
  const dirs = buildFashion(work);
  const runs: Record<string, Trajectory> = { cpu: { dir: dirs.cpu, device: 'cpu' } };
  if (withEmu) runs.emu = { dir: dirs.emu, device: 'emu' };
  for (let seed = 1; seed <= controls; seed++) runs[controlName(seed)] = { dir: dirs.cpu, device: 'cpu', rounding: seed };
  const names = Object.keys(runs);
  console.log(`nin-fashion, batch ${BATCH}, lr ${SGD.lr}, momentum ${SGD.momentum}, weight decay ${SGD.weightDecay}: cpu fp32${withEmu ? ', emu bf16' : ''}${controls ? `, ${controls} cpu fp32 controls (initial weights stochastically rounded to bf16, seeds 1..${controls})` : ''}; ${steps} steps (built in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`step  ${names.map((n) => n.padEnd(9)).join(' ')} seconds`);
  const curves = await fashionCurves(runs, steps, (i, l) => {
    console.log(`${String(i).padStart(4)}  ${names.map((n) => l[n].toFixed(5).padEnd(9)).join(' ')} ${((Date.now() - started) / 1000).toFixed(0)}`);
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const { cpu } = curves;
  console.log(`cpu: first loss ${cpu[0].toFixed(4)}, mean of the first 3 steps ${mean(cpu.slice(0, 3)).toFixed(4)}, of the last 3 ${mean(cpu.slice(-3)).toFixed(4)}`);
  for (const n of names.filter((x) => x !== 'cpu')) {
    const c = curves[n];
    const windows = [10, 50].filter((w) => w <= steps).map((w) => `${w}-step means ${windowedGap(cpu, c, w).toFixed(5)}`);
    console.log(`${n} vs cpu: mean |gap| ${meanGap(cpu, c).toFixed(5)}, largest per-step gap ${windowedGap(cpu, c, 1).toFixed(5)}${windows.length ? `, largest gap of ${windows.join(', of ')}` : ''}; mean of the last 3 steps ${mean(c.slice(-3)).toFixed(4)}`);
  }
  if (args[1] === undefined) rmSync(work, { recursive: true, force: true });
}
