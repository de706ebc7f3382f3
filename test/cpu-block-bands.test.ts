// The cpu's block regions (compiler/schedule/cpu-block-bands.ts, issue #19): which blocks of nin-fashion and NIN take
// one (plan steps, generated code, report.txt), and that a built nin-fashion gives the same bits with and without them
// (the ablation cpuBlockBands) on 2 threads at batch 1, 3 and 16 (two nin-fashion builds: NINCC_TEST_FULL=1 only).
// The kernel's numerics against float64 at 1, 2 and all threads, and its bits against the four calls it replaces:
// runtime/kernels-test/test_block_band.cc.
import './reference/two-threads.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { blockBandReport, chooseBlockBands, sharedRowsFraction } from '../compiler/schedule/cpu-block-bands.js';
import { removeBuilds } from './reference/artifacts.js';
import { expectNinFashionSameBits } from './reference/nin-fashion-switch-bits.js';
import { root } from './cli-run.js';
import { kernelSource } from './cpu-nin-compiled.js';

function compiled(model: string, ablations: Ablations = {}) {
  const file = join(root, `models/${model}.model`);
  return compileModel(compileSpec(readFileSync(file, 'utf8'), file).model!, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [], ablations });
}
const blockKernels = (c: ReturnType<typeof compiled>) => c.plan.programs.infer.steps.filter((s) => s.kernel.endsWith('_block_band')).map((s) => s.kernel);
const conv = (C: number, HW: number, K: number, R: number) => ({ C, H: HW, W: HW, K, R, S: R, sh: 1, sw: 1, ph: (R - 1) / 2, pw: (R - 1) / 2, maxBatch: 16 });
const pool = (C: number, HW: number) => ({ C, H: HW, W: HW, P: Math.floor((HW - 1) / 2) + 1, R: 3, sh: 2, ph: 1 });

describe('chooseBlockBands', () => {
  it('takes blocks whose middle activations fit L2 at batch 1 and whose 2 bands share few conv rows', () => {
    // nin-fashion's first block: 28 rows, the second band's windows read row 13 too (1 of 28); the second's on 14 rows
    // (7 pool rows as 4 + 3) read rows 0-7 and 7-13, widened to Winograd F(2x2)'s 2-row tiles: 0-7 and 6-13 (2 of 14).
    expect(sharedRowsFraction(pool(32, 28))).toBeCloseTo(1 / 28, 12);
    expect(sharedRowsFraction(pool(64, 14))).toBeCloseTo(1 / 14, 12);
    expect(sharedRowsFraction(pool(64, 14), 2)).toBeCloseTo(2 / 14, 12);
    expect(chooseBlockBands(conv(1, 28, 32, 5), pool(32, 28), true).why).toBe("its middle activations at batch 1 (98 KiB) fit a core's L2 (512 KiB) and 2 bands recompute 3.6 % of its conv rows (at most 20.0 %)");
    expect(chooseBlockBands(conv(32, 14, 64, 3), pool(64, 14), true).why).toMatch(/and 2 bands recompute 14\.3 % of its conv rows/);
  });
  it('leaves blocks past L2 (NIN\'s first two), many shared rows, ceil-mode pools, and the ablation', () => {
    expect(chooseBlockBands(conv(96, 28, 256, 5), pool(256, 28), true).why).toMatch(/^its middle activations at batch 1 \(784 KiB\) outgrow a core's L2/);
    // A 4-row plane (2 pool rows): the bands' windows read rows 0-1 and 1-3 (a quarter more).
    expect(chooseBlockBands(conv(8, 4, 8, 1), pool(8, 4), true).why).toBe('2 bands recompute 25.0 % of its conv rows, over 20.0 %');
    expect(chooseBlockBands(conv(8, 28, 8, 3), { ...pool(8, 28), ceil: true }, true).fuse).toBe(false);
    expect(chooseBlockBands(conv(1, 28, 32, 5), pool(32, 28), false).why).toBe('the ablation cpuBlockBands is off');
    // No pool (a 1x1 window of stride 1): nin-fashion's third block.
    expect(chooseBlockBands(conv(64, 7, 128, 3), { C: 128, H: 7, W: 7, P: 7, R: 1, sh: 1, ph: 0 }, true).why).toMatch(/^it has no max pool: nin-fashion's third block in bands measured slower/);
  });
});

describe('the block regions of a cpu build', () => {
  it('nin-fashion: its first two blocks, each one kernel calling its conv on a band, the pair region and the pool; NIN its third', () => {
    const nf = compiled('nin-fashion');
    expect(blockKernels(nf)).toEqual(['k1_block_band', 'k11_block_band']);
    const kernels = nf.plan.programs.infer.steps.map((s) => s.kernel);
    for (const gone of ['k1_conv_infer', 'k4_pointwise_pair', 'k10_maxpool_fwd_infer', 'k11_conv_infer', 'k14_pointwise_pair', 'k20_maxpool_fwd_infer']) expect(kernels).not.toContain(gone);
    // The third block has no max pool (the global average pool reads its pair): measured slower in bands, left as its kernels.
    expect(kernels).toContain('k21_conv_infer');
    expect(kernels).toContain('k24_pointwise_pair');
    // The 5x5 on one channel: the direct conv, whole rows (row_tile 1); the 3x3: Winograd F(2x2) on bands of whole 2-row tiles, F(4x4) from batch 2.
    expect(nf.cpu.text).toContain('block_band_forward(shape, pool, /*row_tile=*/1, /*x=*/arg<const float>(a, 0), /*y=*/arg<float>(a, 7), conv, pair, max_pool);');
    expect(nf.cpu.text).toMatch(
      /void k11_block_band\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1\};\n  const Pool2dShape pool\{a->n, 64, 14, 14, 3, 3, 2, 2, 1, 1\};\n  const auto conv = \[&\]\(const Conv2dShape& shape, const float\* x, float\* y\) \{\n    if \(shape\.batch < 2\) conv2d_forward_winograd<WinogradKind::F2x3>\(shape, x, \/\*w0=\*\/arg<const float>\(a, 1\), \/\*b0=\*\/arg<const float>\(a, 2\), y, true\);\n    else conv2d_forward_winograd<WinogradKind::F4x3>\(shape, x, \/\*w0=\*\/arg<const float>\(a, 1\) \+ 36864, [^\n]*\n  \};\n  const auto pair = [^\n]*pointwise_pair_forward\(shape, x, \/\*w1=\*\/[^\n]*\n  const auto max_pool = [^\n]*maxpool_forward\(shape, x, y, nullptr\); \};\n  block_band_forward\(shape, pool, \/\*row_tile=\*\/2, /,
    );
    const report = blockBandReport(nf.cpuPrograms);
    expect(report[0]).toMatch(/^CPU inference block regions/);
    expect(report[2]).toMatch(/^ {2}k11_block_band: a 3x3 conv, two 1x1 convs and a max pool in bands of output rows, .*; its middle activations at batch 1 \(49 KiB\) fit a core's L2 \(512 KiB\) and 2 bands recompute 14\.3 % of its conv rows/);
    // Still every step per image: the batch split of batch 16.
    expect(nf.plan.programs.infer.splitBatch).toBe(true);
    expect(blockKernels(compiled('nin-fashion', { cpuBlockBands: false }))).toEqual([]);
    // NIN: only the third block (384 channels on 14x14, 294 KiB); its 1x1s past the pair region's size call their convs one after the other.
    const nin = compiled('nin');
    expect(blockKernels(nin)).toEqual(['k21_block_band']);
    expect(nin.cpu.text).toContain('const auto pair = [&](const Conv2dShape& shape, const float* x, float* middle, float* y) { first(shape, x, middle); second(shape, middle, y); };');
    // The layers' own switches reach the region's calls: the max pool's (cpuPlainMaxPool, poolRowPrefetch), the convs' (narrowTails).
    const ablated = compiled('nin', { cpuPlainMaxPool: false, poolRowPrefetch: false, narrowTails: false });
    const body = kernelSource(ablated.cpu.text, 'k21_block_band');
    expect(body).toContain('maxpool_forward(shape, x, y, nullptr, PoolOutput{}, /*plain_max=*/false, /*prefetch_rows=*/false); };');
    expect(body.match(/, true, ConvOutput\{\}, \/\*narrow_tails=\*\/false\);/g)).toHaveLength(2);
  });
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/cpu-block-bands.test.ts: the A/B of two nin-fashion builds is skipped (slow); NINCC_TEST_FULL=1 runs it');

describe('a built nin-fashion with and without the block regions', () => {
  afterAll(() => removeBuilds());
  it.runIf(FULL)('gives the same bits at batch 1, 3 and 16 on 2 threads (NINCC_TEST_FULL=1)', async () => {
    await expectNinFashionSameBits('nf-block', { cpuBlockBands: false });
  }, 900_000);
});
