// The shared halo tile of the stride-1 k×k bf16 forwards and data gradients (compiler/backends/cuda/conv-mma-halo.ts) and
// the bf16 weight copies the k×k training forwards and data gradients stage B from (conv-weight-bf16.ts),
// against the per-tap gathers and fp32 weight staging they replace (`haloTiles: false, bf16Weights: false`).
// Both stage the same values rounded to bf16 once as before, in the same k order and shared layout, so the
// two builds must agree bitwise: one step's every gradient, three SGD steps' weights (each step rewrites
// the copies from the updated weights) and inference — with NINCC_TEST_FULL=1; CI checks, compiled without a
// build, which kernels take the halo and which steps write copies. (The gathering kernels are held to the bf16 bound of
// float64 by test/emu-conv-mma*.test.ts.) Both builds fuse the gradient rebuild into the staging
// (rebuildPass false), so the halo's staging runs the dReLU·dBN rebuild from the shared table (conv2), the
// dReLU alone (conv3) and a plain copy (conv4). The edge cases: odd planes (9×7, 63 positions padded to 64
// statistics rows, so 128-row blocks span two images), a 5×5 pad-2 and a 3×3 pad-0 conv (P ≠ H: the
// window's zero border differs per side), channel groups past K (K = 36: the second group of 32 is
// partial), N tiles past C, a stride-2 conv (its data gradient gathers, its weights come from a copy; its
// K·R·S = 72 ends inside a slice) and a batch of 3 on grids sized for 4.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

// conv1 4→40 3×3 pad 1 → 40×9×7 (no data gradient); conv2 40→36 5×5 pad 2 → 36×9×7; conv3 36→20 3×3 pad 0
// → 20×7×5; conv4 20→12 3×3 pad 1 → 12×7×5; conv5 12→8 3×3/2 pad 1 → 8×4×3.
const INPUT = [4, 9, 7] as const;
const CLASSES = 3;
const SPEC = `model halo_tiles {
  input ${INPUT.join('x')}
  conv(4, 40, 3, 3, 1, 1, 1, 1)  bn(40)  relu
  conv(40, 36, 5, 5, 1, 1, 2, 2)  bn(36)  relu
  conv(36, 20, 3, 3, 1, 1, 0, 0)  relu
  conv(20, 12, 3, 3, 1, 1, 1, 1)
  conv(12, 8, 3, 3, 2, 2, 1, 1)
  view(-1)  linear(${8 * 4 * 3}, ${CLASSES})  logsoftmax
}`;

/** The two builds' compiled programs and cuda kernels, without g++ or nvcc (the CI case). */
function compiled(gather: boolean): Compiled {
  const r = compileSpec(SPEC, 'halo_tiles.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: { rebuildPass: false, ...(gather ? { haloTiles: false, bf16Weights: false } as const : {}) } });
}

/** Each bf16 conv forward and data-gradient kernel's fused text, by kernel name. */
const convKernels = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused|dgrad_fused)$/.test(k.name)).map((k) => [k.name, k.fused]));

describe('the shared halo and bf16 weight copies of the bf16 convs (compiled, no build)', () => {
  const halo = compiled(false), gather = compiled(true);

  it('the stride-1 forwards and data gradients stage a halo, the stride-2 conv and the gathering build none', () => {
    const kernels = convKernels(halo), gathering = convKernels(gather);
    expect(kernels.size).toBe(14); // 5 inference and 5 training forwards, 4 data gradients
    for (const [kernel, fused] of kernels) {
      if (kernel.startsWith('k10_')) expect(fused, kernel).not.toMatch(/halo/); // conv5, 3×3 stride 2
      else if (kernel.includes('dgrad')) expect(fused, kernel).toMatch(/dY' staged once per 32 channels in a shared halo of \d+ padded positions/);
      else expect(fused, kernel).toMatch(/x staged once per 32 channels in a shared halo of \d+ padded positions/);
    }
    expect(gathering.size).toBe(kernels.size);
    for (const fused of gathering.values()) expect(fused).not.toMatch(/halo/);
  });

  it('the training program writes a bf16 weight copy before each k×k forward and data gradient, the prepare program one per k×k conv, the fp32 build none', () => {
    const copies = (c: Compiled, program: string) => c.lowered.programs.filter((p) => p.name === program).flatMap((p) => p.steps).filter((s) => s.op === 'conv_weight_bf16').map((s) => s.kernel);
    // Forwards of conv1, 2, 3, 4, 5 (kernels k1…k10), data gradients of conv2…5: each its own step, in the training
    // program, or in train_weight_copies where the SGD update rewrites that conv's copies (lower/sgd-weight-copies.ts).
    const training = copies(halo, 'train_forward_backward'), moved = copies(halo, 'train_weight_copies');
    expect(training.length + moved.length).toBe(9);
    expect(moved.length).toBeGreaterThan(0);
    expect(copies(halo, 'prepare_infer').length).toBe(5); // the inference convs' (lower/infer.ts)
    for (const program of ['train_forward_backward', 'prepare_infer']) expect(copies(gather, program)).toEqual([]);
  });
});

// The emulated comparison builds both artifacts (g++ for each): about a minute of CPU, over CI's budget. The
// halo and the copies run in CI through the bf16 bound tests (test/emu-conv-mma*.test.ts), whose k×k convs take them.
if (process.env.NINCC_TEST_FULL !== '1') console.warn('test/emu-conv-mma-halo.test.ts: the halo and bf16-copy builds and their bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');
describe.runIf(process.env.NINCC_TEST_FULL === '1')('the halo and bf16 weight copies on emu, bitwise the gathers (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { halo: { rebuildPass: false }, gather: { rebuildPass: false, haloTiles: false, bf16Weights: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'halo_tiles.model', VARIANTS);
    dirs = builds.dirs;
  }, 300_000);
  afterAll(() => builds?.remove());

  it('one step\'s gradients, three SGD steps and inference are bitwise those of the per-tap gathers', async () => {
    const n = 3; // below the grids' maximum of 4
    const next = rng(61);
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % CLASSES);
    const [halo, gather] = await Promise.all([dirs.halo, dirs.gather].map((d) => load(d, { device: 'emu', seed: 23 })));
    try {
      randomizeAffine(halo, rng(67)); // non-trivial BN γ and β (init leaves β at 0)
      const grads = await expectSameGradients(halo, gather, images, labels);
      expect(grads.length).toBe(16); // 5 convs, 2 BNs and the linear, weights and biases: all compared
      // The comparison means something: conv1's gradient comes through all three halo data gradients.
      expect(halo.getGradient('conv1.weight').some((v) => v !== 0)).toBe(true);
      await expectSameSteps(halo, gather, images, labels, n); // the copies rewritten each step; inference's halo
    } finally {
      await Promise.all([halo, gather].map((m) => m.dispose()));
    }
  }, 300_000);
});
