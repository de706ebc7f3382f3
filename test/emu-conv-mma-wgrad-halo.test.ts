// The input halo of the bf16 k×k weight gradients (compiler/backends/cuda/conv-mma-wgrad-halo.ts) against the
// per-tap gather it replaces (`inputHalo: false`). The halo holds the same bf16 values the gather rounds
// (the padded input, its pending BN/ReLU applied), and A is built in the same k order, so the two builds
// must agree bitwise: every gradient of a training step. (The halo is also held to the bf16 bound of
// float64 by test/emu-conv-mma-grad.test.ts, whose 7×6 convs take it.) The edge cases: odd 19×17 planes
// (32-position slices that wrap rows and run into the next image at every offset the splits give), a
// 3×3 conv on the raw input, a 5×5 pad-2 conv whose input has a pending BN+ReLU, a 3×3 conv whose input
// has a pending ReLU only, partial tiles (M = C·R·S of 45, 300, 144 taps; N of 12, 20, 10 channels), a
// batch of 3 on grids sized for 4, and a stride-2 conv for which no conflict-free layout of a one-slice halo
// exists: it stages 64 positions at a time (conv-mma-wgrad-halo-span.ts), as the 5×5 and the last 3×3 stage
// 256; the gather build stages none. CI checks the compiled kernels' choices (no build); the two emu builds
// and the bitwise comparison run with NINCC_TEST_FULL=1 (about 180 s cold on 2 loaded cores).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';

const INPUT = [5, 19, 17] as const;
const CLASSES = 3;
// conv1 5→12 3×3 pad 1 → 12×19×17; conv4 12→20 5×5 pad 2 → 20×19×17; conv7 20→16 3×3/2 pad 1 → 16×10×9;
// conv9 16→10 3×3 pad 1 → 10×10×9.
const SPEC = `model input_halo {
  input ${INPUT.join('x')}
  conv(5, 12, 3, 3, 1, 1, 1, 1)  bn(12)  relu
  conv(12, 20, 5, 5, 1, 1, 2, 2)  bn(20)  relu
  conv(20, 16, 3, 3, 2, 2, 1, 1)  relu
  conv(16, 10, 3, 3, 1, 1, 1, 1)
  view(-1)  linear(${10 * 10 * 9}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-halo.test.ts: the two emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

/** The build's compiled cuda kernels, without g++ or nvcc (the CI case). */
function compiled(gather: boolean): Compiled {
  const r = compileSpec(SPEC, 'input_halo.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: gather ? { inputHalo: false } : { wgradTapsHalo: false } });  // the channel-major halo (the tap-major one: emu-conv-mma-wgrad-taps-halo.test.ts)
}

/** Each weight-gradient kernel's tile text, by kernel name. */
const wgradKernels = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, k.tile ?? '']));

describe('the input halo of the bf16 k×k weight gradients (compiled, no build)', () => {
  it('every weight gradient stages a halo (the stride-2 one of 64 positions), the gather build none', () => {
    const halo = wgradKernels(compiled(false)), gather = wgradKernels(compiled(true));
    expect([...halo.keys()].sort()).toEqual(['k1_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k7_conv_wgrad_fused', 'k9_conv_wgrad_fused']);
    for (const [k, positions] of [['k1', 32], ['k4', 256], ['k7', 64], ['k9', 256]]) expect(halo.get(`${k}_conv_wgrad_fused`), `${k}`).toMatch(new RegExp(`; input halo \\d+ planes at a pitch ≤ \\d+, ${positions} positions a staging, bf16 in shared \\(\\d+ B\\)$`));
    expect(gather.size).toBe(halo.size);
    for (const [kernel, tile] of gather) expect(tile, kernel).not.toMatch(/halo/);
  });
});

describe.runIf(FULL)('the input halo of the bf16 k×k weight gradients on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { halo: {}, gather: { inputHalo: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'input_halo.model', VARIANTS);
    dirs = builds.dirs;
  }, 300_000);
  afterAll(() => builds?.remove());

  /** report.txt's tile cell of each weight-gradient kernel, by kernel name. */
  function wgradTiles(dir: string): Map<string, string> {
    const rows = readFileSync(join(dir, 'report.txt'), 'utf8').split('\n').filter((l) => /^\s+k\d+_conv_wgrad_fused\s+\|/.test(l));
    return new Map(rows.map((l) => [l.split('|')[0].trim(), l.split('|')[2]?.trim() ?? '']));
  }

  it('report.txt: every weight gradient stages a halo, the gather build none', () => {
    const halo = wgradTiles(dirs.halo), gather = wgradTiles(dirs.gather);
    expect([...halo.keys()]).toEqual(['k9_conv_wgrad_fused', 'k7_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k1_conv_wgrad_fused']);
    for (const k of ['k1', 'k4', 'k7', 'k9']) expect(halo.get(`${k}_conv_wgrad_fused`), k).toMatch(/; input halo \d+ planes at a pitch ≤ \d+, \d+ positions a staging, bf16 in shared \(\d+ B\)$/);
    expect(gather.size).toBe(halo.size);
    for (const [kernel, tile] of gather) expect(tile, kernel).not.toMatch(/halo/);
  });

  it('one training step: every gradient is bitwise that of the per-tap gather', async () => {
    const n = 3; // below the grids' maximum of 4
    const next = rng(61);
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [halo, gather] = await Promise.all([dirs.halo, dirs.gather].map((d) => load(d, { device: 'emu', seed: 23 })));
    try {
      randomizeAffine(halo, rng(67)); // non-trivial BN γ and β: the pending transforms matter
      for (const t of halo.tensorNames()) gather.setTensor(t, halo.getTensor(t));
      await Promise.all([halo, gather].map((m) => m.forwardBackward(images, labels)));
      const grads = halo.info.params.map((t) => t.name);
      expect(grads.length).toBe(14); // 4 convs, 2 BNs and the linear, weights and biases: all compared
      for (const t of grads) expect(Array.from(halo.getGradient(t)), t).toEqual(Array.from(gather.getGradient(t)));
      // The comparison means something: the halo layers' weight gradients are not all zero.
      for (const t of ['conv1.weight', 'conv4.weight', 'conv9.weight']) expect(halo.getGradient(t).some((v) => v !== 0), t).toBe(true);
    } finally {
      await Promise.all([halo, gather].map((m) => m.dispose()));
    }
  }, 300_000);
});
