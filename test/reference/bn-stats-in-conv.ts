// The cpuBnStatsInConv opt-in (compiler/ablations.ts OPT_INS): cpu training's BN forwards after implicit-GEMM convs
// take their statistics from the per-tile sums the convs' epilogues record (runtime bn_moments.h, conv_gemm.h).
// A spec whose BNs see whole 12-row, 32-pixel tiles (the epilogue's register path) and tiles across images (its
// read-back path), one closing a residual block; the float64-reference suite on an opt-in build, and its A/B
// against the default build. Run by test/cpu-train-bn-stats-in-conv.test.ts (2 threads: all of CI's) and
// test/cpu-train-bn-stats-in-conv-1thread.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, expectClose, expectGradientsClose, loadBuilt, randomImages, randomizeAffine, randomLabels, removeBuilds, rng, type Built } from './artifacts.js';
import { expectGradientsMatch, expectTrainForwardMatches } from './zoo-suite.js';

export const BN_STATS_IN_CONV = `
model bn_stats_in_conv {
  input 3x12x12
  conv(3, 24, 3, 3, 1, 1, 1, 1)  bn(24)  relu                # 144 positions: 4 whole tiles and one across images
  conv(24, 12, 1, 1)  bn(12)  relu
  residual {
    branch { conv(12, 12, 1, 1)  bn(12) }                    # closes the block: the BN adds the shortcut
    branch { identity }
  }
  relu
  maxpool(2, 2)
  conv(12, 13, 1, 1)  bn(13)  relu                           # 36 positions, a part panel of rows
  view(-1)  linear(13 * 6 * 6, 5)  logsoftmax
}
`;

/** The suite on `threads`; with `ab`, also the default build and the A/B of the two (bounded: other sums, other order). */
export function bnStatsInConvSuite(threads: string, ab: boolean): void {
  let optIn: Built;
  let plain: Built | undefined;
  beforeAll(() => {
    optIn = buildSpec('bn_stats_in_conv', BN_STATS_IN_CONV, 4, { cpuBnStatsInConv: true });
    if (ab) plain = buildSpec('bn_stats_in_conv_default', BN_STATS_IN_CONV, 4);
  });
  afterAll(() => removeBuilds());

  describe(`BN statistics from the conv epilogues (${threads})`, () => {
    it('forwardBackward: output, loss and running statistics match the float64 reference on a poisoned arena', () => expectTrainForwardMatches(optIn, 'bn_stats_in_conv'));

    it('gradients of every parameter match central differences of the reference loss', () => expectGradientsMatch(optIn, 'bn_stats_in_conv'));

    if (ab)
      it('A/B: the opt-in build against the default one, the same weights and batch: output, loss, running statistics and gradients within 1e-5', async () => {
        const a = await loadBuilt(plain!, 31);
        const b = await loadBuilt(optIn, 31);
        try {
          const next = rng(31);
          randomizeAffine(a, next);
          for (const t of a.tensorNames()) b.setTensor(t, a.getTensor(t));
          const n = 4;
          const images = randomImages(optIn.model, n, next);
          const labels = randomLabels(optIn.model, n, next);
          const [ra, rb] = [await a.forwardBackward(images, labels), await b.forwardBackward(images, labels)];
          expectClose(rb.output, ra.output, 1e-5, 'A/B output');
          expectClose([rb.loss], [ra.loss], 1e-5, 'A/B loss');
          for (const s of a.info.state) expectClose(b.getTensor(s.name), a.getTensor(s.name), 1e-5, `A/B ${s.name}`);
          expectGradientsClose(b, a, 1e-5, 'A/B');
        } finally {
          a.dispose();
          b.dispose();
        }
      });
  });
}
