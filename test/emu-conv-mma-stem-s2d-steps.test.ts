// The space-to-depth stem's forward without its padded k-steps (compiler/backends/cuda/conv-mma-stem-s2d.ts s2dLastSteps,
// switch `stemS2dSteps`): NIN's 48 live channels in two 32-channel groups leave the second group's slices one live mma
// k-step of two, so they run one (a reduction of 432, not 576) and stage only its slots. Skipping an MMA of zeros keeps
// every accumulator bitwise, so the two builds must agree bitwise. CI, without a build: which forms skip, the reduction,
// and the compiled kernels (the switch on and off); the skip runs on emu in CI through test/emu-conv-mma-grad.test.ts's
// 11×11/4 chain (held to the bf16 bound of float64). NINCC_TEST_FULL=1: one step's gradients, three SGD steps and
// inference bitwise the switch-off build's, on NIN's stem over an odd plane.
import { describe, expect, it } from 'vitest';
import { s2dForm, s2dLastSteps, s2dReduction, s2dSteps } from '../compiler/backends/cuda/conv-mma-stem-s2d.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';
import type { Compiled } from '../compiler/pipeline.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (pad 5) on an odd plane, then a BN, a ReLU and a 3×3: the stem's forward feeds every gradient. */
const SPEC = `model steps { input 3x37x29  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu  conv(8, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

/** The stem's forward kernels (training and inference): their words and bodies. */
const stemForwards = (c: Compiled) => (c.cuda?.kernels ?? []).filter((k) => /^k1_conv_(infer|fwd_fused)$/.test(k.name));

describe('the space-to-depth stem\'s live k-steps (no build)', () => {
  const nin = { C: 3, H: 224, W: 224, K: 96, P: 56, Q: 56, R: 11, S: 11, sh: 4, sw: 4, ph: 5, pw: 5 };

  it('NIN\'s form: the second group\'s slices run 1 k-step, a reduction of 432 for 363 useful; off, 576; a form whose groups are full skips none', () => {
    const s = s2dForm(nin);
    expect(s2dLastSteps(s, {})).toBe(1);
    expect(s2dReduction(s, {})).toBe(432);
    expect(s2dSteps(s, {})).toBe('(k0 >= 288 ? 1 : 2)'); // group 1 starts at slice 9 of 18: k0 = 9·32
    expect(s2dLastSteps(s, { stemS2dSteps: false })).toBeUndefined();
    expect(s2dReduction(s, { stemS2dSteps: false })).toBe(576);
    // RGBA 11×11/4: 64 live channels, two full groups; a 2-channel 8×8/4: 32, one full group.
    for (const C of [4, 2]) expect(s2dLastSteps(s2dForm({ ...nin, C }), {}), `C = ${C}`).toBeUndefined();
    // A 1-channel 11×11/4 (16 live channels): its one group runs 1 k-step.
    expect(s2dReduction(s2dForm({ ...nin, C: 1 }), {})).toBe(16 * 9);
  });

  it('the stem\'s forwards skip the second k-step of group 1 and stage only its first 16 slots and B\'s first 2 chunks; stemS2dSteps: false runs both', () => {
    const on = stemForwards(compileEmuVariant(SPEC, 'steps.model')), off = stemForwards(compileEmuVariant(SPEC, 'steps.model', { stemS2dSteps: false }));
    expect(on.map((k) => k.name).sort()).toEqual(['k1_conv_fwd_fused', 'k1_conv_infer']);
    expect(off.length).toBe(2);
    for (const k of on) {
      expect(k.fused, k.name).toMatch(/48 channels, padded to 64; reduction 432 for 363 useful, the last group's k-steps of padding skipped \(of 576\)/);
      expect(k.body.join('\n'), k.name).toContain('if (ks >= (k0 >= 288 ? 1 : 2)) break;');
      expect(k.body.join('\n'), k.name).toMatch(/q < \(k0 >= 288 \? \d+ : \d+\)/);
      expect(k.body.join('\n'), k.name).toContain('if (chunk >= 2 * (kk >= 288 ? 1 : 2)) continue;'); // B's chunks of the skipped k-step, not copied by the B ring (stemS2dBRing)
    }
    for (const k of off) {
      expect(k.fused, k.name).toMatch(/reduction 576 for 363 useful\)/);
      expect(k.body.join('\n'), k.name).not.toMatch(/if \(ks >= |if \(chunk >= /);
    }
  });
});

if (!FULL) console.warn('test/emu-conv-mma-stem-s2d-steps.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the reduction and the compiled kernels (the skip runs on emu in test/emu-conv-mma-grad.test.ts)');
describe.runIf(FULL)('the space-to-depth stem\'s live k-steps on emu, bitwise all k-steps (NINCC_TEST_FULL=1)', () => {
  it('NIN\'s stem on 3×37×29: one step\'s gradients, three SGD steps and inference are bitwise the switch-off build\'s', async () => {
    await expectSameVariants({ spec: SPEC, file: 'steps.model', input: [3, 37, 29], classes: CLASSES, on: {}, off: { stemS2dSteps: false }, live: 'conv1.weight' }, 97);
  }, 600_000);
});
