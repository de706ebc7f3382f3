// The few-channels stem's weight-gradient input halo (compiler/backends/cuda/conv-mma-stem-wgrad-layout.ts) against
// the per-tap gather it replaces (`stemWgradHalo: false`, and `stemS2dWgrad: false`, as the space-to-depth form reads less than a gather): the halo holds the values the gather reads, rounded to bf16
// once as before, in the same k order, so the two builds must agree bitwise — one step's every gradient and three SGD
// steps, with NINCC_TEST_FULL=1. CI checks without a build: NIN's stem layout (the row-crossing pitch and residue, 128
// positions a staging, within static shared memory beside the operand tiles) and which wgrad kernels take the halo;
// the halo runs on emu in CI through test/emu-conv-mma-grad.test.ts, whose 11×11/4 stem is held to the bf16 bound.
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { stemCrossingLayout, stemWgradHalo } from '../compiler/backends/cuda/conv-mma-stem-wgrad-layout.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

const CLASSES = 3;
/** Each case: its spec and input. */
const CASES = [
  { name: 'stem_odd', input: [3, 37, 29], spec: `model stem_odd { input 3x37x29  conv(3, 8, 11, 11, 4, 4, 5, 5)  bn(8)  relu  conv(8, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }` },
  { name: 'stem_7x7', input: [3, 23, 19], spec: `model stem_7x7 { input 3x23x19  conv(3, 12, 7, 7, 2, 2, 3, 3)  relu  conv(12, 6, 3, 3, 2, 2, 1, 1)  view(-1)  linear(${6 * 6 * 5}, ${CLASSES})  logsoftmax }` },
] as const;

function compiled(spec: string, gather: boolean): Compiled {
  const r = compileSpec(spec, 'stem.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: gather ? { stemWgradHalo: false, stemS2dWgrad: false } : {} });
}

/** Each bf16 conv weight-gradient kernel's tile words, by kernel name. */
const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_wgrad_fused$/.test(k.name)).map((k) => [k.name, k.tile ?? '']));

describe('the stem wgrad halo (no build)', () => {
  const NIN_STEM = { C: 3, H: 224, W: 224, P: 56, Q: 56, R: 11, S: 11, sh: 4, sw: 4, ph: 5, pw: 5 };
  const TILE = { bm: 128, bn: 96, warpsM: 4, warpsN: 2, nt: 6 }; // the 96-channel stem's wgrad tile (conv-mma-tile.ts)

  it('NIN\'s stem: the row-crossing layout (pitch 232, planes ≡ 56 mod 64), 128 positions a staging, within static shared memory beside the tiles', () => {
    expect(stemCrossingLayout(NIN_STEM)).toEqual({ rows: 231, columns: 232, imageGap: 0, planeResidue: 56, exactPlane: true });
    const halo = stemWgradHalo(NIN_STEM, TILE, 256, true);
    expect(halo).toMatchObject({ positions: 128, channels: 2, plane: 6968, bytes: 28368 });
    expect(halo!.bytes + (TILE.bm + TILE.bn) * 32 * 2).toBeLessThanOrEqual(48 * 1024);
    // A conv that is no stem (many channels, or stride 1) takes none of its own.
    expect(stemWgradHalo({ ...NIN_STEM, C: 96 }, TILE, 256, true)).toBeUndefined();
    expect(stemWgradHalo({ ...NIN_STEM, sh: 1, sw: 1, P: 214, Q: 214 }, TILE, 256, true)).toBeUndefined();
  });

  it('stem_odd: the stem\'s weight gradient takes the halo, the gathering build does not', () => {
    const halo = wgrads(compiled(CASES[0].spec, false)), gather = wgrads(compiled(CASES[0].spec, true));
    expect(halo.get('k1_conv_wgrad_fused')).toMatch(/input halo \d+ planes/);
    expect(gather.get('k1_conv_wgrad_fused')).not.toMatch(/halo/);
  });
});

if (process.env.NINCC_TEST_FULL !== '1') console.warn('test/emu-conv-mma-stem-wgrad-halo.test.ts: the halo and gathering builds and their bitwise comparison run with NINCC_TEST_FULL=1; CI checks the layout and the compiled kernels');
describe.runIf(process.env.NINCC_TEST_FULL === '1')('the stem wgrad halo on emu, bitwise the gather (NINCC_TEST_FULL=1)', () => {
  for (const c of CASES) {
    it(`${c.name}: one step's gradients and three SGD steps are bitwise those of the gather`, async () => {
      const builds = buildEmuVariants(c.spec, `${c.name}.model`, { halo: {}, gather: { stemWgradHalo: false, stemS2dWgrad: false } });
      const n = 3; // below the grids' maximum of 4
      const next = rng(71);
      const images = uniform(n * c.input[0] * c.input[1] * c.input[2], -1.5, 1.5, next);
      const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % CLASSES);
      const [halo, gather] = await Promise.all([builds.dirs.halo, builds.dirs.gather].map((d) => load(d, { device: 'emu', seed: 29 })));
      try {
        randomizeAffine(halo, rng(73));
        const grads = await expectSameGradients(halo, gather, images, labels);
        expect(grads.length).toBeGreaterThanOrEqual(6);
        expect(halo.getGradient('conv1.weight').some((v) => v !== 0)).toBe(true); // the comparison means something
        await expectSameSteps(halo, gather, images, labels, n);
      } finally {
        await Promise.all([halo, gather].map((m) => m.dispose()));
        builds.remove();
      }
    }, 300_000);
  }
});
