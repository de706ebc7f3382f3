// The fused CUDA training program (issue 4) run on the emu device: `nincc build --target emu` lowers
// training with the BN+ReLU fusion of docs/design.md §4 (compiler/lower/train-fused.ts) and generates its kernels
// into kernels.cu; the emulator runs that CUDA source on the CPU. Every kernel family must agree with
// the cpu device (unfused kernels, built with --target cpu from the same spec and weights) and with
// float64 central differences of the reference interpreter, over specs that reach every fused path —
// conv→bn→relu chains at the NIN layer shapes and every stride/pad of the shipped specs, BN with no conv
// before it, ReLU before BN, pending BN through pools and a 1×1 view, a pending value materialized for a
// linear, dropout with the cpu's own mask — at batches 1–3 on a poisoned arena; a training step of models/nin-fashion.model must match the
// cpu's and repeat bitwise; report.txt of models/nin.model must show one conv kernel + one finalize per
// conv→bn→relu and no separate BN/ReLU passes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import type { ShapedModel } from '../compiler/ir.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { buildReport } from '../compiler/report/build-report.js';
import { load, type Model } from '../runtime/model.js';
import { expectClose, expectGradientsClose, poisonArena, randomImages, randomizeAffine, randomLabels, readWeights, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { checkGradients } from './reference/gradients.js';
import { trainLoss, trainLossFrom } from './reference/interpret.js';
import { DROPOUT_MLP, EVERY_LAYER, FASHION_ODD, NIN_FASHION, NIN_SMALL, ODDS_AND_ENDS, POOL_PROBE } from './reference/specs.js';

/** The fused paths the NIN specs do not reach; each line says which. */
const FUSED_PATHS = `
model fused_paths {
  input 3x10x9
  bn(3, 1e-5, 0.2)  relu          # BN on the images: bn_stats; its BN+ReLU applied in the conv's prologue
  conv(3, 6, 3, 3, 2, 2, 1, 1)    # 6x5x5, stride 2: the dgrad skips taps; dgrad epilogue partials for the input BN
  relu  bn(6)                     # ReLU before BN: materialized (act_apply), then bn_stats
  maxpool(2, 2)                   # 6x2x2: a pending BN without ReLU on load
  bn(6, 1e-3)  relu               # BN after a pool: bn_stats; the pool's backward gets a rebuilt gradient (grad_rebuild)
  conv(6, 5, 1, 1)  relu          # conv + ReLU without BN: a pending ReLU only
  avgpool(2, 2, 1, 1)             # 5x1x1
  bn(5)  relu  view(-1)           # BN+ReLU pending through a 1x1 view, materialized for the linear
  linear(5, 4)  relu              # a pending ReLU on a linear: materialized, and the linear gets a rebuilt gradient
  logsoftmax
}
`;

/** A pending BN+ReLU flattened from a 4×5 plane: materialized before the view (act_apply, act_bwd_stats). */
const FLAT_PENDING = `
model flat_pending {
  input 2x5x4
  conv(2, 3, 3, 3, 1, 1, 1, 1)  bn(3)  relu  view(-1)  linear(60, 6)  logsoftmax
}
`;

// Gradients: per tensor 1e-4·max|cpu| + ATOL (expectGradientsClose: numerically-zero ones against the
// model's largest). Forward values as the inference tests: 2e-5·max|ref| + ATOL.
/** Under scripts/test-emu-asan.sh (NINCC_EMU_ASAN=1) the emu builds and runs are instrumented: about three times slower. */
const ASAN_SLOWER = process.env.NINCC_EMU_ASAN === '1' ? 3 : 1;
const GRAD_TOL = 1e-4;
const TOL = 2e-5;

const specs: Record<string, string> = {
  fused_paths: FUSED_PATHS,
  flat_pending: FLAT_PENDING,
  nin_small: NIN_SMALL,
  fashion_odd: FASHION_ODD,
  odds_and_ends: ODDS_AND_ENDS,
  pool_probe: POOL_PROBE,
  every_layer: EVERY_LAYER,
  dropout_mlp: DROPOUT_MLP,
  nin_fashion: NIN_FASHION,
};

interface Pair {
  readonly model: ShapedModel;
  readonly emuDir: string;
  readonly cpuDir: string;
}

let root: string;
const built = new Map<string, Pair>();

/** The emu builds that a test loads on the cpu device too (the refusal of the fused training program): the others leave the cpu library out. */
const EMU_ON_CPU = new Set(['flat_pending']);

function build(name: string, source: string, target: 'cpu' | 'emu', maxBatch = 4): { model: ShapedModel; dir: string } {
  const r = compileSpec(source, `${name}.model`);
  if (!r.model) throw new Error(`${name}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const dir = join(root, `${name}-${target}`);
  buildArtifact(r.model, source, { outDir: dir, target, maxBatch, withoutCpuLibrary: target === 'emu' && !EMU_ON_CPU.has(name) });
  return { model: r.model, dir };
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nincc-emu-train-'));
});

/** A spec's emu and cpu builds, made when a test first needs them (so `-t` runs build only their specs). */
function pairBuilt(name: string): Pair {
  const had = built.get(name);
  if (had) return had;
  // The nvcc compile is test/cuda-build.test.ts's business.
  const pair = withEnv({ NINCC_NVCC: '0' }, () => {
    const emu = build(name, specs[name], 'emu');
    return { model: emu.model, emuDir: emu.dir, cpuDir: build(name, specs[name], 'cpu').dir };
  });
  built.set(name, pair);
  return pair;
}

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Both devices with the same seeded weights and random BN affine parameters. */
async function pair(name: string, seed: number): Promise<{ cpu: Model; emu: Model; p: Pair; next: () => number }> {
  const p = pairBuilt(name);
  const cpu = await load(p.cpuDir, { device: 'cpu', seed });
  const emu = await load(p.emuDir, { device: 'emu', seed });
  const next = rng(seed * 7919 + 5);
  randomizeAffine(cpu, next);
  for (const t of cpu.tensorNames()) emu.setTensor(t, cpu.getTensor(t));
  return { cpu, emu, p, next };
}


function expectTensorsClose(emu: Model, cpu: Model, what: string): void {
  for (const t of cpu.tensorNames()) expectClose(emu.getTensor(t), cpu.getTensor(t), TOL, `${what}: ${t}`);
}

describe('emu training kernels against cpu and float64', () => {
  for (const name of Object.keys(specs).filter((s) => s !== 'nin_fashion')) {
    it(`${name}: forward+backward at batches 3, 1, 2 on a poisoned arena (loss, output, every gradient)`, async () => {
      const { cpu, emu, p, next } = await pair(name, 11);
      try {
        for (const [n, poison] of [[3, Number.NaN], [1, 3.0e4], [2, Number.NaN]] as const) {
          const images = randomImages(p.model, n, next);
          const labels = randomLabels(p.model, n, next);
          poisonArena(emu, poison);
          poisonArena(cpu, poison);
          const a = await cpu.forwardBackward(images, labels);
          const b = await emu.forwardBackward(images, labels);
          // A random dropout mask is the one thing the float64 reference cannot know; the cpu's mask is checked
          // against it in test/numerics-gradients.test.ts, and equal losses and gradients here mean equal masks.
          if (!p.model.layers.some((l) => l.kind === 'dropout' && l.attrs.p > 0)) {
            const reference = trainLoss(p.model, readWeights(cpu), images, labels);
            expect(Math.abs(b.loss - reference), `${name} n=${n}: emu loss ${b.loss}, float64 ${reference}`).toBeLessThanOrEqual(TOL * (1 + Math.abs(reference)));
          }
          expect(Math.abs(b.loss - a.loss), `${name} n=${n}: emu loss ${b.loss}, cpu ${a.loss}`).toBeLessThanOrEqual(TOL * (1 + Math.abs(a.loss)));
          expectClose(b.output, a.output, TOL, `${name} n=${n}: output`);
          expectGradientsClose(emu, cpu, GRAD_TOL, `${name} n=${n}`);
          expectTensorsClose(emu, cpu, `${name} n=${n} (running statistics)`);
        }
      } finally {
        cpu.dispose();
        emu.dispose();
      }
    }, 300_000 * ASAN_SLOWER); // includes building the spec for emu and cpu on first use
  }

  for (const name of ['fused_paths', 'flat_pending', 'odds_and_ends']) {
    it(`${name}: emu gradients against float64 central differences`, async () => {
      const { cpu, emu, p, next } = await pair(name, 23);
      try {
        const images = randomImages(p.model, 3, next);
        const labels = randomLabels(p.model, 3, next);
        poisonArena(emu, Number.NaN);
        await emu.forwardBackward(images, labels);
        const checked = checkGradients(emu, trainLossFrom(p.model, readWeights(emu), images, labels), 40, next, `${name} on emu`);
        expect(checked).toBeGreaterThan(0);
      } finally {
        cpu.dispose();
        emu.dispose();
      }
    }, 300_000 * ASAN_SLOWER); // includes building the spec for emu and cpu on first use
  }

  it('fused_paths: two SGD steps (momentum, weight decay) leave the same weights and running statistics as cpu', async () => {
    const { cpu, emu, p, next } = await pair('fused_paths', 31);
    try {
      for (let step = 0; step < 2; step++) {
        const images = randomImages(p.model, 3, next);
        const labels = randomLabels(p.model, 3, next);
        const options = { lr: 0.1, weightDecay: 5e-4, momentum: 0.9 };
        const a = await cpu.trainStep(images, labels, options);
        const b = await emu.trainStep(images, labels, options);
        expect(Math.abs(a.loss - b.loss)).toBeLessThanOrEqual(TOL * (1 + Math.abs(a.loss)));
      }
      expectTensorsClose(emu, cpu, 'after two steps');
    } finally {
      cpu.dispose();
      emu.dispose();
    }
  }, 300_000 * ASAN_SLOWER); // includes building the spec for emu and cpu on first use
});

describe('models/nin-fashion.model on emu (acceptance 2)', () => {
  /** One SGD step of the shipped spec at batch 3: loss, every gradient, then the updated weights and running stats. */
  async function step(m: Model, images: Float32Array, labels: Int32Array): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const { loss } = await m.forwardBackward(images, labels);
    const grads = new Map(m.info.params.map((t) => [t.name, m.getGradient(t.name)]));
    await m.trainStep(images, labels, { lr: 0.05, weightDecay: 5e-4, momentum: 0.9 });
    return { loss, grads };
  }

  it('a training step matches cpu: loss, every gradient, updated weights and running statistics', async () => {
    const { cpu, emu, p, next } = await pair('nin_fashion', 41);
    try {
      const images = randomImages(p.model, 3, next);
      const labels = randomLabels(p.model, 3, next);
      poisonArena(emu, Number.NaN);
      poisonArena(cpu, Number.NaN);
      const a = await cpu.forwardBackward(images, labels);
      const b = await emu.forwardBackward(images, labels);
      expect(Math.abs(a.loss - b.loss), `loss: cpu ${a.loss}, emu ${b.loss}`).toBeLessThanOrEqual(TOL * (1 + Math.abs(a.loss)));
      expectGradientsClose(emu, cpu, GRAD_TOL, 'nin-fashion');
      await cpu.trainStep(images, labels, { lr: 0.05, weightDecay: 5e-4, momentum: 0.9 });
      await emu.trainStep(images, labels, { lr: 0.05, weightDecay: 5e-4, momentum: 0.9 });
      expectTensorsClose(emu, cpu, 'nin-fashion after a step');
    } finally {
      cpu.dispose();
      emu.dispose();
    }
  }, 400_000); // includes building the spec for emu and cpu on first use

  it('two runs on emu are bitwise identical, whatever the block order and worker count', async () => {
    const p = pairBuilt('nin_fashion');
    const next = rng(43);
    const images = randomImages(p.model, 3, next);
    const labels = randomLabels(p.model, 3, next);
    const runs: { loss: number; grads: Map<string, Float32Array>; tensors: Map<string, Float32Array> }[] = [];
    for (const [order, workers] of [['forward', '2'], ['reverse', '1'], ['shuffled:7', '3']]) {
      // The emu device reads these at every launch.
      await withEnv({ NINCC_EMU_ORDER: order, NINCC_EMU_WORKERS: workers }, async () => {
        const m = await load(p.emuDir, { device: 'emu', seed: 42 });
        try {
          poisonArena(m, Number.NaN);
          const r = await step(m, images, labels);
          runs.push({ ...r, tensors: new Map(m.tensorNames().map((t) => [t, m.getTensor(t)])) });
        } finally {
          m.dispose();
        }
      });
    }
    const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    for (const r of runs.slice(1)) {
      expect(Object.is(r.loss, runs[0].loss)).toBe(true);
      for (const [t, g] of runs[0].grads) expect(bytes(r.grads.get(t)!).equals(bytes(g)), `gradient ${t}`).toBe(true);
      for (const [t, v] of runs[0].tensors) expect(bytes(r.tensors.get(t)!).equals(bytes(v)), `tensor ${t}`).toBe(true);
    }
  }, 400_000); // includes building the spec for emu and cpu on first use
});

describe('what the fused training program is and where it runs', () => {
  it('report.txt of models/nin.model: per conv→bn→relu one conv kernel with prologue/epilogue fusion plus one finalize, no BN/ReLU passes', () => {
    // The report as buildArtifact writes it, from the compiled model alone: compiling nin.model's
    // kernels would add nothing here and cost CI a g++ run of the whole network.
    const source = readFileSync(new URL('../models/nin.model', import.meta.url), 'utf8');
    const r = compileSpec(source, 'models/nin.model');
    const compiled = compileModel(r.model!, { target: 'emu', maxBatch: 1, sourceHash: 'test', libraries: { cpu: 'kernels.cpu.so', emu: 'kernels.emu.so' }, cpuFeatures: [] });
    const report = buildReport(r.model!, compiled, 'g++ (not run)');
    expect(report).toContain('12 of 12 conv→bn→relu groups run forward as one conv kernel (statistics in its epilogue) plus one bn_finalize; 12 conv kernels in all');
    expect(report).toContain('separate BN/ReLU passes over activations: 0');
    expect(report).toMatch(/\(4\) nn\.SpatialConvolution\(96 -> 96, 1x1\): k4_conv_fwd_fused \[implicit-GEMM conv \+ prologue: previous BN scale\/shift \+ prologue: ReLU \+ bias \+ epilogue: per-tile BN statistics/);
    const ops = compiled.plan.programs.train_forward_backward.steps.map((s) => s.kernel.replace(/^k\d*_/, ''));
    for (const op of ['bn_fwd_train', 'bn_bwd', 'relu_fwd', 'relu_bwd', 'act_apply', 'grad_rebuild']) expect(ops).not.toContain(op);
    expect(ops.filter((o) => o === 'bn_finalize')).toHaveLength(12);
    expect(compiled.plan.programs.train_forward_backward.devices).toEqual(['cuda', 'emu']);
  });

  it('the cpu device refuses the fused training program of an emu build, naming the devices and the fix', async () => {
    const p = pairBuilt('flat_pending');
    const m = await load(p.emuDir, { device: 'cpu', seed: 1 });
    try {
      const next = rng(3);
      await expect(m.forwardBackward(randomImages(p.model, 1, next), randomLabels(p.model, 1, next))).rejects.toThrow(
        /program "train_forward_backward" of .*plan\.json runs on cuda, emu, not on the cpu device .*build with --target cpu to train on the cpu device/,
      );
      expect((await m.infer(randomImages(p.model, 1, next))).length).toBe(6);
    } finally {
      m.dispose();
    }
  }, 300_000 * ASAN_SLOWER); // run alone (-t), it builds flat_pending for emu (with the cpu library) and cpu first
});
