// The inference k×k convs on the tap-major halo (compiler/backends/cuda/conv-mma-taps-halo.ts via conv-mma.ts's
// conv_infer): the prepare program writes a bf16 copy of each k×k conv's (folded) weights in the order its kernel
// reads (lower/infer.ts, conv_weight_bf16), tap-major where the halo applies. A chain with odd planes (9×7, 7×5;
// 128-row blocks span images): a strided stem (gathers) to 20 channels, a 3×3 conv reading them (not a multiple
// of 32: the channel-major halo), a 5×5 pad-2 conv with a BN folded into it, and the output, a 3×3 pad-0 conv
// with 20 output channels (N tiles past the columns), both tap-major. CI: which kernels take the layout, the fallback's words, and the
// switches. With NINCC_TEST_FULL=1 (three emu builds are over CI's budget): the emulated inference of a batch of
// 3 on grids sized for 4 against float64 within the per-element bf16 bound (test/reference/bf16-bound.ts; the
// block epilogues are test/emu-conv-mma-blocks.test.ts's), and `tapsHalo` off bitwise equal to the build
// without the inference copies (bf16Weights off: the kernels before this change).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import type { Ablations } from '../compiler/ablations.js';
import { loadWith, readWeights, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { BF16, U, chainWeights, type Bounded, type Chain, type Conv, convCall, forward, relu, sparseImages, worst } from './reference/bf16-bound.js';

const STEM: Conv = { C: 3, H: 17, W: 13, K: 20, R: 3, S: 3, sh: 2, sw: 2, ph: 1, pw: 1 }; // → 20×9×7 (gathers: strided)
const C20: Conv = { C: 20, H: 9, W: 7, K: 32, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 }; // → 32×9×7: 20 channels, channel-major
const C5X5: Conv = { C: 32, H: 9, W: 7, K: 32, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 }; // → 32×9×7, BN folded: tap-major
const C3X3: Conv = { C: 32, H: 9, W: 7, K: 20, R: 3, S: 3, sh: 1, sw: 1, ph: 0, pw: 0 }; // → 20×7×5, the output: tap-major
const SPEC = `model infer_taps { input 3x17x13  ${convCall(STEM)}  relu  ${convCall(C20)}  relu  ${convCall(C5X5)}  bn(32)  relu  ${convCall(C3X3)} }`;
const CONVS: readonly (readonly [string, Conv])[] = [['conv1', STEM], ['conv3', C20], ['conv5', C5X5], ['conv8', C3X3]];
const FOLDED = { conv: 'conv5', bn: 'bn6' };
const RELU_AFTER = new Set(['conv1', 'conv3', 'conv5']);
const EPS = 1e-5;

function compiled(maxBatch: number, ablations: Ablations = {}): Compiled {
  const r = compileSpec(SPEC, 'infer_taps.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations });
}

/** The fused text of each inference conv and inference weight copy, by kernel name. */
const inferTexts = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|weight_bf16_infer)$/.test(k.name)).map((k) => [k.name, k.fused]));

describe('the inference convs on the tap-major halo (compiled, no build)', () => {
  it('the stride-1 k×k convs with channels in 32s take it from a tap-major copy of their folded weights; 20 channels keep the channel-major halo', () => {
    const texts = inferTexts(compiled(4));
    expect([...texts].filter(([, f]) => /channels innermost/.test(f)).map(([k]) => k).sort()).toEqual(['k5_conv_infer', 'k8_conv_infer']);
    expect([...texts].filter(([, f]) => /tap-major per 32 channels/.test(f)).map(([k]) => k).sort()).toEqual(['k5_conv_weight_bf16_infer', 'k8_conv_weight_bf16_infer']);
    // Every k×k conv has a copy (the stem's and the 20-channel conv's in the channel-major slice order).
    expect([...texts.keys()].filter((k) => k.endsWith('_infer') && k.includes('weight')).sort()).toEqual(['k1_conv_weight_bf16_infer', 'k3_conv_weight_bf16_infer', 'k5_conv_weight_bf16_infer', 'k8_conv_weight_bf16_infer']);
    expect(texts.get('k3_conv_infer')).toMatch(/x staged once per \d+ channels in a shared halo .* \+ channel-major: 20 channels, not a multiple of 32/);
  });

  it('the fold writes the copy from the folded weights, and the switches take the layout (tapsHalo) or the copies (bf16Weights) out', () => {
    const prepare = compiled(4).lowered.programs.find((p) => p.name === 'prepare_infer')!;
    const fold = prepare.steps.find((s) => s.kernel === 'k5_fold_bn')!;
    const copy = prepare.steps.find((s) => s.kernel === 'k5_conv_weight_bf16_infer')!;
    expect(prepare.steps.indexOf(copy)).toBeGreaterThan(prepare.steps.indexOf(fold));
    expect(copy.buffers.w).toBe(fold.buffers.w_out);
    for (const [k, f] of inferTexts(compiled(4, { tapsHalo: false }))) expect(f, k).not.toMatch(/channels innermost|tap-major/);
    const noCopies = compiled(4, { bf16Weights: false });
    expect([...inferTexts(noCopies).keys()].filter((k) => k.includes('weight'))).toEqual([]);
    for (const s of noCopies.lowered.programs.flatMap((p) => p.steps)) if (s.op === 'conv_infer') expect(s.consts, s.kernel).not.toHaveProperty('bf16w');
  });
});

/** The chain's weights (bf16-bound.ts chainWeights: all positive, biases pulling each channel below its mean), its BN's running statistics. */
const CHAIN: Chain = { convs: CONVS, biasPull: { conv1: 1, conv3: 1, conv5: 1, conv8: 0 }, reluAfter: RELU_AFTER, linear: 'none', classes: 0, features: 0 };

/**
 * The chain's inference in float64 with each value's bound. The folded conv's weights are w·γ/√(σ²+ε) in
 * float64; the device rounds them to fp32 and then to bf16 (δ ≤ 2⁻⁸ + 2⁻²³), and its folded bias to fp32 once
 * (≤ 2⁻²⁴ of it, added to the bound).
 */
function inferenceReference(n: number, images: Float32Array, t: Map<string, Float64Array>): Bounded {
  let x: Bounded = { v: Float64Array.from(images), e: new Float64Array(images.length), exact: true };
  for (const [name, c] of CONVS) {
    let w = t.get(`${name}.weight`)!, b = t.get(`${name}.bias`)!, folded = false;
    if (name === FOLDED.conv) {
      const bn = (field: string) => t.get(`${FOLDED.bn}.${field}`)!;
      const g = bn('weight'), beta = bn('bias'), mu = bn('running_mean'), v = bn('running_var');
      const scale = g.map((gk, k) => gk / Math.sqrt(v[k] + EPS));
      const taps = c.C * c.R * c.S;
      w = w.map((wi, i) => wi * scale[Math.floor(i / taps)]);
      b = b.map((bk, k) => (bk - mu[k]) * scale[k] + beta[k]);
      folded = true;
    }
    const y = forward(c, n, x, w, b, folded ? BF16 + 2 ** -23 : 0);
    const plane = y.v.length / n / c.K;
    const e = folded ? y.e.map((ei, i) => ei + U * Math.abs(b[Math.floor(i / plane) % c.K])) : y.e;
    x = RELU_AFTER.has(name) ? relu({ v: y.v, e }) : { v: y.v, e };
  }
  return x;
}

if (process.env.NINCC_TEST_FULL !== '1') console.warn('test/emu-conv-mma-infer-taps.test.ts: the emulated inference against float64 and the tapsHalo A/B run with NINCC_TEST_FULL=1; CI checks the compiled kernels');
describe.runIf(process.env.NINCC_TEST_FULL === '1')('the inference tap-major halo on emu (NINCC_TEST_FULL=1)', () => {
  const VARIANTS = { taps: {}, channelMajor: { tapsHalo: false }, noCopies: { bf16Weights: false } } as const;
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'infer_taps.model', VARIANTS);
    dirs = builds.dirs;
  }, 900_000);
  afterAll(() => builds?.remove());

  it('a batch of 3: every output within the bf16 bound of float64; tapsHalo off bitwise the build without the copies', async () => {
    const n = 3;
    const next = rng(31);
    const images = sparseImages(n * STEM.C * STEM.H * STEM.W, 0.1, next);
    const tensors = new Map([...chainWeights(CHAIN, images, n, rng(7))].filter(([name]) => name.startsWith('conv')));
    // The BN: running statistics and an affine that keep the folded weights positive (no cancellation, chainWeights says why).
    tensors.set(`${FOLDED.bn}.running_mean`, uniform(32, -0.2, 0.2, next)).set(`${FOLDED.bn}.running_var`, uniform(32, 0.5, 2, next));
    tensors.set(`${FOLDED.bn}.weight`, uniform(32, 0.5, 1.5, next)).set(`${FOLDED.bn}.bias`, uniform(32, -0.1, 0.1, next));
    const models = await Promise.all(Object.values(dirs).map((dir) => loadWith(dir, 'emu', 11, tensors)));
    try {
      const [taps, channelMajor, noCopies] = await Promise.all(models.map((m) => m.infer(images, n)));
      const expected = inferenceReference(n, images, readWeights(models[0]));
      expect(taps.length).toBe(expected.v.length);
      const { ratio, at } = worst(taps, expected.v, expected.e);
      console.log(`inference output: worst ${ratio.toFixed(3)} of its bound`);
      expect(ratio, `output ${at}: emu ${taps[at]}, float64 ${expected.v[at]}, bound ${expected.e[at]}`).toBeLessThanOrEqual(1);
      const scale = expected.v.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(Math.max(...expected.e)).toBeLessThan(0.05 * scale); // a bound from bf16 rounding, not a blanket tolerance
      expect(Array.from(channelMajor)).toEqual(Array.from(noCopies));
      expect(Array.from(taps)).not.toEqual(Array.from(noCopies)); // the tap-major sums do run in another order
    } finally {
      await Promise.all(models.map((m) => m.dispose()));
    }
  }, 600_000);
});
