// The weight gradients' plain bf16 dY' through a cp.async ring of slice windows (compiler/backends/cuda/conv-mma-wgrad-async-ring.ts,
// on by default) against B staged from global memory or the image ring (`wgradAsyncRing: false`): the windows hold the
// raw bf16 and each lane of the staging reads from them what its global load read, so every gradient, the biases too,
// must agree bitwise, and so must the SGD steps after. The specs: a 1×1 of 128 input channels and a 3×3 after it (the
// grad_rebuild pass gives both plain bf16 dY'), on 7×8 planes (56 positions: 16-byte copies) and on 5×6 (30: 4-byte
// copies), a batch of 3 on grids for 4 (a split's last slice and image cut short, slices that run into the next image,
// splits that start off the chunk grid). CI checks the choice and the compiled kernels (no build, a few s); the emu
// builds and the bitwise comparisons run with NINCC_TEST_FULL=1.
import type { Ablations } from '../compiler/ablations.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { chooseAsyncRing } from '../compiler/backends/cuda/conv-mma-wgrad-async-ring.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const CLASSES = 3;
const spec = (h: number, w: number) => `model wgrad_async {
  input 16x${h}x${w}
  conv(16, 128, 1, 1, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 64, 1, 1, 1, 1, 0, 0)  bn(64)  relu
  conv(64, 32, 3, 3, 1, 1, 1, 1)  bn(32)  relu
  view(-1)  linear(${32 * h * w}, ${CLASSES})  logsoftmax
}`;
const RING = /dY' copied by cp\.async \((\d+)-byte chunks\) into a (\d)-stage ring/;
// The 1×1 weight gradients rebuild dY' themselves by default (rebuildInWgrad): the ring is for a plain dY', so every
// build here keeps the grad_rebuild passes that give the 1×1s one.
const PLAIN = { rebuildInWgrad: false } as const;
const OFF = { ...PLAIN, wgradAsyncRing: false } as const;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-async-ring.test.ts: the emu builds and the bitwise comparisons run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k]));

describe('the async ring (choice and compiled kernels, no build)', () => {
  it('the widest copy that divides the plane, the most stages (2–4) that fit; none on odd planes or where two stages do not fit', () => {
    expect(chooseAsyncRing(784, 128, 16384)).toEqual({ stages: 3, rows: 128, chunk: 8, window: 40 });
    expect(chooseAsyncRing(196, 64, 0)).toEqual({ stages: 4, rows: 64, chunk: 4, window: 36 });
    expect(chooseAsyncRing(30, 32, 0)).toEqual({ stages: 4, rows: 32, chunk: 2, window: 34 });
    expect(chooseAsyncRing(49, 128, 0)).toBeUndefined(); // NIN's 7×7: 98-byte planes, no copy of 4 bytes stays aligned
    expect(chooseAsyncRing(784, 128, 40 * 1024)).toBeUndefined();
  });

  for (const [h, w, bytes] of [[7, 8, '16'], [5, 6, '4']] as const) {
    it(`${h}×${w}: the 1×1 with plain dY' and the 3×3 take the ring (${bytes}-byte copies); wgradAsyncRing: false neither, and only they change`, () => {
      const on = wgrads(compileEmuVariant(spec(h, w), 'wgrad_async.model', PLAIN)), off = wgrads(compileEmuVariant(spec(h, w), 'wgrad_async.model', OFF));
      for (const k of ['k4', 'k7']) expect(on.get(`${k}_conv_wgrad_fused`)!.fused?.match(RING)?.[1], k).toBe(bytes);
      expect(on.get('k1_conv_wgrad_fused')!.fused).not.toMatch(RING); // its dY' is rebuilt from a dBN in the staging
      for (const [name, k] of off) expect(k.fused ?? '', name).not.toMatch(RING);
      const all = (c: Compiled) => new Map((c.cuda?.kernels ?? []).map((k) => [k.name, JSON.stringify(k.body)]));
      const a = all(compileEmuVariant(spec(h, w), 'wgrad_async.model', PLAIN)), b = all(compileEmuVariant(spec(h, w), 'wgrad_async.model', OFF));
      expect([...a].filter(([name, body]) => body !== b.get(name)).map(([name]) => name).sort()).toEqual(['k4_conv_wgrad_fused', 'k7_conv_wgrad_fused']);
    });
  }

  it("NIN: the weight gradients with a plain dY' on planes of whole 4-byte copies take the ring where two stages fit", () => {
    // In static shared memory (the k×k ones whose ring goes to dynamic shared memory: emu-conv-mma-wgrad-dynamic-ring.test.ts).
    const taking = (ablations?: Ablations) =>
      [...wgrads(compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model', ablations))]
        .filter(([, k]) => RING.test(k.fused ?? '') && !k.fused?.includes('in dynamic shared memory'))
        .map(([name]) => name)
        .sort();
    expect(taking(PLAIN)).toEqual(NIN_RINGS);
    expect(taking()).toEqual([]); // by default those four rebuild dY' in their own staging (rebuildInWgrad)
  });
});

const NIN_RINGS = ['k14_conv_wgrad_fused', 'k17_conv_wgrad_fused', 'k24_conv_wgrad_fused', 'k27_conv_wgrad_fused'];

describe.runIf(FULL)('the async ring on emu (NINCC_TEST_FULL=1)', () => {
  for (const [h, w, seed] of [[7, 8, 311], [5, 6, 331]] as const) {
    it(`${h}×${w}: one training step's gradients and SGD steps bitwise those of B staged without the ring`, async () => {
      await expectSameVariants({ spec: spec(h, w), file: 'wgrad_async.model', input: [16, h, w], classes: CLASSES, on: PLAIN, off: OFF, live: 'conv7.weight' }, seed);
    }, 900_000);
  }
});
