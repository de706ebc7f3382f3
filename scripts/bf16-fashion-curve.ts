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

/** `steps` SGD steps on each device given (in lockstep), told after each step; returns each device's losses. */
export async function fashionCurves(dirs: Partial<Record<'cpu' | 'emu', string>>, steps: number, onStep?: (step: number, losses: Partial<Record<'cpu' | 'emu', number>>) => void): Promise<Partial<Record<'cpu' | 'emu', number[]>>> {
  const batch = batches();
  const devices = (Object.keys(dirs) as ('cpu' | 'emu')[]).filter((d) => dirs[d]);
  const models: Partial<Record<'cpu' | 'emu', Model>> = {};
  const curves: Partial<Record<'cpu' | 'emu', number[]>> = {};
  try {
    for (const d of devices) {
      models[d] = await load(dirs[d]!, { device: d, seed: 19 });
      curves[d] = [];
    }
    for (let i = 0; i < steps; i++) {
      const { images, labels } = batch(i);
      const losses: Partial<Record<'cpu' | 'emu', number>> = {};
      for (const d of devices) {
        losses[d] = (await models[d]!.trainStep(images, labels, SGD)).loss;
        curves[d]!.push(losses[d]!);
      }
      onStep?.(i, losses);
    }
  } finally {
    for (const m of Object.values(models)) await m?.dispose();
  }
  return curves;
}

if (process.argv[1]?.endsWith('bf16-fashion-curve.js')) {
  const steps = Number(process.argv[2] ?? 300);
  const work = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'nincc-bf16-curve-'));
  const started = Date.now();
  const dirs = buildFashion(work);
  console.log(`nin-fashion, batch ${BATCH}, lr ${SGD.lr}, momentum ${SGD.momentum}, weight decay ${SGD.weightDecay}: cpu fp32 vs emu bf16, ${steps} steps (built in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log('step  cpu       emu       |gap|     seconds');
  let largest = 0;
  const curves = await fashionCurves(dirs, steps, (i, l) => {
    const gap = Math.abs(l.cpu! - l.emu!);
    largest = Math.max(largest, gap);
    console.log(`${String(i).padStart(4)}  ${l.cpu!.toFixed(5)}  ${l.emu!.toFixed(5)}  ${gap.toFixed(5)}  ${((Date.now() - started) / 1000).toFixed(0)}`);
  });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const cpu = curves.cpu!;
  const emu = curves.emu!;
  console.log(`largest per-step gap ${largest.toFixed(5)} (${((100 * largest) / cpu[0]).toFixed(1)}% of the first loss ${cpu[0].toFixed(4)}); mean of the first 3 steps ${mean(cpu.slice(0, 3)).toFixed(4)}, of the last 3: cpu ${mean(cpu.slice(-3)).toFixed(4)}, emu ${mean(emu.slice(-3)).toFixed(4)}`);
  if (process.argv[3] === undefined) rmSync(work, { recursive: true, force: true });
}
