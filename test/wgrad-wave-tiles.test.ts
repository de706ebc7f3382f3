// The smaller 1×1 weight-gradient tiles chosen by the GPU's waves (compiler/lower/wgrad-tile-waves.ts,
// backends/cuda/conv-mma-wgrad-wave-tiles.ts): the choice at NIN's k4/k7 shape against hand arithmetic; a small odd
// 1×1 layer compiled for an H100 takes one with the switch on and computes bitwise the gradients of the default tile
// (same splits: the tile only moves which block sums an element). The emu builds run with NINCC_TEST_FULL=1.
import { describe, expect, it } from 'vitest';
import { wgradTileForWaves } from '../compiler/lower/wgrad-tile-waves.js';
import { WAVE_WGRAD_TILES } from '../compiler/backends/cuda/conv-mma-wgrad-wave-tiles.js';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

// NIN's k4/k7: 96→96 1×1 on 56², batch 128 (12,544 slices of 32), at most 32 splits. The default 128×96 tile is 1 tile;
// 64×16 makes 2·6 = 12, 64×32 2·3 = 6.
const k4 = { positions: 128 * 56 * 56, slice: 32, maxSplits: 32 };
const options = [{ tiles: 1, area: 128 * 96 }, { tiles: 12, area: 64 * 16 }, { tiles: 6, area: 64 * 32 }];

describe('wave tiles for a 1×1 weight gradient', () => {
  it('the list is 64×16 then 64×32, both of 4 warps', () => {
    expect(WAVE_WGRAD_TILES.map((t) => [t.bm, t.bn, t.warpsM * t.warpsN])).toEqual([[64, 16, 4], [64, 32, 4]]);
  });
  it("k4 at R 4 (ptxas's 122 registers): 64×16 in 32 splits (384 blocks, 1 wave of 528 slots, 392 slices) beats the default's 32 blocks", () => {
    expect(wgradTileForWaves(options, k4, { sms: 132, residentBlocks: 4 })).toEqual({ option: 1, splits: 32 });
  });
  it('k4 at R 1: 64×16 in 11 splits (132 blocks, 1141 slices) ties 64×32 in 22 (132, 571): the earlier, 64×16', () => {
    expect(wgradTileForWaves(options, k4, { sms: 132, residentBlocks: 1 })).toEqual({ option: 1, splits: 11 });
  });
  it('a grid that fills the GPU keeps the default tile', () => {
    expect(wgradTileForWaves([{ tiles: 264, area: 128 * 96 }, { tiles: 3168, area: 64 * 16 }], k4, { sms: 132, residentBlocks: 2 }).option).toBe(0);
  });
  it("NIN's k34/k37 (1024→1024 on 7², 64 tiles of 128×128, at most 13 splits) fill a wave: the default tile, though 64×16 has less waves × slices × BM·BN", () => {
    const k34 = { positions: 128 * 49, slice: 32, maxSplits: 13 };
    expect(wgradTileForWaves([{ tiles: 64, area: 128 * 128 }, { tiles: 1024, area: 64 * 16 }], k34, { sms: 132, residentBlocks: 1 }).option).toBe(0);
  });
});

// conv4: 12→20 1×1 on 8×16, after a BN + ReLU (x pending). At a batch of 4 (512 positions, 16 slices), 4 splits (the
// batch's cap) either way: the default tile is 1 block a split, 64×16 makes 2 (a smaller block's slices, the same waves).
const SPEC = `model wave_tiles {
  input 3x8x16
  conv(3, 12, 3, 3, 1, 1, 1, 1)  bn(12)  relu
  conv(12, 20, 1, 1, 1, 1, 0, 0)  bn(20)  relu
  view(-1)  linear(${20 * 8 * 16}, 4)  logsoftmax
}`;
const wgrad = (c: Compiled) => c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.find((s) => s.op === 'conv_wgrad_fused' && s.layer === 4)!.consts as { readonly waveTile?: number; readonly splits: number };

describe('a 1×1 weight gradient compiled for an H100', () => {
  it('takes wave tile 0 (64×16) with the switch on, none off, in the same 4 splits', () => {
    const on = wgrad(compileEmuVariant(SPEC, 'wave_tiles.model', {}, 'bf16', 'h100'));
    const off = wgrad(compileEmuVariant(SPEC, 'wave_tiles.model', { wgradWaveTiles: false }, 'bf16', 'h100'));
    expect([on.waveTile, on.splits]).toEqual([0, 4]);
    expect([off.waveTile, off.splits]).toEqual([undefined, 4]);
  });
});

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/wgrad-wave-tiles.test.ts: the emu builds (bitwise same gradients with and without the wave tile) run with NINCC_TEST_FULL=1');
describe.runIf(FULL)('wave tile on emu (NINCC_TEST_FULL=1)', () => {
  it('bitwise the gradients and SGD steps of the default tile', async () => {
    await expectSameVariants({ spec: SPEC, file: 'wave_tiles.model', input: [3, 8, 16], classes: 4, on: {}, off: { wgradWaveTiles: false }, live: 'conv4.weight', gpu: 'h100' }, 71);
  }, 900_000);
});
