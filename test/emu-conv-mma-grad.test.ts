// The bf16 tensor-core convolution gradients (compiler/backends/cuda/conv-mma-grad.ts, `precision bf16`):
// one training step of a four-conv chain on the emu device against float64, every conv's weight and bias
// gradient within a bound derived per element from bf16 rounding, and two emu runs bitwise identical.
// (Against float64 rather than the cpu device: the cpu device is itself checked against float64 to fp32
// accuracy by the numerics suites, and its build would double this file's CI cost.) The chain has NIN's
// shapes at odd sizes: an 11×11 stride-4 stem on a 3×31×27 image, a 3×3 pad-1 conv (its dgrad rebuilds
// dReLU while staging dy), a 3×3 stride-2 pad-1 conv and a 1×1. The gradient the data-gradient kernels
// write is checked through the weight gradient of the conv before.
//
// Making the loss gradient exact: the linear layer's weights are scaled by 2⁻⁴⁸, so every logit is its
// bias exactly (checked: all output rows are bitwise equal), and the gradient that reaches the convs,
// g = Wᵀ·(softmax(b) − onehot)/n, does not depend on the bf16 forward. Every value then carries, beside
// its float64 value v, a bound E on |emu − v|, propagated layer by layer:
// - a sum y = Σ a·b over `terms` products, a carrying E_a, b the weights: the kernel rounds each operand
//   to bf16, |â − a| ≤ δ_a·|a| (δ = 2⁻⁸, or 0 for an operand that is a bf16 value already), products are
//   exact in fp32 and the fp32 chain rounds each partial sum (γ_n = n·u/(1 − n·u), u = 2⁻²⁴). With T =
//   Σ|a·b|, S = Σ E_a·|b| and ρ = (1+δ_a)(1+δ_b): E_y = (ρ − 1)·T + ρ·S + γ_{terms+1}·(ρ·(T + S) + |bias|).
// - the weight gradient Σ dy·x (both carry errors): S = Σ(E_dy·|x| + |dy|·E_x + E_dy·E_x), terms = n·P·Q
//   plus the ordered sum of the splits; the bias gradient Σ dy in fp32 (no bf16): S + γ·(Σ|dy| + S).
// - ReLU forward is 1-Lipschitz (E unchanged); its backward mask is certain where |y| > E_y, else the
//   value is taken as dy/2 with E = |dy|/2 + E_dy (the device may keep or drop it).
// - the loss gradient: the device computes softmax in fp32, a stated slack of 2⁻¹⁸ per probability (64 ulp,
//   far below bf16's 2⁻⁸, so it cannot hide a bf16-level error), and the linear layer's data gradient as a bf16
//   tensor-core sum over the classes (the first rule, both operands rounded).
// The weights and images are bf16 values (δ = 0 for them), all positive, as is the gradient reaching the
// convs (chooseWeights says why): only the activations and gradients between layers are rounded.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import type { ShapedModel } from '../compiler/ir.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load, type Model } from '../runtime/model.js';
import { buildFashion, controlName, fashionCurves, meanGap, type Trajectory } from '../scripts/bf16-fashion-curve.js';
import { loadWith, readWeights, rng, stepWithExactLogits, uniform } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { chainReference, chainWeights, type Chain, type Conv, convCall, sparseImages, worst } from './reference/bf16-bound.js';

const STEPS = 6; // SGD steps of the training runs

const STEM: Conv = { C: 3, H: 31, W: 27, K: 8, R: 11, S: 11, sh: 4, sw: 4, ph: 2, pw: 2 }; // → 8×7×6
const C3X3: Conv = { C: 8, H: 7, W: 6, K: 20, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 }; // → 20×7×6
const S2: Conv = { C: 20, H: 7, W: 6, K: 12, R: 3, S: 3, sh: 2, sw: 2, ph: 1, pw: 1 }; // → 12×4×3
const C1X1: Conv = { C: 12, H: 4, W: 3, K: 6, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0 }; // → 6×4×3
const CLASSES = 3;
const FEATURES = 6 * 4 * 3;
const SPEC = `model mma_grad { input 3x31x27  ${convCall(STEM)}  relu  ${convCall(C3X3)}  relu  ${convCall(S2)}  ${convCall(C1X1)}  view(-1)  linear(${FEATURES}, ${CLASSES})  logsoftmax }`;

let root: string;
let model: ShapedModel;
let emuDir: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nincc-mma-grad-'));
  const r = compileSpec(SPEC, 'mma_grad.model');
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  model = r.model;
  emuDir = join(root, 'emu');
  withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(r.model!, SPEC, { outDir: emuDir, target: 'emu', maxBatch: 4, precision: 'bf16', withoutCpuLibrary: true }));
}, 300_000);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const CONVS: readonly (readonly [string, Conv])[] = [['conv1', STEM], ['conv3', C3X3], ['conv5', S2], ['conv6', C1X1]];
/** How far below its mean each conv's bias pulls a channel: conv1's ReLU then drops about half its inputs, conv3's some. */
const BIAS_PULL: Record<string, number> = { conv1: 1, conv3: 0.7, conv5: 0, conv6: 0 };

/** The test's weights (test/reference/bf16-bound.ts chainWeights says why they are all positive). */
const CHAIN: Chain = { convs: CONVS, biasPull: BIAS_PULL, reluAfter: new Set(['conv1', 'conv3']), linear: 'linear8', classes: CLASSES, features: FEATURES };
const chooseWeights = (images: Float32Array, n: number) => chainWeights(CHAIN, images, n, rng(5));

const prepared = (tensors: Map<string, Float32Array>) => loadWith(emuDir, 'emu', 11, tensors);

describe('bf16 tensor-core conv gradients on emu', () => {
  it('one step of an 11×11/4, 3×3, 3×3/2, 1×1 chain: every conv weight and bias gradient within the bf16 bound of float64; two emu runs bitwise equal', async () => {
    const n = 3; // below the grid's maximum of 4: the batch-folded grids and the splits see a partial batch
    const next = rng(23);
    const images = sparseImages(n * STEM.C * STEM.H * STEM.W, 0.1, next);
    const labels = new Int32Array(n); // class 0 for all (chooseWeights)
    const tensors = chooseWeights(images, n);
    const emu = await prepared(tensors);
    const again = await prepared(tensors);
    try {
      await stepWithExactLogits([emu, again], images, labels, CLASSES);

      const t = readWeights(emu);
      const expected = chainReference(CHAIN, n, images, labels, (name) => t.get(name)!);
      // Both ReLUs drop values for certain (so a dgrad without its dReLU prologue fails), and few are in doubt.
      for (const y of [expected.get('conv1')!.y, expected.get('conv3')!.y]) {
        expect(y.v.filter((v, i) => v < -y.e[i]).length).toBeGreaterThan(y.v.length / 20);
        expect(y.v.filter((v, i) => Math.abs(v) <= y.e[i]).length).toBeLessThan(y.v.length / 100);
      }
      for (const [name, ref] of expected) {
        for (const [part, r] of [['weight', ref.dw], ['bias', ref.db]] as const) {
          const e = emu.getGradient(`${name}.${part}`);
          const { ratio, at } = worst(e, r.v, r.e);
          expect(ratio, `${name}.${part}[${at}]: emu ${e[at]}, float64 ${r.v[at]}, bound ${r.e[at]}`).toBeLessThanOrEqual(1);
          // The bound means something: bf16 rounding, not a blanket tolerance.
          const scale = r.v.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          expect(Math.max(...r.e), `${name}.${part}`).toBeLessThan(0.05 * scale);
          expect(Array.from(again.getGradient(`${name}.${part}`)), `${name}.${part}: a second emu run`).toEqual(Array.from(e));
        }
        // The kernels do round to bf16: somewhere the weight gradient is off by far more than fp32 arithmetic could make it.
        const scale = ref.dw.v.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(worst(emu.getGradient(`${name}.weight`), ref.dw.v, new Float64Array(ref.dw.v.length).fill(2 ** -14 * scale)).ratio, name).toBeGreaterThan(1);
      }
    } finally {
      await Promise.all([emu, again].map((m) => m.dispose()));
    }
  }, 300_000);
});

/** The loss of each of `steps` SGD steps on one fixed batch (the model overfits it: the loss falls). */
async function lossCurve(m: Model, images: Float32Array, labels: Int32Array, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })).loss);
  return losses;
}

describe('bf16 training runs on emu', () => {
  it('SGD steps of the chain: the loss falls, and two emu runs are bitwise identical (weights and losses)', async () => {
    const n = 4;
    const next = rng(31);
    const images = uniform(n * STEM.C * STEM.H * STEM.W, -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
    const runs = [];
    for (let run = 0; run < 2; run++) {
      const m = await load(emuDir, { device: 'emu', seed: 13 });
      try {
        runs.push({ losses: await lossCurve(m, images, labels, STEPS), weights: Array.from(m.getTensor('conv3.weight')) });
      } finally {
        await m.dispose();
      }
    }
    expect(runs[0].losses[STEPS - 1]).toBeLessThan(runs[0].losses[0]);
    expect(runs[1].losses).toEqual(runs[0].losses);
    expect(runs[1].weights).toEqual(runs[0].weights);
  }, 300_000);
});

// NINCC_TEST_FULL=1: test/data/conv-mma.model (BN and ReLU after every conv but one: the fused dBN prologues
// and the Σdz, Σdz·x̂ epilogue of the data gradient) trained on emu in bf16 and on cpu in fp32 from the
// same weights. The tolerance is stated, not derived (a bound through 40 nonlinear steps would admit
// anything): bf16 rounding moves each step's gradients by a few 2⁻⁸ relatively; measured here, the
// largest gap between the curves was 1.2e-2 on an initial loss of 2.31 (0.5%, both ending near 0.006; 3.9e-3 with
// the linear layer on tensor cores too, bench/logs/i15o-emu-conv-mma-grad-full.out), and the tolerance is 2% of the initial loss. The loss must fall by more than that, so a flat curve fails.
const FULL_STEPS = 40;
const FULL_TOLERANCE = 0.02;
describe.runIf(process.env.NINCC_TEST_FULL === '1')('bf16 training follows fp32 (NINCC_TEST_FULL=1)', () => {
  it(`test/data/conv-mma.model: ${FULL_STEPS} SGD steps on emu in bf16 follow the cpu loss curve`, async () => {
    const file = join(import.meta.dirname, 'data/conv-mma.model');
    const source = readFileSync(file, 'utf8');
    const r = compileSpec(source, 'conv-mma.model');
    if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
    const dirs = { emu: join(root, 'full-emu'), cpu: join(root, 'full-cpu') };
    withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(r.model!, source, { outDir: dirs.emu, target: 'emu', maxBatch: 8, precision: 'bf16' }));
    buildArtifact(r.model, source, { outDir: dirs.cpu, target: 'cpu', maxBatch: 8 });
    const n = 8;
    const next = rng(41);
    const images = uniform(n * 3 * 39 * 35, -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
    const curves: Record<string, number[]> = {};
    for (const device of ['cpu', 'emu'] as const) {
      const m = await load(dirs[device], { device, seed: 17 });
      try {
        curves[device] = await lossCurve(m, images, labels, FULL_STEPS);
      } finally {
        await m.dispose();
      }
    }
    const { cpu, emu } = curves;
    const gap = Math.max(...cpu.map((l, i) => Math.abs(l - emu[i])));
    expect(gap, `cpu ${cpu.join(' ')}\nemu ${emu.join(' ')}`).toBeLessThanOrEqual(FULL_TOLERANCE * cpu[0]);
    expect(cpu[0] - cpu[FULL_STEPS - 1]).toBeGreaterThan(FULL_TOLERANCE * cpu[0]);
    console.log(`conv-mma.model: loss ${cpu[0].toFixed(4)} → cpu ${cpu[FULL_STEPS - 1].toFixed(4)}, emu ${emu[FULL_STEPS - 1].toFixed(4)}; largest gap ${gap.toExponential(3)}`);
  }, 600_000);
});

// NINCC_TEST_FULL=1 also trains models/nin-fashion.model (acceptance 1 of issue #15, at a CI-free size):
// FASHION_STEPS steps (NINCC_BF16_STEPS, default 30) of batch 8 through the mini Fashion-MNIST set, emu in
// bf16 against cpu in fp32 from the same weights (scripts/bf16-fashion-curve.ts, which prints the same runs
// step by step), and a second emu run bitwise equal over its first 5 steps.
// A fresh batch each step at lr 0.05 with momentum makes SGD chaotic here, so no fixed per-step tolerance
// is sound: a bf16-sized perturbation grows to whole-curve size within tens of steps whatever arithmetic
// made it. The criterion is therefore relative to a control ensemble measured in the same run:
// FASHION_CONTROLS cpu fp32 runs whose initial weights are stochastically rounded to bf16 (seeds 1..8, each
// one valid bf16 rounding). The emu curve's mean |gap| to the cpu curve must be at most FASHION_MARGIN times
// the largest of the controls' mean |gap|s. The margin: emu rounds at every step, the controls once, and emu
// drawn like a ninth control would still be the largest of nine one time in nine. Measured with today's
// kernels (bench/logs/emu-bf16-nin-fashion-controls-300.out, emu-bf16-nin-fashion-300-bb5ce83.out): over 30
// steps emu 0.0467, controls 0.0269–0.0550 (bound 0.0825); the largest per-step gap was emu 0.268 and
// controls 0.102–0.238, which is why the old 10%-of-the-first-loss per-step bound (0.242) failed — a draw
// from this spread, not a fault. Over 50 steps emu 0.0670 against 0.0515–0.0792, over 100 0.0772 against
// 0.0761–0.1029, over 300 0.1314 against 0.1277–0.1571. With the linear layer on tensor cores too (dense-mma.ts,
// bench/logs/i15o-emu-conv-mma-grad-full.out), over 30 steps: emu 0.0394, controls 0.0266–0.0460 (bound 0.0690). The emu curve must also fall by more than 10% of
// the first loss (a flat or diverging run fails). What it catches: a gross fault (conv-mma-tile.ts's stageAlongK staging k offset 4·quarter + e,
// an order the other operand does not share: emu 0.2570, over the bound 0.0825); not a subtle one — the
// dBN rebuild of the bf16 gradient prologues without its x̂·dγ term passes (emu 0.0416); the per-element
// check that catches it is test/emu-conv-mma-grad-bn.test.ts.
// Longer: NINCC_TEST_FULL=1 NINCC_BF16_STEPS=300 npx vitest run test/emu-conv-mma-grad.test.ts -t nin-fashion.
const FASHION_STEPS = Number(process.env.NINCC_BF16_STEPS ?? 30);
const FASHION_CONTROLS = 8;
const FASHION_MARGIN = 1.5;
const FASHION_FALL = 0.1;
describe.runIf(process.env.NINCC_TEST_FULL === '1')('nin-fashion in bf16 (NINCC_TEST_FULL=1)', () => {
  it(`models/nin-fashion.model: ${FASHION_STEPS} SGD steps on emu in bf16 stay within the spread of ${FASHION_CONTROLS} bf16-rounded cpu controls; two emu runs bitwise equal`, async () => {
    const dirs = buildFashion(root);
    const runs: Record<string, Trajectory> = { cpu: { dir: dirs.cpu, device: 'cpu' }, emu: { dir: dirs.emu, device: 'emu' } };
    const controls = Array.from({ length: FASHION_CONTROLS }, (_, i) => controlName(i + 1));
    controls.forEach((name, i) => (runs[name] = { dir: dirs.cpu, device: 'cpu', rounding: i + 1 }));
    const curves = await fashionCurves(runs, FASHION_STEPS);
    const { cpu, emu } = curves;
    const emuGap = meanGap(cpu, emu);
    const controlGaps = controls.map((name) => meanGap(cpu, curves[name]));
    const head = (xs: number[]) => xs.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
    const tail = (xs: number[]) => xs.slice(-3).reduce((a, b) => a + b, 0) / 3;
    console.log(`nin-fashion, ${FASHION_STEPS} steps: mean |gap| to cpu: emu ${emuGap.toFixed(4)}, controls ${controlGaps.map((g) => g.toFixed(4)).join(' ')}; mean loss of the first 3 steps ${head(cpu).toFixed(4)} → last 3: cpu ${tail(cpu).toFixed(4)}, emu ${tail(emu).toFixed(4)}`);
    const record = Object.entries(curves).map(([name, c]) => `${name} ${c.join(' ')}`).join('\n');
    expect(emuGap, record).toBeLessThanOrEqual(FASHION_MARGIN * Math.max(...controlGaps));
    expect(head(emu) - tail(emu), record).toBeGreaterThan(FASHION_FALL * cpu[0]);
    expect((await fashionCurves({ emu: { dir: dirs.emu, device: 'emu' } }, 5)).emu).toEqual(emu.slice(0, 5));
}, Math.max(1_800_000, FASHION_STEPS * 15_000));
});
