// The staged fp32 epilogue stores (compiler/backends/cuda/conv-mma-store-fp32-staged.ts): inference's fp32 y
// (and a training forward's, where y stays fp32) goes through the dead operand tiles in shared memory to 128-byte
// runs of one plane (the per-warp staging: `fp32StoreWindows: false`; emu-conv-mma-store-fp32-windows.test.ts compares the windows with it), against the direct stores from the accumulator layout (`stagedFp32Stores: false`). Only
// where each value is written from changes: both builds must agree bitwise (a training step, three SGD steps,
// inference), and the emulator's profile must show fewer store sectors, at 4 or 5 per 128 bytes, with no bank
// conflict added. Planes of 99, 63 and 20 positions (most runs start inside a sector), batch 3 on grids for 4.
// CI checks the compiled kernels (no build, ~2 s); the emu builds run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { coalescing } from '../runtime/profile/profile-coalescing.js';
import { load, type Model } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';
import { profiledLaunches } from './reference/emu-profile.js';

const INPUT = [16, 9, 11] as const;
const CLASSES = 3;
// Planes of 99 (a 3×3 with padding), 63 (a 3×3 without, then a 1×1) and 20 positions (a strided 3×3 without BN,
// whose training y stays fp32): none a multiple of 8.
const SPEC = `model staged32 {
  input ${INPUT.join('x')}
  conv(16, 48, 3, 3, 1, 1, 1, 1)  bn(48)  relu
  conv(48, 128, 3, 3, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 32, 1, 1, 1, 1, 0, 0)  bn(32)  relu
  conv(32, 40, 3, 3, 2, 2, 1, 1)  relu
  view(-1)  linear(800, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-store-fp32-staged.test.ts: the emu builds, the bitwise comparison and the profiled stores run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

function compiled(staged: boolean, spec = SPEC): Compiled {
  const r = compileSpec(spec, 'staged32.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: staged ? { fp32StoreWindows: false } : { stagedFp32Stores: false } });
}

const convForwards = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused)$/.test(k.name)).map((k) => [k.name, k]));

describe('the staged fp32 epilogue stores (compiled, no build)', () => {
  it('every inference conv and the fp32 training forward on planes of 99, 63 and 20 positions stage y in fp32; stagedFp32Stores: false stores directly; the same tiles', () => {
    const on = convForwards(compiled(true)), off = convForwards(compiled(false));
    const fp32 = [...on].filter(([, k]) => /y staged in shared memory \(fp32\)/.test(k.fused ?? '')).map(([name]) => name).sort();
    expect(fp32).toEqual(['k10_conv_fwd_fused', 'k10_conv_infer', 'k1_conv_infer', 'k4_conv_infer', 'k7_conv_infer']);
    for (const name of fp32) expect(on.get(name)!.body.join('\n'), name).toMatch(/for \(int c8 = 0; c8 < 8; \+\+c8\) \{  \/\/ one channel a store: 32 consecutive positions, 128 contiguous bytes/);
    for (const [name, k] of off) expect(k.fused ?? '', name).not.toMatch(/\(fp32\)/);
    for (const [name, k] of on) expect(k.tile, name).toBe(off.get(name)!.tile);
  });

  it('a plane of a multiple of 8 positions is not staged: its direct 32-byte runs already fill whole sectors', () => {
    // On 8×8: conv1 keeps 64 positions; conv4 and conv7 make 6×6 = 36, conv10 3×3 = 9.
    const aligned = convForwards(compiled(true, SPEC.replace(`input ${INPUT.join('x')}`, 'input 16x8x8').replace('linear(800', 'linear(360')));
    expect(aligned.get('k1_conv_infer')!.fused ?? '').not.toMatch(/\(fp32\)/);
    // report.txt says why (the kernel's fused text).
    expect(aligned.get('k1_conv_infer')!.fused).toContain('y stored from the accumulators, not staged: a plane of 64 positions, a multiple of 8, starts every 8-position run on a sector');
    for (const name of ['k4_conv_infer', 'k7_conv_infer', 'k10_conv_infer']) expect(aligned.get(name)!.fused ?? '', name).toMatch(/y staged in shared memory \(fp32\)/);
  });
});

/** Each kernel's counters over one profiled inference of `n` images, every block run. */
async function profiledInference(model: Model, images: Float32Array, n: number): Promise<Map<string, Record<string, number>>> {
  await model.infer(images, n); // folds BN first, unprofiled
  return profiledLaunches(() => model.infer(images, n));
}

describe.runIf(FULL)('the staged fp32 epilogue stores on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  const VARIANTS = { on: { fp32StoreWindows: false }, off: { stagedFp32Stores: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'staged32.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step, three SGD steps and inference: bitwise those of the direct stores; fewer store sectors, no conflict added', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(71));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [on, off] = await Promise.all([builds!.dirs.on, builds!.dirs.off].map((d) => load(d, { device: 'emu', seed: 23 })));
    try {
      randomizeAffine(on, rng(29));
      await expectSameGradients(on, off, images, labels);
      await expectSameSteps(on, off, images, labels, n);
      const pOn = await profiledInference(on, images, n); // one at a time: the profile file is named by the environment
      const pOff = await profiledInference(off, images, n);
      const convs = [...pOn.keys()].filter((k) => /_conv_infer$/.test(k));
      expect(convs.length, convs.join()).toBe(4);
      for (const name of convs) {
        const a = pOn.get(name)!, b = pOff.get(name)!;
        const [ca, cb] = [coalescing(a as never), coalescing(b as never)];
        // The same bytes stored, in fewer sectors: a staged store instruction writes one channel's 32 consecutive
        // rows (up to 128 contiguous bytes where they stay in one plane); a direct one 4 channels' 8-position runs.
        expect(ca.store.requestedBytes, name).toBe(cb.store.requestedBytes);
        expect(ca.store.sectors, name).toBeLessThan(cb.store.sectors);
        // Measured: 24–40 % fewer sectors, the excess over the ideal 0.19–0.31 against 0.67–1.19 (a part's 32 rows
        // may span two or three images' planes, so a staged instruction can still straddle more than one sector).
        expect(ca.store.sectors, name).toBeLessThanOrEqual(0.8 * cb.store.sectors);
        expect(ca.store.excess, name).toBeLessThan(cb.store.excess / 2);
        expect(a.shared_bank_conflicts, name).toBe(b.shared_bank_conflicts);
      }
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 600_000);
});
