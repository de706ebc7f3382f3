// The k×k weight gradients' dY' copied whole images at a time by cp.async into image slots in dynamic shared memory
// (compiler/backends/cuda/conv-mma-wgrad-async-image-ring.ts, `wgradAsyncImageRing`, on by default) against B staged
// from global memory (`wgradAsyncImageRing: false`): on planes no 4-byte copy divides (NIN's 7×7 k31; here 5×5 for the
// compiled kernels, and 11×11 on emu: 4 splits of a batch of 3 are about 90 positions, 3 slices, and split 2's second
// slice is the first to reach image 2, so it reads what the ring issued a slice later than the prologue's landing).
// The slots hold the raw bf16 the staging read
// from global memory, so every gradient and the SGD steps after must agree bitwise. CI checks the choice and the
// compiled kernels (a few s); the two emu builds and the bitwise comparison (about 2 min under load) run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { asyncImageRingReadConflicts, chooseAsyncImageRing } from '../compiler/backends/cuda/conv-mma-wgrad-async-image-ring.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const CLASSES = 3;
const spec = (h: number, w: number) => `model wgrad_image_async {
  input 8x${h}x${w}
  conv(8, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  conv(16, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  view(-1)  linear(${16 * h * w}, ${CLASSES})  logsoftmax
}`;
const IMAGE_RING = /dY' copied whole images of the block's (\d+) channels by cp\.async \(16-byte chunks\) into (\d+) image slots in dynamic shared memory \((\d+) B\)/;
// The 1×1 weight gradients on these odd planes take a ring of their own operands (test/emu-conv-mma-wgrad-image-rings.test.ts): off in both, so only this ring differs.
const ON = { wgradImageRings: false } as const;
const OFF = { ...ON, wgradAsyncImageRing: false } as const;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-async-image-ring.test.ts: the emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the choice and the compiled kernels');

const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k]));

describe('the cp.async image ring (choice and compiled kernels)', () => {
  it('slots for every image S slices reach, whole 16-byte runs only, a conflict-free slot pitch', () => {
    // NIN's k31: 49 positions, 128 channels a block of 1024: 4 stages reach at most 4 images.
    expect(chooseAsyncImageRing(49, 128, 1024)).toEqual({ stages: 4, slots: 4, rows: 128, positions: 49, slotPitch: 6272 });
    expect(chooseAsyncImageRing(25, 128, 128)?.slots).toBe(7); // 128 positions reach 7 images of 25
    expect(chooseAsyncImageRing(49, 128, 1000)?.stages).toBe(4); // the last column tile's 104 channels: 5096 elements, whole copies
    expect(chooseAsyncImageRing(49, 128, 1001)).toBeUndefined(); // K·P·Q not a multiple of 8: images off the 16-byte grid
    expect(chooseAsyncImageRing(49, 4, 1024)).toBeUndefined(); // 4·49 = 196 elements a run: not whole copies
    expect(chooseAsyncImageRing(196, 128, 384)).toBeUndefined(); // an even plane: the slice-window ring's (NIN's k21)
    for (const r of [chooseAsyncImageRing(49, 128, 1024)!, chooseAsyncImageRing(25, 128, 128)!]) expect(asyncImageRingReadConflicts(r)).toBe(0);
  });

  it('the 5×5 3×3 weight gradient takes it and asks its launch for the slots; off, it does not, and only it changes', () => {
    const on = compileEmuVariant(spec(5, 5), 'wgrad_image_async.model', ON), off = compileEmuVariant(spec(5, 5), 'wgrad_image_async.model', OFF);
    const k4 = wgrads(on).get('k4_conv_wgrad_fused')!;
    const ring = k4.fused?.match(IMAGE_RING);
    expect(ring).toBeTruthy();
    expect(k4.launch.shared).toBe(Number(ring?.[3]));
    expect(k4.body.join('\n')).toContain('NINCC_DYNAMIC_SHARED(nincc::bf16, bring)');
    for (const [name, k] of wgrads(off)) {
      expect(k.fused ?? '', name).not.toMatch(IMAGE_RING);
      expect(k.launch.shared, name).toBe(0);
    }
    expect(changedKernels(on, off)).toEqual(['k4_conv_wgrad_fused']);
  });

  it("NIN: the 7×7 3×3 weight gradient (k31) takes it, 4 slots of 128 × 49 bf16 (50,176 B); the 1×1 ones on 7×7 do not", () => {
    const nin = compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model');
    const taking = [...wgrads(nin)].filter(([, k]) => IMAGE_RING.test(k.fused ?? '')).map(([name, k]) => [name, k.launch.shared]);
    expect(taking).toEqual([['k31_conv_wgrad_fused', 50176]]);
  });
});

describe.runIf(FULL)('the cp.async image ring on emu (NINCC_TEST_FULL=1)', () => {
  it('8 → 16 → 128 (3×3) on 11×11: one training step\'s gradients and SGD steps bitwise those of B staged from global memory', async () => {
    await expectSameVariants({ spec: spec(11, 11), file: 'wgrad_image_async.model', input: [8, 11, 11], classes: CLASSES, on: ON, off: OFF, live: 'conv4.weight' }, 517);
  }, 900_000);
});
