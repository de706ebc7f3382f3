// The 64-row warp tiles of the bf16 k×k convs (compiler/backends/cuda/conv-mma-warp64-tile.ts: the same block
// tiles with half the warps, 64×8·nt each) against the 32-row warps they replace (`warp64Tiles: false`). Only
// which warp computes an output changes, never its k loop: both builds must agree bitwise — inference, every
// gradient of a training step and three SGD steps. The chain: a 3×3 pad-1 conv from 32 channels on odd 9×11
// planes (99 positions: statistics rows padded to 128, tap-major halo, a 128×96 twin of 64×48 warps), a 3×3 conv
// 96→128 (128×128 twin; its data gradient's 96 columns a 128×96 twin; its weight gradient the tall twin, 8 warps
// of 64×64), a 5×5 pad-2 conv 128→40 (a 40-column forward: no twin; its data gradient a 128×128 twin from the
// channel-major halo, 40 channels not a multiple of 32, with the input BN's statistics epilogue), a batch of
// 3 on grids sized for 4 (a partial row tile). A strided conv keeps its warps (the rule's unit test), but for the
// stem's weight gradient on its own halo (test/emu-conv-mma-stem-wgrad-warp64.test.ts). CI checks the
// compiled choices (no build, ~2 s); the two emu builds and the comparisons run with NINCC_TEST_FULL=1 (~140 s cold).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { WIDE_CANDIDATES } from '../compiler/backends/cuda/conv-mma-tile.js';
import { TALL_WGRAD_TILE } from '../compiler/backends/cuda/conv-mma-kxk-wgrad-tile.js';
import { fragmentWavefrontsPerMma, kxkWarpTile, warp64Twin } from '../compiler/backends/cuda/conv-mma-warp64-tile.js';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

const INPUT = [32, 9, 11] as const;
const CLASSES = 3;
const SPEC = `model warp64 {
  input ${INPUT.join('x')}
  conv(32, 96, 3, 3, 1, 1, 1, 1)  bn(96)  relu
  conv(96, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 40, 5, 5, 1, 1, 2, 2)  relu
  view(-1)  linear(${40 * 9 * 11}, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-warp64-tiles.test.ts: the two emu builds and the bitwise comparison run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

/** The build's compiled cuda kernels, without g++ or nvcc (the CI case). */
function compiled(warp64: boolean, spec = SPEC, maxBatch = 4): Compiled {
  const r = compileSpec(spec, 'warp64.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ...(warp64 ? {} : { ablations: { warp64Tiles: false } as const }) });
}

/** Each tensor-core conv kernel's tile text and block size, by kernel name. */
const convKernels = (c: Compiled) =>
  new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused|dgrad_fused|wgrad_fused)$/.test(k.name)).map((k) => [k.name, `${k.tile ?? ''} [${k.launch.block[0]} threads]`]));

describe('the 64-row warp tiles of the bf16 k×k convs (compiled, no build)', () => {
  it('the rule: a twin has the block tile and half the warps, fewer fragment wavefronts per MMA; only stride-1 k×k layers take it', () => {
    const t128 = WIDE_CANDIDATES.find((t) => t.bm === 128 && t.bn === 128)!;
    expect(warp64Twin(t128)).toEqual({ bm: 128, bn: 128, warpsM: 2, warpsN: 2, nt: 8, mt: 4 });
    expect(fragmentWavefrontsPerMma(t128)).toBe(1.5); // 2 A x4 + 8 B x2 = 24 wavefronts for 16 MMAs
    expect(fragmentWavefrontsPerMma(warp64Twin(t128)!)).toBe(1); // 4 + 8 x2: 32 for 32
    expect(warp64Twin({ bm: 128, bn: 64, warpsM: 4, warpsN: 1, nt: 8 })).toBeUndefined(); // 4 warps: no 2-warp twin
    expect(warp64Twin(TALL_WGRAD_TILE)).toEqual({ ...TALL_WGRAD_TILE, warpsM: 4, mt: 4 });
    const k3 = { R: 3, S: 3, sh: 1, sw: 1 };
    expect(kxkWarpTile(t128, k3, undefined)).toEqual(warp64Twin(t128));
    expect(kxkWarpTile(t128, { ...k3, sh: 2, sw: 2 }, undefined)).toBe(t128); // strided: a gathered A
    expect(kxkWarpTile(t128, { ...k3, R: 1, S: 1 }, undefined)).toBe(t128); // 1×1
    expect(kxkWarpTile(t128, k3, { warp64Tiles: false })).toBe(t128);
    expect(kxkWarpTile(t128, k3, { wideTiles: false })).toBe(t128);
  });

  it('the k×k forwards, data and weight gradients take the twins; the 40-column forward and warp64Tiles: false do not', () => {
    const on = convKernels(compiled(true)), off = convKernels(compiled(false));
    expect(on.size).toBe(off.size);
    const expected: Record<string, RegExp> = {
      k1_conv_fwd_fused: /^128×96×32 tile, 4 warps \(2×2\) of 64×48, .*\[128 threads\]$/,
      k4_conv_fwd_fused: /^128×128×32 tile, 4 warps \(2×2\) of 64×64, .*\[128 threads\]$/,
      k4_conv_dgrad_fused: /^128×96×32 tile, 4 warps \(2×2\) of 64×48, .*\[128 threads\]$/,
      k4_conv_wgrad_fused: /^256×128×32 tile, 8 warps \(4×2\) of 64×64, M = 864 .*\[256 threads\]$/, // the tall tile's twin: 4 row tiles, the last of 96
      k7_conv_dgrad_fused: /^128×128×32 tile, 4 warps \(2×2\) of 64×64, .*\[128 threads\]$/,
      k7_conv_fwd_fused: /^128×8×32 tile, 4 warps \(4×1\) of 32×8, .*\[128 threads\]$/,
    };
    for (const [kernel, tile] of Object.entries(expected)) expect(on.get(kernel), kernel).toMatch(tile);
    expect(on.get('k7_conv_fwd_fused')).toBe(off.get('k7_conv_fwd_fused'));
    for (const [kernel, tile] of off) expect(tile, kernel).not.toMatch(/of 64×/);
    // The same block tiles (and so the same grids and staging) in both builds.
    for (const [kernel, tile] of on) expect(tile.split(' tile')[0], kernel).toBe(off.get(kernel)!.split(' tile')[0]);
  });

  it("NIN b128's 5×5 and 3×3 convs take 64-row warps in every pass, the 11×11/4 stem's forwards (a 3×3 over x space-to-depth) and weight gradient (on its halo) too; its 1×1 convs do not", () => {
    const nin = convKernels(compiled(true, readFileSync('models/nin.model', 'utf8'), 128));
    for (const k of ['k11', 'k21', 'k31'])
      for (const pass of ['conv_fwd_fused', 'conv_dgrad_fused', 'conv_wgrad_fused']) expect(nin.get(`${k}_${pass}`), `${k}_${pass}`).toMatch(/ of 64×/);
    expect(nin.get('k11_conv_wgrad_fused')).toMatch(/^256×128×32 tile, 8 warps \(4×2\) of 64×64,/);
    // The halo chosen for the twin's 256 threads where that stages longer (conv-mma-grad.ts twinHalo): k31's 128 positions a staging, not the 32-row tile's 32.
    expect(nin.get('k31_conv_wgrad_fused')).toMatch(/, 128 positions a staging,/);
    for (const [kernel, tile] of nin) if (!/^k(11|21|31)_|^k1_conv_(fwd_fused|infer|wgrad_fused)$/.test(kernel)) expect(tile, kernel).not.toMatch(/ of 64×/);
    // The stem's forwards run as a stride-1 3×3 conv (conv-mma-stem-s2d.ts): the same block tile, half the warps.
    for (const pass of ['conv_fwd_fused', 'conv_infer']) expect(nin.get(`k1_${pass}`), pass).toMatch(/^128×96×32 tile, 4 warps \(2×2\) of 64×48,/);
    // The stem's weight gradient builds A from its own input halo (stemWgradWarp64, test/emu-conv-mma-stem-wgrad-warp64.test.ts): the twin too.
    expect(nin.get('k1_conv_wgrad_fused')).toMatch(/^128×96×32 tile, 4 warps \(2×2\) of 64×48,.*input halo/);
  });
});

describe.runIf(FULL)('the 64-row warp tiles on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
  const VARIANTS = { on: {}, off: { warp64Tiles: false } } as const;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'warp64.model', VARIANTS);
    dirs = builds.dirs;
  }, 600_000);
  afterAll(() => builds?.remove());

  it('report.txt: the on build names 64-row warps, the off build none', () => {
    const text = (dir: string) => readFileSync(join(dir, 'report.txt'), 'utf8');
    expect(text(dirs.on)).toMatch(/4 warps \(2×2\) of 64×64/);
    expect(text(dirs.on)).toMatch(/8 warps \(4×2\) of 64×64/);
    expect(text(dirs.off)).not.toMatch(/ of 64×/);
  });

  it('one training step, then three SGD steps and inference: bitwise those of the 32-row warps', async () => {
    const n = 3; // below the grids' maximum of 4
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, rng(83));
    const labels = Int32Array.from({ length: n }, (_, i) => (i + 1) % CLASSES);
    const [on, off] = await Promise.all([dirs.on, dirs.off].map((d) => load(d, { device: 'emu', seed: 31 })));
    try {
      randomizeAffine(on, rng(89)); // non-trivial BN γ and β: the pending transforms and statistics matter
      const grads = await expectSameGradients(on, off, images, labels);
      expect(grads.length).toBe(12); // 3 convs, 2 BNs and the linear, weights and biases
      for (const t of ['conv1.weight', 'conv4.weight', 'conv7.weight', 'conv4.bias']) expect(on.getGradient(t).some((v) => v !== 0), t).toBe(true);
      await expectSameSteps(on, off, images, labels, n);
    } finally {
      await Promise.all([on, off].map((m) => m.dispose()));
    }
  }, 600_000);
});
