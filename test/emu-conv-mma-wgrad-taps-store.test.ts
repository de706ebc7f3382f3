// The tap-major weight gradients' store step reading its band of partials in aligned 32-word chunks
// (compiler/backends/cuda/conv-mma-wgrad-taps-store.ts, `wgradTapsAlignedReads`) against the block's dW rows 32 at a time
// (the switch off): no bank conflict, bitwise the same results. CI (no build, a few s): the bank rule's count over every
// block of NIN's k31 and k21 (the old reads' 36,864 and 9,216 a split, as bench/logs/i15k-epilogue-conflicts.mjs counts
// them; the new 0) and the compiled kernels. NINCC_TEST_FULL=1: a 3×3 on 40 channels (blocks starting and ending inside
// octets) on emu, one step bitwise the old build's, and the profile's bank conflicts 0 against the old build's.
import { describe, expect, it } from 'vitest';
import { wgradTapsStoreConflicts } from '../compiler/backends/cuda/conv-mma-wgrad-taps-store.js';
import { describeSwitchOnEmu, expectSwitchText, ninKernelsWith, tapsLayerSpec } from './reference/same-step-dirs.js';

const CLASSES = 3;
const INPUT = [8, 7, 7] as const;
// 40 channels × 9 taps = 45 units: a 256-row block holds units 0–31 (octet 3's taps 0–4), the next 32–44 (its taps 5–8, octet 4).
const SPEC = tapsLayerSpec('wgrad_taps_store', 40, 7, CLASSES);
const OFF = { wgradTapsAlignedReads: false } as const;
const TILE = { bm: 256, bn: 128, warpsM: 4, warpsN: 2, nt: 8, mt: 4 }; // NIN's k31 and k21 (report.txt)
const ALIGNED = 'band_anchor(x & ~31)';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-taps-store.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the bank rule and the compiled kernels');

describe('the tap-major store step (bank rule and compiled kernels, no build)', () => {
  it("NIN's k31 and k21 (5 octets a block): the dW-order reads meet conflicts, the aligned chunks none, the band writes none either way", () => {
    const k31 = { C: 384, K: 1024, R: 3, S: 3 }, k21 = { C: 256, K: 384, R: 3, S: 3 };
    expect(wgradTapsStoreConflicts(k31, TILE, 5, 'dense')).toEqual({ writes: 0, reads: 36_864 });
    expect(wgradTapsStoreConflicts(k21, TILE, 5, 'dense')).toEqual({ writes: 0, reads: 9_216 }); // a split's (14 splits)
    expect(wgradTapsStoreConflicts(k31, TILE, 5, 'aligned')).toEqual({ writes: 0, reads: 0 });
    expect(wgradTapsStoreConflicts(k21, TILE, 5, 'aligned')).toEqual({ writes: 0, reads: 0 });
    expect(wgradTapsStoreConflicts({ C: 40, K: 128, R: 3, S: 3 }, TILE, 4, 'dense').reads).toBeGreaterThan(0); // the emu case below
    expect(wgradTapsStoreConflicts({ C: 40, K: 128, R: 3, S: 3 }, TILE, 4, 'aligned').reads).toBe(0);
  });

  it('the 40-channel 3×3 weight gradient reads aligned chunks; off, the dW-order rows, and only it changes', () => {
    expectSwitchText({ spec: SPEC, file: 'wgrad_taps_store.model', off: OFF, kernel: 'k4_conv_wgrad_fused' }, ALIGNED, 'crs = dw_row(min(q % 256');
  });

  it("NIN (H100): k31's and k21's weight gradients read aligned chunks", () => {
    expect(ninKernelsWith(ALIGNED)).toEqual(['k31_conv_wgrad_fused', 'k21_conv_wgrad_fused']);
  });
});

if (FULL) {
  describeSwitchOnEmu('the tap-major store step on emu (NINCC_TEST_FULL=1)', { spec: SPEC, file: 'wgrad_taps_store.model', off: OFF, input: INPUT, classes: CLASSES, seed: 1531, kernel: 'k4_conv_wgrad_fused' },
    "one training step at batch 3 (grids for 4): every gradient bitwise the dW-order reads'",
    'the profile at batch 3: the aligned reads meet no bank conflict, the dW-order ones some',
    (on, off) => {
      expect(on.shared_bank_conflicts).toBe(0);
      expect(off.shared_bank_conflicts).toBeGreaterThan(0);
    });
}
