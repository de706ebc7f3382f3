// A build for a GPU (`gpu`: compiler/lower/wgrad-splits-waves.ts) lowers its folded bf16 weight gradients to the
// split counts of fewest waves × slices: at a batch of 4 on an H100 every grid here is under a wave, so only each
// block's slices count. The sums then run in another order than the default build's, so the gradients differ in
// their last bits: they must agree within an fp32 reassociation bound, and each build stays bitwise repeatable.
// CI checks the compiled programs; the two emu builds run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { wgradSplitsReport } from '../compiler/report/wgrad-splits-report.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';

const INPUT = [3, 8, 6] as const;
const CLASSES = 4;
// conv1 3→8 3×3 pad 1 (8×6: 4 images × 48 positions = 6 slices of 32), conv4 8→5 3×3 stride 2 pad 1 (4×3: 48
// positions, 1.5 slices). Default splits: 4 each (the batch caps conv1's ⌊4·360/216⌋ = 6). On an H100, one tile a
// split: conv1 ⌈6/s⌉ = 6, 3, 2, 2 slices → 3 splits; conv4 ⌈1.5/s⌉ = 2, 1, 1, 1 → 2.
const SPEC = `model splits_gpu {
  input ${INPUT.join('x')}
  conv(3, 8, 3, 3, 1, 1, 1, 1)  bn(8)  relu
  conv(8, 5, 3, 3, 2, 2, 1, 1)
  view(-1)  linear(${5 * 4 * 3}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-wgrad-splits-gpu.test.ts: the two emu builds and their gradients run with NINCC_TEST_FULL=1; CI checks the compiled programs');

const wgradSplits = (c: Compiled) =>
  Object.fromEntries(c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.flatMap((s) => (s.op === 'conv_wgrad_fused' ? [[s.kernel, s.consts.splits]] : [])));

describe('weight-gradient splits for a GPU (compiled, no build)', () => {
  it('h100: conv1 in 3 splits and conv4 in 2; no GPU: 4 and 4; fp32 (no folded sum) keeps 4 and 4', () => {
    expect(wgradSplits(compileEmuVariant(SPEC, 'splits_gpu.model'))).toEqual({ k4_conv_wgrad_fused: 4, k1_conv_wgrad_fused: 4 });
    expect(wgradSplits(compileEmuVariant(SPEC, 'splits_gpu.model', {}, 'bf16', 'h100'))).toEqual({ k4_conv_wgrad_fused: 2, k1_conv_wgrad_fused: 3 });
    expect(wgradSplits(compileEmuVariant(SPEC, 'splits_gpu.model', {}, 'fp32', 'h100'))).toEqual({ k4_conv_wgrad_fused: 4, k1_conv_wgrad_fused: 4 });
  });
  it("report.txt's lines name the GPU and each weight gradient's count", () => {
    const h100 = compileEmuVariant(SPEC, 'splits_gpu.model', {}, 'bf16', 'h100');
    const lines = wgradSplitsReport(h100.lowered.programs, { gpu: 'h100' }, h100.cuda!.kernels);
    expect(lines[0]).toMatch(/^Weight-gradient splits, chosen for h100 /);
    expect(lines.slice(1, 3)).toEqual(['  k4_conv_wgrad_fused 2 splits: R 1 assumed (no ptxas report), 2 blocks in 1 wave', '  k1_conv_wgrad_fused 3 splits: R 1 assumed (no ptxas report), 3 blocks in 1 wave']);
    expect(wgradSplitsReport(compileEmuVariant(SPEC, 'splits_gpu.model').lowered.programs, undefined)[1]).toBe('  k4_conv_wgrad_fused 4, k1_conv_wgrad_fused 4');
  });
});

describe.runIf(FULL)('weight-gradient splits for a GPU on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<'plain' | 'h100'> | undefined;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'splits_gpu.model', { plain: {}, h100: {} }, { h100: 'h100' });
  }, 600_000);
  afterAll(() => builds?.remove());

  it("a step's gradients and two SGD steps' weights within fp32 reassociation of the default build's; twice the same bits", async () => {
    const n = 3;
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(61));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 2) % CLASSES);
    const [plain, h100, again] = await Promise.all([builds!.dirs.plain, builds!.dirs.h100, builds!.dirs.h100].map((d) => load(d, { device: 'emu', seed: 41 })));
    try {
      randomizeAffine(plain, rng(63));
      for (const t of plain.tensorNames()) for (const m of [h100, again]) m.setTensor(t, plain.getTensor(t));
      await Promise.all([plain, h100, again].map((m) => m.forwardBackward(images, labels)));
      // Each weight gradient sums the same bf16 products in fp32 (the split's share, then the splits in order): only
      // the grouping moves, so each element is off by a few ulps of the largest gradient of its tensor, 1e-5 of it,
      // or, where the sum cancels to noise (conv1's bias before its BN: |dβ| ~ 5e-4, off by 7.5e-9 in a first
      // run), by 5e-8 absolute.
      const close = (a: Float32Array, b: Float32Array, what: string) => {
        const bound = 1e-5 * Math.max(...Array.from(a, Math.abs)) + 5e-8;
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i]), `${what}[${i}]`).toBeLessThanOrEqual(bound);
      };
      const names = plain.info.params.map((t) => t.name);
      for (const t of names) close(plain.getGradient(t), h100.getGradient(t), `${t} gradient`);
      for (const t of names) expect(Array.from(again.getGradient(t)), t).toEqual(Array.from(h100.getGradient(t)));
      expect(names.some((t) => Array.from(plain.getGradient(t)).some((v, i) => v !== h100.getGradient(t)[i])), 'some bit moves: the split counts differ').toBe(true);
      for (let step = 0; step < 2; ++step) {
        await Promise.all([plain, h100, again].map((m) => m.trainStep(images, labels, { lr: 0.05, momentum: 0.9 })));
        for (const t of names) close(plain.getTensor(t), h100.getTensor(t), `${t} after step ${step + 1}`);
        for (const t of names) expect(Array.from(again.getTensor(t)), `${t} after step ${step + 1}`).toEqual(Array.from(h100.getTensor(t)));
      }
    } finally {
      await Promise.all([plain, h100, again].map((m) => m.dispose()));
    }
  }, 600_000);
});
