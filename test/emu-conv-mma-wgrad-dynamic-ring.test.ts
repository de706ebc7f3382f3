// The k×k weight gradients' cp.async ring of dY' in dynamic shared memory (compiler/backends/cuda/conv-mma-wgrad-async-ring.ts,
// `wgradDynamicRing`, on by default) against B staged without a ring (`wgradDynamicRing: false`): where two stages do not
// fit beside the kernel's static shared memory (the 256-tall tile and its input halo), the ring's 4 stages go to the
// launch's dynamic shared memory (launch.shared, which the cuda device raises the kernel's limit for; the emu device
// hands the block that many bytes). The windows hold the raw bf16 that the staging read from global memory, so every
// gradient and the SGD steps after must agree bitwise. The specs: a 3×3 of 16 → 128 channels on 8×8 planes (16-byte
// copies) and one of 32 → 128 on 6×5 (30 positions: 4-byte copies), a batch of 3 on grids for 4. CI checks the choice
// and the compiled kernels (no build, a few s); the emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { chooseAsyncRing } from '../compiler/backends/cuda/conv-mma-wgrad-async-ring.js';
import { changedKernels, compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const CLASSES = 3;
const spec = (c: number, h: number, w: number) => `model wgrad_dynamic {
  input 16x${h}x${w}
  conv(16, ${c}, 1, 1, 1, 1, 0, 0)  bn(${c})  relu
  conv(${c}, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 32, 1, 1, 1, 1, 0, 0)  bn(32)  relu
  view(-1)  linear(${32 * h * w}, ${CLASSES})  logsoftmax
}`;
const DYNAMIC_RING = /dY' copied by cp\.async \((\d+)-byte chunks\) into a 4-stage ring of slice windows \((\d+) B a stage, in dynamic shared memory\)/;
const OFF = { wgradDynamicRing: false } as const;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-dynamic-ring.test.ts: the emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k]));

describe('the dynamic ring (choice and compiled kernels, no build)', () => {
  it('4 stages in dynamic shared memory only where two do not fit in static shared memory, and only while 48 KiB + the ring fit sm_80\'s 163 KiB', () => {
    expect(chooseAsyncRing(784, 128, 40 * 1024, true)).toEqual({ stages: 4, rows: 128, chunk: 8, window: 40, dynamic: true });
    expect(chooseAsyncRing(784, 128, 40 * 1024)).toBeUndefined(); // without the switch, as before
    expect(chooseAsyncRing(784, 128, 16384, true)).toEqual({ stages: 3, rows: 128, chunk: 8, window: 40 }); // static still fits
    expect(chooseAsyncRing(784, 256, 40 * 1024, true)).toEqual({ stages: 4, rows: 256, chunk: 8, window: 40, dynamic: true }); // 48 + 80 KiB
    expect(chooseAsyncRing(784, 384, 40 * 1024, true)).toBeUndefined(); // 48 + 120 KiB
    expect(chooseAsyncRing(49, 128, 40 * 1024, true)).toBeUndefined(); // 7×7: no aligned copy
  });

  for (const [c, h, w, bytes] of [[16, 8, 8, '16'], [32, 6, 5, '4']] as const) {
    it(`${c} → 128, 3×3 on ${h}×${w}: the 3×3's weight gradient takes the dynamic ring (${bytes}-byte copies) and asks its launch for it; off, neither, and only it changes`, () => {
      const on = compileEmuVariant(spec(c, h, w), 'wgrad_dynamic.model'), off = compileEmuVariant(spec(c, h, w), 'wgrad_dynamic.model', OFF);
      const k4 = wgrads(on).get('k4_conv_wgrad_fused')!;
      const ring = k4.fused?.match(DYNAMIC_RING);
      expect(ring?.[1]).toBe(bytes);
      expect(k4.launch.shared).toBe(4 * Number(ring?.[2]));
      expect(k4.body.join('\n')).toContain('NINCC_DYNAMIC_SHARED(nincc::bf16, bring)');
      for (const [name, k] of wgrads(off)) {
        expect(k.fused ?? '', name).not.toMatch(DYNAMIC_RING);
        expect(k.launch.shared, name).toBe(0);
      }
      expect(changedKernels(on, off)).toEqual(['k4_conv_wgrad_fused']);
    });
  }

  it("NIN: the 28×28 5×5 and 14×14 3×3 weight gradients (k11, k21) take it, 40 KiB of dynamic shared memory each (k21's windows 40 positions apart for its B fragments: conv-mma-wgrad-taps-ring.ts); no other launch asks for any but the 7×7 weight gradients' image slots", () => {
    const nin = compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model');
    const asking = (nin.cuda?.kernels ?? []).filter((k) => k.launch.shared > 0).map((k) => [k.name, k.launch.shared]);
    // The 7×7 ones (no aligned 4-byte copy) ask for cp.async image slots instead: k31's dY' (test/emu-conv-mma-wgrad-async-image-ring.test.ts),
    // k34's and k37's operands (test/emu-conv-mma-wgrad-image-rings.test.ts).
    expect(asking).toEqual([['k37_conv_wgrad_fused', 100352], ['k34_conv_wgrad_fused', 112896], ['k31_conv_wgrad_fused', 50176], ['k21_conv_wgrad_fused', 40960], ['k11_conv_wgrad_fused', 40960]]);
    for (const [name] of asking.slice(3)) expect(wgrads(nin).get(String(name))!.fused, String(name)).toMatch(DYNAMIC_RING);
  });
});

describe.runIf(FULL)('the dynamic ring on emu (NINCC_TEST_FULL=1)', () => {
  for (const [c, h, w, seed] of [[16, 8, 8, 411], [32, 6, 5, 431]] as const) {
    it(`${c} → 128 on ${h}×${w}: one training step's gradients and SGD steps bitwise those of B staged without the ring`, async () => {
      await expectSameVariants({ spec: spec(c, h, w), file: 'wgrad_dynamic.model', input: [16, h, w], classes: CLASSES, on: {}, off: OFF, live: 'conv4.weight' }, seed);
    }, 900_000);
  }
});
