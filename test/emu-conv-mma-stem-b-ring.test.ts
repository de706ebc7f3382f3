// The space-to-depth stem's forwards (compiler/backends/cuda/conv-mma-stem-s2d.ts) copy B through the k×k convs' cp.async
// ring (conv-mma-b-ring.ts, switch `stemS2dBRing`): each chunk lands where the plain staging stored it, and the last
// channel group's skipped k-step's chunks are neither copied nor read, so a build with the ring and one without must
// agree bitwise. CI checks the compiled kernels (NIN's stem on an odd plane: which kernels ring, their wait, their
// guard on the skipped chunks, the same tiles); NINCC_TEST_FULL=1 runs one training step, three SGD steps and
// inference on emu against the switch-off build (the 18-slice loop wraps the 3-stage ring mid-group and across the
// groups; batch 3 on grids for 4: whole blocks past the batch).
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (3→8 11×11/4, pad 5) on an odd plane, then a BN, a ReLU and a 3×3: the stem's forward feeds every gradient. */
const SPEC = `model sbring { input 3x37x29  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu  conv(8, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

const RING = /B staged by cp\.async from the bf16 copy in a (\d)-stage ring/;
/** The stem's forward kernels (training and inference). */
const stemForwards = (c: Compiled) => (c.cuda?.kernels ?? []).filter((k) => /^k1_conv_(infer|fwd_fused)$/.test(k.name));

describe('the space-to-depth stem\'s B ring (compiled, no build)', () => {
  it('the stem\'s forwards copy B through the ring, the skipped k-step\'s chunks not copied; stemS2dBRing: false stages B with plain loads; the same tiles', () => {
    const on = stemForwards(compileEmuVariant(SPEC, 'sbring.model')), off = stemForwards(compileEmuVariant(SPEC, 'sbring.model', { stemS2dBRing: false }));
    expect(on.map((k) => k.name).sort()).toEqual(['k1_conv_fwd_fused', 'k1_conv_infer']);
    for (const k of on) {
      const body = k.body.join('\n'), stages = Number(RING.exec(k.fused ?? '')?.[1]);
      expect(stages, k.name).toBeGreaterThanOrEqual(2);
      expect(body, k.name).toContain(`nincc::cp_async_wait_group<${stages - 1}>();`);
      // Group 1 (k ≥ 9·32) runs one k-step: the issue skips chunks 2 and 3 of its slices, and the MMAs the second k-step.
      expect(body, k.name).toContain('if (chunk >= 2 * (kk >= 288 ? 1 : 2)) continue;');
      expect(body, k.name).toContain('if (ks >= (k0 >= 288 ? 1 : 2)) break;');
      expect(body, k.name).not.toMatch(/Stage B from the bf16 copy/);
    }
    expect(off.map((k) => k.name).sort()).toEqual(['k1_conv_fwd_fused', 'k1_conv_infer']);
    for (const k of off) {
      expect(k.fused, k.name).not.toMatch(RING);
      expect(k.body.join('\n'), k.name).toContain('if (chunk >= 2 * (k0 >= 288 ? 1 : 2)) continue;');
      expect(k.tile, k.name).toBe(on.find((o) => o.name === k.name)?.tile);
    }
  });
});

if (!FULL) console.warn('test/emu-conv-mma-stem-b-ring.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');
describe.runIf(FULL)('the space-to-depth stem\'s B ring on emu (NINCC_TEST_FULL=1)', () => {
  it('NIN\'s stem on 3×37×29: one step\'s gradients, three SGD steps and inference are bitwise the plain B staging\'s', async () => {
    await expectSameVariants({ spec: SPEC, file: 'sbring.model', input: [3, 37, 29], classes: CLASSES, on: {}, off: { stemS2dBRing: false }, live: 'conv1.weight' }, 113);
  }, 900_000);
});
