// The k×k weight gradients' A fragments by ldmatrix.trans straight from a channels-innermost input halo, rows tap-major
// within octets of channels, both operands in the positions' own k order (compiler/backends/cuda/conv-mma-wgrad-taps-halo.ts,
// `wgradTapsHalo`), against the A tile staged from the channel-major halo (the switch off). Another summation order for
// the 3×3's weight gradient only: on emu every other gradient is bitwise the old build's, that one agrees to fp32
// summation error, and a second step of the new build is bitwise its first. CI checks the layout search, the choice and
// the compiled kernels (NIN's k21 and k31 included; no build, a few s); the emu comparisons (7×7 and 5×5 planes, padding,
// a pending BN/ReLU on the input, partial row tiles, a batch of 3 on grids for 4) run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { chooseWgradTaps, wgradTapsConflicts } from '../compiler/backends/cuda/conv-mma-wgrad-taps-halo.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectReorderedVariants, fractionOfLargest } from './reference/same-variants.js';

const CLASSES = 3;
const spec = (h: number, w: number) => `model wgrad_taps {
  input 8x${h}x${w}
  conv(8, 24, 1, 1, 1, 1, 0, 0)  bn(24)  relu
  conv(24, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  view(-1)  linear(${16 * h * w}, ${CLASSES})  logsoftmax
}`;
const WORDS = "A's fragments by ldmatrix.trans from a channels-innermost input halo";
const OFF = { wgradTapsHalo: false } as const;
/** The 3×3's weight gradient, which the new form sums in another order (its bias gradient is B's, as before). */
const REORDERED = 'conv4.weight';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-taps-halo.test.ts: the emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the layout and the compiled kernels');

const taking = (c: Compiled) => (c.cuda?.kernels ?? []).filter((k) => k.fused?.includes(WORDS)).map((k) => k.name);
const shape = (C: number, K: number, HW: number) => ({ C, K, H: HW, W: HW, P: HW, Q: HW, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 });
const TILE = { bm: 256, bn: 128, warpsM: 4, warpsN: 2, nt: 8, mt: 4 };

describe('the tap-major weight-gradient halo (layout and compiled kernels, no build)', () => {
  it("finds a conflict-free layout for NIN's 7×7 and 14×14 3×3s in the positions' order; none exists in the B tile's k order on 7×7", () => {
    for (const hw of [7, 14, 5]) {
      const t = chooseWgradTaps(shape(384, 1024, hw), TILE, 40 * 1024);
      expect(t, `${hw}×${hw}`).toBeDefined();
      expect(wgradTapsConflicts(shape(384, 1024, hw), t!.pitchW, t!.pitchImage, 0, 'natural')).toBe(0);
    }
    expect(chooseWgradTaps(shape(384, 1024, 7), TILE, 40 * 1024)).toMatchObject({ pitchW: 15, pitchImage: 137, octets: 5, positions: 128 });
    // K_OFFSET_ALONG_K's phases (j, j + 1, j + 8, …, j + 25): every row pitch and image gap mod 8, every XOR swizzle of bits 3–5
    // meets a conflict (each count stops at its first).
    for (let pitchW = 9; pitchW < 17; pitchW++)
      for (let gap = 0; gap < 8; gap++)
        for (let swizzle = 0; swizzle < 8; swizzle++) expect(wgradTapsConflicts(shape(384, 1024, 7), pitchW, 9 * pitchW + gap, swizzle, 'along', 1), `${pitchW}, ${gap}, ${swizzle}`).toBeGreaterThan(0);
  });

  it.runIf(FULL)("the B tile's k order on 7×7: at least 896 extra wavefronts in 12,544 phases, whatever the layout (NINCC_TEST_FULL=1: about a minute)", () => {
    let least = Infinity;
    for (let pitchW = 9; pitchW < 17; pitchW++)
      for (let gap = 0; gap < 8; gap++)
        for (let swizzle = 0; swizzle < 8; swizzle++) least = Math.min(least, wgradTapsConflicts(shape(384, 1024, 7), pitchW, 9 * pitchW + gap, swizzle, 'along'));
    expect(least).toBe(896); // of 49 starts × 4 phases × 64 offsets
  });

  it('the 5×5 3×3 weight gradient takes it (no A tile); off, it does not, and only it changes', () => {
    const on = compileEmuVariant(spec(5, 5), 'wgrad_taps.model'), off = compileEmuVariant(spec(5, 5), 'wgrad_taps.model', OFF);
    expect(taking(on)).toEqual(['k4_conv_wgrad_fused']);
    const body = (on.cuda?.kernels ?? []).find((k) => k.name === 'k4_conv_wgrad_fused')!.body.join('\n');
    expect(body).toContain('nincc::ldmatrix_trans<4>(frag_a[mt], &wtaps[');
    expect(body).not.toContain('NINCC_SHARED(int4, as,');
    expect(taking(off)).toEqual([]);
    expect(changedKernels(on, off)).toEqual(['k4_conv_wgrad_fused']);
  });

  it("NIN (H100): k21's and k31's weight gradients take it, no other", () => {
    const nin = compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model', {}, 'bf16', 'h100');
    expect(taking(nin)).toEqual(['k31_conv_wgrad_fused', 'k21_conv_wgrad_fused']);
  });
});

describe.runIf(FULL)('the tap-major weight-gradient halo on emu (NINCC_TEST_FULL=1)', () => {
  for (const hw of [7, 5]) {
    it(`8 → 24 → 128 (3×3) on ${hw}×${hw}: every other gradient bitwise the A tile's, the 3×3's weight gradient within fp32 summation error of it, a second step bitwise the first`, async () => {
      // Both sum the same exact bf16 products in fp32, in another order: a few 2^-24 each of the tensor's largest
      // magnitude; 2^-12 of it is far above that and far below a wrong pairing of A and B.
      const bound = fractionOfLargest(2 ** -12);
      await expectReorderedVariants({ spec: spec(hw, hw), file: 'wgrad_taps.model', input: [8, hw, hw], classes: CLASSES, on: {}, off: OFF, reordered: [REORDERED], bound }, 731 + hw);
    }, 900_000);
  }
});
