// The tap-major weight gradients' halo zeroed on its padding rings only (compiler/backends/cuda/conv-mma-wgrad-taps-border.ts,
// `wgradTapsBorderZeros`) against every unit of its planes zeroed before a barrier (the switch off): A reads the same halo,
// so bitwise the same results, from fewer shared wavefronts. CI (no build, a few s): the compiled kernels. NINCC_TEST_FULL=1:
// a 3×3 on 7×7 (an odd row pitch: each column side its own phases) and on 6×6 (an even one: the column sides paired),
// padding, a pending BN/ReLU, 40 channels (a spare octet's lanes), on emu: one step bitwise the old build's, and the
// profile: fewer shared wavefronts, no bank conflict.
import { describe, expect, it } from 'vitest';
import { describeSwitchOnEmu, expectSwitchText, ninKernelsWith, tapsLayerSpec } from './reference/same-step-dirs.js';

const CLASSES = 3;
const INPUT = [8, 7, 7] as const;
const SPEC = tapsLayerSpec('wgrad_taps_border', 40, 7, CLASSES);
const OFF = { wgradTapsBorderZeros: false } as const;
const RINGS = "the window's images' padding rings";

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-taps-border.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

describe('the tap-major halo zeroed on its padding rings (compiled kernels, no build)', () => {
  it('the 3×3 weight gradient zeroes the rings, no barrier between; off, every unit, and only it changes', () => {
    expectSwitchText({ spec: SPEC, file: 'wgrad_taps_border.model', off: OFF, kernel: 'k4_conv_wgrad_fused' }, RINGS, 'the zeros before the positions over them');
  });

  it("NIN (H100): k31's and k21's weight gradients", () => {
    expect(ninKernelsWith(RINGS)).toEqual(['k31_conv_wgrad_fused', 'k21_conv_wgrad_fused']);
  });
});

const SPEC_6 = tapsLayerSpec('wgrad_taps_border', 40, 6, CLASSES);

if (FULL) {
  describeSwitchOnEmu('the tap-major halo zeroed on its padding rings on emu (NINCC_TEST_FULL=1)', { spec: SPEC, file: 'wgrad_taps_border.model', off: OFF, input: INPUT, classes: CLASSES, seed: 1571, kernel: 'k4_conv_wgrad_fused' },
    "one training step at batch 3 (grids for 4): every gradient bitwise the whole planes' zeros'",
    'the profile at batch 3: fewer shared wavefronts than the whole planes\' zeros, and no bank conflict',
    (on, off) => {
      expect(on.shared_store_wavefronts).toBeLessThan(off.shared_store_wavefronts);
      expect(on.shared_bank_conflicts).toBe(0);
    });
  describeSwitchOnEmu('the tap-major halo zeroed on its padding rings, 6×6: the column sides paired (NINCC_TEST_FULL=1)', { spec: SPEC_6, file: 'wgrad_taps_border.model', off: OFF, input: [8, 6, 6], classes: CLASSES, seed: 1572, kernel: 'k4_conv_wgrad_fused' },
    "one training step at batch 3 (grids for 4): every gradient bitwise the whole planes' zeros'",
    'the profile at batch 3: fewer shared wavefronts than the whole planes\' zeros, and no bank conflict',
    (on, off) => {
      expect(on.shared_store_wavefronts).toBeLessThan(off.shared_store_wavefronts);
      expect(on.shared_bank_conflicts).toBe(0);
    });
}
