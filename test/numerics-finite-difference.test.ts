// The cpu device's gradients against central finite differences of its own loss (the check the GPU
// harness runs on cuda, test/gpu/cuda-kernels.test.ts): errors a cpu-vs-device comparison cannot see.
import { describe, expect, it } from 'vitest';
import { load } from '../runtime/model.js';
import { buildSpec, calibrateRunningStats, randomImages, randomizeAffine, randomLabels, rng } from './reference/artifacts.js';
import { finiteDifferenceMismatches } from './reference/finite-difference.js';
import { FASHION_ODD, NIN_SMALL } from './reference/specs.js';

describe('cpu gradients against finite differences', () => {
  it.each([['nin_small', NIN_SMALL], ['fashion_odd', FASHION_ODD]])('%s: the largest gradient entries of each parameter match (L(w+h) − L(w−h)) / 2h', async (name, source) => {
    const b = buildSpec(name, source);
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
