// Issue #15 acceptance 1's long run: models/nin-fashion.model trained on emu in bf16 and on cpu in fp32
// side by side, from the same initial weights (seed 19), batch 8 through the mini Fashion-MNIST set at lr
// 0.05, momentum 0.9, weight decay 5e-4 — the test/emu-conv-mma-grad.test.ts NINCC_TEST_FULL run, which
// calls fashionCurves(). As a command, `node dist/scripts/bf16-fashion-curve.js STEPS [WORKDIR]` prints
// each step's two losses and their gap as it goes (a long run on a busy machine leaves a partial record).
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
function batches(): (step: number) => { images: Float32Array; labels: Int32Array } {
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

/** One trajectory: an artifact on a device; `rounded`: every named tensor (parameters, running statistics) rounded to bf16 before the first step. */
export interface Trajectory {
  readonly dir: string;
  readonly device: 'cpu' | 'emu';
  readonly rounded?: boolean;
}

/** Rounds to the nearest bf16 value, ties to even (finite inputs). */
function roundBf16(data: Float32Array): Float32Array {
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 0) & 0xffff0000;
  return new Float32Array(bits.buffer);
}

/** `steps` SGD steps of each trajectory (in lockstep, same initial weights and batches), told after each step; returns the losses. */
export async function fashionCurves<K extends string>(runs: Readonly<Record<K, Trajectory>>, steps: number, onStep?: (step: number, losses: Record<K, number>) => void): Promise<Record<K, number[]>> {
  const batch = batches();
  const names = Object.keys(runs) as K[];
  const models = new Map<K, Model>();
  const curves = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  try {
    for (const n of names) {
      const m = await load(runs[n].dir, { device: runs[n].device, seed: 19 });
      models.set(n, m);
      if (runs[n].rounded) for (const t of m.tensorNames()) m.setTensor(t, roundBf16(m.getTensor(t)));
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
export function windowedGap(a: readonly number[], b: readonly number[], width: number): number {
  let largest = 0;
  for (let from = 0; from + width <= a.length; from += width) {
    const mean = (xs: readonly number[]) => xs.slice(from, from + width).reduce((s, x) => s + x, 0) / width;
    largest = Math.max(largest, Math.abs(mean(a) - mean(b)));
  }
  return largest;
}

if (process.argv[1]?.endsWith('bf16-fashion-curve.js')) {
  // --control: instead of emu, a second cpu fp32 run whose initial weights are rounded to bf16 — how far
  // SGD alone carries a perturbation the size of one bf16 rounding on this data.
  const control = process.argv.includes('--control');
  const args = process.argv.slice(2).filter((a) => a !== '--control');
  const steps = Number(args[0] ?? 300);
  const work = args[1] ?? mkdtempSync(join(tmpdir(), 'nincc-bf16-curve-'));
  const started = Date.now();
  const dirs = buildFashion(work);
  const other = control ? 'cpu, weights rounded to bf16 at step 0' : 'emu bf16';
  console.log(`nin-fashion, batch ${BATCH}, lr ${SGD.lr}, momentum ${SGD.momentum}, weight decay ${SGD.weightDecay}: cpu fp32 vs ${other}, ${steps} steps (built in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`step  cpu       ${control ? 'rounded' : 'emu    '}   |gap|     seconds`);
  const runs = { cpu: { dir: dirs.cpu, device: 'cpu' as const }, other: control ? { dir: dirs.cpu, device: 'cpu' as const, rounded: true } : { dir: dirs.emu, device: 'emu' as const } };
  const curves = await fashionCurves(runs, steps, (i, l) => {
    console.log(`${String(i).padStart(4)}  ${l.cpu.toFixed(5)}  ${l.other.toFixed(5)}  ${Math.abs(l.cpu - l.other).toFixed(5)}  ${((Date.now() - started) / 1000).toFixed(0)}`);
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const { cpu, other: emu } = curves;
  const largest = windowedGap(cpu, emu, 1);
  console.log(`largest per-step gap ${largest.toFixed(5)} (${((100 * largest) / cpu[0]).toFixed(1)}% of the first loss ${cpu[0].toFixed(4)}); mean of the first 3 steps ${mean(cpu.slice(0, 3)).toFixed(4)}, of the last 3: cpu ${mean(cpu.slice(-3)).toFixed(4)}, ${control ? 'rounded' : 'emu'} ${mean(emu.slice(-3)).toFixed(4)}`);
  for (const width of [10, 25, 50]) console.log(`largest gap of ${width}-step means: ${windowedGap(cpu, emu, width).toFixed(5)}`);
  if (args[1] === undefined) rmSync(work, { recursive: true, force: true });
}
