// The per-GPU weight-gradient split count (compiler/lower/wgrad-splits-waves.ts) against hand arithmetic at NIN's
// k21 and k31 shapes (27 and 112 tiles of 256×128, batch 128: 128·13² and 128·7² positions, 32-deep slices).
import { describe, expect, it } from 'vitest';
import { wavesTimesSlices, wgradSplitsForWaves } from '../compiler/lower/wgrad-splits-waves.js';

const H100 = { sms: 132, residentBlocks: 1 };
const A100 = { sms: 108, residentBlocks: 1 };
const k21 = { tiles: 27, positions: 128 * 169, slice: 32, maxSplits: 16 };  // 676 slices
const k31 = { tiles: 112, positions: 128 * 49, slice: 32, maxSplits: 4 };   // 196 slices

describe('weight-gradient splits per GPU', () => {
  it("k21 on an H100: 14 splits (378 blocks, 3 waves of 49 slices = 147) beat 16 (432, 4 waves of 43 = 172)", () => {
    expect(wavesTimesSlices(k21, H100, 16)).toBe(4 * 43);
    expect(wavesTimesSlices(k21, H100, 14)).toBe(3 * 49);
    expect(wgradSplitsForWaves(k21, H100)).toBe(14);
  });
  it("k21 on an A100: 14 splits take 4 waves there (196); 4 splits are one whole wave of 169, under 16's 4 waves of 43 (172)", () => {
    expect(wavesTimesSlices(k21, A100, 14)).toBe(4 * 49);
    expect(wavesTimesSlices(k21, A100, 4)).toBe(1 * 169);
    expect(wgradSplitsForWaves(k21, A100)).toBe(4);
  });
  it('k31: on an H100 1 split (112 blocks, one wave of 196 slices) equals 2 and 4 and is fewest; on an A100 4 (5 waves of 49 = 245) beat 2 (3 of 98) and 1 (2 of 196)', () => {
    expect(wavesTimesSlices(k31, H100, 1)).toBe(196);
    expect(wavesTimesSlices(k31, H100, 2)).toBe(2 * 98);
    expect(wavesTimesSlices(k31, H100, 4)).toBe(4 * 49);
    expect(wavesTimesSlices(k31, H100, 3)).toBe(3 * 66);  // 6272 / 3 pads to 66 slices
    expect(wgradSplitsForWaves(k31, H100)).toBe(1);
    expect(wavesTimesSlices(k31, A100, 4)).toBe(5 * 49);
    expect(wavesTimesSlices(k31, A100, 2)).toBe(3 * 98);
    expect(wavesTimesSlices(k31, A100, 1)).toBe(2 * 196);
    expect(wgradSplitsForWaves(k31, A100)).toBe(4);
  });
  it('resident blocks widen a wave; never more splits than the default', () => {
    // 2 a SM on an H100: 264 a wave; k21's 9 splits (243 blocks) are one wave of 76 slices, under 16's 2 of 43 (86).
    expect(wavesTimesSlices(k21, { sms: 132, residentBlocks: 2 }, 9)).toBe(76);
    expect(wgradSplitsForWaves(k21, { sms: 132, residentBlocks: 2 })).toBe(9);
    expect(wgradSplitsForWaves({ ...k21, maxSplits: 3 }, H100)).toBe(3);
  });
});
