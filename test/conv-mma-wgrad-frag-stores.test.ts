// The stores of a k×k weight gradient's input-halo staging (compiler/backends/cuda/conv-mma-wgrad-halo.ts
// haloStaging, priced by conv-mma-wgrad-halo-banks.ts stagingStoreConflicts): free of bank conflicts for every
// staging start, also where a split's end cuts a staging of several slices short. The copy loop once ran over the
// cut staging's `copied` elements a channel, so its stores skipped plane − copied elements at each plane's end
// (up to most of a plane) and met bank conflicts: the spec below, 3 images of 7×5 split 3 ways (35 positions a
// split, every 256-position staging cut), is the witness. CI prices the stores in TypeScript (~1 s); with
// NINCC_TEST_FULL=1 the emulator's profile counts the built kernels' conflicts on the witness (~2 min cold).
import { describe, expect, it } from 'vitest';
import { chooseHaloSpan } from '../compiler/backends/cuda/conv-mma-wgrad-halo-span.js';
import { stagingStoreConflicts } from '../compiler/backends/cuda/conv-mma-wgrad-halo-banks.js';
import { slicePlane, type Geometry, type Halo } from '../compiler/backends/cuda/conv-mma-wgrad-halo.js';
import { profileKernels } from './reference/wgrad-frag-profile.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/conv-mma-wgrad-frag-stores.test.ts: the emulator profile of the witness runs with NINCC_TEST_FULL=1; CI prices the stores in TypeScript');

const WITNESS = `model halo_cut {
  input 4x7x5
  conv(4, 9, 3, 3, 1, 1, 1, 1)  bn(9)  relu
  conv(9, 14, 5, 5, 1, 1, 2, 2)  bn(14)  relu
  conv(14, 6, 3, 3, 1, 1, 1, 1)
  view(-1)  linear(${6 * 7 * 5}, 3)  logsoftmax
}`;
const same = { H: 7, W: 5, P: 7, Q: 5, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
// Its 3×3 weight gradients at batch 3 (the profile's build): 64×16 and 128×8 tiles of 128 threads, 3 splits.
const WITNESS_LAYERS = [
  { g: { C: 4, ...same }, bm: 64 },
  { g: { C: 14, ...same }, bm: 128 },
];

/** Every staging of every split of `n` images in `splits`: its start and the elements its split's positions reach. */
function stagings(g: Geometry, h: Halo, n: number, splits: number): { j0: number; copied: number }[] {
  const total = n * g.P * g.Q, out: { j0: number; copied: number }[] = [];
  for (let s = 0; s < splits; s++) {
    const lo = Math.floor((total * s) / splits), hi = Math.floor((total * (s + 1)) / splits);
    for (let j0 = lo; j0 < hi; j0 += h.positions) {
      const lastRow = Math.floor((Math.min(j0 + h.positions, hi) - 1) / g.Q);
      out.push({ j0, copied: slicePlane(g, h.layout, Math.floor(j0 / g.Q), lastRow).length });
    }
  }
  return out;
}

/** The extra wavefronts of every staging start within an image (a staging's stores depend on nothing else). */
const everyStart = (g: Geometry, h: Halo, threads: number) => Array.from({ length: g.P * g.Q }, (_, j0) => stagingStoreConflicts(g, h, threads, j0)).reduce((a, b) => a + b, 0);

describe('the input halo staging stores (priced, no build)', () => {
  it('the witness: a loop over a cut staging\'s elements meets conflicts, the whole staging\'s loop none', () => {
    for (const { g, bm } of WITNESS_LAYERS) {
      const h = chooseHaloSpan(g, bm, 128, true)!;
      expect(h.positions).toBe(256); // over 7 images: every split's staging is cut
      const cuts = stagings(g, h, 3, 3);
      expect(cuts.every(({ copied }) => copied < slicePlane(g, h.layout, 0, Math.floor((h.positions - 1) / g.Q)).length)).toBe(true);
      const cutLoop = cuts.reduce((sum, { j0, copied }) => sum + stagingStoreConflicts(g, h, 128, j0, copied), 0);
      const wholeLoop = cuts.reduce((sum, { j0 }) => sum + stagingStoreConflicts(g, h, 128, j0), 0);
      expect(cutLoop, `C = ${g.C}`).toBeGreaterThan(0);
      expect(wholeLoop, `C = ${g.C}`).toBe(0);
    }
  });

  it("NIN b128's 5×5 and 3×3 halos (256-tall tiles, 512 threads) and a sweep of small layers: no staging start conflicts", () => {
    const nin: Geometry[] = [
      { C: 96, H: 28, W: 28, P: 28, Q: 28, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 },
      { C: 256, H: 14, W: 14, P: 14, Q: 14, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 },
      { C: 384, H: 7, W: 7, P: 7, Q: 7, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 },
    ];
    for (const g of nin) expect(everyStart(g, chooseHaloSpan(g, 256, 512, true)!, 512), `C = ${g.C}`).toBe(0);
    let priced = 0;
    for (const [H, W] of [[1, 1], [2, 3], [5, 7], [9, 11], [13, 13]])
      for (const k of [3, 5])
        for (const [bm, threads] of [[64, 128], [128, 256], [256, 512]]) {
          const g = { C: 40, H, W, P: H, Q: W, R: k, S: k, sh: 1, sw: 1, ph: (k - 1) / 2, pw: (k - 1) / 2 };
          const h = chooseHaloSpan(g, bm, threads, true);
          if (!h) continue;
          priced++;
          expect(everyStart(g, h, threads), `${H}×${W} ${k}×${k} BM ${bm}`).toBe(0);
        }
    expect(priced).toBeGreaterThan(20);
  });
});

describe.runIf(FULL)('the input halo staging stores on emu (NINCC_TEST_FULL=1)', () => {
  it('the witness at batch 3: the profile counts no bank conflicts in any weight gradient', () => {
    const wgrads = profileKernels(WITNESS, 'halo_cut.model', 3).filter((k) => k.kernel.endsWith('_conv_wgrad_fused'));
    expect(wgrads.map((k) => k.kernel).sort()).toEqual(['k1_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k7_conv_wgrad_fused']);
    for (const k of wgrads) {
      expect(k.counts.shared_store_wavefronts, k.kernel).toBeGreaterThan(0);
      expect(k.counts.shared_bank_conflicts, k.kernel).toBe(0);
    }
  }, 600_000);
});
