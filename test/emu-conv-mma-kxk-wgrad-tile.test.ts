// The 256-tall tile of the bf16 k×k weight gradients (compiler/backends/cuda/conv-mma-kxk-wgrad-tile.ts) against
// the wide tiles it replaces (`tallTiles: false`). Only the thread count and the block's rows change, so every
// output sums the same slices in the same order: the two builds must agree bitwise, every gradient of a
// training step, three SGD steps and inference. The cases: a 5×5 pad-0 conv on odd 13×11 planes whose input
// has a pending BN+ReLU (M = 400 taps: two tall row tiles, the second partial; 32-position slices that wrap
// rows and cross images), a 3×3 conv of 136 channels (two column tiles, the second of 8; M = 9·20 = 180: one
// partial tall tile), a 3×3 stride-2 conv (no conflict-free halo: it keeps its wide tile in both builds), a
// batch of 3 on grids sized for 4. Both builds keep 32-row warps (`warp64Tiles: false`: the tall tile's 64-row twin is
// emu-conv-mma-warp64-tiles.test.ts's). CI checks the compiled kernels' choices (no build, ~3 s); the two emu
// builds and the comparisons run with NINCC_TEST_FULL=1 (~42 s with a warm kernel cache, ~130 s cold).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { TALL_WGRAD_TILE, chooseKxkWgradTile } from '../compiler/backends/cuda/conv-mma-kxk-wgrad-tile.js';
import { WIDE_CANDIDATES } from '../compiler/backends/cuda/conv-mma-tile.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

const INPUT = [6, 13, 11] as const;
const CLASSES = 3;
// conv1 6→16 1×1 → 16×13×11; conv4 16→128 5×5 pad 0 → 128×9×7; conv7 128→20 3×3/2 pad 1 → 20×5×4;
// conv9 20→136 3×3 pad 1 → 136×5×4.
const SPEC = `model tall_wgrad {
  input ${INPUT.join('x')}
  conv(6, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  conv(16, 128, 5, 5, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 20, 3, 3, 2, 2, 1, 1)  relu
  conv(20, 136, 3, 3, 1, 1, 1, 1)
  view(-1)  linear(${136 * 5 * 4}, ${CLASSES})  logsoftmax
}`;
const TALL = /^256×128×32 tile, 16 warps \(8×2\) of 32×64, .*; input halo /;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-kxk-wgrad-tile.test.ts: the two emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

/** The build's compiled cuda kernels, without g++ or nvcc (the CI case). */
function compiled(wide: boolean, spec = SPEC): Compiled {
  const r = compileSpec(spec, 'tall_wgrad.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: { warp64Tiles: false, ...(wide ? { tallTiles: false } : {}) } });
}

/** Each weight-gradient kernel's tile text and block size, by kernel name. */
const wgradKernels = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => k.name.endsWith('_conv_wgrad_fused')).map((k) => [k.name, `${k.tile ?? ''} [${k.launch.block[0]} threads]`]));

describe('the 256-tall tile of the bf16 k×k weight gradients (compiled, no build)', () => {
  it('the k×k weight gradients with a halo and 128+ channels take it; the stride-2 one, the 1×1 one and a tallTiles: false build do not', () => {
    const tall = wgradKernels(compiled(false)), wide = wgradKernels(compiled(true));
    expect([...tall.keys()].sort()).toEqual(['k1_conv_wgrad_fused', 'k4_conv_wgrad_fused', 'k7_conv_wgrad_fused', 'k9_conv_wgrad_fused']);
    for (const k of ['k4', 'k9']) expect(tall.get(`${k}_conv_wgrad_fused`), k).toMatch(TALL);
    for (const k of ['k4', 'k9']) expect(tall.get(`${k}_conv_wgrad_fused`), k).toMatch(/\[512 threads\]$/);
    for (const k of ['k1', 'k7']) expect(tall.get(`${k}_conv_wgrad_fused`), k).toBe(wide.get(`${k}_conv_wgrad_fused`));
    for (const [kernel, tile] of wide) expect(tile, kernel).not.toMatch(/^256×/);
  });

  it("NIN b128's 5×5 and 3×3 weight gradients take it; its 1×1 and 11×11/4 ones keep the wide tiles", () => {
    const nin = wgradKernels(compiledNin());
    for (const k of ['k11', 'k21', 'k31']) expect(nin.get(`${k}_conv_wgrad_fused`), k).toMatch(TALL);
    for (const k of ['k1', 'k4', 'k14', 'k24', 'k34']) expect(nin.get(`${k}_conv_wgrad_fused`), k).not.toMatch(/^256×/);
  });

  it('the choice: fewer reads than the wide pick, only with a halo and 128+ channels', () => {
    // NIN's 5×5: 2400 taps, 256 channels, dY' read plain, a 5×5 slice's channel plane ≤ 352 padded elements.
    expect(chooseKxkWgradTile(2400, 256, 25, 1, 352, WIDE_CANDIDATES)).toBe(TALL_WGRAD_TILE);
    expect(chooseKxkWgradTile(2400, 256, 25, 1, undefined, WIDE_CANDIDATES)).not.toBe(TALL_WGRAD_TILE); // a gathered A
    expect(chooseKxkWgradTile(2400, 96, 25, 1, 352, WIDE_CANDIDATES)).not.toBe(TALL_WGRAD_TILE); // under 128 channels
    expect(chooseKxkWgradTile(128, 256, 9, 1, 96, WIDE_CANDIDATES)).not.toBe(TALL_WGRAD_TILE); // one wide row tile already
    // 128 channels of 3×3 taps: 9 row tiles of 128 (16 channel planes each) or 5 of 256 (30 each). Per block
    // column 9·(128·32 + 16·I) against 5·(128·32 + 30·I): the tall tile reads less up to I = 2730 elements a plane.
    expect(chooseKxkWgradTile(1152, 256, 9, 1, 2730, WIDE_CANDIDATES)).toBe(TALL_WGRAD_TILE);
    expect(chooseKxkWgradTile(1152, 256, 9, 1, 2731, WIDE_CANDIDATES)).not.toBe(TALL_WGRAD_TILE);
  });
});

/** models/nin.model's compiled kernels at batch 128 (no build). */
function compiledNin(): Compiled {
  return compiled(false, readFileSync('models/nin.model', 'utf8'));
}

describe.runIf(FULL)('the 256-tall tile of the bf16 k×k weight gradients on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { tall: { warp64Tiles: false }, wide: { warp64Tiles: false, tallTiles: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'tall_wgrad.model', VARIANTS);
    dirs = builds.dirs;
  }, 300_000);
  afterAll(() => builds?.remove());

  it('report.txt: the two k×k weight gradients with a halo take the tall tile, the wide build none', () => {
    const rows = (dir: string) => readFileSync(join(dir, 'report.txt'), 'utf8').split('\n').filter((l) => /^\s+k\d+_conv_wgrad_fused\s+\|/.test(l));
    const tall = rows(dirs.tall), wide = rows(dirs.wide);
    expect(tall.filter((l) => l.includes('256×128×32 tile')).length).toBe(2);
    expect(wide.filter((l) => l.includes('256×128×32 tile')).length).toBe(0);
  });

  it('one training step, then three SGD steps and inference: bitwise those of the wide tiles', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(71));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 2) % CLASSES);
    const [tall, wide] = await Promise.all([dirs.tall, dirs.wide].map((d) => load(d, { device: 'emu', seed: 29 })));
    try {
      randomizeAffine(tall, rng(73)); // non-trivial BN γ and β: the pending transforms matter
      const grads = await expectSameGradients(tall, wide, images, labels);
      expect(grads.length).toBe(14); // 4 convs, 2 BNs and the linear, weights and biases: all compared
      // The comparison means something: the tall layers' weight and bias gradients are not all zero.
      for (const t of ['conv4.weight', 'conv9.weight', 'conv9.bias']) expect(tall.getGradient(t).some((v) => v !== 0), t).toBe(true);
      await expectSameSteps(tall, wide, images, labels, n);
    } finally {
      await Promise.all([tall, wide].map((m) => m.dispose()));
    }
  }, 300_000);
});
