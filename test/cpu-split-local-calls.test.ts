// A batch-split inference program on 2 threads, call after call (issue #19, i19I): its slices keep their buffers in
// regions of their own, shared by liveness (plan.json splitLocal), so two slices that ran over each other's memory
// would change the outputs from call to call. Round 17's bench:cpu saw exactly that from a runtime built before
// splitLocal (it read the slices' buffers batch-major, overlapping): every batch-16 call here must give the same
// bits, within float rounding of the batch-1 calls between them. Always on a small nin-fashion-like spec;
// nin-fashion itself (a slower build) with NINCC_TEST_FULL=1.
import './reference/two-threads.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildSpec, loadBuilt, maxError, randomImages, removeBuilds, rng } from './reference/artifacts.js';
import { FASHION_ODD, NIN_FASHION } from './reference/specs.js';

const CALLS = 200; // batch-16 calls, a batch-1 call before each: a small spec's overlapping slices moved 1 call of 40
// Batch 1 and 16 may take different conv algorithms (nin-fashion's 3x3s: F(2x2,3x3) at batch 1, F(4x4,3x3) from 2).
const B1_TOLERANCE = 1e-5;

async function expectSameCalls(name: string, source: string): Promise<void> {
  const built = buildSpec(name, source, 16);
  const plan = JSON.parse(readFileSync(join(built.dir, 'plan.json'), 'utf8')) as { version: number; programs: { infer: { splitBatch?: boolean; splitLocal?: object } } };
  expect(plan.version).toBe(2);
  expect(plan.programs.infer.splitBatch, 'the calls below run two slices at once').toBe(true);
  expect(plan.programs.infer.splitLocal).toBeDefined();
  const m = await loadBuilt(built, 1);
  try {
    const images = randomImages(built.model, 16, rng(19));
    const per = images.length / 16;
    const single: Float32Array[] = [];
    for (let i = 0; i < 16; i++) single.push(await m.infer(images.subarray(i * per, (i + 1) * per)));
    const classes = single[0].length;
    const alone = new Float32Array(16 * classes);
    single.forEach((y, i) => alone.set(y, i * classes));
    const first = await m.infer(images);
    expect(maxError(first, alone).err, 'batch 16 against 16 batch-1 calls').toBeLessThan(B1_TOLERANCE);
    const moved: string[] = [];
    for (let call = 0; call < CALLS; call++) {
      await m.infer(images.subarray((call % 16) * per, (call % 16 + 1) * per)); // writes the act space batch-1's way
      const { err, at } = maxError(await m.infer(images), first);
      if (err > 0) moved.push(`call ${call}: ${err.toExponential(2)} at image ${Math.floor(at / classes)}`);
    }
    expect(moved, 'batch-16 outputs that moved from the first call\'s').toEqual([]);
  } finally {
    m.dispose();
  }
}

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.log('test/cpu-split-local-calls.test.ts: nin-fashion itself is skipped (a slower build); NINCC_TEST_FULL=1 runs it');

describe(`${CALLS} batch-16 calls on 2 threads, the slices in their own regions, give the same bits each time and the batch-1 results`, () => {
  afterAll(() => removeBuilds());
  it('a nin-fashion-like spec', () => expectSameCalls('fashion_odd_split_local', FASHION_ODD), 600_000);
  it.runIf(FULL)('nin-fashion (NINCC_TEST_FULL=1)', () => expectSameCalls('nin_fashion_split_local', NIN_FASHION), 600_000);
});
