// The stem weight gradient held to 3 resident blocks a SM (switch `stemWgradThreeBlocks`,
// compiler/backends/cuda/conv-mma-stem-wgrad-layout.ts stemWgradResidentBlocks): on row tiles of one channel (NIN's
// 11×11/4), its launch bounds ask for 3 blocks and its dY' rebuild and A staging are rolled, so that ptxas
// fits it in 168 registers without spilling (bench/RESULTS.md "i15z: the stem"). The emulator ignores both (the unroll
// pragma and the bounds), so there is no emu A/B to run: the kernels' sums are the same code in the same order, and
// what changes on a GPU is the register allocation (scripts/check-spills.ts) and, at ptxas's R 3, the split count.
// CI checks the compiled kernels.
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';

const CLASSES = 3;
/** NIN's stem (3→96 11×11/4, pad 5: its 128×96 tile, row tiles of one channel) on an odd plane, then a BN, a ReLU and a 3×3. */
const SPEC = `model threeblocks { input 3x37x29  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu  conv(96, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

const kernel = (c: Compiled, name: string) => (c.cuda?.kernels ?? []).find((k) => k.name === name);
/** The line before the dY' staging's loop over the warp's row pairs. */
const rebuildUnroll = (body: readonly string[]) => body[body.findIndex((line) => line.trim() === 'for (int i = 0; i < 24; i += 2) {') - 1]?.trim();

describe('the stem wgrad held to 3 resident blocks (compiled, no build)', () => {
  it('the stem\'s weight gradient asks __launch_bounds__ for 3 blocks and rolls its rebuild and A staging; stemWgradThreeBlocks: false unrolls them, no bound; the 3×3\'s is untouched', () => {
    const on = compileEmuVariant(SPEC, 'threeblocks.model', {}, 'bf16', 'h100'), off = compileEmuVariant(SPEC, 'threeblocks.model', { stemWgradThreeBlocks: false }, 'bf16', 'h100');
    const stemOn = kernel(on, 'k1_conv_wgrad_fused'), stemOff = kernel(off, 'k1_conv_wgrad_fused');
    expect(stemOn?.tile).toMatch(/row tiles of one channel each/);
    expect(stemOn?.minBlocks).toBe(3);
    expect(rebuildUnroll(stemOn?.body ?? [])).toBe('NINCC_UNROLL_BY(1)');
    expect(stemOff?.minBlocks).toBeUndefined();
    expect(rebuildUnroll(stemOff?.body ?? [])).toBe('NINCC_UNROLL');
    expect(stemOn?.body.filter((line) => line.includes('NINCC_UNROLL_BY(1)'))).toHaveLength(2);
    expect(stemOff?.body.filter((line) => !line.includes('NINCC_UNROLL'))).toEqual(stemOn?.body.filter((line) => !line.includes('NINCC_UNROLL')));
    expect(kernel(on, 'k4_conv_wgrad_fused')).toEqual(kernel(off, 'k4_conv_wgrad_fused'));
  });

  it('without row tiles of one channel (stemWgradChannelTiles: false) the switch takes nothing', () => {
    const on = kernel(compileEmuVariant(SPEC, 'threeblocks.model', { stemWgradChannelTiles: false }, 'bf16', 'h100'), 'k1_conv_wgrad_fused');
    expect(on?.minBlocks).toBeUndefined();
    expect(on?.body.join('\n')).not.toContain('NINCC_UNROLL_BY(1)');
  });
});
