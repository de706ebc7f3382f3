// `nincc tune` timing the candidates on a GPU (issue #15), tested where there is none: the fake driver
// (runtime/core/tests/fake_cuda_driver.cc, compiled here) runs a fake nvcc's modules (test/fake-nvcc.mjs) and gives
// each kernel text the µs FAKE_CUDA_MICROS says. CI: the median, the GPU's key and report.txt's lines. With
// NINCC_TEST_FULL=1 (minutes: four emu builds of test/data/tune-tiny.model): the variants the fake makes faster
// win, and lose once it makes them slower; a cuda build on a GPU of the same name applies the winners by itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileSpec, compileModel } from '../compiler/pipeline.js';
import { gpuKey, tuneCacheFile } from '../compiler/tune/tune-cache.js';
import { modelHash, parseTuneFile } from '../compiler/tune/tune-record.js';
import { tuneReport } from '../compiler/tune/tune-report.js';
import { medianTimes } from '../runtime/profile/tune-timed.js';
import { nincc, root } from './cli-run.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/tune-timed.test.ts: nincc tune on the fake driver runs with NINCC_TEST_FULL=1 (four emu builds, minutes); CI checks the median, the key and the report lines');

const SPEC = join(root, 'test/data/tune-tiny.model');

describe('timing on a GPU: the pure parts', () => {
  it('the median per kernel over runs, a kernel launched twice in a run counted twice, absent counted 0', () => {
    const t = medianTimes([
      [{ kernel: 'a', micros: 1 }, { kernel: 'a', micros: 2 }, { kernel: 'b', micros: 9 }],
      [{ kernel: 'a', micros: 5 }, { kernel: 'b', micros: 1 }],
      [{ kernel: 'a', micros: 4 }, { kernel: 'b', micros: 2 }, { kernel: 'c', micros: 7 }],
    ]);
    expect(Object.fromEntries(t)).toEqual({ a: 4, b: 2, c: 0 });
    expect(Object.fromEntries(medianTimes([[{ kernel: 'a', micros: 1 }], [{ kernel: 'a', micros: 4 }]]))).toEqual({ a: 2.5 });
  });

  it("the GPU's key is its driver name made lower case and dashed, never a --predict name", () => {
    expect(gpuKey('NVIDIA H100 80GB HBM3')).toBe('nvidia-h100-80gb-hbm3');
    expect(gpuKey('  NVIDIA A100-SXM4-40GB ')).toBe('nvidia-a100-sxm4-40gb');
    expect(gpuKey('H100')).toBe('h100'); // only where the driver says just that
  });

  it('report.txt says timed on which GPU, and where a cuda build found the record or why it has none', () => {
    const source = readFileSync(SPEC, 'utf8');
    const model = compileSpec(source, SPEC, { device: 'emu' }).model!;
    const c = compileModel(model, { target: 'emu', maxBatch: 8, sourceHash: '', libraries: {}, cpuFeatures: [], precision: 'bf16' });
    const tuned = { gpu: 'fake-h100', how: 'timed' as const, hardware: 'Fake H100', layers: { '1:forward': { stagedStores: false } } };
    const lines = tuneReport(c.lowered.programs, tuned, 'reused by itself from /c/tune.json (nincc build --no-tuned leaves it out)');
    expect(lines[0]).toBe('Per-layer configurations (tune.json for fake-h100; tuned: timed on Fake H100; nincc tune):');
    expect(lines[1]).toBe('  reused by itself from /c/tune.json (nincc build --no-tuned leaves it out)');
    expect(lines.find((l) => l.includes('k1_conv_fwd_fused'))).toMatch(/ tuned: stagedStores off$/);
    expect(lines.find((l) => l.includes('k4_conv_fwd_fused'))).toMatch(/ default$/);
    expect(tuneReport(c.lowered.programs, undefined, 'no timed tuning for fake-h100 …')).toEqual(['Per-layer configurations: default for every kernel (no timed tuning for fake-h100 …)']);
    expect(modelHash(model, 8, 'bf16')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe.runIf(FULL)('nincc tune on the fake driver (NINCC_TEST_FULL=1)', () => {
  let work: string;
  let env: NodeJS.ProcessEnv;
  let artifact: string;
  let defaults: string[]; // the hashes of the default build's kernel texts (the fake nvcc's `hash:` lines)
  const hardware = `Fake GPU ${process.pid}`; // a key of its own in the per-user cache, removed afterwards
  const key = gpuKey(hardware);
  const tune = (micros: string) => nincc(['tune', artifact, '--batch', '8', '--runs', '3', '--warmup', '1'], { env: { ...env, FAKE_CUDA_MICROS: micros }, cwd: work, timeoutMs: 900_000 });
  const record = () => parseTuneFile(readFileSync(join(artifact, 'tune.json'), 'utf8'), 'tune.json').gpus[key];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nincc-tune-timed-'));
    const driver = join(work, 'libfakecuda.so');
    const cc = spawnSync('g++', ['-std=c++17', '-O1', '-shared', '-fPIC', join(root, 'runtime/core/tests/fake_cuda_driver.cc'), '-o', driver], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`g++ of the fake driver failed: ${cc.stderr}`);
    env = { NINCC_CUDA_DRIVER: driver, NINCC_NVCC: join(root, 'test/fake-nvcc.mjs'), FAKE_CUDA_NAME: hardware };
    artifact = join(work, 'default');
    const built = nincc(['build', SPEC, '--target', 'cuda', '--precision', 'bf16', '--max-batch', '8', '--no-tuned', '-o', artifact], { env, cwd: work, timeoutMs: 900_000 });
    if (built.code !== 0) throw new Error(`nincc build: ${built.stderr}`);
    defaults = [...readFileSync(join(artifact, 'kernels.fatbin'), 'utf8').matchAll(/^hash:\w+=(\w+)$/gm)].map((m) => m[1]);
  }, 900_000);
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
    rmSync(join(tuneCacheFile(key, '0'), '..'), { recursive: true, force: true });
  });

  it('the variants the fake makes faster win: every knob that changes a kernel goes off, filed as timed on the GPU', () => {
    const r = tune([...defaults.map((h) => `${h}=10`), '*=5'].join(','));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`timed on ${hardware} (median of 3 runs after 1 warm-up), batch 8`);
    expect(r.stderr).toMatch(/tune: stagedStores off: outputs bitwise the default's; timing/);
    const entry = record();
    expect(entry).toMatchObject({ gpu: key, how: 'timed', hardware });
    const choices = Object.values(entry.layers).flatMap((c) => Object.values(c));
    expect(choices.length).toBeGreaterThan(0);
    expect(choices.every((on) => on === false)).toBe(true);
    expect(entry.layers['1:forward']).toMatchObject({ stagedStores: false });
    // Also filed in the per-user cache, for a later cuda build on this GPU.
    const cached = tuneCacheFile(key, entry.modelHash);
    expect(r.stdout).toContain(`and ${cached}, which nincc build SPEC --target cuda on this GPU applies by itself`);
    expect(parseTuneFile(readFileSync(cached, 'utf8'), cached).gpus[key]).toEqual(entry);
  }, 900_000);

  it('a cuda build on a GPU of that name applies them by itself; --no-tuned and another GPU do not', () => {
    const auto = join(work, 'auto');
    const r = nincc(['build', SPEC, '--target', 'cuda', '--precision', 'bf16', '--max-batch', '8', '-o', auto], { env, cwd: work, timeoutMs: 900_000 });
    expect(r.code, r.stderr).toBe(0);
    const report = readFileSync(join(auto, 'report.txt'), 'utf8');
    expect(report).toContain(`Per-layer configurations (tune.json for ${key}; tuned: timed on ${hardware}; nincc tune):`);
    expect(report).toContain(`  reused by itself from ${tuneCacheFile(key, record().modelHash)} (nincc build --no-tuned leaves it out)`);
    expect(report).toMatch(/ {2}k1_conv_fwd_fused +tuned: stagedStores off/);
    expect(readFileSync(join(auto, 'kernels.cu'), 'utf8')).not.toBe(readFileSync(join(artifact, 'kernels.cu'), 'utf8'));
    const plain = nincc(['build', SPEC, '--target', 'cuda', '--precision', 'bf16', '--max-batch', '8', '--no-tuned', '-o', join(work, 'plain')], { env, cwd: work });
    expect(plain.code, plain.stderr).toBe(0);
    expect(readFileSync(join(work, 'plain/report.txt'), 'utf8')).toContain('Per-layer configurations: default for every kernel (no tune.json applied');
    const other = nincc(['build', SPEC, '--target', 'cuda', '--precision', 'bf16', '--max-batch', '8', '-o', join(work, 'other')], { env: { ...env, FAKE_CUDA_NAME: `${hardware} other` }, cwd: work });
    expect(other.code, other.stderr).toBe(0);
    expect(readFileSync(join(work, 'other/report.txt'), 'utf8')).toContain(`Per-layer configurations: default for every kernel (no timed tuning for ${key}-other and this model`);
  }, 900_000);

  it('they lose once the fake makes them slower: every knob stays on (the timing, not the knob, decides)', () => {
    const r = tune([...defaults.map((h) => `${h}=5`), '*=10'].join(','));
    expect(r.code, r.stderr).toBe(0);
    const choices = Object.values(record().layers).flatMap((c) => Object.values(c));
    expect(choices.length).toBeGreaterThan(0);
    expect(choices.every((on) => on === true)).toBe(true);
  }, 900_000);

  it('a variant within the 2% margin of the default keeps the default', () => {
    // Every changed kernel 1% faster: noise on a GPU, not a win.
    const r = tune([...defaults.map((h) => `${h}=100`), '*=99'].join(','));
    expect(r.code, r.stderr).toBe(0);
    expect(Object.values(record().layers).flatMap((c) => Object.values(c)).every((on) => on === true)).toBe(true);
  }, 900_000);
});
