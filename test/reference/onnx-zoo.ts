// ONNX export of issue #17's models against nincc's cpu inference: residual and concat blocks (nested,
// projection shortcuts) and Torch7's zoo layers (LRN, Tanh, Sigmoid, Threshold, Identity, zero padding that
// crops, ceil-mode pools), exported and run in onnxruntime-node. Registered by test/numerics-zoo.test.ts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { modelTensors } from '../../runtime/onnx/export-inputs.js';
import { exportOnnx } from '../../runtime/onnx/export-onnx.js';
import type { Model } from '../../runtime/model.js';
import { preparedModel, randomImages, type Built } from './artifacts.js';
import { opCounts, summarise } from './onnx-summary.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-onnx-zoo-'));

export async function runOnnx(file: string, x: Float32Array, dims: readonly number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(file);
  try {
    const r = await session.run({ images: new ort.Tensor('float32', x, [...dims]) });
    return { data: r.output.data as Float32Array, dims: r.output.dims };
  } finally {
    await session.release();
  }
}

/** The model's tensors as nincc holds them (random BN affine and calibrated running statistics), exported. */
function exportModel(m: Model, b: Built, file: string, keepBatchNorm: boolean): void {
  const tensors = new Map(modelTensors(b.model).map((t) => [t.name, m.getTensor(t.name)]));
  writeFileSync(file, exportOnnx(b.model, tensors, { keepBatchNorm }));
}

/** As test/onnx-export.test.ts: max |onnx − nincc| ≤ 1e-4 · max(1, max |nincc|) over the batch's output. */
function expectAgree(onnx: Float32Array, ref: Float32Array, what: string): void {
  expect(onnx.length, what).toBe(ref.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(onnx[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  expect(diff, `${what}: max |onnx − nincc| = ${diff.toExponential(2)}, scale ${scale.toFixed(3)}`).toBeLessThanOrEqual(1e-4 * scale);
  // The rows must say something: an export that lost the input would agree with nothing.
  expect(Math.max(...ref) - Math.min(...ref), what).toBeGreaterThan(1e-3);
}

/** Exports the built spec (BN folded, then kept) and compares onnxruntime's output with nincc's at batches 1 and 3. */
async function agreement(built: (name: string) => Built, name: string): Promise<Record<string, ReturnType<typeof summarise>>> {
  const { m, b, next } = await preparedModel(built(name), 23);
  const out: Record<string, ReturnType<typeof summarise>> = {};
  try {
    for (const keep of [false, true]) {
      const file = join(work, `${name}-${keep ? 'kept' : 'folded'}.onnx`);
      exportModel(m, b, file, keep);
      for (const n of [1, 3]) {
        const x = randomImages(b.model, n, next);
        const onnx = await runOnnx(file, x, [n, ...b.model.input]);
        expect(onnx.dims).toEqual([n, ...b.model.output]);
        expectAgree(onnx.data, await m.infer(x), `${name} BN ${keep ? 'kept' : 'folded'} n=${n}`);
      }
      out[keep ? 'kept' : 'folded'] = summarise(file);
    }
  } finally {
    m.dispose();
  }
  return out;
}

/** Registers the checks, on the builds of test/reference/zoo-suite.ts's specs (so they cost no build of their own). */
export function onnxZooChecks(built: (name: string) => Built): void {
describe('ONNX export of blocks and zoo layers agrees with nincc cpu inference (batch 1 and 3)', () => {
  it('every zoo layer: LRN (a window wider than the channels), Tanh, Threshold, Sigmoid, a cropping Pad, ceil-mode pools', async () => {
    const { folded } = await agreement(built, 'zoo_layers');
    expect(folded.ops).toEqual([
      'Conv', 'LRN', 'Tanh', 'Pad', 'MaxPool', 'Conv', 'Greater', 'Where', 'LRN', 'MaxPool', 'Sigmoid',
      'Pad', 'AveragePool', 'Flatten', 'Gemm', 'LogSoftmax',
    ]);
  });

  it('residual blocks (identity and projection shortcuts, one nested in a concat) and an inception-like concat', async () => {
    const { folded, kept } = await agreement(built, 'blocks');
    expect(opCounts(folded)).toMatchObject({ Add: 3, Concat: 1, Conv: 12, AveragePool: 1, MaxPool: 1 });
    expect(folded.ops).not.toContain('BatchNormalization');
    expect(opCounts(kept)).toMatchObject({ Add: 3, Concat: 1, Conv: 12, BatchNormalization: 7 });
  });

  it('a small ResNet (stem, a basic block, a block with a projection shortcut)', async () => {
    const { folded } = await agreement(built, 'tiny_resnet');
    expect(opCounts(folded)).toMatchObject({ Conv: 6, Add: 2, Relu: 5 });
  });
});
}
