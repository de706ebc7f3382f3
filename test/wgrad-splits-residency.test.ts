// The weight-gradient split chooser at each kernel's resident blocks (compiler/schedule/wgrad-residency.ts, the
// pipeline's `wgradResidentBlocks`, build.ts's second choice) and report.txt's lines on it. The whole build (nvcc's
// registers read back, the splits chosen again) runs with NINCC_TEST_FULL=1 where nvcc exists; CI checks the compiles.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { findNvcc, type PtxasKernel } from '../compiler/backends/cuda/toolchain.js';
import type { Ablations } from '../compiler/ablations.js';
import { compileAtResidency } from '../compiler/compile-at-residency.js';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { wgradSplitsReport } from '../compiler/report/wgrad-splits-report.js';
import { wgradResidency } from '../compiler/schedule/wgrad-residency.js';
import { GPUS } from '../runtime/profile/gpus.js';

/** Two 3×3 convs on 8×8 (C → K1, then K1 → K2), a linear and a loss. */
const twoConvs = (name: string, C: number, K1: number, K2: number) => `model ${name} {
  input ${C}x8x8
  conv(${C}, ${K1}, 3, 3, 1, 1, 1, 1)  bn(${K1})  relu
  conv(${K1}, ${K2}, 3, 3, 1, 1, 1, 1)
  view(-1)  linear(${K2 * 8 * 8}, 4)  logsoftmax
}`;
// At batch 32 on 8×8 (2048 positions: 64 slices of 32), on an H100 (132 SMs):
// k1 (64→256 3×3): 6 tiles, up to 32 splits. At 1 block a SM, 22 splits (132 blocks, one wave of ⌈64/22⌉ = 3 slices)
//   beat 32 (192 blocks: 2 waves of 2 = 4); at 2 a SM (264 a wave) 32 splits are one wave of 2 slices.
// k4 (256→512 3×3): 36 tiles, up to 4 splits. At 1 a SM, 3 splits (108 blocks, one wave of 22 slices) beat 4 (144:
//   2 waves of 16 = 32); at 2 a SM 4 splits are one wave of 16.
const SPEC = twoConvs('residency', 64, 256, 512);
const BATCH = 32;

const model = () => {
  const r = compileSpec(SPEC, 'residency.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return r.model;
};
const compile = (residentBlocks?: ReadonlyMap<number, number>) =>
  compileModel(model(), { target: 'emu', maxBatch: BATCH, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', gpu: 'h100', ...(residentBlocks ? { wgradResidentBlocks: residentBlocks } : {}) });
const wgradSplits = (c: Compiled) =>
  Object.fromEntries(c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.flatMap((s) => (s.op === 'conv_wgrad_fused' ? [[s.kernel, s.consts.splits]] : [])));
/** A ptxas line for each weight gradient at `registers`, as nvcc's report would give it (no static shared memory). */
const ptxasAt = (registers: number): PtxasKernel[] =>
  ['k1_conv_wgrad_fused', 'k4_conv_wgrad_fused'].map((kernel) => ({ kernel, arch: 'sm_90', registers, sharedBytes: 0, spillStores: 0, spillLoads: 0 }));

describe('weight-gradient splits at the resident blocks ptxas allows', () => {
  it('the pipeline chooses 22 and 3 splits at 1 block a SM, 32 and 4 at 2', () => {
    expect(wgradSplits(compile())).toEqual({ k4_conv_wgrad_fused: 3, k1_conv_wgrad_fused: 22 });
    expect(wgradSplits(compile(new Map([[1, 1], [4, 1]])))).toEqual({ k4_conv_wgrad_fused: 3, k1_conv_wgrad_fused: 22 });
    expect(wgradSplits(compile(new Map([[1, 2], [4, 2]])))).toEqual({ k4_conv_wgrad_fused: 4, k1_conv_wgrad_fused: 32 });
    expect(wgradSplits(compile(new Map([[1, 2]])))).toEqual({ k4_conv_wgrad_fused: 3, k1_conv_wgrad_fused: 32 });
  });

  it("residency from ptxas's registers: few registers, more blocks a SM; and report.txt names R, the waves and the splits", () => {
    const c = compile();
    const kernels = c.cuda!.kernels;
    const launch = kernels.find((k) => k.name === 'k4_conv_wgrad_fused')!.launch;
    const threads = launch.block[0] * launch.block[1] * launch.block[2];
    // 65536 registers a SM: at 255 a thread a block of `threads` fits once, at half of what fits twice.
    const twice = Math.floor(65536 / (2 * threads) / 8) * 8;
    expect(wgradResidency(c.lowered.programs, kernels, ptxasAt(255), GPUS.h100).get(4)?.residentBlocks).toBe(1);
    const two = wgradResidency(c.lowered.programs, kernels, ptxasAt(twice), GPUS.h100);
    expect(two.get(4)).toEqual({ kernel: 'k4_conv_wgrad_fused', registers: twice, residentBlocks: 2 });
    expect(wgradResidency(c.lowered.programs, kernels, ptxasAt(twice), GPUS.a100).size).toBe(0); // no sm_80 line

    const chosen = compile(new Map([...two].map(([layer, r]) => [layer, r.residentBlocks])));
    const lines = wgradSplitsReport(chosen.lowered.programs, { gpu: 'h100', residentBlocks: new Map([[1, 2], [4, 2]]) }, chosen.cuda!.kernels, ptxasAt(twice));
    expect(lines[0]).toMatch(/^Weight-gradient splits, chosen for h100 /);
    expect(lines[1]).toBe(`  k4_conv_wgrad_fused 4 splits: R 2 (sm_90 ${twice} registers), 144 blocks in 1 wave`);
    expect(lines[2]).toBe(`  k1_conv_wgrad_fused 32 splits: R 2 (sm_90 ${twice} registers), 192 blocks in 1 wave`);
    // Without ptxas the count it assumed; a choice at another R than the last compile's (the switch off, or registers that moved) says so.
    const none = wgradSplitsReport(c.lowered.programs, { gpu: 'h100' }, c.cuda!.kernels, []);
    expect(none[1]).toBe('  k4_conv_wgrad_fused 3 splits: R 1 assumed (no ptxas report), 108 blocks in 1 wave');
    const moved = wgradSplitsReport(c.lowered.programs, { gpu: 'h100' }, c.cuda!.kernels, ptxasAt(twice));
    expect(moved[1]).toBe(`  k4_conv_wgrad_fused 3 splits: R 2 (sm_90 ${twice} registers), 108 blocks in 1 wave; chosen at R 1`);
  });
});

// compile-at-residency.ts with nvcc's report stood in for: each compile's ptxas lines at `registers`, the compiles counted.
const atResidency = (spec: string, registers: number, ablations: Ablations = {}) => {
  const m = compileSpec(spec, 'residency.model', { device: 'emu' }).model!;
  const sources: string[] = [];
  const built = compileAtResidency(m, { target: 'emu', maxBatch: BATCH, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', gpu: 'h100', ablations }, (source) => {
    sources.push(source.text);
    return { available: true, kernels: ptxasAt(registers) };
  });
  return { built, sources, splits: wgradSplits(built.compiled) };
};
const bounds = (cu: string) => [...cu.matchAll(/__launch_bounds__\(([\d, ]+)\) (k\d+_conv_wgrad_fused)\(/g)].map((b) => `${b[2]} ${b[1]}`).sort();
// 16 → 32 → 64 channels: 1 and 2 tiles, at most 16 and 4 splits, fewer blocks than 132 SMs at any R: the most splits whatever R is.
const SMALL = twoConvs('small', 16, 32, 64);

describe('the second compile at ptxas\'s resident blocks (compiler/compile-at-residency.ts)', () => {
  it('an R that changes a choice compiles again, each weight gradient launch-bounded at the R its splits were chosen at', () => {
    const twice = Math.floor(65536 / (2 * 256) / 8) * 8; // 2 blocks a SM of 256 threads, as above
    const r = atResidency(SPEC, twice);
    expect(r.sources.length).toBe(2);
    expect(r.splits).toEqual({ k4_conv_wgrad_fused: 4, k1_conv_wgrad_fused: 32 });
    expect(bounds(r.sources[0])).toEqual(['k1_conv_wgrad_fused 256', 'k4_conv_wgrad_fused 256']);
    expect(bounds(r.sources[1])).toEqual(['k1_conv_wgrad_fused 256, 2', 'k4_conv_wgrad_fused 256, 2']);
    expect(bounds(atResidency(SPEC, twice, { wgradResidencyBounds: false }).sources[1])).toEqual(bounds(r.sources[0]));
  });

  it('an R that changes no split count or tile keeps the first compile (one nvcc call), unless wgradSkipSameChoice is off', () => {
    const r = atResidency(SMALL, 64);
    expect([...r.built.wgradResidentBlocks!.values()].every((blocks) => blocks > 1)).toBe(true);
    expect(r.sources.length).toBe(1);
    expect(r.built.compiled.cuda!.source.text).toBe(r.sources[0]);
    const again = atResidency(SMALL, 64, { wgradSkipSameChoice: false });
    expect(again.sources.length).toBe(2);
    expect(again.splits).toEqual(r.splits);
    // The same kernels but for the launch bounds the second compile adds.
    expect(again.sources[1].replace(/__launch_bounds__\((\d+), \d+\)/g, '__launch_bounds__($1)')).toBe(r.sources[0]);
  });
});

const FULL = process.env.NINCC_TEST_FULL === '1';
const nvcc = findNvcc().nvcc !== undefined;
if (!FULL || !nvcc) console.warn(`test/wgrad-splits-residency.test.ts: the emu build with nvcc runs with NINCC_TEST_FULL=1 where nvcc exists (${FULL ? 'no nvcc here' : 'not set'})`);

// A 128-thread weight gradient (256→48 3×3: 18 tiles, up to 8 splits at batch 32 on 8×8): two blocks of 128
// threads fit a SM at any register count ptxas may give, so its count is chosen again. At 1 a SM 7 splits (126 blocks,
// one wave of ⌈64/7⌉ = 10 slices) beat 8 (144: 2 waves of 8 = 16); at 2 or more, 8 are one wave of 8.
const SPEC_128 = twoConvs('residency128', 256, 48, 512);

describe.runIf(FULL && nvcc)('the built artifact (NINCC_TEST_FULL=1, nvcc)', () => {
  it("report.txt lists each weight gradient's splits at ptxas's R: 8 for the 128-thread one, 7 with the switch off; a rebuild makes the same kernels", () => {
    const root = mkdtempSync(join(tmpdir(), 'nincc-residency-'));
    try {
      const r = compileSpec(SPEC_128, 'residency128.model', { device: 'emu' });
      const build = (dir: string, ablations = {}) =>
        buildArtifact(r.model!, SPEC_128, { outDir: join(root, dir), target: 'emu', maxBatch: BATCH, precision: 'bf16', gpu: 'h100', ablations });
      const k1 = (dir: string) => readFileSync(join(root, dir, 'report.txt'), 'utf8').split('\n').find((l) => /^ {2}k1_conv_wgrad_fused \d+ splits/.test(l));
      build('on');
      build('off', { wgradSplitsAtResidency: false });
      expect(k1('on')).toMatch(/^ {2}k1_conv_wgrad_fused 8 splits: R [2-9] \(sm_90 \d+ registers\), 144 blocks in 1 wave$/);
      expect(k1('off')).toMatch(/^ {2}k1_conv_wgrad_fused 7 splits: R [2-9] \(sm_90 \d+ registers\), 126 blocks in 1 wave; chosen at R 1$/);
      build('again');
      expect(readFileSync(join(root, 'again', 'kernels.cu'), 'utf8')).toBe(readFileSync(join(root, 'on', 'kernels.cu'), 'utf8'));
      expect(existsSync(join(root, 'again', 'kernels.fatbin'))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 1_800_000);
});
