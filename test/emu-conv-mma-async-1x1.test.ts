// The 1×1 inference forward's cp.async ring (compiler/backends/cuda/conv-mma-async-1x1.ts): fp32 x copied global →
// shared S − 1 slices ahead, each thread converting its own copies into the same A tile the per-slice gather wrote.
// Both builds (`asyncPipeline: false` the gather) must agree bitwise: one training step's gradients, three SGD steps
// and inference (expectSameSteps), the rings in the inference. The spec makes every path of the ring run: 160
// channels (5 slices, so a 4-stage ring wraps), 80 (a 16-channel tail the copies zero-fill), batch 3 on grids for 4
// (images past n zero-filled), the folded BN's ReLU in the epilogue. Training's bf16 x keeps the gather (the ring
// cost it occupancy: conv-mma-async-1x1.ts). CI checks the compiled kernels; the emu builds run with NINCC_TEST_FULL=1.
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const INPUT = [16, 4, 4] as const;
const CLASSES = 3;
const SPEC = `model async1x1 {
  input ${INPUT.join('x')}
  conv(16, 80, 3, 3, 1, 1, 1, 1)  bn(80)  relu
  conv(80, 160, 1, 1, 1, 1, 0, 0)  bn(160)  relu
  conv(160, 48, 1, 1, 1, 1, 0, 0)  bn(48)  relu
  view(-1)  linear(768, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-async-1x1.test.ts: the emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const convForwards = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused)$/.test(k.name)).map((k) => [k.name, k]));

describe('the 1×1 forwards\' cp.async ring (compiled, no build)', () => {
  it('every 1×1 inference forward stages x through a 4-stage ring, the training forwards gather; asyncPipeline: false gathers; the same tiles', () => {
    const on = convForwards(compileEmuVariant(SPEC, 'async1x1.model')), off = convForwards(compileEmuVariant(SPEC, 'async1x1.model', { asyncPipeline: false }));
    const ring = [...on].filter(([, k]) => /cp\.async in a 4-stage ring/.test(k.fused ?? '')).map(([name]) => name).sort();
    expect(ring).toEqual(['k4_conv_infer', 'k7_conv_infer']);
    for (const name of ring) expect(on.get(name)!.body.join('\n'), name).toMatch(/nincc::cp_async_wait_group<3>\(\);/);
    for (const [name, k] of off) expect(k.body.join('\n'), name).not.toMatch(/cp_async/);
    for (const [name, k] of on) expect(k.tile, name).toBe(off.get(name)!.tile);
  });

  it('the stages are what fits in 48 KiB beside the tiles; 64-accumulator warps and unaligned runs gather', () => {
    // 8×8 planes: a 96-channel 1×1 on a 128×96 tile (A and B 14 KiB): stages of 16 KiB, 2.
    // A 256-channel one on 128×128 (warps of 32×64) gathers (ptxas spilled it).
    const wide = `model async1x1 {
  input 16x8x8
  conv(16, 80, 3, 3, 1, 1, 1, 1)  bn(80)  relu
  conv(80, 96, 1, 1, 1, 1, 0, 0)  bn(96)  relu
  conv(96, 256, 1, 1, 1, 1, 0, 0)  bn(256)  relu
  view(-1)  linear(16384, 3)  logsoftmax
}`;
    const k = convForwards(compileEmuVariant(wide, 'async1x1.model'));
    expect(k.get('k4_conv_infer')!.tile).toMatch(/^128×96×32 tile/);
    expect(k.get('k4_conv_infer')!.fused).toContain('x staged by cp.async in a 2-stage ring (16 KiB a stage), 1 slices in flight');
    expect(k.get('k4_conv_fwd_fused')!.fused).not.toMatch(/cp\.async/);
    expect(k.get('k7_conv_infer')!.tile).toMatch(/^128×128×32 tile, 8 warps \(4×2\) of 32×64/);
    expect(k.get('k7_conv_infer')!.fused).not.toMatch(/cp\.async/);
    // 6×6 = 36 positions, a multiple of 4: runs of 4 fp32 stay in a plane; 7×7 = 49 is not: the gather.
    const planes = (side: number) => convForwards(compileEmuVariant(SPEC.replace('input 16x4x4', `input 16x${side}x${side}`).replace('linear(768', `linear(${48 * side * side}`), 'async1x1.model'));
    expect(planes(6).get('k7_conv_infer')!.fused).toMatch(/cp\.async in a \d-stage ring/);
    expect(planes(7).get('k7_conv_infer')!.fused).not.toMatch(/cp\.async/);
  });
});

describe.runIf(FULL)('the 1×1 forwards\' cp.async ring on emu (NINCC_TEST_FULL=1)', () => {
  it('one training step, three SGD steps and inference: bitwise those of the per-slice gather', async () => {
    await expectSameVariants({ spec: SPEC, file: 'async1x1.model', input: INPUT, classes: CLASSES, on: {}, off: { asyncPipeline: false }, live: 'conv4.weight' }, 83);
  }, 600_000);
});
