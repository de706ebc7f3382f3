// The cpu device's gradients against central finite differences of its own loss (the check the GPU
// harness runs on cuda, test/gpu/cuda-kernels.test.ts): errors a cpu-vs-device comparison cannot see.
import { describe, expect, it } from 'vitest';
import { load } from '../runtime/model.js';
import { buildSpec, calibrateRunningStats, randomImages, randomizeAffine, randomLabels, rng } from './reference/artifacts.js';
import { finiteDifferenceMismatches } from './reference/finite-difference.js';
import { EVERY_LAYER } from './reference/specs.js';

describe('cpu gradients against finite differences', () => {
  // every_layer is small and shallow enough for float32 differences (nin_small's loss is too noisy at
  // h = 1e-4 and too curved at 1e-2, measured), and its dropout has p = 0, so every call draws the same loss.
  it('every_layer: the largest gradient entries of each parameter match (L(w+h) − L(w−h)) / 2h', async () => {
    const b = buildSpec('every_layer', EVERY_LAYER);
    const m = await load(b.dir, { device: 'cpu', seed: 11 });
    try {
      const next = rng(11 * 7919 + 17);
      randomizeAffine(m, next);
      calibrateRunningStats(m, b.model, randomImages(b.model, 4, next), 4, next);
      expect(await finiteDifferenceMismatches(m, randomImages(b.model, 3, next), randomLabels(b.model, 3, next))).toEqual([]);
    } finally {
      m.dispose();
    }
  });
});
