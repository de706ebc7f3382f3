// nin-fashion's batch-split inference on 2 threads, call after call (issue #19, i19I): its slices keep their buffers
// in regions of their own, shared by liveness (plan.json splitLocal), so two slices that ran over each other's memory
// would change the outputs from call to call. Round 17's bench:cpu saw exactly that from a runtime built before
// splitLocal (it read the slices' buffers batch-major, overlapping): every batch-16 call here must give the same
// bits, within float rounding of the batch-1 calls between them.
import './reference/two-threads.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../runtime/model.js';
import { buildSpec, loadBuilt, maxError, randomImages, removeBuilds, rng, type Built } from './reference/artifacts.js';

const CALLS = 40; // batch-16 calls, one batch-1 call before each: ~1 ms each on 2 threads
// b1 and b16 choose different Winograd tiles for the 3x3s (F(2,3) at batch 1, F(4,3) from 2), hence no bitwise match.
const B1_TOLERANCE = 1e-5;

describe('nin-fashion at batch 16 on 2 threads, slices in their own regions', () => {
  let built: Built;
  let m: Model;
  beforeAll(async () => {
    built = buildSpec('nin_fashion_split_local', readFileSync('models/nin-fashion.model', 'utf8'), 16);
    m = await loadBuilt(built, 1);
  });
  afterAll(() => {
    m?.dispose();
    removeBuilds();
  });

  it('the plan splits the batch with splitLocal (plan version 2), so the calls below run two slices at once', () => {
    const plan = JSON.parse(readFileSync(join(built.dir, 'plan.json'), 'utf8')) as { version: number; programs: { infer: { splitBatch?: boolean; splitLocal?: object } } };
    expect(plan.version).toBe(2);
    expect(plan.programs.infer.splitBatch).toBe(true);
    expect(plan.programs.infer.splitLocal).toBeDefined();
  });

  it(`${CALLS} batch-16 calls give the same bits each time, and the batch-1 results`, async () => {
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
      await m.infer(images.subarray((call % 16) * per, (call % 16 + 1) * per)); // a batch-1 call writes the act space batch-1's way
      const y = await m.infer(images);
      const { err, at } = maxError(y, first);
      if (err > 0) moved.push(`call ${call}: ${err.toExponential(2)} at image ${Math.floor(at / classes)}`);
    }
    expect(moved, 'batch-16 outputs that moved from the first call\'s').toEqual([]);
  });
});
