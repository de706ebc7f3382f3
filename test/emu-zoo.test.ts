// Issue #17 on the emu device: the CUDA kernels of Torch7's zoo layers, ceil-mode pools and the block merges
// (backends/cuda/zoo.ts, pool.ts) run the inference program on the SIMT emulator and match the float64
// reference; the fused training program does not take the zoo's layers yet, so the build has inference
// only and says which layer stops training, with its spec line:col (blocks train: test/emu-blocks-train.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { calibrateRunningStats, expectClose, poisonArena, randomImages, randomizeAffine, readWeights, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { forward } from './reference/interpret.js';
import { BLOCKS, ZOO_LAYERS } from './reference/specs.js';

const TOL = 2e-5; // as test/emu-infer.test.ts
const root = mkdtempSync(join(tmpdir(), 'nincc-emu-zoo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each([['zoo_layers', ZOO_LAYERS], ['blocks', BLOCKS]])('%s on emu', (name, source) => {
  it('infer matches the float64 reference (batches 3, 1, poisoned arena); training is refused with the layer\'s place', async () => {
    const r = compileSpec(source, `${name}.model`, { device: 'emu' });
    expect(r.diagnostics).toEqual([]);
    const dir = join(root, name);
    // nvcc's compile check of the same source is test/cuda-build.test.ts's (it costs CI tens of seconds per spec).
    const { plan } = withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(r.model!, source, { outDir: dir, target: 'emu', maxBatch: 4 }));
    expect(plan.untrainable).toMatch(new RegExp(`at ${name}\\.model:\\d+:\\d+ is not lowered for training on the emu device yet \\(issue #17`));
    const m = await load(dir, { device: 'emu', seed: 5 });
    try {
      const next = rng(5);
      randomizeAffine(m, next);
      calibrateRunningStats(m, r.model!, randomImages(r.model!, 4, next), 4, next);
      const w = readWeights(m);
      for (const [i, n] of [3, 1].entries()) {
        const images = randomImages(r.model!, n, next);
        poisonArena(m, i === 0 ? Number.NaN : 3.0e4);
        expectClose(await m.infer(images), forward(r.model!, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} emu infer n=${n}`);
      }
      await expect(m.forwardBackward(randomImages(r.model!, 1, next), Int32Array.of(0))).rejects.toThrow(/no training programs \(.*is not lowered for training on the emu device/);
    } finally {
      m.dispose();
    }
  });
});
