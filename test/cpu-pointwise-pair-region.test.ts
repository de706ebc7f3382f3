// The cpu's 1x1 pair regions (compiler/schedule/cpu-pointwise-pair-region.ts, issue #19): which of nin-fashion's
// and NIN's blocks take one (plan steps, generated code, report.txt), and that a built nin-fashion gives the same
// bits with and without them (the ablation cpuPairBands) on 2 threads at batch 1, 3 and 16 (two nin-fashion builds:
// NINCC_TEST_FULL=1 only; the kernel's bits against the two calls it replaces are checked always, in the kernel
// tests). Their numerics against
// float64 at 1, 2 and all threads: runtime/kernels-test/test_pointwise_pair.cc.
import './reference/two-threads.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { choosePairRegion, pairRegionReport } from '../compiler/schedule/cpu-pointwise-pair-region.js';
import { removeBuilds } from './reference/artifacts.js';
import { expectNinFashionSameBits } from './reference/nin-fashion-switch-bits.js';
import { root } from './cli-run.js';

const pointwise = (C: number, HW: number, K = C) => ({ C, H: HW, W: HW, K, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0, maxBatch: 16 });

function compiled(model: string, ablations: Ablations = {}) {
  const file = join(root, `models/${model}.model`);
  return compileModel(compileSpec(readFileSync(file, 'utf8'), file).model!, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [], ablations });
}
const regionKernels = (c: ReturnType<typeof compiled>) => c.plan.programs.infer.steps.filter((s) => s.kernel.endsWith('_pointwise_pair')).map((s) => s.kernel);

describe('choosePairRegion', () => {
  it('takes two 1x1 convs of one width, each under 1 Mi multiply-adds at batch 1', () => {
    expect(choosePairRegion(pointwise(32, 28), pointwise(32, 28), true).fuse).toBe(true);
    expect(choosePairRegion(pointwise(128, 7), pointwise(128, 7), true).fuse).toBe(true);
  });
  it('leaves convs that already split across the threads, wide ones, other shapes, and the ablation', () => {
    // NIN's 96 -> 96 on 55x55: 27 Mi multiply-adds.
    expect(choosePairRegion(pointwise(96, 55), pointwise(96, 55), true).why).toMatch(/already splits across the threads/);
    expect(choosePairRegion(pointwise(256, 2), pointwise(256, 2), true).why).toMatch(/over 192 channels/);
    expect(choosePairRegion(pointwise(32, 28, 16), pointwise(16, 28, 32), true).fuse).toBe(false);
    // nin-fashion's 32 -> 32 on 28x28 takes the GEMM from batch 21 (cpu-conv-algorithm.ts pointwiseGemmChoice).
    expect(choosePairRegion({ ...pointwise(32, 28), maxBatch: 32 }, { ...pointwise(32, 28), maxBatch: 32 }, true).why).toMatch(/takes the GEMM at some batch/);
    expect(choosePairRegion({ ...pointwise(32, 28), sh: 2, sw: 2 }, pointwise(32, 28), true).fuse).toBe(false);
    expect(choosePairRegion(pointwise(32, 28), pointwise(32, 28), false).why).toBe('the ablation cpuPairBands is off');
  });
});

describe('the regions of a cpu build', () => {
  it('nin-fashion: all three blocks\' pairs, one kernel each (the first two inside the block regions by default); NIN none; the ablation none', () => {
    // The block regions (schedule/cpu-block-bands.ts) call the first two pairs inside their kernels (render.ts blockBandBody).
    expect(regionKernels(compiled('nin-fashion'))).toEqual(['k24_pointwise_pair']);
    expect(compiled('nin-fashion').cpu.text.match(/ pointwise_pair_forward\(shape, x, /g)).toHaveLength(2);
    const nf = compiled('nin-fashion', { cpuBlockBands: false });
    expect(regionKernels(nf)).toEqual(['k4_pointwise_pair', 'k14_pointwise_pair', 'k24_pointwise_pair']);
    expect(nf.plan.programs.infer.steps.map((s) => s.kernel)).not.toContain('k7_conv_infer');
    expect(nf.cpu.text).toMatch(/pointwise_pair_forward\(Conv2dShape\{a->n, 64, 14, 14, 64, 1, 1, 1, 1, 0, 0\}, /);
    expect(pairRegionReport(nf.cpuPrograms)[1]).toMatch(/^ {2}k4_pointwise_pair: two 1x1 convs in bands of pixel tiles, .*; both convs \(0\.77 and 0\.77 Mi multiply-adds at batch 1\) are under the 1 Mi/);
    expect(nf.plan.programs.infer.splitBatch).toBe(true);
    expect(regionKernels(compiled('nin-fashion', { cpuPairBands: false, cpuBlockBands: false }))).toEqual([]);
    expect(regionKernels(compiled('nin'))).toEqual([]);
  });
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/cpu-pointwise-pair-region.test.ts: the A/B of two nin-fashion builds is skipped (slow); NINCC_TEST_FULL=1 runs it');

describe('a built nin-fashion with and without the regions', () => {
  afterAll(() => removeBuilds());
  it.runIf(FULL)('gives the same bits at batch 1, 3 and 16 on 2 threads (NINCC_TEST_FULL=1)', async () => {
    await expectNinFashionSameBits('nf-pair', { cpuPairBands: false });
  }, 600_000);
});
