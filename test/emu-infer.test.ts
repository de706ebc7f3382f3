// The emu device's inference: `nincc build --target emu` generates kernels.cu (the inference programs
// here; the fused training program is test/emu-train.test.ts's), compiles it for the SIMT emulator
// (g++ -DNINCC_EMU) and gives each step a launch rule; load(dir, {device: 'emu'}) runs that CUDA source on the CPU. Its
// `infer` must match the cpu device's and the float64 reference over specs that cover every inference
// layer kind (conv+BN+ReLU folds, conv without BN, standalone BN, both pools, view, dropout, linear(+relu),
// softmax mid-network, logsoftmax) and the strides/pads of the shipped specs, at batches that go down
// and up on a poisoned arena.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealPlan } from '../compiler/emit/integrity.js';
import { buildArtifact } from '../compiler/build.js';
import type { Plan } from '../compiler/emit/plan.js';
import type { ShapedModel } from '../compiler/ir.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load, type Model } from '../runtime/model.js';
import { nincc } from './cli-run.js';
import { calibrateRunningStats, expectClose, poisonArena, randomImages, randomizeAffine, readWeights, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { forward } from './reference/interpret.js';
import { DROPOUT_MLP, EVERY_LAYER, FASHION_ODD, NIN_FASHION, NIN_SMALL, ODDS_AND_ENDS, POOL_PROBE } from './reference/specs.js';

/** Under scripts/test-emu-asan.sh (NINCC_EMU_ASAN=1) the emu builds and runs are instrumented: about three times slower. */
const ASAN_SLOWER = process.env.NINCC_EMU_ASAN === '1' ? 3 : 1;

// As test/numerics-kernels.test.ts: 2e-5·max|ref| + ATOL, per tensor.
const TOL = 2e-5;
const BATCHES = [3, 1, 2, 4];
const POISONS = [Number.NaN, 3.0e4];

const specs: Record<string, string> = {
  nin_small: NIN_SMALL,
  fashion_odd: FASHION_ODD,
  odds_and_ends: ODDS_AND_ENDS,
  every_layer: EVERY_LAYER,
  dropout_mlp: DROPOUT_MLP,
  pool_probe: POOL_PROBE,
  nin_fashion: NIN_FASHION,
};

interface EmuBuilt {
  readonly model: ShapedModel;
  readonly dir: string;
  readonly plan: Plan;
}

let root: string;
const built = new Map<string, EmuBuilt>();

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nincc-emu-'));
});

/** A spec's emu build (which carries the cpu library too), made when a test first needs it: a `-t`
 *  run (scripts/test-emu-asan.sh's sample) then compiles only its specs. */
function emuBuilt(name: string): EmuBuilt {
  const had = built.get(name);
  if (had) return had;
  const source = specs[name];
  const r = compileSpec(source, `${name}.model`);
  if (!r.model) throw new Error(`${name}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const dir = join(root, name);
  // The nvcc compile check (where nvcc exists) only for the shipped spec: it is slow and checks nothing the emulator runs.
  const nvcc = name === 'nin_fashion' ? process.env.NINCC_NVCC : '0';
  const b = withEnv({ NINCC_NVCC: nvcc }, () => buildArtifact(r.model!, source, { outDir: dir, target: 'emu', maxBatch: 4 }));
  const entry = { model: r.model, dir, plan: b.plan };
  built.set(name, entry);
  return entry;
}

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The same seeded weights, BN shifts and running statistics on both devices. */
async function pair(name: string, seed: number): Promise<{ cpu: Model; emu: Model; b: EmuBuilt; next: () => number }> {
  const b = emuBuilt(name);
  const cpu = await load(b.dir, { device: 'cpu', seed });
  const emu = await load(b.dir, { device: 'emu', seed });
  const next = rng(seed * 7919 + 17);
  randomizeAffine(cpu, next);
  calibrateRunningStats(cpu, b.model, randomImages(b.model, 4, next), 4, next);
  for (const t of cpu.tensorNames()) emu.setTensor(t, cpu.getTensor(t));
  return { cpu, emu, b, next };
}

describe.each(Object.keys(specs))('%s on emu', (name) => {
  it('infer matches the cpu device and the float64 reference at batches 3, 1, 2, 4 on a poisoned arena, and 7 in two chunks', async () => {
    const { cpu, emu, b, next } = await pair(name, 11);
    try {
      expect(emu.device).toBe('emu');
      const w = readWeights(emu);
      for (const [i, n] of [...BATCHES, 7].entries()) {
        const images = randomImages(b.model, n, next);
        if (n <= 4) poisonArena(emu, POISONS[i % 2]);
        const out = await emu.infer(images);
        expectClose(out, forward(b.model, w, images, n, { mode: 'eval' }).output.data, TOL, `${name} emu infer n=${n} vs reference`);
        expectClose(out, await cpu.infer(images), TOL, `${name} emu infer n=${n} vs cpu`);
      }
    } finally {
      cpu.dispose();
      emu.dispose();
    }
  }, 300_000 * ASAN_SLOWER); // includes the spec's first (cold) emu, cpu and, for nin_fashion, nvcc compiles
});

describe('emu device', () => {
  it('gives bitwise the same output in every block order and thread order', async () => {
    const { cpu, emu, b, next } = await pair('fashion_odd', 3);
    try {
      const images = randomImages(b.model, 3, next);
      const base = await emu.infer(images);
      for (const [order, reverse, workers] of [['reverse', '0', '1'], ['shuffled:7', '1', '3'], ['forward', '1', '2']]) {
        const out = await withEnv({ NINCC_EMU_ORDER: order, NINCC_EMU_REVERSE_THREADS: reverse, NINCC_EMU_WORKERS: workers }, () => emu.infer(images));
        expect(Array.from(out), `order ${order}, reverse threads ${reverse}, ${workers} workers`).toEqual(Array.from(base));
      }
    } finally {
      cpu.dispose();
      emu.dispose();
    }
  });

  it('a NINCC_EMU_CHECKS build (bounds-checked shared arrays, alignment checks) gives bitwise the same output', async () => {
    const { cpu, emu, b, next } = await pair('nin_small', 9);
    let checked: Model | undefined;
    try {
      const dir = join(root, 'nin_small_checks');
      withEnv({ NINCC_EMU_CHECKS: '1', NINCC_NVCC: '0' }, () => buildArtifact(b.model, NIN_SMALL, { outDir: dir, target: 'emu', maxBatch: 4 }));
      expect(readFileSync(join(dir, 'report.txt'), 'utf8')).toContain('-DNINCC_EMU_CHECKS');
      checked = await load(dir, { device: 'emu' });
      for (const t of emu.tensorNames()) checked.setTensor(t, emu.getTensor(t));
      const images = randomImages(b.model, 2, next);
      expect(Array.from(await checked.infer(images))).toEqual(Array.from(await emu.infer(images)));
    } finally {
      checked?.dispose();
      cpu.dispose();
      emu.dispose();
    }
  });

  it('writes kernels.cu naming each kernel\'s spec layer and line, launch rules for every step, and both libraries', () => {
    const b = emuBuilt('nin_fashion');
    expect(b.plan.libraries).toEqual({ cpu: 'kernels.cpu.so', emu: 'kernels.emu.so' });
    const cu = readFileSync(join(b.dir, 'kernels.cu'), 'utf8');
    expect(cu).toContain('#include "nincc/device/primitives.cuh"');
    expect(cu).toContain(`NINCC_LIBRARY("${b.plan.sourceHash}");`);
    for (const program of ['prepare_infer', 'infer', 'train_forward_backward', 'sgd_update']) {
      for (const s of b.plan.programs[program].steps) {
        expect(s.launch, `${program} ${s.kernel}`).toBeDefined();
        // Steps of the whole model (the loss, the SGD update) have no spec layer.
        if (s.layer === 0) expect(cu).toMatch(new RegExp(`// whole model\n(// fuses: .*\n)?// launch: .*\nNINCC_KERNEL void __launch_bounds__\\(\\d+\\) ${s.kernel}\\(`));
        else expect(cu).toMatch(new RegExp(`// layer ${s.layer}: .* at ${s.source.replace(/\./g, '\\.')}`));
        expect(cu).toContain(`NINCC_EXPORT(${s.kernel});`);
      }
    }
    const conv = b.plan.programs.infer.steps[0];
    expect(conv.launch).toEqual({ grid: [25, 1, 1], batchAxis: 2, block: [32, 8, 1], shared: 0 }); // 28×28 outputs in 32-wide tiles, 32 channels
    const report = readFileSync(join(b.dir, 'report.txt'), 'utf8');
    expect(report).toContain('CUDA kernels (kernels.cu: inference and the fused training programs) for the emu device');
    // Where nvcc exists, the same source compiles for sm_80 and sm_90 without register spills.
    const ptxas = report.split('\n').filter((l) => /^ {2}sm_\d+ k\d+_/.test(l));
    if (!report.includes('nvcc: not found')) {
      expect(ptxas.length).toBeGreaterThan(0);
      for (const l of ptxas) expect(l).toMatch(/spill stores 0 B, loads 0 B/);
    }
  });

  it('kernels.emu.so exports only the emu ABI (nincc_emu_*, nincc_abi, nincc_source_hash)', () => {
    const nm = spawnSync('nm', ['-D', '--defined-only', join(emuBuilt('nin_fashion').dir, 'kernels.emu.so')], { encoding: 'utf8' });
    if (nm.error) return; // no binutils here
    const names = nm.stdout.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter((n): n is string => Boolean(n));
    // An NINCC_EMU_ASAN build (scripts/test-emu-asan.sh) adds AddressSanitizer's own ODR-check symbols.
    const foreign = names.filter((n) => !/^(nincc_emu_[a-z0-9_]+|nincc_abi|nincc_source_hash)$/.test(n) && !/^(_ZNSt|_ZSt|_ZNKSt)/.test(n) && !(process.env.NINCC_EMU_ASAN && /^__odr_asan\./.test(n)));
    expect(foreign).toEqual([]);
    expect(names).toContain('nincc_emu_k1_conv_infer');
  });

  it('a launch the emulator rejects, and a step whose buffers do not match the kernel, are errors naming the step', async () => {
    const b = emuBuilt('pool_probe');
    const edit = (name: string, change: (steps: Record<string, unknown>[]) => void) => {
      const dir = join(root, name);
      cpSync(b.dir, dir, { recursive: true });
      const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { libraries: Record<string, string>; programs: Record<string, { steps: Record<string, unknown>[] }> };
      change(plan.programs.infer.steps);
      writeFileSync(join(dir, 'plan.json'), sealPlan(plan, dir)); // resealed: the checks under test come after the hash's
      return dir;
    };
    const images = new Float32Array(2 * 2 * 8 * 8).fill(0.5);
    const tooDeep = await load(edit('pool_probe_bad_launch', (steps) => { steps[0].launch = { grid: [1, 1, 1], batchAxis: 2, block: [1, 1, 65], shared: 0 }; }), { device: 'emu' });
    try {
      await expect(tooDeep.infer(images)).rejects.toThrow(/kernel k1_conv_infer \(layer 1 at pool_probe\.model:\d+:\d+\) failed on the emu device: .*block/);
    } finally {
      tooDeep.dispose();
    }
    const shortArgs = await load(edit('pool_probe_bad_args', (steps) => { (steps[0].args as unknown[]).pop(); }), { device: 'emu' });
    try {
      await expect(shortArgs.infer(images)).rejects.toThrow(/k1_conv_infer .*signature "ppppi" does not match the step's 3 buffers, n and 0 scalars/);
    } finally {
      shortArgs.dispose();
    }
  });

  it('`nincc build --target emu` builds models/nin-fashion.model for both devices', () => {
    const out = join(root, 'cli-nin-fashion');
    const r = nincc(['build', 'models/nin-fashion.model', '--target', 'emu', '-o', out, '--max-batch', '4'], { env: { ...process.env, NINCC_NVCC: '0' } });
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as Plan;
    expect(plan.libraries).toEqual({ cpu: 'kernels.cpu.so', emu: 'kernels.emu.so' });
    expect(readFileSync(join(out, 'kernels.cu'), 'utf8')).toContain('// layer 1: nn.SpatialConvolution(1 -> 32, 5x5, 1,1, 2,2) at nin-fashion.model:');
  }, 60_000);

  it('a cpu build has no emu library and no launch rules', () => {
    const r = compileSpec(POOL_PROBE, 'pool_probe.model');
    const dir = join(root, 'pool_probe_cpu');
    const b = buildArtifact(r.model!, POOL_PROBE, { outDir: dir, target: 'cpu', maxBatch: 4 });
    expect(b.plan.libraries).toEqual({ cpu: 'kernels.cpu.so' });
    for (const p of Object.values(b.plan.programs)) for (const s of p.steps) expect(s.launch).toBeUndefined();
  });

  it('a cpu-only artifact does not load on emu, naming the missing library', async () => {
    await expect(load(join(root, 'pool_probe_cpu'), { device: 'emu' })).rejects.toThrow(/libraries has no entry for device "emu"/);
  });
});
