// The stem weight gradient's input halo staged only for the channels a block's taps read (switch `stemWgradLivePlanes`,
// compiler/backends/cuda/conv-mma-wgrad-halo.ts haloStaging): NIN's 363 taps in row tiles of 128 leave the last tile channel
// 2's 107 taps alone, and its halo's second plane held loads clamped to channel 2 that no tap read. The planes left out are
// never read (a row past C·R·S reads the last tap, in the last channel), so the builds must agree bitwise. CI checks the
// compiled kernels (NIN's stem on an odd plane: the stem's wgrad stages `planes`, the switch off stages every plane);
// NINCC_TEST_FULL=1 runs one step's gradients, three SGD steps and inference on emu against the switch-off build, with
// the h100's wave splits (split stagings on the batch's grid, `skipped`).
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (3→8 11×11/4, pad 5) on an odd plane, then a BN, a ReLU and a 3×3. */
const SPEC = `model liveplanes { input 3x37x29  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu  conv(8, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

/** The row tiles across the channels' ends, where the live planes apply (`stemWgradChannelTiles` stages one plane a block). */
const ACROSS = { stemWgradChannelTiles: false } as const;

const stemWgrad = (c: Compiled) => (c.cuda?.kernels ?? []).find((k) => k.name === 'k1_conv_wgrad_fused');

describe('the stem wgrad halo\'s live planes (compiled, no build)', () => {
  it('the stem\'s weight gradient stages only the planes of its block\'s taps; stemWgradLivePlanes: false stages every plane', () => {
    // Row tiles across channels: on row tiles of one channel each (stemWgradChannelTiles, on by default) a block has one plane.
    const on = stemWgrad(compileEmuVariant(SPEC, 'liveplanes.model', ACROSS, 'bf16', 'h100')), off = stemWgrad(compileEmuVariant(SPEC, 'liveplanes.model', { ...ACROSS, stemWgradLivePlanes: false }, 'bf16', 'h100'));
    expect(on?.tile).toMatch(/M = 363 \(C·R·S\).*input halo 2 planes/);
    expect(on?.body.join('\n')).toContain('const int planes = min(2, (min(int(m0) + 128, 363) - 1) / 121 - ch0 + 1);');
    expect(on?.body.join('\n')).toContain('const int staged = (planes * length + 127) / 128 * 128;');
    expect(off?.body.join('\n')).toContain('const int staged = (2 * length + 127) / 128 * 128;');
    expect(off?.body.join('\n')).not.toContain('const int planes');
    expect(off?.tile).toBe(on?.tile);
  });
});

if (!FULL) console.warn('test/emu-stem-wgrad-live-planes.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');
describe.runIf(FULL)('the stem wgrad halo\'s live planes on emu (NINCC_TEST_FULL=1)', () => {
  it('NIN\'s stem on 3×37×29 with the h100\'s splits: one step\'s gradients, three SGD steps and inference bitwise every plane staged', async () => {
    await expectSameVariants({ spec: SPEC, file: 'liveplanes.model', input: [3, 37, 29], classes: CLASSES, on: ACROSS, off: { ...ACROSS, stemWgradLivePlanes: false }, live: 'conv1.weight', gpu: 'h100' }, 131);
  }, 900_000);
});
