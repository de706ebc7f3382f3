// Smoke test of the native addon through runtime/native.ts: builds the core tests' fixture kernel
// library with g++, loads the fixture artifact and runs its programs (runtime/core/tests/fixture).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealPlan } from '../compiler/emit/integrity.js';
import { loadNative, type NativeModel } from '../runtime/native.js';

const fixtureDir = join(import.meta.dirname, '..', 'runtime', 'core', 'tests');
let artifactDir = '';

beforeAll(() => {
  artifactDir = mkdtempSync(join(tmpdir(), 'nincc-native-smoke-'));
  copyFileSync(join(fixtureDir, 'fixture', 'plan.json'), join(artifactDir, 'plan.json'));
  execFileSync('g++', [
    '-shared', '-fPIC', '-O1', '-std=c++17',
    '-I', join(import.meta.dirname, '..', 'runtime', 'include'),
    join(fixtureDir, 'fixture_kernels.cc'),
    '-o', join(artifactDir, 'kernels.cpu.so'),
  ]);
  // Sealed as `nincc build` seals plan.json: the SHA-256 of the library just compiled and of the plan.
  const plan = JSON.parse(readFileSync(join(artifactDir, 'plan.json'), 'utf8')) as { libraries: Record<string, string> };
  writeFileSync(join(artifactDir, 'plan.json'), sealPlan(plan, artifactDir));
});

afterAll(() => {
  if (artifactDir) rmSync(artifactDir, { recursive: true, force: true });
});

function load(): NativeModel {
  return loadNative().load(artifactDir, 'cpu');
}

describe('native addon', () => {
  it('lists devices and reports the artifact', () => {
    const addon = loadNative();
    expect(addon.abi).toBe('nincc-cpu-2');
    expect(addon.devices()[0]).toBe('cpu');
    const model = load();
    const info = model.info();
    expect(info.device).toBe('cpu');
    expect(info.maxBatch).toBe(8);
    expect(info.input).toEqual([1, 2, 2]);
    expect(info.output).toEqual([4]);
    expect(info.classes).toBe(4);
    expect(info.params.map((p) => p.name)).toEqual(['affine.bias', 'affine.weight']);
    expect(info.params[1]).toMatchObject({ shape: [2, 2], offset: 4, size: 4, init: { kind: 'uniform', bound: 0.5 } });
    expect(info.state[0].torch).toEqual({ index: 2, field: 'running_mean' });
    expect(info.programs.infer.outputs.record).toEqual({ space: 'fixed', offset: 0, size: 4, dtype: 'i32' });
    model.dispose();
  });

  it('runs infer for several batch sizes', async () => {
    const model = load();
    const bias = new Float32Array([1, 2, 3, 4]);
    model.write('param', 0, bias);
    for (const n of [1, 3, 8]) {
      const images = Float32Array.from({ length: 4 * n }, (_, i) => 0.25 * i - n);
      model.setInput('infer', 'images', images, n);
      await model.run('infer', n, { scale: 2, shift: -1 }, 0x1234567800000009n);
      const output = model.getOutput('infer', 'output', n);
      expect(output).toBeInstanceOf(Float32Array);
      expect(Array.from(output)).toEqual(Array.from(images, (x, i) => 2 * x - 1 + bias[i % 4]));
      // act buffers of n images start at offset*n
      expect(Array.from(model.read('act', 4 * n, 4 * n))).toEqual(Array.from(output));
      const record = model.getOutput('infer', 'record', n);
      expect(record).toBeInstanceOf(Int32Array);
      expect(Array.from(record.subarray(0, 3))).toEqual([n, 9, 0x12345678]);
    }
    model.dispose();
  });

  it('runs sgd_update with scalars and rejects a missing one', async () => {
    const model = load();
    model.write('param', 0, Float32Array.from({ length: 8 }, (_, i) => i));
    model.write('grad', 0, Float32Array.from({ length: 8 }, (_, i) => 10 * i));
    await expect(model.run('sgd_update', 1, {})).rejects.toThrow(
      'program "sgd_update" step 0 (kernel k_sgd, layer 1 at fixture.model:3:3) needs scalar "lr", which the call did not pass',
    );
    await model.run('sgd_update', 1, { lr: 0.5 }, 0);
    expect(Array.from(model.read('param', 0, 8))).toEqual(Array.from({ length: 8 }, (_, i) => i - 5 * i));
    model.dispose();
  });

  it('refuses calls while a run is in flight, and after dispose', async () => {
    const model = load();
    const first = model.run('sgd_update', 1, { lr: 0.1 });
    await expect(model.run('sgd_update', 1, { lr: 0.1 })).rejects.toThrow(/busy/);
    expect(() => model.read('param', 0, 1)).toThrow(/busy/);
    await first;
    expect(model.read('param', 0, 1)).toHaveLength(1);
    model.dispose();
    expect(() => model.info()).toThrow('info(): this model was disposed');
  });

  it('turns runtime errors into JS errors', async () => {
    const addon = loadNative();
    expect(() => addon.load(join(artifactDir, 'missing'), 'cpu')).toThrow(/missing\/plan\.json: cannot open the plan/);
    expect(() => addon.load(artifactDir, 'tpu')).toThrow('unknown device "tpu" (available: cpu');
    const model = load();
    await expect(model.run('train', 1, {})).rejects.toMatchObject({ code: 'ERR_NINCC_RUNTIME' });
    await expect(model.run('infer', 9, { scale: 1, shift: 0 })).rejects.toThrow(/batch size 9 is out of range/);
    expect(() => model.setInput('infer', 'images', new Int32Array(4), 1)).toThrow(TypeError);
    expect(() => model.setInput('next_label', 'labels', new Int32Array(2), 3)).toThrow(/is 12 bytes/);
    expect(() => model.read('param', 6, 4)).toThrow('range [6, 10) lies outside the param space of 8 elements');
    model.dispose();
  });
});
