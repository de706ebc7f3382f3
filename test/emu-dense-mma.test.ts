// The bf16 tensor-core linear layer (compiler/backends/cuda/dense-mma.ts, `precision bf16`): one training
// step of linear(35, 1000) → ReLU → linear(1000, 37) → logsoftmax on the emu device at batch 3 (the grid's
// maximum is 4), every tensor the three kernels write checked against float64 within a bound derived per
// element from bf16 rounding, and two emu runs bitwise identical. The sizes are not multiples of any tile
// (1000 and 37 outputs, 35 inputs: the scalar staging; 1000 inputs: the 16-byte staging) and 3 rows of a
// 64-row tile. Against float64 rather than the cpu device, as test/emu-conv-mma-grad.test.ts says why.
//
// The bound (test/reference/bf16-bound.ts sumBound): a sum Σ a·b over `terms` products, both operands
// rounded to bf16 by the kernel (δ = 2⁻⁸ each), exact products, fp32 partial sums (γ_{terms+1}); with T =
// Σ|a·b| and S = Σ E_a·|b| (+ |a|·E_b + E_a·E_b) for operands already off by E: E = (ρ − 1)·T + ρ·S +
// γ·(ρ·(T + S) + |bias|), ρ = (1 + δ)². The chain:
// - y1 = x·W1ᵀ + b1 (x, W1 exact inputs), a1 = ReLU(y1) (1-Lipschitz: E unchanged), y2 = a1·W2ᵀ + b2.
// - the output is logsoftmax(y2) in fp32 on the device: within E2_j + max_k E2_k (the log-sum-exp moves by at
//   most the largest change of its arguments) plus a stated fp32 slack of 2⁻¹⁸·(|y2_j| + |lse|) (64 ulp,
//   far below bf16's 2⁻⁸: it cannot hide a bf16-level error).
// - the loss gradient g = (softmax − onehot)/n is taken from the emu's own output (checked just above), off
//   by the device's fp32 exp and subtraction: SOFTMAX_SLACK/n per element.
// - dW2 = gᵀ·a1 (n terms), db2 = Σ g in fp32, dX2 = g·W2 (37 terms), g1 = ReLU'(y1)·dX2 (reluBackward: a mask
//   in doubt where |y1| ≤ E1), dW1 = g1ᵀ·x, db1 = Σ g1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load, type Model } from '../runtime/model.js';
import { rng, uniform } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { chooseDenseTile } from '../compiler/backends/cuda/dense-mma.js';
import { bf16, BF16, type Bounded, EXACT, gamma, reluBackward, type Rounding, SOFTMAX_SLACK, sumBound, worst } from './reference/bf16-bound.js';

const IN = 35, HIDDEN = 1000, CLASSES = 37;
const SPEC = `model dense_mma { input 1x5x7  view(-1)  linear(${IN}, ${HIDDEN})  relu  linear(${HIDDEN}, ${CLASSES})  logsoftmax }`;
const LOGSOFTMAX_SLACK = 2 ** -18;

let root: string;
let dir: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nincc-dense-mma-'));
  const r = compileSpec(SPEC, 'dense_mma.model');
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  dir = join(root, 'emu');
  withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(r.model!, SPEC, { outDir: dir, target: 'emu', maxBatch: 4, precision: 'bf16', withoutCpuLibrary: true }));
}, 300_000);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** y[r][o] = Σ_i a[r][i]·w[o][i] (+ b[o]) over `rows` rows, with its bound; `a` carries its own E. */
function dense(rows: number, inputs: number, outputs: number, a: Bounded, w: Float64Array, d: Rounding, b?: Float64Array): Bounded {
  const v = new Float64Array(rows * outputs), e = new Float64Array(v.length);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < outputs; o++) {
      let sum = 0, T = 0, S = 0;
      for (let i = 0; i < inputs; i++) {
        const x = a.v[r * inputs + i], wt = w[o * inputs + i];
        sum += x * wt;
        T += Math.abs(x * wt);
        S += a.e[r * inputs + i] * Math.abs(wt);
      }
      v[r * outputs + o] = sum + (b ? b[o] : 0);
      e[r * outputs + o] = sumBound(T, S, inputs, d, b ? b[o] : 0);
    }
  return { v, e };
}

/** dW[o][i] = Σ_img g[img][o]·x[img][i] and db[o] = Σ_img g[img][o] (fp32, no bf16), both operands carrying E. */
function weightGradient(n: number, inputs: number, outputs: number, g: Bounded, x: Bounded, d: Rounding): { dw: Bounded; db: Bounded } {
  const dw = new Float64Array(outputs * inputs), dwE = new Float64Array(dw.length);
  const db = new Float64Array(outputs), dbE = new Float64Array(outputs);
  for (let o = 0; o < outputs; o++) {
    let sum = 0, abs = 0, S = 0;
    for (let img = 0; img < n; img++) {
      sum += g.v[img * outputs + o];
      abs += Math.abs(g.v[img * outputs + o]);
      S += g.e[img * outputs + o];
    }
    db[o] = sum;
    dbE[o] = S + gamma(n + 1) * (abs + S);
    for (let i = 0; i < inputs; i++) {
      let s = 0, T = 0, Se = 0;
      for (let img = 0; img < n; img++) {
        const gv = g.v[img * outputs + o], ge = g.e[img * outputs + o], xv = x.v[img * inputs + i], xe = x.e[img * inputs + i];
        s += gv * xv;
        T += Math.abs(gv * xv);
        Se += ge * Math.abs(xv) + Math.abs(gv) * xe + ge * xe;
      }
      dw[o * inputs + i] = s;
      dwE[o * inputs + i] = sumBound(T, Se, n, d);
    }
  }
  return { dw: { v: dw, e: dwE }, db: { v: db, e: dbE } };
}

/** dX[img][i] = Σ_o g[img][o]·w[o][i]. */
function dataGradient(n: number, inputs: number, outputs: number, g: Bounded, w: Float64Array, d: Rounding): Bounded {
  const wt = new Float64Array(inputs * outputs); // w transposed: dense() reads rows of [inputs][outputs]
  for (let o = 0; o < outputs; o++) for (let i = 0; i < inputs; i++) wt[i * outputs + o] = w[o * inputs + i];
  return dense(n, outputs, inputs, g, wt, d);
}

function expectWithin(label: string, actual: ArrayLike<number>, ref: Bounded): void {
  const { ratio, at } = worst(actual, ref.v, ref.e);
  expect(ratio, `${label}[${at}]: emu ${actual[at]}, float64 ${ref.v[at]}, bound ${ref.e[at]}`).toBeLessThanOrEqual(1);
  // The bound means something: bf16 rounding, not a blanket tolerance.
  const scale = ref.v.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  expect(Math.max(...ref.e), label).toBeLessThan(0.05 * scale);
}

describe('the linear layer\'s tile (dense-mma.ts chooseDenseTile)', () => {
  it('fills the GPU once with the least staging: NIN\'s 1024 → 1000 layer at batch 128', () => {
    const words = (rows: number, cols: number) => { const t = chooseDenseTile(rows, cols); return `${t.bm}×${t.bn}`; };
    expect(words(128, 1000)).toBe('64×16'); // forward: 2 × 63 blocks, against 128×64's 16
    expect(words(128, 1024)).toBe('64×16'); // data gradient: 2 × 64 blocks
    expect(words(1000, 1024)).toBe('64×128'); // weight gradient: 16 × 8 blocks
    expect(words(4, 37)).toBe('64×16'); // three blocks in one wave, 80 rows staged each, against one 64×64 block's 128
  });
});

describe('bf16 tensor-core linear layer on emu', () => {
  it('one step at batch 3 of linear(35, 1000), ReLU, linear(1000, 37): output, dW, db (and dX through dW1) within the bf16 bound of float64; a second run bitwise equal', async () => {
    const n = 3;
    const next = rng(41);
    // chooseData: the images and both weights are bf16 values (δ = 0 for them); the first layer's are positive and its
    // bias pulls about half its outputs below 0, so its sums do not cancel (E1 stays at fp32's γ·T) and the ReLU mask
    // matters; the second layer's weights take both signs.
    const images = uniform(n * IN, 0, 1, next).map(bf16);
    const labels = Int32Array.from({ length: n }, (_, i) => (7 * i + 2) % CLASSES);
    const tensors = new Map<string, Float32Array>([
      ['linear2.weight', uniform(HIDDEN * IN, 0, 0.5, next).map(bf16)],
      ['linear2.bias', uniform(HIDDEN, -5.5, -3.5, next)],
      ['linear4.weight', uniform(CLASSES * HIDDEN, -0.1, 0.1, next).map(bf16)],
      ['linear4.bias', uniform(CLASSES, -0.2, 0.2, next)],
    ]);
    const models: Model[] = [];
    try {
      for (let run = 0; run < 2; run++) {
        const m = await load(dir, { device: 'emu', seed: 3 });
        models.push(m);
        for (const [name, v] of tensors) m.setTensor(name, v);
      }
      const [emu, again] = models;
      const { output } = await emu.forwardBackward(images, labels);
      const second = await again.forwardBackward(images, labels);
      expect(Array.from(second.output), 'a second emu run: output').toEqual(Array.from(output));

      const f64 = (name: string) => Float64Array.from(tensors.get(name)!);
      const x: Bounded = { v: Float64Array.from(images), e: new Float64Array(images.length) };
      const y1 = dense(n, IN, HIDDEN, x, f64('linear2.weight'), { a: EXACT, b: EXACT }, f64('linear2.bias'));
      const a1: Bounded = { v: y1.v.map((v) => Math.max(v, 0)), e: y1.e };
      const y2 = dense(n, HIDDEN, CLASSES, a1, f64('linear4.weight'), { a: BF16, b: EXACT }, f64('linear4.bias'));

      // The output: logsoftmax(y2) per row.
      const out = new Float64Array(n * CLASSES), outE = new Float64Array(out.length);
      for (let img = 0; img < n; img++) {
        const row = y2.v.slice(img * CLASSES, (img + 1) * CLASSES), rowE = y2.e.slice(img * CLASSES, (img + 1) * CLASSES);
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
        const maxE = Math.max(...rowE);
        for (let j = 0; j < CLASSES; j++) {
          out[img * CLASSES + j] = row[j] - lse;
          outE[img * CLASSES + j] = rowE[j] + maxE + LOGSOFTMAX_SLACK * (Math.abs(row[j]) + Math.abs(lse));
        }
      }
      expectWithin('output', output, { v: out, e: outE });

      // The loss gradient from the emu's own output (checked above), then the chain.
      const g2: Bounded = {
        v: Float64Array.from(output, (o, i) => (Math.exp(o) - (labels[Math.floor(i / CLASSES)] === i % CLASSES ? 1 : 0)) / n),
        e: new Float64Array(output.length).fill(SOFTMAX_SLACK / n),
      };
      const l4 = weightGradient(n, HIDDEN, CLASSES, g2, a1, { a: BF16, b: BF16 });
      const dx2 = dataGradient(n, HIDDEN, CLASSES, g2, f64('linear4.weight'), { a: BF16, b: EXACT });
      const g1 = reluBackward(y1, dx2);
      // Some ReLU inputs are negative for certain (so the mask matters) and few are in doubt.
      expect(y1.v.filter((v, i) => v < -y1.e[i]).length).toBeGreaterThan(y1.v.length / 4);
      expect(y1.v.filter((v, i) => Math.abs(v) <= y1.e[i]).length).toBeLessThan(y1.v.length / 100);
      const l2 = weightGradient(n, IN, HIDDEN, g1, x, { a: BF16, b: EXACT });
      const expected = { 'linear4.weight': l4.dw, 'linear4.bias': l4.db, 'linear2.weight': l2.dw, 'linear2.bias': l2.db };
      for (const [name, ref] of Object.entries(expected)) {
        const e = emu.getGradient(name);
        expectWithin(name, e, ref);
        expect(Array.from(again.getGradient(name)), `${name}: a second emu run`).toEqual(Array.from(e));
      }
      // The kernels do round to bf16: the weight gradients are off by far more than fp32 arithmetic could make them.
      for (const [name, ref] of [['linear4.weight', l4.dw], ['linear2.weight', l2.dw]] as const) {
        const scale = ref.v.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(worst(emu.getGradient(name), ref.v, new Float64Array(ref.v.length).fill(2 ** -14 * scale)).ratio, name).toBeGreaterThan(1);
      }
    } finally {
      await Promise.all(models.map((m) => m.dispose()));
    }
  }, 300_000);
});
