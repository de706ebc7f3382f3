// The tap-major weight gradients' halo staged along the window's input rows (compiler/backends/cuda/conv-mma-wgrad-taps-halo.ts,
// `wgradTapsRowLoads`: every unit zeroed, then the real positions a lane, image-major) against a unit a lane over the
// padded window (the switch off): the same halo, so bitwise the same results, from fewer load sectors. CI (no build, a
// few s): the compiled kernels. NINCC_TEST_FULL=1: a 3×3 on 7×7 (padding, a pending BN/ReLU, 40 channels: a spare
// octet's lanes) on emu, one step bitwise the old build's, and the profile: fewer load sectors, no bank conflict.
import { describe, expect, it } from 'vitest';
import { describeSwitchOnEmu, expectSwitchText, ninKernelsWith, tapsLayerSpec } from './reference/same-step-dirs.js';

const CLASSES = 3;
const INPUT = [8, 7, 7] as const;
const SPEC = tapsLayerSpec('wgrad_taps_rows', 40, 7, CLASSES);
const OFF = { wgradTapsRowLoads: false } as const;
const ROWS = "the window's first input row (image·H + h)";

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-taps-row-loads.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

describe('the tap-major halo staged along input rows (compiled kernels, no build)', () => {
  it('the 3×3 weight gradient stages by rows; off, a unit a lane, and only it changes', () => {
    expectSwitchText({ spec: SPEC, file: 'wgrad_taps_rows.model', off: OFF, kernel: 'k4_conv_wgrad_fused' }, ROWS, 'else padding, a gap or a spare: 0');
  });

  it("NIN (H100): k31's and k21's weight gradients stage by rows", () => {
    expect(ninKernelsWith(ROWS)).toEqual(['k31_conv_wgrad_fused', 'k21_conv_wgrad_fused']);
  });
});

if (FULL) {
  describeSwitchOnEmu('the tap-major halo staged along input rows on emu (NINCC_TEST_FULL=1)', { spec: SPEC, file: 'wgrad_taps_rows.model', off: OFF, input: INPUT, classes: CLASSES, seed: 1553, kernel: 'k4_conv_wgrad_fused' },
    "one training step at batch 3 (grids for 4): every gradient bitwise the unit-a-lane staging's",
    'the profile at batch 3: fewer load sectors than a unit a lane, and no bank conflict',
    (on, off) => {
      expect(on.global_load_sectors).toBeLessThan(off.global_load_sectors);
      expect(on.shared_bank_conflicts).toBe(0);
    });
}
