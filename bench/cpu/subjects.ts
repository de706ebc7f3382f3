// The benchmark's subjects: a spec built for the CPU, weights whose output depends on the input, and
// the same weights exported to ONNX (BN folded, as nincc infers).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildArtifact } from '../../compiler/build.js';
import type { ShapedModel } from '../../compiler/ir.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { uniformStream } from '../../runtime/init.js';
import { load } from '../../runtime/model.js';
import { tensorsFromCheckpoint } from '../../runtime/onnx/export-inputs.js';
import { exportOnnx } from '../../runtime/onnx/export-onnx.js';

export interface Subject {
  readonly name: string;
  readonly spec: string;
  readonly model: ShapedModel;
  readonly dir: string; // the nincc artifact
  readonly weights: string; // safetensors checkpoint
  readonly onnx: string;
  readonly flopsPerImage: number; // 2 × forward MACs of conv and linear layers
  readonly buildSeconds: number;
}

function compiled(file: string, source: string): ShapedModel {
  const r = compileSpec(source, file);
  if (!r.model) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r.model;
}

export function images(n: number, shape: readonly number[], seed: number): Float32Array {
  const next = uniformStream(seed);
  return new Float32Array(n * shape.reduce((a, b) => a * b, 1)).map(() => 2 * next() - 1);
}

/**
 * Seeded Torch7 init, then weights whose output depends on the input. With BN's initial running
 * statistics (0, 1) a deep net's signal fades in eval mode and every image gets the same output, so
 * the spec is built once more with BN momentum 1, one training forward sets the running statistics
 * to a batch's statistics, and the BN shifts get random values (test/onnx-export.test.ts does the same).
 */
async function calibratedWeights(spec: string, source: string, work: string, seed: number): Promise<string> {
  const calibrating = source
    .replace(/\bbn\(([^,()]+), ([\d.e-]+)\)/g, 'bn($1, $2, 1)')
    .replace(/\bbn\(([^,()]+)\)/g, 'bn($1, 1e-5, 1)'); // bn(n): Torch's default eps
  const model = compiled(spec, calibrating);
  const dir = join(work, 'calibrate');
  buildArtifact(model, calibrating, { outDir: dir, target: 'cpu', maxBatch: 4 });
  const m = await load(dir, { device: 'cpu', seed });
  const path = join(work, 'weights.safetensors');
  try {
    const next = uniformStream(seed * 7919);
    for (const name of m.tensorNames().filter((t) => /^bn\d+\.bias$/.test(t))) m.setTensor(name, m.getTensor(name).map(() => 0.4 * (next() - 0.5)));
    await m.forwardBackward(images(4, model.input, seed), [0, 1, 2, 3]);
    await m.save(path, { note: 'nincc bench/cpu.ts calibrated weights' });
  } finally {
    m.dispose();
  }
  return path;
}

export async function prepareSubject(spec: string, work: string, maxBatch: number, seed: number): Promise<Subject> {
  const source = readFileSync(spec, 'utf8');
  const model = compiled(spec, source);
  const base = join(work, model.name);
  mkdirSync(base, { recursive: true });
  const dir = join(base, 'artifact');
  const built = buildArtifact(model, source, { outDir: dir, target: 'cpu', maxBatch });
  const weights = await calibratedWeights(spec, source, base, seed);
  const onnx = join(base, `${model.name}.onnx`);
  writeFileSync(onnx, exportOnnx(model, tensorsFromCheckpoint(model, weights), { weightsSource: weights }));
  const flopsPerImage = 2 * built.plan.macsPerImage;
  return { name: model.name, spec, model, dir, weights, onnx, flopsPerImage, buildSeconds: built.seconds };
}
