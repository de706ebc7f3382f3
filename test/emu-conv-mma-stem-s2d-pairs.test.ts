// The space-to-depth stem's halo staging in bf16 pairs (compiler/backends/cuda/conv-mma-stem-s2d.ts, switch
// `stemS2dPairStores`): a lane reads two cell rows and trades one value with its neighbour by shfl_xor, so that it
// stores one 4-byte pair of adjacent slots, not one 2-byte slot. The same values land in the same slots, so a build with
// the pairs and one without must agree bitwise. CI checks the compiled kernels; NINCC_TEST_FULL=1 runs one training
// step, three SGD steps and inference on emu against the switch-off build (batch 3 on grids for 4: the lanes past the
// live items, and a last group of one k-step whose staging is half as long).
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (3→8 11×11/4, pad 5) on an odd plane, then a BN, a ReLU and a 3×3: the stem's forward feeds every gradient. */
const SPEC = `model spairs { input 3x37x29  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu  conv(8, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

/** The stem's forward kernels (training and inference). */
const stemForwards = (c: Compiled) => (c.cuda?.kernels ?? []).filter((k) => /^k1_conv_(infer|fwd_fused)$/.test(k.name));

describe('the space-to-depth stem\'s halo staging in pairs (compiled, no build)', () => {
  it('the stem\'s forwards trade by shfl_xor and store bf16 pairs over whole warps; stemS2dPairStores: false stores 2 bytes a lane; the same tiles', () => {
    const on = stemForwards(compileEmuVariant(SPEC, 'spairs.model')), off = stemForwards(compileEmuVariant(SPEC, 'spairs.model', { stemS2dPairStores: false }));
    expect(on.map((k) => k.name).sort()).toEqual(['k1_conv_fwd_fused', 'k1_conv_infer']);
    for (const k of on) {
      const body = k.body.join('\n');
      expect(body, k.name).toContain('const float traded = nincc::shfl_xor(b % 2 == 0 ? v1 : v0, 1);');
      expect(body, k.name).toMatch(/for \(int q = t; q < \(\(k0 >= 288 \? \d+ : \d+\)\+? ?\+ 31\) \/ 32 \* 32; q \+= 128\)/);
      expect(body, k.name).toContain('const int slot = b % 2 == 0 ? m * 4 + b : (m + 1) * 4 + b - 1;');
      expect(body, k.name).not.toContain('nincc::to_bf16(x_v)');
    }
    expect(off.map((k) => k.name).sort()).toEqual(['k1_conv_fwd_fused', 'k1_conv_infer']);
    for (const k of off) {
      const body = k.body.join('\n');
      expect(body, k.name).not.toContain('traded');
      expect(body, k.name).toContain('nincc::to_bf16(x_v)');
      expect(k.tile, k.name).toBe(on.find((o) => o.name === k.name)?.tile);
    }
  });
});

if (!FULL) console.warn('test/emu-conv-mma-stem-s2d-pairs.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');
describe.runIf(FULL)('the space-to-depth stem\'s halo pairs on emu (NINCC_TEST_FULL=1)', () => {
  it('NIN\'s stem on 3×37×29: one step\'s gradients, three SGD steps and inference are bitwise the 2-byte staging\'s', async () => {
    await expectSameVariants({ spec: SPEC, file: 'spairs.model', input: [3, 37, 29], classes: CLASSES, on: {}, off: { stemS2dPairStores: false }, live: 'conv1.weight' }, 113);
  }, 900_000);
});
