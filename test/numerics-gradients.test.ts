// Native gradients (forwardBackward, then getGradient for every parameter) against float64 central
// differences of the reference interpreter's training-mode loss. Each layer's backward-data runs between
// the loss and the first conv, so the first layer's weight gradients check the whole input-gradient path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../runtime/model.js';
import {
  buildSpec, loadBuilt, poisonArena, randomImages, randomizeAffine, randomLabels, readWeights, removeBuilds, rng, type Built,
} from './reference/artifacts.js';
import { observeDropout } from './reference/dropout-mask.js';
import { checkGradients } from './reference/gradients.js';
import { trainLossFrom } from './reference/interpret.js';
import { DROPOUT_MLP, EVERY_LAYER, NIN_SMALL } from './reference/specs.js';

let every: Built;
let nin: Built;
let mlp: Built;

beforeAll(() => {
  every = buildSpec('every_layer', EVERY_LAYER, 4);
  nin = buildSpec('nin_small', NIN_SMALL, 4);
  mlp = buildSpec('dropout_mlp', DROPOUT_MLP, 4);
});

afterAll(() => removeBuilds());

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
