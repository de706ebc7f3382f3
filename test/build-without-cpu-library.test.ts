// BuildOptions.withoutCpuLibrary (compiler/build.ts): an emu build that leaves kernels.cpu.so out, as the emu tests
// that compare against a cpu build of their own make theirs (the cpu library's compile was most of each emu build).
// The artifact must list and seal only the emu library, run on emu, refuse the cpu device by name, never pass for a
// whole build, and share its emu library (one cache entry) with the whole build of the same spec.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomImages, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { DROPOUT_MLP } from './reference/specs.js';

const root = mkdtempSync(join(tmpdir(), 'nincc-without-cpu-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('an emu build without the cpu library', () => {
  const model = compileSpec(DROPOUT_MLP, 'dropout_mlp.model').model!;

  it('lists and seals the emu library only, runs on emu, and the cpu device is refused by name; a whole build shares its emu library', async () => {
    const dir = join(root, 'emu');
    const b = withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, DROPOUT_MLP, { outDir: dir, target: 'emu', maxBatch: 4, withoutCpuLibrary: true }));
    expect(b.plan.libraries).toEqual({ emu: 'kernels.emu.so' });
    expect(existsSync(join(dir, 'kernels.cpu.so'))).toBe(false);
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')).integrity.libraries)).toEqual(['emu']);
    expect(readFileSync(join(dir, 'report.txt'), 'utf8')).toContain('Compiled with: not compiled (built without the cpu library');
    const emu = await load(dir, { device: 'emu', seed: 3 });
    try {
      const out = await emu.infer(randomImages(model, 2, rng(5)));
      expect(out.length).toBe(12);
      expect(out.every(Number.isFinite)).toBe(true);
    } finally {
      emu.dispose();
    }
    await expect(load(dir, { device: 'cpu', seed: 3 })).rejects.toThrow(/libraries has no entry for device "cpu"/);
    // A whole build in the same directory is not up to date (kernels.cpu.so is missing), but its emu library is the
    // same file, a cache hit: emu tests without the cpu library share it with those (emu-infer) that need both.
    const logged: string[] = [];
    const whole = withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, DROPOUT_MLP, { outDir: dir, target: 'emu', maxBatch: 4, log: (l) => logged.push(l) }));
    expect(whole.cached).toBe(false);
    expect(whole.plan.libraries).toEqual({ cpu: 'kernels.cpu.so', emu: 'kernels.emu.so' });
    expect(logged).toContain('emu kernel library: cache hit');
    // and the whole build is up to date for one without the cpu library
    const without = withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, DROPOUT_MLP, { outDir: dir, target: 'emu', maxBatch: 4, withoutCpuLibrary: true }));
    expect(without.cached).toBe(true);
  }, 300_000);

  it('a cpu build cannot leave out the library it is', () => {
    expect(() => buildArtifact(model, DROPOUT_MLP, { outDir: join(root, 'cpu'), target: 'cpu', maxBatch: 4, withoutCpuLibrary: true })).toThrow(/a cpu build is its cpu library/);
  });
});
