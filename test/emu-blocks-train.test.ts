// Residual and concat blocks in the fused cuda/emu training program (lower/train-fused.ts): a fanned-out value
// is materialized once and its gradients summed, a branch's end is applied before the merge, the merge's
// gradient goes to each branch (add) or its channels (concat). A training step on emu must match the cpu
// device (same weights) and the float64 reference, and the emu gradients float64 central differences.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import type { ShapedModel } from '../compiler/ir.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { expectClose, expectGradientsClose, poisonArena, randomImages, randomizeAffine, randomLabels, readWeights, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { checkGradients } from './reference/gradients.js';
import { trainLoss, trainLossFrom } from './reference/interpret.js';
import { FUSED_BLOCKS, POOLED_ADDS, TINY_RESNET } from './reference/specs.js';

const GRAD_TOL = 1e-4; // as test/emu-train.test.ts
const TOL = 2e-5;
const root = mkdtempSync(join(tmpdir(), 'nincc-emu-blocks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function build(name: string, source: string, target: 'cpu' | 'emu'): { model: ShapedModel; dir: string } {
  const r = compileSpec(source, `${name}.model`, { device: target });
  if (!r.model) throw new Error(`${name}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const dir = join(root, `${name}-${target}`);
  // The nvcc compile is test/cuda-build.test.ts's business; the emu build runs on emu only (the cpu build is the reference).
  const { plan } = withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(r.model!, source, { outDir: dir, target, maxBatch: 4, withoutCpuLibrary: target === 'emu' }));
  expect(plan.untrainable, `${name} ${target}`).toBeUndefined();
  return { model: r.model!, dir };
}

describe.each([['tiny_resnet', TINY_RESNET], ['fused_blocks', FUSED_BLOCKS], ['pooled_adds', POOLED_ADDS]])('%s: emu training', (name, source) => {
  it('forward+backward at batches 3 and 1 on a poisoned arena match cpu and float64; emu gradients match central differences', async () => {
    const model = build(name, source, 'cpu').model;
    const cpu = await load(join(root, `${name}-cpu`), { device: 'cpu', seed: 7 });
    build(name, source, 'emu');
    const emu = await load(join(root, `${name}-emu`), { device: 'emu', seed: 7 });
    try {
      const next = rng(7);
      randomizeAffine(cpu, next);
      for (const t of cpu.tensorNames()) emu.setTensor(t, cpu.getTensor(t));
      for (const [n, poison] of [[3, Number.NaN], [1, 3.0e4]] as const) {
        const images = randomImages(model, n, next);
        const labels = randomLabels(model, n, next);
        const reference = trainLoss(model, readWeights(cpu), images, labels);
        poisonArena(emu, poison);
        poisonArena(cpu, poison);
        const a = await cpu.forwardBackward(images, labels);
        const b = await emu.forwardBackward(images, labels);
        expect(Math.abs(b.loss - reference), `${name} n=${n}: emu loss ${b.loss}, float64 ${reference}`).toBeLessThanOrEqual(TOL * (1 + Math.abs(reference)));
        expectClose(b.output, a.output, TOL, `${name} n=${n}: output`);
        expectGradientsClose(emu, cpu, GRAD_TOL, `${name} n=${n}`);
        for (const t of cpu.tensorNames()) expectClose(emu.getTensor(t), cpu.getTensor(t), TOL, `${name} n=${n}: ${t}`);
      }
      const images = randomImages(model, 3, next);
      const labels = randomLabels(model, 3, next);
      await emu.forwardBackward(images, labels);
      expect(checkGradients(emu, trainLossFrom(model, readWeights(emu), images, labels), 20, next, `${name} on emu`)).toBeGreaterThan(0);
    } finally {
      cpu.dispose();
      emu.dispose();
    }
  }, 600_000);
});
