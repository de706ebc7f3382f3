// A tap-major k×k data gradient's reduction split over K's 32-channel groups (compiler/backends/cuda/conv-mma-dgrad-splits.ts,
// ablation dgradTapSplits) against the unsplit kernel. The split sums its groups' partials in split order, another order
// than one block's loop, so dX is not bitwise the old; on emu the gradients the data gradient does not reach are bitwise
// the old build's, those it reaches (the layers before it) agree with it to the rounding of dX to bf16, and a second step
// is bitwise the first (deterministic). The spec: a 3×3 of 32 → 160 channels (5 groups: 3 splits of 1, 2 and 2 groups)
// on odd 9×9 planes and on NIN's 7×7, padded, behind a 1×1 whose pending BN gives the data gradient its statistics
// epilogue, a batch of 3 on grids for 4 (partial tiles). CI checks the choice and the compiled kernels (NIN's included; no build, a few s); the emu
// comparison runs with NINCC_TEST_FULL=1. The splits' sum read by the epilogue (ablation dgradSumInEpilogue) is the same sum in
// the same order: on a residual block (a split data gradient adding another reader's gradient, resnet-18's k47/k64, and one
// with the statistics epilogue) bitwise the sum-before-the-epilogue build; resnet-18's k47/k64 are pinned to that form (off,
// ptxas spills them at 255 registers on sm_80 and sm_90: bench/RESULTS.md i15s).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { chooseDgradSplits } from '../compiler/backends/cuda/conv-mma-dgrad-splits.js';
import type { Model } from '../runtime/model.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectReorderedVariants, expectSameVariants } from './reference/same-variants.js';

const CLASSES = 3;
/** The chain on `side`×`side` planes: 9×9 (odd rows off the 8-position grid) and NIN's last block's 7×7. */
const specOn = (side: number) => `model dgrad_splits {
  input 16x${side}x${side}
  conv(16, 32, 1, 1, 1, 1, 0, 0)  bn(32)  relu
  conv(32, 160, 3, 3, 1, 1, 1, 1)  bn(160)  relu
  conv(160, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  view(-1)  linear(${16 * side * side}, ${CLASSES})  logsoftmax
}`;
const SPEC = specOn(9);
const WORDS = "K's channel groups in 3 splits (gridDim.z)";
const ON = {} as const;
const OFF = { dgradTapSplits: false } as const;
/** The parameters the 3×3's data gradient reaches: the 1×1 and BN before it. */
const REACHED = ['conv1.weight', 'conv1.bias', 'bn2.weight', 'bn2.bias'];

/** A basic residual block behind a 1×1 + BN on 9×9 planes: its 3×3s' data gradients split, the first one's epilogue adding the identity's gradient to fp32 dx (resnet-18's k47/k64), the second's the input BN's statistics. */
const RESIDUAL = `model dgrad_sum {
  input 16x9x9
  conv(16, 160, 1, 1, 1, 1, 0, 0):noBias()  bn(160)  relu
  residual {
    branch { conv(160, 160, 3, 3, 1, 1, 1, 1):noBias()  bn(160)  relu  conv(160, 160, 3, 3, 1, 1, 1, 1):noBias()  bn(160) }
    branch { identity }
  }
  relu
  view(-1)  linear(${160 * 81}, ${CLASSES})  logsoftmax
}`;
const SUM_BEFORE = { dgradSumInEpilogue: false } as const;
/** The epilogue's read of an accumulator's splits' sum (3 splits of a 128×32 tile's 4096 words), and the sum before the epilogue. */
const SUM_READ = 'const float d = nincc::ldcg(part_at) + nincc::ldcg(part_at + 4096) + nincc::ldcg(part_at + 8192);';
const SUM_INTO_ACC = 'acc[mt][nt][e] = nincc::ldcg(at) + nincc::ldcg(at + 4096) + nincc::ldcg(at + 8192);';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-dgrad-splits.test.ts: the emu builds and comparisons run with NINCC_TEST_FULL=1; CI checks the choice and the compiled kernels');

const kernel = (c: Compiled, name: string) => (c.cuda?.kernels ?? []).find((k) => k.name === name)!;
const bodies = (x: Compiled) => new Map((x.cuda?.kernels ?? []).map((k) => [k.name, k.body.join('\n')]));

describe('the data gradient in splits (choice and compiled kernels, no build)', () => {
  it('the choice: the fewest splits of least waves × groups a block, up to 4 (NIN\'s k31: 147 tiles at 2 a SM on 132 SMs → 3)', () => {
    expect(chooseDgradSplits({ tiles: 147, area: 128 * 128, groups: 32 }, 132)).toBe(3);
    expect(chooseDgradSplits({ tiles: 784, area: 128 * 96, groups: 8 }, 132)).toBe(1); // k11's: 3 waves already, nothing gained
    expect(chooseDgradSplits({ tiles: 2, area: 128 * 32, groups: 5 }, 132)).toBe(3);
  });

  it('for an H100, the 3×3 data gradient splits its 5 groups in 3 and sums them in its last split block; off, and without --gpu, as before, and only it changes', () => {
    const on = compileEmuVariant(SPEC, 'dgrad_splits.model', ON, 'bf16', 'h100'), off = compileEmuVariant(SPEC, 'dgrad_splits.model', OFF, 'bf16', 'h100');
    const k4 = kernel(on, 'k4_conv_dgrad_fused');
    expect(k4.fused).toContain(WORDS);
    expect(k4.launch.grid[2]).toBe(3);
    const body = k4.body.join('\n');
    expect(body).toContain('const int k_lo = 5 * split / 3 * 288, k_hi = 5 * (split + 1) / 3 * 288;');
    expect(body).toContain('for (int k0 = k_lo, it = 0; k0 < k_hi; k0 += 32, ++it) {');
    expect(body).toContain('if (bs[0].x == 0) return;');
    expect(body).toContain('dz_sum');  // the input BN's statistics epilogue runs on the sum
    const before = kernel(off, 'k4_conv_dgrad_fused');
    expect(before.fused).not.toContain('splits (gridDim.z)');
    expect(before.launch.grid[2]).toBe(1);
    const a = bodies(on), b = bodies(off);
    expect([...a].filter(([name, text]) => text !== b.get(name)).map(([name]) => name)).toEqual(['k4_conv_dgrad_fused']);
    const noGpu = compileEmuVariant(SPEC, 'dgrad_splits.model', ON, 'bf16');
    expect(kernel(noGpu, 'k4_conv_dgrad_fused').body.join('\n')).toBe(before.body.join('\n'));
  });

  it("NIN at batch 128 on an H100: k31's data gradient takes 3 splits (49 × 3 tiles), k21's 2, no other", () => {
    const r = compileSpec(readFileSync('models/nin.model', 'utf8'), 'nin.model', { device: 'emu' });
    const nin = compileModel(r.model!, { target: 'emu', maxBatch: 128, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', gpu: 'h100' });
    const taking = (nin.cuda?.kernels ?? []).filter((k) => k.fused?.includes('splits (gridDim.z)')).map((k) => [k.name, k.launch.grid.join('×')]);
    expect(taking).toEqual([['k31_conv_dgrad_fused', '49×3×3'], ['k21_conv_dgrad_fused', '196×2×2']]);
  });
});

describe("the splits' sum read by the epilogue (dgradSumInEpilogue; compiled kernels, no build)", () => {
  it('on a residual block for an H100: both split data gradients (one adding the identity\'s gradient, one with the statistics epilogue) read each accumulator\'s partials in the epilogue; off, sum them into acc before it; only they change', () => {
    const on = compileEmuVariant(RESIDUAL, 'dgrad_sum.model', ON, 'bf16', 'h100'), off = compileEmuVariant(RESIDUAL, 'dgrad_sum.model', SUM_BEFORE, 'bf16', 'h100');
    for (const name of ['k4_conv_dgrad_fused', 'k7_conv_dgrad_fused']) {
      expect(kernel(on, name).launch.grid[2], name).toBe(3);
      expect(kernel(on, name).body.join('\n')).toContain(SUM_READ);
      expect(kernel(on, name).body.join('\n')).not.toContain('acc[mt][nt][e] = nincc::ldcg');
      expect(kernel(off, name).body.join('\n')).toContain(SUM_INTO_ACC);
      expect(kernel(off, name).body.join('\n')).not.toContain('part_at');
    }
    expect(kernel(on, 'k4_conv_dgrad_fused').fused).toContain("another reader's gradient");
    expect(kernel(on, 'k7_conv_dgrad_fused').fused).toContain('Σdz');
    expect(changedKernels(on, off)).toEqual(['k7_conv_dgrad_fused', 'k4_conv_dgrad_fused']);
  });

  // The grids are the merged tree's: the bf16 add backward (i17C) pads an add reader's images to whole 32-row tiles, which
  // moved k47 from 196×2×2 to 224×2×4 and left k64 unsplit; k30 is the other split reader of another reader's gradient.
  it('resnet-18 at batch 128 on an H100: k47 and k30 (fp32 dx + the identity\'s gradient) take 4 splits, their sum read by the epilogue', () => {
    const r = compileSpec(readFileSync('models/resnet-18.model', 'utf8'), 'resnet-18.model', { device: 'emu' });
    const resnet = compileModel(r.model!, { target: 'emu', maxBatch: 128, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', gpu: 'h100' });
    for (const [name, grid, sum] of [
      ['k47_conv_dgrad_fused', '224×2×4', 'const float d = nincc::ldcg(part_at) + nincc::ldcg(part_at + 16384) + nincc::ldcg(part_at + 32768) + nincc::ldcg(part_at + 49152);'],
      ['k30_conv_dgrad_fused', '800×1×4', 'const float d = nincc::ldcg(part_at) + nincc::ldcg(part_at + 16384) + nincc::ldcg(part_at + 32768) + nincc::ldcg(part_at + 49152);'],
    ]) {
      const k = kernel(resnet, name);
      expect(k.launch.grid.join('×'), name).toBe(grid);
      expect(k.fused).toContain("another reader's gradient");
      expect(k.body.join('\n')).toContain(sum);
      expect(k.body.join('\n')).not.toContain('acc[mt][nt][e] = nincc::ldcg');
    }
  });
});

describe.runIf(FULL)('the data gradient in splits on emu (NINCC_TEST_FULL=1)', () => {
  it("the splits' sum read by the epilogue: a residual block's training and inference bitwise the sum-before-the-epilogue build's", async () => {
    await expectSameVariants({ spec: RESIDUAL, file: 'dgrad_sum.model', input: [16, 9, 9], classes: CLASSES, on: ON, off: SUM_BEFORE, gpu: 'h100', live: 'conv1.weight' }, 733);
  }, 900_000);

  it.each([9, 7])("planes %i wide: one step: the gradients it does not reach bitwise the unsplit build's, those it reaches within dX's bf16 rounding of them, and a second step bitwise the first", async (side) => {
    // dX sums the same exact bf16 products in fp32 in another order (a few 2^-24 of its magnitude), then is rounded to
    // bf16 (2^-9 relative): an element whose fp32 sums straddle a rounding boundary differs by one bf16 ulp. The
    // gradients before it sum such elements, so they differ by at most about 2^-8 of their largest magnitude;
    // a split left out or added twice moves them by a third of it or more. conv1's bias feeds a BN: its gradient
    // Σ dY' cancels to 0 in exact arithmetic, what is left is rounding, so it takes its weight's scale (the same dY').
    const bound = (name: string, off: Model) => Math.max(...Array.from(off.getGradient(name === 'conv1.bias' ? 'conv1.weight' : name)).map(Math.abs)) * 2 ** -7;
    await expectReorderedVariants({ spec: specOn(side), file: 'dgrad_splits.model', input: [16, side, side], classes: CLASSES, on: ON, off: OFF, gpu: 'h100', reordered: REACHED, bound }, 731);
  }, 900_000);
});
