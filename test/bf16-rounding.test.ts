// scripts/bf16-fashion-curve.ts's roundBf16: the bf16 roundings of the nin-fashion control ensemble
// (test/emu-conv-mma-grad.test.ts, NINCC_TEST_FULL=1) — to nearest with ties to even, and the seeded
// stochastic rounding whose every seed must be a valid bf16 rounding (one of the two neighbours) and
// unbiased, or the controls would not be perturbations of bf16 rounding's size and kind.
import { describe, expect, it } from 'vitest';
import { roundBf16 } from '../scripts/bf16-fashion-curve.js';

/** The float32 whose bits are `bits`. */
const fromBits = (bits: number) => new Float32Array(Uint32Array.of(bits).buffer)[0];

describe('roundBf16', () => {
  it('nearest: below half a bf16 ulp down, above up, a tie to the even neighbour, negatives by magnitude', () => {
    const inputs = Float32Array.of(fromBits(0x3f807fff), fromBits(0x3f808001), fromBits(0x3f808000), fromBits(0x3f818000), fromBits(0xbf808001));
    expect(Array.from(new Uint32Array(roundBf16(inputs, 'nearest').buffer))).toEqual([0x3f800000, 0x3f810000, 0x3f800000, 0x3f820000, 0xbf810000]);
  });

  it('a seed: each value goes to one of its two bf16 neighbours, up as often as its distance says, the same for the same seed', () => {
    const value = fromBits(0x3f804000); // a quarter of a bf16 ulp above 1
    const down = fromBits(0x3f800000), up = fromBits(0x3f810000);
    const n = 20000;
    const once = roundBf16(new Float32Array(n).fill(value), 7);
    expect(once.every((x) => x === down || x === up)).toBe(true);
    const ups = once.filter((x) => x === up).length;
    // Binomial(n, 1/4): σ = √(n·3/16) ≈ 61; 5σ either side.
    expect(Math.abs(ups - n / 4)).toBeLessThan(5 * Math.sqrt((n * 3) / 16));
    expect(roundBf16(new Float32Array(n).fill(value), 7)).toEqual(once);
    expect(roundBf16(new Float32Array(n).fill(value), 8)).not.toEqual(once);
    expect(roundBf16(Float32Array.of(up, -down, 0), 7)).toEqual(Float32Array.of(up, -down, 0)); // bf16 values stay
  });
});
