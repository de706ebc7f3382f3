// The input halo of a k×k weight gradient on a 64-row warp twin chosen for the twin's own threads
// (compiler/backends/cuda/conv-mma-grad.ts convBackwardWeightMma) against the 32-row tile's halo (`twinHalo: false`).
// On 7×7 planes the 256-tall tile's 512 threads left a 128-position staging no room (its spare stores pass 16 KB), so
// the twin (256 threads) staged 32 positions at a time; it now stages 128. The staging length changes neither A's
// values nor the k order, so both builds must agree bitwise: every gradient of a training step. The spec: a 1×1
// conv 32→96 with a BN+ReLU pending on the 3×3 96→128's input, a batch of 3 on grids sized for 4 (147 positions
// in splits whose ends cut the 128-position stagings short). CI checks the compiled choices (no build, ~1 s);
// NIN's compiled kernels against twinHalo: false, the emu builds, the bitwise comparison and the profile's bank-conflict
// count run with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import type { Ablations } from '../compiler/ablations.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { profileKernels } from './reference/wgrad-frag-profile.js';
import { chooseHaloSpan } from '../compiler/backends/cuda/conv-mma-wgrad-halo-span.js';

const INPUT = [32, 7, 7] as const;
const CLASSES = 3;
const SPEC = `model twin_halo {
  input ${INPUT.join('x')}
  conv(32, 96, 1, 1, 1, 1, 0, 0)  bn(96)  relu
  conv(96, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  view(-1)  linear(${128 * 7 * 7}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-frag-twin-halo.test.ts: the emu builds, the bitwise comparison and the profile run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

function compiled(spec: string, maxBatch: number, ablations?: Ablations): Compiled {
  const r = compileSpec(spec, 'twin_halo.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  // The channel-major halo's staging length (the tap-major halo chooses its own: emu-conv-mma-wgrad-taps-halo.test.ts).
  return compileModel(r.model, { target: 'emu', maxBatch, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: { wgradTapsHalo: false, ...ablations } });
}

const kernels = (c: Compiled) => new Map((c.cuda?.kernels ?? []).map((k) => [k.name, k]));
const staging = (tile: string | undefined) => Number(/, (\d+) positions a staging,/.exec(tile ?? '')?.[1] ?? 0);

describe('the twin\'s own input halo (compiled, no build)', () => {
  it('the 7×7 3×3 weight gradient on the tall twin stages 128 positions, 32 with twinHalo: false; nothing else changes', () => {
    const on = kernels(compiled(SPEC, 4)), off = kernels(compiled(SPEC, 4, { twinHalo: false }));
    const wgrad = on.get('k4_conv_wgrad_fused')!;
    expect(wgrad.tile).toMatch(/^256×128×32 tile, 8 warps \(4×2\) of 64×64,/);
    expect([staging(wgrad.tile), staging(off.get('k4_conv_wgrad_fused')!.tile)]).toEqual([128, 32]);
    for (const [name, k] of on) if (name !== 'k4_conv_wgrad_fused') expect(JSON.stringify(k.body), name).toBe(JSON.stringify(off.get(name)!.body));
  });

  it("NIN b128's 7×7 3×3 (k31): its halo for the twin's 256 threads stages 128 positions, for the 32-row tile's 512 threads 32", () => {
    const k31 = { C: 384, H: 7, W: 7, P: 7, Q: 7, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    expect([chooseHaloSpan(k31, 256, 256, true)?.positions, chooseHaloSpan(k31, 256, 512, true)?.positions]).toEqual([128, 32]);
  });
});

describe.runIf(FULL)('the twin\'s own input halo on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { twin: { wgradTapsHalo: false }, tile32: { wgradTapsHalo: false, twinHalo: false } } as const;  // the channel-major halo's stagings
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'twin_halo.model', VARIANTS);
    dirs = builds.dirs;
  }, 600_000);
  afterAll(() => builds?.remove());

  it("NIN b128 compiled: only k31's weight gradient changes, 32 → 128 positions a staging; every other kernel is unchanged", () => {
    const nin = readFileSync('models/nin.model', 'utf8');
    const on = kernels(compiled(nin, 128)), off = kernels(compiled(nin, 128, { twinHalo: false }));
    expect([staging(on.get('k31_conv_wgrad_fused')!.tile), staging(off.get('k31_conv_wgrad_fused')!.tile)]).toEqual([128, 32]);
    const changed = [...on].filter(([name, k]) => JSON.stringify(k.body) !== JSON.stringify(off.get(name)!.body)).map(([name]) => name);
    expect(changed).toEqual(['k31_conv_wgrad_fused']);
  });

  it('one training step: every gradient is bitwise that of the 32-row tile\'s halo', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(97));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [twin, tile32] = await Promise.all([dirs.twin, dirs.tile32].map((d) => load(d, { device: 'emu', seed: 37 })));
    try {
      randomizeAffine(twin, rng(101)); // non-trivial BN γ and β: the pending transform on the 3×3's input matters
      for (const t of twin.tensorNames()) tile32.setTensor(t, twin.getTensor(t));
      await Promise.all([twin, tile32].map((m) => m.forwardBackward(images, labels)));
      const grads = twin.info.params.map((t) => t.name);
      expect(grads.length).toBe(10); // 2 convs, 2 BNs and the linear, weights and biases
      for (const t of grads) expect(Array.from(twin.getGradient(t)), t).toEqual(Array.from(tile32.getGradient(t)));
      expect(twin.getGradient('conv4.weight').some((v) => v !== 0)).toBe(true);
    } finally {
      await Promise.all([twin, tile32].map((m) => m.dispose()));
    }
  }, 600_000);

  it('the profile at batch 3: the 128-position staging has no bank conflicts', () => {
    const wgrad = profileKernels(SPEC, 'twin_halo.model', 3).find((k) => k.kernel === 'k4_conv_wgrad_fused')!;
    expect(wgrad.counts.shared_store_wavefronts).toBeGreaterThan(0);
    expect(wgrad.counts.shared_bank_conflicts).toBe(0);
  }, 600_000);
});
