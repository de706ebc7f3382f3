// Issue #17 on the emu device: the CUDA kernels of Torch7's zoo layers, ceil-mode pools and the block merges
// (backends/cuda/zoo.ts, pool.ts) run the inference program and the fused training program
// (lower/train-fused.ts) on the SIMT emulator, against the float64 reference: infer, the training forward
// (output, loss, running statistics) and every parameter's gradient against central differences, so each
// zoo backward (LRN's cross term, a ceil pool's clipped divisor, the crop of zero padding) is on the path of
// the first conv's gradient. One emu build per spec serves all of its checks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { calibrateRunningStats, expectClose, poisonArena, randomImages, randomizeAffine, randomLabels, readWeights, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { checkGradients } from './reference/gradients.js';
import { forward, trainLossFrom } from './reference/interpret.js';
import { nllLoss } from './reference/layers.js';
import { BLOCKS, ZOO_TRAIN } from './reference/specs.js';

const TOL = 2e-5; // as test/emu-infer.test.ts
const root = mkdtempSync(join(tmpdir(), 'nincc-emu-zoo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// BLOCKS (residual and concat blocks without zoo layers) costs CI ~30 s of emu compile for paths that
// test/emu-blocks-train.test.ts (FUSED_BLOCKS, TINY_RESNET) and ZOO_TRAIN's merges already train on emu:
// it runs with NINCC_TEST_FULL=1.
const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.log('emu-zoo: the BLOCKS spec runs with NINCC_TEST_FULL=1 (emu-blocks-train and ZOO_TRAIN cover its paths in CI)');
const SPECS: [string, string][] = FULL ? [['zoo_train', ZOO_TRAIN], ['blocks', BLOCKS]] : [['zoo_train', ZOO_TRAIN]];

describe.each(SPECS)('%s on emu', (name, source) => {
  it('infer, the training forward and every gradient match the float64 reference (poisoned arena)', async () => {
    const r = compileSpec(source, `${name}.model`, { device: 'emu' });
    expect(r.diagnostics).toEqual([]);
    const model = r.model!;
    const dir = join(root, name);
    // nvcc's compile check of the same source is test/cuda-build.test.ts's (it costs CI tens of seconds per spec).
    const { plan } = withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, source, { outDir: dir, target: 'emu', maxBatch: 4, withoutCpuLibrary: true }));
    expect(plan.untrainable).toBeUndefined();
    const m = await load(dir, { device: 'emu', seed: 5 });
    try {
      const next = rng(5);
      randomizeAffine(m, next);
      calibrateRunningStats(m, model, randomImages(model, 4, next), 4, next);
      const w = readWeights(m);
      for (const [i, n] of [3, 1].entries()) {
        const images = randomImages(model, n, next);
        poisonArena(m, i === 0 ? Number.NaN : 3.0e4);
        expectClose(await m.infer(images), forward(model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} emu infer n=${n}`);
      }
      const n = 3;
      const images = randomImages(model, n, next);
      const labels = randomLabels(model, n, next);
      const before = readWeights(m);
      const ref = forward(model, before, images, n, { mode: 'train' });
      poisonArena(m, Number.NaN);
      const { loss, output } = await m.forwardBackward(images, labels);
      expectClose(output, ref.output.data, TOL, `${name} emu train output`);
      expectClose([loss], [nllLoss(ref.output, labels)], TOL, `${name} emu loss`);
      for (const [key, value] of ref.state) expectClose(m.getTensor(key), value, 1e-5, `${name} emu ${key}`);
      // The running statistics moved; the central differences read the weights the step saw.
      expect(checkGradients(m, trainLossFrom(model, before, images, labels), 20, next, `${name} emu`)).toBeGreaterThan(0);
    } finally {
      m.dispose();
    }
  }, 600_000);
});
