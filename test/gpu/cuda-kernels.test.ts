// The kernel tests on the cuda device (npm run test:gpu): the specs of test/emu-infer.test.ts and the
// shipped NIN models built with --target cuda; `infer` on cuda must match the cpu device and the
// float64 reference on a poisoned arena at batches that go down and up, and the training programs must
// match the cpu device wherever the plan gives their steps launch rules, bitwise the same on every run. Skipped, saying why, where
// there is no GPU, driver or nvcc.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../../compiler/build.js';
import type { Plan } from '../../compiler/emit/plan.js';
import type { ShapedModel } from '../../compiler/ir.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { load, type Model } from '../../runtime/model.js';
import { calibrateRunningStats, expectClose, expectGradientsClose, poisonArena, randomImages, randomizeAffine, randomLabels, readWeights, rng } from '../reference/artifacts.js';
import { finiteDifferenceMismatches } from '../reference/finite-difference.js';
import { forward } from '../reference/interpret.js';
import { DROPOUT_MLP, EVERY_LAYER, FASHION_ODD, NIN_FASHION, NIN_SMALL, ODDS_AND_ENDS, POOL_PROBE } from '../reference/specs.js';
import { cudaSkipReason } from './cuda-device.js';

// The GPU is not IEEE-sequential where the emulator is (nvcc contracts a*b+c into FMA, expf differs
// from glibc's; docs/emu.md "Numerics"): 5× the emu tests' 2e-5, per tensor: 1e-4·max|ref| + ATOL.
const TOL = 1e-4;
// Gradients sum over the batch and the image in another order than the cpu device: 10× more room.
const GRAD_TOL = 1e-3;
const BATCHES = [3, 1, 2, 4];
const POISONS = [Number.NaN, 3.0e4];

// NINCC_GPU_TEST_DEVICE=emu runs this harness on the emulator instead: a check of the test itself where
// there is no GPU (slow for 224² nin; select specs with -t).
const DEVICE = (process.env.NINCC_GPU_TEST_DEVICE ?? 'cuda') as 'cuda' | 'emu';
const skip = cudaSkipReason(DEVICE);
if (skip) console.warn(`test/gpu/cuda-kernels.test.ts: skipped: ${skip}`);

const specs: Record<string, { source: string; maxBatch: number }> = {
  nin_small: { source: NIN_SMALL, maxBatch: 4 },
  fashion_odd: { source: FASHION_ODD, maxBatch: 4 },
  odds_and_ends: { source: ODDS_AND_ENDS, maxBatch: 4 },
  every_layer: { source: EVERY_LAYER, maxBatch: 4 },
  dropout_mlp: { source: DROPOUT_MLP, maxBatch: 4 },
  pool_probe: { source: POOL_PROBE, maxBatch: 4 },
  nin_fashion: { source: NIN_FASHION, maxBatch: 4 },
  nin: { source: readFileSync(new URL('../../models/nin.model', import.meta.url), 'utf8'), maxBatch: 2 },
};

interface Built {
  readonly model: ShapedModel;
  readonly dir: string; // --target cuda
  readonly cpuDir: string; // --target cpu: the cpu device trains only its own build's programs
  readonly plan: Plan;
}

let root: string | undefined;
const built = new Map<string, Built>();

beforeAll(() => {
  if (skip) return;
  root = mkdtempSync(join(tmpdir(), 'nincc-gpu-'));
  for (const [name, { source, maxBatch }] of Object.entries(specs)) {
    const r = compileSpec(source, `${name}.model`);
    if (!r.model) throw new Error(`${name}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
    const dir = join(root, name);
    const b = buildArtifact(r.model, source, { outDir: dir, target: 'cuda', maxBatch });
    const cpuDir = join(root, `${name}_cpu`);
    buildArtifact(r.model, source, { outDir: cpuDir, target: 'cpu', maxBatch });
    built.set(name, { model: r.model, dir, cpuDir, plan: b.plan });
  }
}, 600_000);

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The same seeded weights, BN shifts and running statistics on both devices. */
async function pair(name: string, seed: number, cpuBuild = false): Promise<{ cpu: Model; cuda: Model; b: Built; next: () => number }> {
  const b = built.get(name)!;
  const cpu = await load(cpuBuild ? b.cpuDir : b.dir, { device: 'cpu', seed });
  const cuda = await load(b.dir, { device: DEVICE, seed });
  const next = rng(seed * 7919 + 17);
  randomizeAffine(cpu, next);
  calibrateRunningStats(cpu, b.model, randomImages(b.model, Math.min(4, b.plan.maxBatch), next), Math.min(4, b.plan.maxBatch), next);
  for (const t of cpu.tensorNames()) cuda.setTensor(t, cpu.getTensor(t));
  return { cpu, cuda, b, next };
}

const hasLaunchRules = (plan: Plan, program: string) => (plan.programs[program]?.steps ?? []).every((s) => s.launch !== undefined) && (plan.programs[program]?.steps.length ?? 0) > 0;

describe.skipIf(Boolean(skip)).each(Object.keys(specs))('%s on cuda', (name) => {
  it('infer matches the cpu device and the float64 reference on a poisoned arena, batches down and up, and in two chunks', async () => {
    const { cpu, cuda, b, next } = await pair(name, 11);
    try {
      expect(cuda.device).toBe(DEVICE);
      const w = readWeights(cuda);
      const max = b.plan.maxBatch;
      const batches = [...BATCHES.filter((n) => n <= max), 2 * max - 1];
      for (const [i, n] of batches.entries()) {
        const images = randomImages(b.model, n, next);
        if (n <= max) poisonArena(cuda, POISONS[i % 2]);
        const out = await cuda.infer(images);
        // The float64 interpreter is slow on 224² NIN: the cpu device stands in for it there.
        if (name !== 'nin') expectClose(out, forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} cuda infer n=${n} vs reference`);
        expectClose(out, await cpu.infer(images), TOL, `${name} cuda infer n=${n} vs cpu`);
      }
    } finally {
      cpu.dispose();
      cuda.dispose();
    }
  });

  it('the training programs match the cpu device where the plan gives them launch rules', async (ctx) => {
    const b = built.get(name)!;
    if (!b.plan.programs.train_forward_backward) return ctx.skip();
    if (!hasLaunchRules(b.plan, 'train_forward_backward')) {
      console.warn(`${name}: train_forward_backward has steps without launch rules (no CUDA training kernels in this build): skipped`);
      return ctx.skip();
    }
    const { cpu, cuda, next } = await pair(name, 5, true);
    try {
      const n = Math.min(3, b.plan.maxBatch);
      const images = randomImages(b.model, n, next);
      const labels = randomLabels(b.model, n, next);
      const c = await cpu.forwardBackward(images, labels);
      const g = await cuda.forwardBackward(images, labels);
      expectClose([g.loss], [c.loss], TOL, `${name} cuda train loss vs cpu`);
      expectClose(g.output, c.output, TOL, `${name} cuda train output vs cpu`);
      // Each gradient against its own scale: a 1% error in a small tensor must not hide under a large one's.
      expectGradientsClose(cuda, cpu, GRAD_TOL, `${name} cuda vs cpu`);
      for (const t of cpu.info.state) expectClose(cuda.getTensor(t.name), cpu.getTensor(t.name), TOL, `${name} cuda ${t.name} after a training pass vs cpu`);
      if (hasLaunchRules(b.plan, 'sgd_update')) {
        await cpu.trainStep(images, labels, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
        await cuda.trainStep(images, labels, { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
        for (const t of cpu.info.params) expectClose(cuda.getTensor(t.name), cpu.getTensor(t.name), GRAD_TOL, `${name} cuda ${t.name} after a step vs cpu`);
      }
    } finally {
      cpu.dispose();
      cuda.dispose();
    }
  });
});

describe.skipIf(Boolean(skip))('cuda gradients against finite differences', () => {
  // every_layer: small enough for float32 differences, as in test/numerics-finite-difference.test.ts.
  it('every_layer: the largest gradient entries of each parameter match (L(w+h) − L(w−h)) / 2h', async () => {
    const { cpu, cuda, next, b } = await pair('every_layer', 11, true);
    try {
      if (!hasLaunchRules(b.plan, 'train_forward_backward')) return;
      const n = Math.min(3, b.plan.maxBatch);
      expect(await finiteDifferenceMismatches(cuda, randomImages(b.model, n, next), randomLabels(b.model, n, next))).toEqual([]);
    } finally {
      cpu.dispose();
      cuda.dispose();
    }
  });
});

describe.skipIf(Boolean(skip))('cuda device', () => {
  it('gives bitwise the same infer output on every run (no races between blocks)', async () => {
    const { cpu, cuda, b, next } = await pair('nin_fashion', 3);
    try {
      const images = randomImages(b.model, 4, next);
      const first = await cuda.infer(images);
      for (let i = 0; i < 3; i++) expect(Array.from(await cuda.infer(images))).toEqual(Array.from(first));
    } finally {
      cpu.dispose();
      cuda.dispose();
    }
  });

  it('gives bitwise the same loss and gradients on every training run (statistics summed in a fixed order, no float atomics)', async () => {
    const b = built.get('nin_fashion')!;
    const next = rng(23);
    const images = randomImages(b.model, 4, next);
    const labels = randomLabels(b.model, 4, next);
    const runs: { loss: number; grads: number[] }[] = [];
    for (let i = 0; i < 3; i++) {
      // A fresh model with the same seed each time: the same weights and dropout stream.
      const cuda = await load(b.dir, { device: DEVICE, seed: 9 });
      try {
        const { loss } = await cuda.forwardBackward(images, labels);
        const native = (cuda as unknown as { native: { read(s: string, o: number, c: number): Float32Array } }).native;
        runs.push({ loss, grads: Array.from(native.read('grad', 0, b.plan.spaces.param)) });
      } finally {
        cuda.dispose();
      }
    }
    for (const r of runs.slice(1)) {
      expect(Object.is(r.loss, runs[0].loss)).toBe(true);
      expect(r.grads).toEqual(runs[0].grads);
    }
  });
});
