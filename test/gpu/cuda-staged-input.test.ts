// Staged input on a GPU (npm run test:gpu; docs/design.md#staged-input): a training epoch or an evaluation
// that ends with its next batch staged in the cuda device's pinned slots leaves nothing staged — the model's
// next calls match a model that ran the same without prefetch — and a model disposed with batches staged
// frees them. The same loops as test/staged-input.test.ts on cpu. Skipped, saying why, where there is no
// GPU, driver or nvcc; NINCC_GPU_TEST_DEVICE=emu runs it on the emulator (a check of the test itself).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../../compiler/build.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { load, type Model } from '../../runtime/model.js';
import { expectEvaluationLeftNothing, expectNothingLeftStaged, images, labels, stepsAfterAnEndedEpoch } from '../reference/staged-loops.js';
import { API_CALLS } from '../reference/specs.js';
import { cudaSkipReason } from './cuda-device.js';

const DEVICE = (process.env.NINCC_GPU_TEST_DEVICE ?? 'cuda') as 'cuda' | 'emu';
const skip = cudaSkipReason(DEVICE);
if (skip) console.warn(`test/gpu/cuda-staged-input.test.ts: skipped: ${skip}`);
const root = mkdtempSync(join(tmpdir(), 'nincc-staged-gpu-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.skipIf(!!skip)(`a loop that ends with a batch staged on the ${DEVICE} device`, () => {
  const dir = join(root, 'calls');
  const models: Model[] = [];
  const fresh = async () => {
    if (models.length === 0) {
      const r = compileSpec(API_CALLS, 'calls.model');
      if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
      buildArtifact(r.model, API_CALLS, { outDir: dir, target: 'cuda', maxBatch: 4 });
    }
    const m = await load(dir, { device: DEVICE, seed: 3 });
    models.push(m);
    return m;
  };
  afterAll(async () => {
    for (const m of models) await m.dispose();
  });

  it.each(['throws', 'stops'] as const)('a training epoch that %s: the next steps match a run without prefetch', async (ending) => {
    const plain = await stepsAfterAnEndedEpoch(await fresh(), ending, false, root);
    const staged = await stepsAfterAnEndedEpoch(await fresh(), ending, true, root);
    expectNothingLeftStaged(plain, staged, ending);
  });

  it('an evaluation that throws: the next inferences match a fresh model; dispose with two batches staged', async () => {
    const m = await fresh();
    await expectEvaluationLeftNothing(m, await fresh());
    m.prefetch(images(4, 0.1), labels(4, 0));
    m.prefetch(images(4, 0.2), labels(4, 1));
    await m.dispose(); // frees the pinned slots with their copies done; must not hang
    expect(m.disposed).toBe(true);
  });
});
