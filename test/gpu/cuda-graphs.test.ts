// NINCC_CUDA_GRAPHS=1 on a GPU (npm run test:gpu): a training run and inference replayed as CUDA graphs
// give bitwise what kernel-by-kernel launches give (docs/emu.md "CUDA graphs"), with the learning rate
// changing between steps (so a graph node is updated) and a dropout seed changing every step. Skipped,
// saying why, where there is no GPU, driver or nvcc.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../../compiler/build.js';
import type { ShapedModel } from '../../compiler/ir.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { load } from '../../runtime/model.js';
import { randomImages, randomLabels, rng } from '../reference/artifacts.js';
import { DROPOUT_MLP, NIN_FASHION } from '../reference/specs.js';
import { cudaSkipReason } from './cuda-device.js';

const skip = cudaSkipReason('cuda');
if (skip) console.warn(`test/gpu/cuda-graphs.test.ts: skipped: ${skip}`);
const root = mkdtempSync(join(tmpdir(), 'nincc-graphs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Weights after `steps` SGD steps (lr halving each step) and the inference output after them, graphs on or off. */
async function run(model: ShapedModel, dir: string, graphs: boolean, steps: number): Promise<{ weights: Float32Array[]; output: Float32Array }> {
  // The device reads NINCC_CUDA_GRAPHS when it is created, at load.
  process.env.NINCC_CUDA_GRAPHS = graphs ? '1' : '0';
  const m = await load(dir, { device: 'cuda', seed: 3 });
  try {
    const next = rng(11);
    for (let s = 0; s < steps; s++) {
      const images = randomImages(model, 4, next);
      await m.trainStep(images, randomLabels(model, 4, next), { lr: 0.1 / 2 ** s });
    }
    const output = await m.infer(randomImages(model, 3, rng(5)), 3);
    return { weights: m.tensorNames().map((t) => m.getTensor(t)), output };
  } finally {
    m.dispose();
    delete process.env.NINCC_CUDA_GRAPHS;
  }
}

describe.skipIf(!!skip)('CUDA graphs on the cuda device', () => {
  it.each([['nin_fashion', NIN_FASHION], ['dropout_mlp', DROPOUT_MLP]])('%s: training steps and inference through graphs are bitwise the plain launches', async (name, source) => {
    const r = compileSpec(source, `${name}.model`);
    if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
    const dir = join(root, name);
    buildArtifact(r.model, source, { outDir: dir, target: 'cuda', maxBatch: 4 });
    const plain = await run(r.model, dir, false, 3);
    const graphs = await run(r.model, dir, true, 3);
    expect(graphs.output).toEqual(plain.output);
    graphs.weights.forEach((w, i) => expect(w, `tensor ${i}`).toEqual(plain.weights[i]));
  }, 600_000);
});
