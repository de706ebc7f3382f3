// The bf16 weight gradients' staging along positions (compiler/backends/cuda/conv-mma-wgrad-coalesced-staging.ts)
// against stageAlongK's 8 lanes on each of 4 rows (`wgradCoalesced: false`). Each position keeps its shared slot, so
// every product and its order in A·B is unchanged: the weight gradients must agree bitwise; the convs' bias gradients
// sum in another order (a warp tree per slice), so they are compared within fp32 rounding of the others (their float64
// bound is test/emu-conv-mma-grad.test.ts's, on the default build). The spec: two 1×1 convs (the second's input with a pending
// BN+ReLU, its dY' rebuilt from a dBN: both operands' hoisted channel parameters), a 3×3 with a bias gradient (halo A,
// B along positions), odd 13×11 planes (rows that cross images off the sector grid), a batch of 3 on grids for 4.
// CI checks the compiled kernels (no build, ~2 s); the emu builds, the bitwise comparison and a profile (8×8 planes:
// the 1×1 weight gradients' loads at full coalescing, 0 bank conflicts) run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import type { Ablations } from '../compiler/ablations.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { profileKernels } from './reference/wgrad-frag-profile.js';

const INPUT = [16, 13, 11] as const;
const CLASSES = 3;
const spec = (h: number, w: number) => `model wgrad_coalesced {
  input ${INPUT[0]}x${h}x${w}
  conv(16, 64, 1, 1, 1, 1, 0, 0)  bn(64)  relu
  conv(64, 96, 1, 1, 1, 1, 0, 0)  bn(96)  relu
  conv(96, 40, 3, 3, 1, 1, 1, 1)  relu
  view(-1)  linear(${40 * h * w}, ${CLASSES})  logsoftmax
}`;
const SPEC = spec(INPUT[1], INPUT[2]);
const ALONG = /staged one row a warp instruction, lanes along positions/;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-coalesced.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

function compiled(text: string, maxBatch: number, ablations?: Ablations): Compiled {
  const r = compileSpec(text, 'wgrad_coalesced.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ...(ablations ? { ablations } : {}) });
}

const wgrads = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k]));

describe('the weight gradients staged along positions (compiled, no build)', () => {
  it('the 1×1 ones stage x and dY\' along positions, the 3×3 (halo A) dY\'; wgradCoalesced: false none, and only the weight gradients change', () => {
    const on = wgrads(compiled(SPEC, 4)), off = wgrads(compiled(SPEC, 4, { wgradCoalesced: false }));
    for (const k of ['k1', 'k4']) expect(on.get(`${k}_conv_wgrad_fused`)!.fused, k).toMatch(/x and dY' staged one row a warp instruction/);
    expect(on.get('k7_conv_wgrad_fused')!.fused).toMatch(/\+ dY' staged one row a warp instruction/);
    for (const [name, k] of off) expect(k.fused ?? '', name).not.toMatch(ALONG);
    const all = (c: Compiled) => new Map((c.cuda?.kernels ?? []).map((k) => [k.name, JSON.stringify(k.body)]));
    const a = all(compiled(SPEC, 4)), b = all(compiled(SPEC, 4, { wgradCoalesced: false }));
    expect([...a].filter(([name, body]) => body !== b.get(name)).map(([name]) => name).sort()).toEqual(['k1_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k7_conv_wgrad_fused']);
  });

  it("NIN b128: every weight gradient stages dY' along positions, the 1×1 ones x too", () => {
    const nin = wgrads(compiled(readFileSync('models/nin.model', 'utf8'), 128));
    // k11's dY' goes by 16-byte cp.async chunks along positions into the ring its B fragments come from (wgradRingFragments),
    // k21's by 8-byte chunks into the ring of slice windows its B fragments come from (wgradTapsRingFragments).
    const fromRing = new Set(['k11_conv_wgrad_fused', 'k21_conv_wgrad_fused']);
    for (const [name, k] of nin) expect(k.fused, name).toMatch(fromRing.has(name) ? /B's fragments by ldmatrix from the ring's windows/ : ALONG);
    for (const k of ['k4', 'k7', 'k14', 'k17', 'k24', 'k27', 'k34', 'k37']) expect(nin.get(`${k}_conv_wgrad_fused`)!.fused, k).toMatch(/x and dY' staged/);
  });
});

describe.runIf(FULL)('the weight gradients staged along positions on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  // rebuildPass off: the 1×1s' weight gradients rebuild dY' from a dBN themselves, which their hoisted parameters feed.
  const VARIANTS = { along: { rebuildPass: false }, alongK: { rebuildPass: false, wgradCoalesced: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'wgrad_coalesced.model', VARIANTS);
    dirs = builds.dirs;
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step: every weight gradient bitwise that of stageAlongK, the bias gradient within fp32 rounding', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(113));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [along, alongK] = await Promise.all([dirs.along, dirs.alongK].map((d) => load(d, { device: 'emu', seed: 41 })));
    try {
      randomizeAffine(along, rng(127)); // non-trivial BN γ and β: the pending transform and the dBN rebuild matter
      for (const t of along.tensorNames()) alongK.setTensor(t, along.getTensor(t));
      await Promise.all([along, alongK].map((m) => m.forwardBackward(images, labels)));
      const grads = along.info.params.map((t) => t.name);
      expect(grads.length).toBe(12); // 3 convs, 2 BNs and the linear, weights and biases
      const biases = ['conv1.bias', 'conv4.bias', 'conv7.bias']; // summed in the weight gradients
      for (const t of grads.filter((g) => !biases.includes(g))) expect(Array.from(along.getGradient(t)), t).toEqual(Array.from(alongK.getGradient(t)));
      for (const t of ['conv1.weight', 'conv4.weight', 'conv7.weight', ...biases]) expect(along.getGradient(t).some((v) => v !== 0), t).toBe(true);
      // Both sum the same 3·143 fp32 values per channel in other orders. A conv before a BN has Σ dY' = 0 but for
      // rounding (the dBN removes the mean), so its bias gradient is no scale: the conv's weight gradient is (2⁻¹⁶ of
      // its largest: 1.1e-6 for conv1, whose bias gradients differ by 7.5e-9 and are ~1e-4 themselves).
      for (const t of biases) {
        const a = Array.from(along.getGradient(t)), b = Array.from(alongK.getGradient(t));
        const scale = Math.max(...Array.from(along.getGradient(t.replace('.bias', '.weight'))).map(Math.abs));
        a.forEach((v, i) => expect(Math.abs(v - b[i]), `${t}[${i}]: ${v} against ${b[i]}`).toBeLessThanOrEqual(scale * 2 ** -16));
      }
    } finally {
      await Promise.all([along, alongK].map((m) => m.dispose()));
    }
  }, 600_000);

  it('the profile at batch 4 on 8×8 planes: the 1×1 weight gradients load the fewest sectors their bytes need, with no bank conflicts', () => {
    const kernels = profileKernels(spec(8, 8), 'wgrad_coalesced.model', 4);
    for (const name of ['k1_conv_wgrad_fused', 'k4_conv_wgrad_fused']) {
      const c = kernels.find((k) => k.kernel === name)!.counts;
      expect(c.global_load_sectors, name).toBeGreaterThan(0);
      expect(c.global_load_sectors, name).toBe(c.global_load_ideal_sectors);
      expect(c.shared_bank_conflicts, name).toBe(0);
    }
  }, 600_000);
});
