// The 1×1 weight gradients on odd planes with their bf16 operands (x, and the rebuild's g and y) copied whole images at a
// time by cp.async into one ring of image slots (compiler/backends/cuda/conv-mma-wgrad-async-image-ring.ts chooseImageRings,
// `wgradImageRings`) against their staging from global memory, a row's 32 positions off the sector grid
// (`wgradImageRings: false`). The slots hold the raw bf16 the staging read from global memory, so every gradient and the
// SGD steps after must agree bitwise; with `wgradRingDyStores: true` the rebuilt dY' that the data gradient reads is
// stored through the slots too. CI checks the choice and the compiled kernels (a few s); the emu builds and the
// bitwise comparisons (7×7 and 5×5 planes, partial column tiles; a few minutes under load) run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { asyncImageRingReadConflicts, chooseImageRings } from '../compiler/backends/cuda/conv-mma-wgrad-async-image-ring.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const CLASSES = 3;
// k4: x is k1's bf16 y (BN + ReLU pending), g k7's bf16 data gradient rebuilt with k4's bf16 y: all three in the ring;
// of 128 input channels, it rebuilds dY' for its data gradient too (dyOut: train-fused-options.ts REBUILD_1X1_MIN_CHANNELS).
// 40 channels leave a partial column tile.
const spec = (h: number, w: number) => `model wgrad_image_rings {
  input 16x${h}x${w}
  conv(16, 128, 1, 1, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 40, 1, 1, 1, 1, 0, 0)  bn(40)  relu
  conv(40, 24, 1, 1, 1, 1, 0, 0)  bn(24)  relu
  view(-1)  linear(${24 * h * w}, ${CLASSES})  logsoftmax
}`;
const RINGS = /copied whole images of the block's channels by cp\.async \(16-byte chunks\) into (\d+) image slots each in dynamic shared memory \((\d+) B\)/;
const OFF = { wgradImageRings: false } as const;
const DY_STORES = { wgradRingDyStores: true } as const; // the opt-in: dY' for the data gradient stored through the slots

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-image-rings.test.ts: the emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the choice and the compiled kernels');

const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k]));
const operand = (source: string, channels: number, rows: number) => ({ source, channels, rows, first: 'n0' });

describe('the ring of operands (choice and compiled kernels)', () => {
  it("NIN's k34 shape: x, g and y of 128 channels × 49 positions, 3 stages in 3 slots each; every operand's reads conflict-free", () => {
    const three = [operand('x', 1024, 128), operand('g', 1024, 128), operand('g_y', 1024, 128)];
    const r = chooseImageRings(49, three)!;
    expect([r.stages, r.slots, r.operands.map((o) => [o.slotPitch, o.offset])]).toEqual([3, 3, [[6272, 0], [6272, 18816], [6272, 37632]]]);
    for (const o of r.operands) expect(asyncImageRingReadConflicts({ slots: r.slots, rows: o.rows, positions: 49, slotPitch: o.slotPitch })).toBe(0);
    expect(chooseImageRings(49, three.slice(0, 2))?.stages).toBe(4); // two operands: 4 stages in 4 slots
    expect(chooseImageRings(49, [operand('x', 1001, 128)])).toBeUndefined(); // C·P·Q not a multiple of 8: images off the 16-byte grid
    expect(chooseImageRings(196, three)).toBeUndefined(); // 14×14: 3 × 2 slots of 50 KB do not fit
  });

  it('7×7: the middle 1×1 weight gradient rings x, g and y and asks its launch for the slots; off, no kernel does, and only weight gradients change', () => {
    const on = compileEmuVariant(spec(7, 7), 'wgrad_image_rings.model'), off = compileEmuVariant(spec(7, 7), 'wgrad_image_rings.model', OFF);
    const k4 = wgrads(on).get('k4_conv_wgrad_fused')!;
    expect(k4.fused).toMatch(/x, g, y copied whole images/);
    expect(k4.launch.shared).toBe(Number(k4.fused?.match(RINGS)?.[2]));
    const body = k4.body.join('\n');
    expect(body).toContain('NINCC_DYNAMIC_SHARED(nincc::bf16, bring)');
    expect(body).not.toMatch(/nincc::ld\(&(x|g|g_y)\[/); // no operand read from global memory in the staging
    expect(body).toContain('if (blockIdx.x == 0) nincc::st(&dy_raw[at], nincc::to_bf16(v));'); // dY' from the staging, by default
    // Opted into: dY' for the data gradient over g in its slot, whole images copied out 16 bytes a lane.
    const opted = wgrads(compileEmuVariant(spec(7, 7), 'wgrad_image_rings.model', DY_STORES)).get('k4_conv_wgrad_fused')!;
    expect(opted.fused).toContain("through g's image slots in whole 16-byte runs");
    expect(opted.body.join('\n')).toContain('nincc::st(reinterpret_cast<int4*>(dy_raw + run0) + q');
    for (const [name, k] of wgrads(off)) {
      expect(k.fused ?? '', name).not.toMatch(RINGS);
      expect(k.launch.shared, name).toBe(0);
    }
    expect(changedKernels(on, off).every((name) => name.endsWith('_conv_wgrad_fused'))).toBe(true);
  });

  it('NIN: the 7×7 1×1 weight gradients take it (k34: x, g, y; k37: x, y, its g the average pool\'s fp32), no other kernel', () => {
    const nin = compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model');
    const taking = [...wgrads(nin)].filter(([, k]) => RINGS.test(k.fused ?? '')).map(([name, k]) => [name, k.fused?.match(/([^+]*) copied whole images of the block's channels/)?.[1].trim(), k.launch.shared]);
    expect(taking).toEqual([
      ['k37_conv_wgrad_fused', 'x, y', expect.any(Number)],
      ['k34_conv_wgrad_fused', 'x, g, y', 112896],
    ]);
  });
});

describe.runIf(FULL)('the ring of operands on emu (NINCC_TEST_FULL=1)', () => {
  // At a batch of 3 the 4 splits' positions (about 37 of 147 on 7×7, 19 of 75 on 5×5) hold no whole image: every dY'
  // goes out from the staging. At 7 (175 positions on 5×5, 43 or 44 a split) each split holds one or two whole images,
  // stored through the slots where opted into, and partial ones stored from the staging.
  for (const [h, w, batch, on] of [[7, 7, 3, {}], [5, 5, 3, {}], [5, 5, 7, DY_STORES]] as const) {
    it(`16 → 128 → 40 → 24 1×1s on ${h}×${w}, batch ${batch}${on === DY_STORES ? ', dY\' stored through the slots' : ''}: one training step's gradients and SGD steps bitwise those of the staging from global memory`, async () => {
      await expectSameVariants({ spec: spec(h, w), file: 'wgrad_image_rings.model', input: [16, h, w], classes: CLASSES, on, off: OFF, live: 'conv4.weight', batch }, 619 + h + batch);
    }, 1_800_000);
  }
});
