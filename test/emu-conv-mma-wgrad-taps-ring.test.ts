// The tap-major weight gradients' B fragments by ldmatrix straight from the cp.async ring's windows (compiler/backends/cuda/
// conv-mma-wgrad-taps-ring.ts, `wgradTapsRingFragments`) against a B tile staged from the ring each slice (the switch off):
// the same bf16 values in the same k order and the bias summed in the staging's order, so bitwise the same results where the
// split bounds fall on the ring's chunks. CI (no build, a few s): the compiled kernels. NINCC_TEST_FULL=1: a 3×3 on 6×6
// (36 positions: 8-byte copies, as NIN's 14×14; padding, a pending BN/ReLU, 40 channels: a spare octet's lanes) on emu at
// batch 4, its 4 splits of 36 positions on the chunks (each ending inside a slice; at batch 3 the bounds 27, 54, 81 move to
// 24, 52, 80: another summation order), one step bitwise the B tile's, and the profile: fewer shared wavefronts, no bank conflict.
import { describe, expect, it } from 'vitest';
import { describeSwitchOnEmu, expectSwitchText, ninKernelsWith, tapsLayerSpec } from './reference/same-step-dirs.js';

const CLASSES = 3;
const INPUT = [8, 6, 6] as const;
const SPEC = tapsLayerSpec('wgrad_taps_ring', 40, 6, CLASSES);
const OFF = { wgradTapsRingFragments: false } as const;
const MARKER = 'the bias gradient from the ring window';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-taps-ring.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

describe("the tap-major weight gradients' B fragments from the ring (compiled kernels, no build)", () => {
  it('the 3×3 weight gradient reads B from the ring, no B staging; off, a B tile, and only it changes', () => {
    expectSwitchText({ spec: SPEC, file: 'wgrad_taps_ring.model', off: OFF, kernel: 'k4_conv_wgrad_fused' }, MARKER, 'Stage B: rows are output channels k');
  });

  it("NIN (H100): only k21's weight gradient (k31's 7×7 planes take the image ring)", () => {
    expect(ninKernelsWith(MARKER)).toEqual(['k21_conv_wgrad_fused']);
  });
});

if (FULL) {
  describeSwitchOnEmu("the tap-major weight gradients' B fragments from the ring on emu (NINCC_TEST_FULL=1)", { spec: SPEC, file: 'wgrad_taps_ring.model', off: OFF, input: INPUT, classes: CLASSES, seed: 1561, kernel: 'k4_conv_wgrad_fused', n: 4 },
    "one training step at batch 4: every gradient bitwise the B tile's",
    'the profile at batch 4: fewer shared wavefronts than the B tile, and no bank conflict',
    (on, off) => {
      expect(on.shared_load_wavefronts + on.shared_store_wavefronts).toBeLessThan(off.shared_load_wavefronts + off.shared_store_wavefronts);
      expect(on.shared_bank_conflicts).toBe(0);
    });
}
