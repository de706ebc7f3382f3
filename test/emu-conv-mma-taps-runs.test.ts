// The tap-major halo staged from sector-aligned runs (compiler/backends/cuda/conv-mma-taps-runs.ts, opted into with
// `tapsRuns: true`) against the per-position staging of a default build: the same bf16 values land in the same halo places, so
// a training step, three SGD steps and inference must agree bitwise, and the emulator's profile must show
// fewer load sectors for each kernel that takes the runs, with no bank conflict added. The chain covers each
// kind of round: a whole 6×7 image's 32 planes as one run (the 3×3 forward and data gradient on 128-column
// tiles), several rounds of at most 17–49 positions of a 14×12 plane (the 5×5 forward with its pending BN and
// ReLU, its data gradient on a 32-column tile), fp32 x in inference; a pad-0 3×3 (its padded pitch is
// not ≡ the source row mod 8) and a data gradient that rebuilds dReLU itself keep the per-position staging.
// Batch 3 on grids for 4. CI checks the compiled kernels (~2 s); the emu builds run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { coalescing } from '../runtime/profile/profile-coalescing.js';
import { load, type Model } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';
import { profiledLaunches } from './reference/emu-profile.js';

const INPUT = [8, 14, 12] as const;
const CLASSES = 3;
const SPEC = `model runs {
  input ${INPUT.join('x')}
  conv(8, 32, 3, 3, 1, 1, 1, 1)  bn(32)  relu
  conv(32, 64, 5, 5, 1, 1, 2, 2)  bn(64)  relu
  maxpool(2, 2, 2, 2, 0, 0)
  conv(64, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 32, 3, 3, 1, 1, 0, 0)  relu
  view(-1)  linear(640, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-taps-runs.test.ts: the emu builds, the bitwise comparison and the profiled loads run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const RUNS = /the halo read in sector-aligned runs of its planes \(([^)]*)\) through B's tile/;
/** Each k×k conv kernel's rounds ("a whole image's…" or "at most N positions…"), or '' where it keeps the per-position staging. */
function rounds(ablations: Ablations = { tapsRuns: true }): Record<string, string> {
  const kernels = compileEmuVariant(SPEC, 'runs.model', ablations).cuda?.kernels ?? [];
  return Object.fromEntries(kernels.filter((k) => /k(4|8|11)_conv_(infer|fwd_fused|dgrad_fused)$/.test(k.name)).map((k) => [k.name, RUNS.exec(k.fused ?? '')?.[1] ?? '']));
}

describe('the halo from sector-aligned runs (compiled, no build)', () => {
  it('whole 6×7 images as one run, 14×12 planes in rounds; the pad-0 3×3 and a self-rebuilding data gradient keep the per-position staging; a default build has none', () => {
    expect(rounds()).toEqual({
      k4_conv_infer: 'at most 25 positions of a plane', // fp32 x: 8 a sector, B's tile of 64 columns
      k4_conv_fwd_fused: 'at most 49 positions of a plane',
      k4_conv_dgrad_fused: 'at most 17 positions of a plane', // 32 columns: 2 KiB of B's tile
      k8_conv_infer: "a whole image's 32 planes as one",
      k8_conv_fwd_fused: "a whole image's 32 planes as one",
      k8_conv_dgrad_fused: "a whole image's 32 planes as one",
      k11_conv_infer: '',
      k11_conv_fwd_fused: '',
      k11_conv_dgrad_fused: '', // rebuilds dReLU from y while staging
    });
    for (const [name, words] of Object.entries(rounds({}))) expect(words, name).toBe('');
  });
});

describe.runIf(FULL)('the halo from sector-aligned runs on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  const VARIANTS = { on: { tapsRuns: true }, off: {} } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'runs.model', VARIANTS);
  }, 900_000);
  afterAll(() => builds?.remove());

  it('one training step, three SGD steps and inference: bitwise the per-position staging; fewer load sectors, no conflict added', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(73));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 2) % CLASSES);
    const [on, off] = await Promise.all([builds!.dirs.on, builds!.dirs.off].map((d) => load(d, { device: 'emu', seed: 31 })));
    try {
      randomizeAffine(on, rng(37));
      await expectSameGradients(on, off, images, labels);
      await expectSameSteps(on, off, images, labels, n);
      const step = (m: Model) => profiledLaunches(() => m.forwardBackward(images, labels)); // one at a time: the profile file is named by the environment
      const infer = async (m: Model) => {
        await m.infer(images, n); // folds BN first, unprofiled
        return profiledLaunches(() => m.infer(images, n));
      };
      const [pOn, pOff] = [new Map([...(await step(on)), ...(await infer(on))]), new Map([...(await step(off)), ...(await infer(off))])];
      const taking = Object.entries(rounds()).filter(([, words]) => words !== '').map(([name]) => name);
      expect(taking.length).toBe(6);
      for (const name of taking) {
        const a = pOn.get(name), b = pOff.get(name);
        expect(a && b, name).toBeTruthy();
        const [ca, cb] = [coalescing(a as never), coalescing(b as never)];
        expect(ca.load.sectors, name).toBeLessThan(cb.load.sectors);
        expect(a!.shared_bank_conflicts, name).toBe(b!.shared_bank_conflicts);
      }
      for (const name of ['k11_conv_infer', 'k11_conv_fwd_fused', 'k11_conv_dgrad_fused']) expect(pOn.get(name)!.global_load_sectors, name).toBe(pOff.get(name)!.global_load_sectors);
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 900_000);
});
