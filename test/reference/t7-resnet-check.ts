// Torch7 import of a ResNet as fb.resnet.torch saved it, against a float64 reference: the file's own module
// tree run in float64 (test/t7/resnet-file.ts) gives the output that nincc's cpu inference must give once the
// file is imported into test/reference/specs.ts's TINY_RESNET. Registered by test/numerics-zoo.test.ts, on its build.
import { describe, expect, it } from 'vitest';
import { importNetwork } from '../../runtime/t7/import.js';
import { findNetwork } from '../../runtime/t7/nn-modules.js';
import { readT7 } from '../../runtime/t7/reader.js';
import { tinyResNetFile, torchForward } from '../t7/resnet-file.js';
import { randomWeights, referenceForward, torchNetwork } from '../t7/torch-nets.js';
import { writeT7 } from '../t7/writer.js';
import { expectClose, loadBuilt, randomImages, rng, type Built } from './artifacts.js';
import { logSoftmax, type Batch } from './layers.js';

// As test/reference/zoo-suite.ts: float32 rounding through a dozen layers against float64.
const TOL = 2e-5;

export function t7ResNetCheck(built: (name: string) => Built): void {
  describe('Torch7 import of an fb.resnet.torch ResNet (cudnn modules, ConcatTable + CAddTable, shortcut type B)', () => {
    it('the imported TINY_RESNET infers on cpu what the file\'s network computes in float64 (batches 1 and 3)', async () => {
      const b = built('tiny_resnet');
      const next = rng(4242);
      const file = tinyResNetFile(next);
      // Through the bytes, as a file on disk would be read.
      const result = importNetwork(b.model, findNetwork(readT7(writeT7(file), 'tiny-resnet.t7')));
      expect(result.notes.join('\n')).toMatch(/the file's network ends after module \(8\); the spec's parameter-free logsoftmax at tiny_resnet\.model:\d+:\d+ is not in the file/);
      const m = await loadBuilt(b, 1);
      try {
        for (const [name, t] of result.tensors) m.setTensor(name, t.data as Float32Array);
        for (const n of [1, 3]) {
          const images = randomImages(b.model, n, next);
          const out = torchForward(file, { n, shape: b.model.input, data: Float64Array.from(images) }) as Batch;
          const reference = logSoftmax(out).data;
          const got = await m.infer(images);
          expectClose(got, reference, TOL, `tiny_resnet imported n=${n}`);
          // The reference must say something: classes differ within a row.
          expect(Math.max(...reference) - Math.min(...reference)).toBeGreaterThan(1e-2);
        }
      } finally {
        m.dispose();
      }
    });

    it('Torch7\'s zoo layers (cudnn.SpatialCrossMapLRN, nn.Threshold, cudnn.Tanh/Sigmoid, nn.Identity, nn.SpatialZeroPadding, ceil-mode pools) import into ZOO_LAYERS', async () => {
      const b = built('zoo_layers');
      const next = rng(777);
      const w = randomWeights(b.model, next);
      const file = torchNetwork(b.model, w, { cudnn: true });
      const result = importNetwork(b.model, findNetwork(readT7(writeT7(file), 'zoo.t7')));
      const m = await loadBuilt(b, 1);
      try {
        for (const [name, t] of result.tensors) m.setTensor(name, t.data as Float32Array);
        const images = randomImages(b.model, 3, next);
        expectClose(await m.infer(images), referenceForward(b.model, w, images, 3), TOL, 'zoo_layers imported');
      } finally {
        m.dispose();
      }
    });
  });
}
