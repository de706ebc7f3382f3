// The tap-major weight gradients' A past a split's end read from 8 zero units, each lane on its own unit's bank group
// (compiler/backends/cuda/conv-mma-wgrad-taps-halo.ts, `wgradTapsZeroGroups`), against one zero unit (the switch off):
// the same zeros, so bitwise the same results, and no bank conflict where a phase crosses the end. CI (no build, a few
// s): the choice and the compiled kernels. NINCC_TEST_FULL=1: a 3×3 at batch 3 on grids for 4 (4 splits of 36.75
// positions: every split ends inside a slice) on emu, one step bitwise the old build's, the profile's conflicts 0 against some.
import { describe, expect, it } from 'vitest';
import { chooseWgradTaps } from '../compiler/backends/cuda/conv-mma-wgrad-taps-halo.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { describeSwitchOnEmu, tapsLayerSpec } from './reference/same-step-dirs.js';

const CLASSES = 3;
const INPUT = [8, 7, 7] as const;
const SPEC = tapsLayerSpec('wgrad_taps_zeros', 24, 7, CLASSES);
const OFF = { wgradTapsZeroGroups: false } as const;
const GROUPS = "a_z[ks] = j < hi ? z : -1 - z;  // past the split: its unit's group kept";

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-taps-zero-groups.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the choice and the compiled kernels');

const body = (c: ReturnType<typeof compileEmuVariant>, name: string) => (c.cuda?.kernels ?? []).find((k) => k.name === name)!.body.join('\n');

describe('the tap-major halo\'s zero units (choice and compiled kernels, no build)', () => {
  it('8 zero units (7 more than off, 112 bytes); the 3×3 weight gradient reads its lane\'s group; off, one unit, and only it changes', () => {
    const g = { C: 384, K: 1024, H: 7, W: 7, P: 7, Q: 7, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 }, tile = { bm: 256, bn: 128, warpsM: 4, warpsN: 2, nt: 8, mt: 4 };
    const on = chooseWgradTaps(g, tile, 40 * 1024)!, off = chooseWgradTaps(g, tile, 40 * 1024, 1)!;
    expect([on.zeros, off.zeros, on.bytes - off.bytes]).toEqual([8, 1, 112]);
    const a = compileEmuVariant(SPEC, 'wgrad_taps_zeros.model'), b = compileEmuVariant(SPEC, 'wgrad_taps_zeros.model', OFF);
    expect(body(a, 'k4_conv_wgrad_fused')).toContain(GROUPS);
    expect(body(b, 'k4_conv_wgrad_fused')).not.toContain(GROUPS);
    expect(changedKernels(a, b)).toEqual(['k4_conv_wgrad_fused']);
  });
});

if (FULL) {
  describeSwitchOnEmu("the tap-major halo's zero units on emu (NINCC_TEST_FULL=1)", { spec: SPEC, file: 'wgrad_taps_zeros.model', off: OFF, input: INPUT, classes: CLASSES, seed: 1567, kernel: 'k4_conv_wgrad_fused' },
    "one training step at batch 3 (grids for 4): every gradient bitwise the one zero unit's",
    'the profile at batch 3: no bank conflict with the 8 zero units, some with one',
    (on, off) => {
      expect(on.shared_bank_conflicts).toBe(0);
      expect(off.shared_bank_conflicts).toBeGreaterThan(0);
    });
}
