// `nincc tune` on a real GPU (npm run test:gpu; issue #15): nin-fashion's candidates timed on the device, the
// winners filed under the GPU's key as "timed" and chosen as the printed table says (a variant off only where it
// beat the default by the 2% margin), then `nincc build --target cuda` on the same GPU applies them by itself and
// the tuned artifact trains. Skipped, saying why, where there is no GPU, driver or nvcc.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gpuKey } from '../../compiler/tune/tune-cache.js';
import { parseTuneFile, TUNE_KNOB_NAMES } from '../../compiler/tune/tune-record.js';
import { load, syntheticImages } from '../../runtime/model.js';
import { loadNative } from '../../runtime/native.js';
import { TIMED_MARGIN } from '../../runtime/profile/tune-timed.js';
import { nincc, root } from '../cli-run.js';
import { cudaSkipReason } from './cuda-device.js';

const skip = cudaSkipReason('cuda');
if (skip) console.warn(`test/gpu/tune.test.ts: skipped: ${skip}`);
const work = mkdtempSync(join(tmpdir(), 'nincc-gpu-tune-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SPEC = join(root, 'models/nin-fashion.model');
// A cache of its own: the record this test files must not be reused by the user's builds.
const env = { NINCC_CACHE_DIR: join(work, 'cache') };

describe.skipIf(skip !== undefined)('nincc tune on the GPU: nin-fashion', () => {
  it('times every knob, files the winners as timed, and a cuda build on this GPU applies them by itself', async () => {
    const hardware = loadNative().cudaGpuName();
    const key = gpuKey(hardware);
    const r = nincc(['tune', SPEC, '--batch', '64', '--runs', '5', '--warmup', '2'], { env, cwd: work, timeoutMs: 1_800_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`timed on ${hardware} (median of 5 runs after 2 warm-up), batch 64`);
    const tuned = join(work, 'build/nin_fashion-cuda');
    const entry = parseTuneFile(readFileSync(join(tuned, 'tune.json'), 'utf8'), 'tune.json').gpus[key];
    expect(entry).toMatchObject({ gpu: key, how: 'timed', hardware });
    // Each row of the table: a knob is off exactly where its variant's µs beat the default's by the margin.
    const rows = r.stdout.split('\n').filter((l) => /^ {2}\d+:(forward|dgrad|wgrad) /.test(l));
    expect(rows.length).toBe(Object.keys(entry.layers).length);
    for (const line of rows) {
      const [layerPass, base, ...cells] = line.trim().split(/\s+/);
      expect(Number(base), line).toBeGreaterThan(0);
      for (const [i, knob] of TUNE_KNOB_NAMES.entries()) {
        if (cells[i] === '—') continue;
        expect(entry.layers[layerPass][knob], `${layerPass} ${knob}`).toBe(!(Number(cells[i]) < Number(base) * (1 - TIMED_MARGIN)));
      }
    }
    // Also filed in this test's cache, where the build below finds it.
    const cached = /^and (\S+), which nincc build SPEC --target cuda/m.exec(r.stdout)?.[1];
    expect(cached?.startsWith(join(env.NINCC_CACHE_DIR, 'tune', key))).toBe(true);
    expect(parseTuneFile(readFileSync(cached!, 'utf8'), cached!).gpus[key]).toEqual(entry);

    const out = join(work, 'auto');
    const b = nincc(['build', SPEC, '--target', 'cuda', '--precision', 'bf16', '-o', out], { env, cwd: work, timeoutMs: 1_800_000 });
    expect(b.code, b.stderr).toBe(0);
    const report = readFileSync(join(out, 'report.txt'), 'utf8');
    expect(report).toContain(`tuned: timed on ${hardware}`);
    expect(report).toContain(`  reused by itself from ${cached}`);
    const model = await load(out, { device: 'cuda', seed: 1 });
    try {
      const images = syntheticImages(model, 8, (i) => Math.sin(i * 0.37));
      const { loss } = await model.trainStep(images, Int32Array.from({ length: 8 }, (_, i) => i % 10), { lr: 0.01 });
      expect(Number.isFinite(loss)).toBe(true);
    } finally {
      await model.dispose();
    }
  }, 3_600_000);
});
