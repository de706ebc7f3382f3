// The full NIN (models/nin.model) on the CPU target: a 224×224 forward and a training step at batch 2.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load, type Model } from '../runtime/model.js';
import { root } from './cli-run.js';

describe('models/nin.model on cpu', () => {
  let model: Model;
  let dir: string;
  beforeAll(async () => {
    const file = join(root, 'models/nin.model');
    const source = readFileSync(file, 'utf8');
    const compiled = compileSpec(source, file);
    dir = join(mkdtempSync(join(tmpdir(), 'nincc-nin-')), 'nin');
    buildArtifact(compiled.model!, source, { outDir: dir, target: 'cpu', maxBatch: 2 });
    model = await load(dir, { device: 'cpu', seed: 1 });
  });
  afterAll(() => model?.dispose());

  const images = (n: number) => new Float32Array(n * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.001) * 2);

  it('runs a 224×224 forward to 1000 log-probabilities per image', async () => {
    const out = await model.infer(images(2));
    expect(out.length).toBe(2000);
    for (let i = 0; i < 2; i++) {
      const row = out.subarray(i * 1000, (i + 1) * 1000);
      const total = row.reduce((s, v) => s + Math.exp(v), 0);
      expect(total).toBeCloseTo(1, 4);
    }
  });

  it('runs training steps at batch 2 and the loss on a repeated batch falls', async () => {
    const x = images(2);
    const labels = Int32Array.from([3, 997]);
    const first = await model.trainStep(x, labels, { lr: 0.01, weightDecay: 5e-4 });
    expect(Number.isFinite(first.loss)).toBe(true);
    let last = first.loss;
    for (let i = 0; i < 3; i++) last = (await model.trainStep(x, labels, { lr: 0.01, weightDecay: 5e-4 })).loss;
    expect(last).toBeLessThan(first.loss);
  });

  it('reports the report.txt fusion of every conv→bn→relu for inference', () => {
    const report = readFileSync(join(dir, 'report.txt'), 'utf8');
    expect(report.match(/→ k\d+_conv_infer/g)).toHaveLength(12);
  });
});
