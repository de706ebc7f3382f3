// The few-channels strided stem's weight gradient with as many batch splits as fill the GPU's waves, summed by a
// wgrad_reduce launch (lower/train-fused.ts stemWaveSplits), against the folded one (its last split block sums them).
// CI, without a build: the compiled programs (NIN's stem at batch 128 on an H100: 44 splits at the one resident block
// a build without ptxas assumes, where the lowering's cap was 32; a wgrad_reduce step, no ticket; its input halo staged
// on the batch's grid of 128-position stagings, whose stores are conflict-free where a split's own were not). NINCC_TEST_FULL=1:
// on grids for 4 both take 4 splits, and on a 16×8 output plane a batch of 3's 384 positions split into 96 each, whole
// slices too (the wave-split ranges: conv-mma-grad.ts splitRange), so dW sums the same partials in the same order: one
// step's gradients, SGD steps and inference bitwise the switch-off build's on NIN's stem over an odd plane.
import { describe, expect, it } from 'vitest';
import { compileSpec, compileModel, type Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';
import type { Ablations } from '../compiler/ablations.js';
import { stemWgradHalo } from '../compiler/backends/cuda/conv-mma-stem-wgrad-layout.js';
import { stagingStoreConflicts } from '../compiler/backends/cuda/conv-mma-wgrad-halo-banks.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (pad 5) on an odd plane (a 16×8 output) with a BN (dY' rebuilt in the wgrad's staging) and a ReLU. */
const SPEC = `model wave_stem { input 3x61x29  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu  view(-1)  linear(${96 * 16 * 8}, ${CLASSES})  logsoftmax }`;
/** NIN's stem block at its own plane, with a 1×1 of 3000 channels so that the other weight gradients are larger (the stem's default 32 splits, as in NIN). */
const NIN_STEM = `model nin_stem { input 3x224x224  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu  maxpool(3, 3, 2, 2, 1, 1)  avgpool(28, 28, 1, 1)  conv(96, 3000, 1, 1, 1, 1, 0, 0)  view(-1)  linear(3000, ${CLASSES})  logsoftmax }`;

/** The training program's steps of layer 1: its weight gradient's splits and flags, and whether a wgrad_reduce follows. */
function stemSteps(c: Compiled) {
  const steps = c.lowered.programs.find((p) => p.name === 'train_forward_backward')!.steps.filter((s) => s.layer === 1);
  const wgrad = steps.find((s) => s.op === 'conv_wgrad_fused')!;
  const reduce = steps.find((s) => s.op === 'wgrad_reduce');
  return { splits: wgrad.consts.splits, lastSplit: wgrad.consts.lastSplit === true, waveSplits: wgrad.consts.waveSplits === true, reduceSplits: reduce?.consts.splits };
}

const atBatch128 = (ablations: Ablations) => {
  const r = compileSpec(NIN_STEM, 'nin_stem.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 128, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations, gpu: 'h100' });
};

describe("the stem weight gradient's wave splits (compiled, no build)", () => {
  it('NIN b128 on an H100: 44 splits (3 tiles × 44 = 132 blocks at R 1) summed by wgrad_reduce; stemWaveSplits: false, the folded 32', () => {
    expect(stemSteps(atBatch128({}))).toEqual({ splits: 44, lastSplit: false, waveSplits: true, reduceSplits: 44 });
    expect(stemSteps(atBatch128({ stemWaveSplits: false }))).toEqual({ splits: 32, lastSplit: true, waveSplits: false, reduceSplits: undefined });
  });
  it("NIN b128: the wave splits' input halo stages the batch's grid of 128-position stagings, whose stores are free of bank conflicts", () => {
    const body = (c: Compiled) => c.cuda!.source.text.split(' k1_conv_wgrad_fused(')[1].split('NINCC_EXPORT')[0];
    // Row tiles across channels (stemWgradChannelTiles: false): the one-channel tiles stage 16 slices (test/emu-stem-wgrad-channel-tiles.test.ts).
    const waves = atBatch128({ stemWgradChannelTiles: false }), folded = atBatch128({ stemWaveSplits: false, stemWgradChannelTiles: false });
    // conv-mma-wgrad-halo.ts haloStaging: from the grid's staging that holds the split's first slice, then at every multiple of 128.
    expect(body(waves)).toContain('if (j0 == lo || j0 % 128 == 0) {');
    expect(body(waves)).toContain('const long long js = j0 / 128 * 128;');
    expect(body(waves)).toContain('&& at >= skipped');  // loading from the split's first position's rows, as `copied` ends at its last's
    expect(body(folded)).toContain('if ((j0 - lo) % 128 == 0) {');
    // Why: the stem's halo (its exact-plane layout, 128 positions a staging; NIN's 128×96 tile of 4 warps) stores a
    // staging that starts off that grid with bank conflicts. Stagings counted from each split's first slice (i15a's
    // kernel: 174 conflicts in the profile at 88 splits) against the grid's, at the compiled split count.
    const g = { C: 3, H: 224, W: 224, P: 56, Q: 56, R: 11, S: 11, sh: 4, sw: 4, ph: 5, pw: 5 }, PQ = g.P * g.Q, BK = 32;
    const halo = stemWgradHalo(g, { bm: 128, bn: 96, warpsM: 2, warpsN: 2, nt: 6, mt: 4 }, 128, true)!;
    expect(halo.positions).toBe(128);
    // The kernel's halo is this one: its channels, pitch and plane residue.
    expect(body(waves)).toContain(`up to ${halo.channels} channel planes at a pitch ≤ ${halo.plane} padded elements`);
    expect(body(waves)).toContain(`plane = length + ((${halo.layout.planeResidue} - length) & 63);`);
    const splits = stemSteps(waves).splits as number, slices = (128 * PQ) / BK;
    let fromSplit = 0, onGrid = 0;
    for (let s = 0; s < splits; s++) {
      const lo = Math.floor((slices * s) / splits) * BK, hi = Math.floor((slices * (s + 1)) / splits) * BK;
      for (let j = lo; j < hi; j += halo.positions) fromSplit += stagingStoreConflicts(g, halo, 128, j % PQ);
      for (let j = lo; j < hi; j += BK) if (j === lo || j % halo.positions === 0) onGrid += stagingStoreConflicts(g, halo, 128, (Math.floor(j / halo.positions) * halo.positions) % PQ);
    }
    expect(fromSplit).toBeGreaterThan(0);
    expect(onGrid).toBe(0);
  });
  it('a batch of 4: 4 splits either way; no GPU (no wave choice): the folded default', () => {
    expect(stemSteps(compileEmuVariant(SPEC, 'wave_stem.model', {}, 'bf16', 'h100'))).toEqual({ splits: 4, lastSplit: false, waveSplits: true, reduceSplits: 4 });
    expect(stemSteps(compileEmuVariant(SPEC, 'wave_stem.model', { stemWaveSplits: false }, 'bf16', 'h100'))).toEqual({ splits: 4, lastSplit: true, waveSplits: false, reduceSplits: undefined });
    expect(stemSteps(compileEmuVariant(SPEC, 'wave_stem.model'))).toEqual({ splits: 4, lastSplit: true, waveSplits: false, reduceSplits: undefined });
  });
});

if (!FULL) console.warn('test/emu-stem-wave-splits.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled programs');
describe.runIf(FULL)("the stem weight gradient's wave splits on emu, bitwise the folded sum (NINCC_TEST_FULL=1)", () => {
  it("NIN's stem on 3×61×29 for an H100: one step's gradients, SGD steps and inference are bitwise the switch-off build's", async () => {
    await expectSameVariants({ spec: SPEC, file: 'wave_stem.model', input: [3, 61, 29], classes: CLASSES, on: {}, off: { stemWaveSplits: false }, live: 'conv1.weight', gpu: 'h100' }, 131);
  }, 1_500_000);
});
