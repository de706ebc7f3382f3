// The few-channels strided stem's weight gradient on its own input halo with 64-row warps (compiler/backends/cuda/
// conv-mma-grad.ts wgradPlan, switch `stemWgradWarp64`): the same block tile, grid, halo, staging and k order with half
// the warps (conv-mma-warp64-tile.ts's twin), so every dW element sums the same slices in the same order: bitwise the
// 32-row build. CI, without a build: the compiled kernels' tiles (the switch on and off; a gathering stem and the
// space-to-depth form are not changed by it). NINCC_TEST_FULL=1: one step's gradients, three SGD steps and inference
// bitwise the switch-off build's on NIN's stem over an odd plane.
import { describe, expect, it } from 'vitest';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';
import type { Compiled } from '../compiler/pipeline.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (pad 5) on an odd plane with a BN (dY' rebuilt in the wgrad's staging), a ReLU and a 3×3 after it. */
const SPEC = `model warp64 { input 3x37x29  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu  conv(96, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

/** The stem's weight-gradient kernel's tile and fusions. */
const stemWgrad = (c: Compiled) => {
  const k = (c.cuda?.kernels ?? []).find((k) => k.name === 'k1_conv_wgrad_fused');
  return `${k?.tile ?? ''} | ${k?.fused ?? ''}`;
};

describe('the stem weight gradient\'s 64-row warps (no build)', () => {
  it('NIN\'s stem on its own halo: 128×96 in 4 warps of 64×48; stemWgradWarp64: false, 8 of 32×48; without the halo (a gather), 8 of 32×48 either way', () => {
    expect(stemWgrad(compileEmuVariant(SPEC, 'warp64.model'))).toMatch(/^128×96×32 tile, 4 warps \(2×2\) of 64×48, M = 363 .*input halo/);
    expect(stemWgrad(compileEmuVariant(SPEC, 'warp64.model', { stemWgradWarp64: false }))).toMatch(/^128×96×32 tile, 8 warps \(4×2\) of 32×48, M = 363 .*input halo/);
    expect(stemWgrad(compileEmuVariant(SPEC, 'warp64.model', { stemWgradHalo: false, stemS2dWgrad: false }))).toMatch(/^128×96×32 tile, 8 warps \(4×2\) of 32×48, M = 363 (?!.*input halo)/);
  });
});

if (!FULL) console.warn('test/emu-conv-mma-stem-wgrad-warp64.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled tiles');
describe.runIf(FULL)('the stem weight gradient\'s 64-row warps on emu, bitwise the 32-row warps (NINCC_TEST_FULL=1)', () => {
  it('NIN\'s stem on 3×37×29: one step\'s gradients, three SGD steps and inference are bitwise the switch-off build\'s', async () => {
    await expectSameVariants({ spec: SPEC, file: 'warp64.model', input: [3, 37, 29], classes: CLASSES, on: {}, off: { stemWgradWarp64: false }, live: 'conv1.weight' }, 101);
  }, 600_000);
});
