// Native gradients (forwardBackward, then getGradient for every parameter) against float64 central
// differences of the reference interpreter's training-mode loss. Each layer's backward-data runs between
// the loss and the first conv, so the first layer's weight gradients check the whole input-gradient path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../runtime/model.js';
import {
  buildSpec, loadBuilt, poisonArena, randomImages, randomizeAffine, randomLabels, readWeights, removeBuilds, rng, type Built,
} from './reference/artifacts.js';
import { observeDropout } from './reference/dropout-mask.js';
import { trainLossFrom } from './reference/interpret.js';
import { DROPOUT_MLP, EVERY_LAYER, NIN_SMALL } from './reference/specs.js';

// Central differences in float64 with h = 1e-5: truncation error O(h²) ~ 1e-10 and rounding error
// ~1e-16/h ~ 1e-11, so the reference gradient is good to ~1e-9; a ReLU or max-pool switch inside ±h is
// what could spoil an element, and at random points that has probability ~1e-5 per element.
const H = 1e-5;
// The native gradient is float32, summed over batch×positions and passed back through every layer;
// measured, its worst error is ~5e-6 of the tensor's largest gradient (NINCC_NUMERICS_LOG=1 prints them). Per tensor we allow
// 2e-4·max|fd| + 1e-5·(the model's largest gradient): a wrong index, transposition, missed term or stale
// value is off by O(max|fd|).
const REL = 2e-4;
const ABS = 1e-5;

let every: Built;
let nin: Built;
let mlp: Built;

beforeAll(() => {
  every = buildSpec('every_layer', EVERY_LAYER, 4);
  nin = buildSpec('nin_small', NIN_SMALL, 4);
  mlp = buildSpec('dropout_mlp', DROPOUT_MLP, 4);
});

afterAll(() => removeBuilds());

/** Indices to check: all of a small tensor, else the ends and `count` random others. */
function sample(size: number, count: number, next: () => number): number[] {
  if (size <= count + 2) return Array.from({ length: size }, (_, i) => i);
  const picked = new Set([0, size - 1]);
  while (picked.size < count + 2) picked.add(Math.floor(next() * size));
  return [...picked].sort((a, b) => a - b);
}

/** Compares getGradient(name) at sampled elements with central differences of `loss`; returns how many. */
function checkGradients(m: Model, loss: (w: Map<string, Float64Array>, layer: number) => number, perTensor: number, next: () => number, what: string): number {
  const w = readWeights(m);
  const cases = m.info.params.map((t) => {
    const values = w.get(t.name)!;
    const at = sample(t.size, perTensor, next);
    const fd = at.map((i) => {
      const original = values[i];
      values[i] = original + H;
      const up = loss(w, t.layer);
      values[i] = original - H;
      const down = loss(w, t.layer);
      values[i] = original;
      return (up - down) / (2 * H);
    });
    return { name: t.name, native: m.getGradient(t.name), at, fd, scale: Math.max(...fd.map(Math.abs)) };
  });
  // A conv bias right before BN has an exact gradient of 0; float32 leaves noise of ~1e-7 of the model's gradients there.
  const floor = ABS * Math.max(...cases.map((c) => c.scale));
  for (const c of cases) {
    const bound = REL * c.scale + floor;
    const worst = Math.max(...c.at.map((i, k) => Math.abs(c.native[i] - c.fd[k])));
    if (process.env.NINCC_NUMERICS_LOG) console.log(`${what} ${c.name}: max err ${worst.toExponential(2)}, scale ${c.scale.toExponential(2)}, bound ${bound.toExponential(2)}`);
    c.at.forEach((i, k) => {
      const err = Math.abs(c.native[i] - c.fd[k]);
      expect(err, `${what}: d loss / d ${c.name}[${i}] is ${c.native[i]}, central difference ${c.fd[k]} (bound ${bound.toExponential(2)})`).toBeLessThanOrEqual(bound);
    });
  }
  return cases.reduce((sum, c) => sum + c.at.length, 0);
}

async function gradientCase(b: Built, seed: number, n: number, perTensor: number, poison: number): Promise<number> {
  const m = await loadBuilt(b, seed);
  try {
    const next = rng(seed);
    randomizeAffine(m, next);
    const images = randomImages(b.model, n, next);
    const labels = randomLabels(b.model, n, next);
    poisonArena(m, poison);
    await m.forwardBackward(images, labels);
    return checkGradients(m, trainLossFrom(b.model, readWeights(m), images, labels), perTensor, next, `${b.model.name} n=${n}`);
  } finally {
    m.dispose();
  }
}

describe('finite differences', () => {
  it('every layer kind (conv stride/pad, bn, relu, both pools, view, dropout p=0, linear, softmax, logsoftmax): every parameter element', async () => {
    expect(await gradientCase(every, 21, 3, 1000, Number.NaN)).toBe(every.model.totals.params);
    await gradientCase(every, 22, 1, 1000, 3.0e4);
    await gradientCase(every, 23, 4, 1000, Number.NaN);
  });

  it('NIN layer shapes (conv 11×11 s4 p5, 5×5 p2, 3×3 p1, 1×1, maxpool 3/2/1, avgpool): sampled elements of every parameter', async () => {
    await gradientCase(nin, 31, 2, 10, Number.NaN);
  });

  it('dropout p=0.4: the backward applies the forward mask (gradients of the linear before it, with the mask read back from the one after)', async () => {
    const m = await loadBuilt(mlp, 41);
    try {
      const next = rng(41);
      for (let call = 0; call < 3; call++) {
        const image = randomImages(mlp.model, 1, next);
        const label = randomLabels(mlp.model, 1, next);
        const { output } = await m.forwardBackward(image, label);
        const seen = observeDropout(m, mlp.model, image, label[0], output);
        const masks = new Map([[3, seen.keep]]);
        checkGradients(m, trainLossFrom(mlp.model, readWeights(m), image, label, masks), 16, next, `dropout call ${call}`);
      }
    } finally {
      m.dispose();
    }
  });
});
