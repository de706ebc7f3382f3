// The float64-reference checks of issue #17's lowering on the cpu device: Torch7's zoo layers, ceil-mode
// pools, residual and concat blocks (nested too; concat branch ends that write their slice in place in
// training) and a small ResNet, each through infer (eval mode), the training forward (output, loss, running
// statistics) and finite-difference gradients. Run by test/numerics-zoo.test.ts (all threads),
// test/numerics-zoo-1thread.test.ts (OMP_NUM_THREADS=1) and test/cpu-concat-slots.test.ts (2 threads, fused_blocks and concat_ends;
// concat_ends on 1 and all threads with NINCC_TEST_FULL=1).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSpec, expectClose, loadBuilt, loadWith, poisonArena, preparedModel, randomImages, randomizeAffine, randomLabels, readWeights, removeBuilds, rng, type Built,
} from './artifacts.js';
import { checkGradients } from './gradients.js';
import { forward, trainLossFrom } from './interpret.js';
import { nllLoss } from './layers.js';
import { BLOCKS, CONCAT_ENDS, FUSED_BLOCKS, TINY_RESNET, ZOO_LAYERS } from './specs.js';

// As test/numerics-kernels.test.ts: float32 rounding through a dozen layers is ~1e-6 of the output's scale;
// a wrong window, divisor, slice or a gradient not summed moves it by 1e-3..1.
const TOL = 2e-5;
const BATCHES = [3, 1, 4];
const POISONS = [Number.NaN, 3.0e4];

// fused_blocks and concat_ends: concat branches ending in a BN+ReLU, a ReLU, a BN, a Tanh, pools and convs, which
// cpu training writes into the concat's slices.
const allSpecs: Record<string, string> = { zoo_layers: ZOO_LAYERS, blocks: BLOCKS, tiny_resnet: TINY_RESNET, fused_blocks: FUSED_BLOCKS, concat_ends: CONCAT_ENDS };

/**
 * Specs a suite without `only` runs with NINCC_TEST_FULL=1 alone (the CI budget: one more kernel build each); named
 * in `only`, always. concat_ends: test/cpu-concat-slots.test.ts runs it on 2 threads, and the kernel tests check its
 * slot kernels bit for bit on 1, 2 and all threads (runtime/kernels-test).
 */
const FULL_ONLY: ReadonlySet<string> = new Set(['concat_ends']);
const full = process.env.NINCC_TEST_FULL === '1';

/** forwardBackward's output, loss and running statistics against the reference at batches 3, 1, 4 on a poisoned arena. */
export async function expectTrainForwardMatches(built: Built, name: string): Promise<void> {
  const { m, b, next } = await preparedModel(built, 12);
  try {
    for (const [i, n] of BATCHES.entries()) {
      const images = randomImages(b.model, n, next);
      const labels = randomLabels(b.model, n, next);
      const ref = forward(b.model, readWeights(m), images, n, { mode: 'train' });
      poisonArena(m, POISONS[i % 2]);
      const { loss, output } = await m.forwardBackward(images, labels);
      expectClose(output, ref.output.data, TOL, `${name} train output n=${n}`);
      expectClose([loss], [nllLoss(ref.output, labels)], TOL, `${name} loss n=${n}`);
      for (const [key, value] of ref.state) expectClose(m.getTensor(key), value, 1e-5, `${name} ${key} n=${n}`);
    }
  } finally {
    m.dispose();
  }
}

/** Every parameter's gradient (batch 3, NaN-poisoned arena) against central differences of the reference loss. */
export async function expectGradientsMatch(b: Built, name: string): Promise<void> {
  const m = await loadBuilt(b, 21);
  try {
    const next = rng(21);
    randomizeAffine(m, next);
    const n = 3;
    const images = randomImages(b.model, n, next);
    const labels = randomLabels(b.model, n, next);
    poisonArena(m, Number.NaN);
    await m.forwardBackward(images, labels);
    const checked = checkGradients(m, trainLossFrom(b.model, readWeights(m), images, labels), 40, next, `${name} n=${n}`);
    expect(checked).toBeGreaterThan(0);
  } finally {
    m.dispose();
  }
}

/**
 * Registers the suite (on the specs named in `only`, else all but FULL_ONLY's without NINCC_TEST_FULL=1); returns
 * the specs' builds by name, there once the suite's beforeAll has run (for more checks in the same file).
 */
export function zooSuite(threads: string, only?: readonly string[]): (name: string) => Built {
  const skipped = only || full ? [] : Object.keys(allSpecs).filter((n) => FULL_ONLY.has(n));
  if (skipped.length > 0) console.log(`zoo suite (${threads}): ${skipped.join(', ')} skipped: NINCC_TEST_FULL=1 runs ${skipped.length > 1 ? 'them' : 'it'} (test/cpu-concat-slots.test.ts on 2 threads always)`);
  const specs = only ? Object.fromEntries(only.map((n) => [n, allSpecs[n]])) : Object.fromEntries(Object.entries(allSpecs).filter(([n]) => !skipped.includes(n)));
  const built = new Map<string, Built>();
  beforeAll(() => {
    for (const [name, source] of Object.entries(specs)) built.set(name, buildSpec(name, source, 4));
  });
  afterAll(() => removeBuilds());

  const prepared = (name: string, seed: number) => preparedModel(built.get(name)!, seed);

  describe.each(Object.keys(specs))(`%s (${threads})`, (name) => {
    it('infer matches the reference at batches 3, 1, 4 on a poisoned arena', async () => {
      const { m, b, next } = await prepared(name, 11);
      try {
        const w = readWeights(m);
        for (const [i, n] of BATCHES.entries()) {
          const images = randomImages(b.model, n, next);
          poisonArena(m, POISONS[i % 2]);
          expectClose(await m.infer(images), forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} infer n=${n}`);
        }
      } finally {
        m.dispose();
      }
    });

    it('infer on slices of the batch, one per thread (plan.json splitBatch), matches the reference and the unsplit run', async () => {
      // The plan must ask for the split, or this would only test the per-layer path twice.
      const plan = JSON.parse(readFileSync(join(built.get(name)!.dir, 'plan.json'), 'utf8')) as { programs: Record<string, { splitBatch?: boolean; splitLocal?: object }> };
      expect(plan.programs.infer.splitBatch, `${name}: infer is not batch-split`).toBe(true);
      expect(plan.programs.infer.splitLocal, `${name}: infer's slices do not keep their own buffers`).toBeDefined();
      const { m, b, next } = await prepared(name, 13);
      process.env.NINCC_SPLIT_BATCH = '0'; // read when the executor is made: the same artifact with each layer split instead
      const unsplit = await loadWith(b.dir, 'cpu', 13, new Map(m.tensorNames().map((t) => [t, m.getTensor(t)])));
      delete process.env.NINCC_SPLIT_BATCH;
      try {
        const w = readWeights(m);
        // 4 and 2: whole slices on 2 and 4 threads; 3: split only on 3 threads (the executor's batchParts).
        for (const [i, n] of [4, 2, 3].entries()) {
          const images = randomImages(b.model, n, next);
          poisonArena(m, POISONS[i % 2]);
          const got = await m.infer(images);
          expectClose(got, forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} split infer n=${n}`);
          expectClose(got, await unsplit.infer(images), TOL, `${name} split against unsplit infer n=${n}`);
        }
      } finally {
        m.dispose();
        unsplit.dispose();
      }
    });

    it('forwardBackward: output, loss and running statistics match the reference', () => expectTrainForwardMatches(built.get(name)!, name));

    it('gradients of every parameter match central differences of the reference loss', () => expectGradientsMatch(built.get(name)!, name));
  });
  return (name) => {
    const b = built.get(name);
    if (!b) throw new Error(`zooSuite: no build of ${name} (its beforeAll has not run, or the name is not one of ${Object.keys(specs).join(', ')})`);
    return b;
  };
}
