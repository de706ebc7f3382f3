// Every CPU kernel through built artifacts against the float64 reference interpreter (test/reference/):
// eval-mode infer, and the training-mode forward output, loss and running statistics of forwardBackward,
// over specs that cover every layer kind and stride/pad of the shipped specs, at batch sizes that go
// down and up with the arena poisoned before each run, so stale or unwritten data would show.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSpec, expectClose, poisonArena, preparedModel, randomImages, randomLabels, readWeights, removeBuilds, type Built,
} from './reference/artifacts.js';
import { forward } from './reference/interpret.js';
import { nllLoss } from './reference/layers.js';
import { FASHION_ODD, NIN_FASHION, NIN_SMALL, ODDS_AND_ENDS } from './reference/specs.js';

// Tolerance: float32 carries ~6e-8 relative error per rounding. A conv output sums up to 3·11·11 = 363
// products here (1152 in the shipped fashion spec), BN divides by a batch std and a dozen layers compound
// it; measured, the worst error is ~5e-7 of the output's scale (NINCC_NUMERICS_LOG=1 prints every margin).
// 2e-5·max|ref| + ATOL (per tensor) leaves ~40× room for other GEMM blockings and thread counts, while a wrong index, a
// missed pad or a stale value moves a log-probability by 1e-3..1 of that scale.
const TOL = 2e-5;

// Batch sizes in run order: down to 1 and back up past the first, so a kernel that keeps data from a
// larger batch, or reads the part of the arena a smaller batch did not write, gives a wrong answer.
const BATCHES = [3, 1, 2, 4];
// Alternating poisons: NaN spreads through any arithmetic; a large finite value survives a ReLU or max.
const POISONS = [Number.NaN, 3.0e4];

const specs: Record<string, string> = { nin_small: NIN_SMALL, fashion_odd: FASHION_ODD, odds_and_ends: ODDS_AND_ENDS, nin_fashion: NIN_FASHION };
// nin_fashion runs batches up to 8 in one call, so its 3x3 convs' large-batch Winograd F(4x4,3x3) (from batch 2
// on 14x14, from 5 on 7x7: compiler/schedule/cpu-conv-algorithm.ts) is checked beside the batch-1 algorithms.
const maxBatchOf = (name: string) => (name === 'nin_fashion' ? 8 : 4);
const built = new Map<string, Built>();

beforeAll(() => {
  for (const [name, source] of Object.entries(specs)) built.set(name, buildSpec(name, source, maxBatchOf(name)));
});

afterAll(() => removeBuilds());

const prepared = (name: string, seed: number) => preparedModel(built.get(name)!, seed);

describe.each(Object.keys(specs))('%s', (name) => {
  it('infer (eval mode, BN folded) matches the reference at batches 3, 1, 2, 4 on a poisoned arena, and max batch + 3 in two chunks', async () => {
    const { m, b, next } = await prepared(name, 11);
    try {
      const w = readWeights(m);
      for (const [i, n] of BATCHES.entries()) {
        const images = randomImages(b.model, n, next);
        poisonArena(m, POISONS[i % 2]);
        const out = await m.infer(images);
        expectClose(out, forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} infer n=${n}`);
      }
      // More images than maxBatch: infer runs them in chunks of maxBatch and 3.
      const n = maxBatchOf(name) + 3;
      const images = randomImages(b.model, n, next);
      expectClose(await m.infer(images), forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} infer n=${n}`);
    } finally {
      m.dispose();
    }
  });

  it('forwardBackward (train mode) output, loss and running statistics match the reference, interleaved with infer', async () => {
    const { m, b, next } = await prepared(name, 12);
    try {
      for (const [i, n] of BATCHES.entries()) {
        const images = randomImages(b.model, n, next);
        const labels = randomLabels(b.model, n, next);
        const before = readWeights(m);
        const ref = forward(b.model, before, images, n, { mode: 'train' });
        poisonArena(m, POISONS[i % 2]);
        const { loss, output } = await m.forwardBackward(images, labels);
        expectClose(output, ref.output.data, TOL, `${name} train output n=${n}`);
        expectClose([loss], [nllLoss(ref.output, labels)], TOL, `${name} loss n=${n}`);
        for (const [key, value] of ref.state) expectClose(m.getTensor(key), value, 1e-5, `${name} ${key} n=${n}`);
        // The running statistics moved: infer must refold them, on an arena the training program just used.
        const probe = randomImages(b.model, 5 - n, next);
        expectClose(await m.infer(probe), forward(b.model, readWeights(m), probe, 5 - n, { mode: 'eval' }).output.data, TOL, `${name} infer after train n=${5 - n}`);
      }
      expect(m.info.params.length).toBeGreaterThan(0);
    } finally {
      m.dispose();
    }
  });
});
