// The wide tensor-core tiles of the bf16 convs (k×k forwards and data gradients, every weight gradient, and the
// 1×1 forwards and data gradients' least-traffic tiles; compiler/backends/cuda/conv-mma-tile.ts WIDE_CANDIDATES:
// 8-warp 128×96 and 128×128 blocks, 96-wide 4-warp ones) against the 4-warp tiles (`wideTiles: false`). A
// tile changes which block computes an output, never its arithmetic: every output sums the same 32-deep
// slices in the same order through the same mma, so the two builds must agree bitwise — inference outputs,
// every gradient of a training step and the weights after SGD steps. (The 4-warp kernels are held to the
// bf16 bound of float64 by test/emu-conv-mma*.test.ts.) The chain has the edge cases: an 11×11 stride-4
// pad-5 stem on odd-sized images, a 3×3 pad-1 and a 3×3 stride-2 conv (its data gradient skips taps),
// 7×6 planes (partial 32-row statistics tiles), a batch of 3 on grids sized for 4, and a 1×1 conv of 40
// output channels (a 48-wide tile with 8 padded columns) on 4×3 planes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load } from '../runtime/model.js';
import { randomizeAffine, rng, uniform } from './reference/artifacts.js';
import { buildEmuVariants, type EmuVariants } from './reference/emu-variants.js';
import { expectSameGradients, expectSameSteps } from './reference/same-training.js';

// conv1 3→96 11×11/4 pad 5 on 27×23 → 96×7×6; conv4 96→128 3×3 pad 1 → 128×7×6; conv7 128→96 3×3/2 pad 1 → 96×4×3;
// conv9 96→128 1×1 → 128×4×3 and conv12 128→40 1×1 → 40×4×3 (their least-traffic tiles).
const INPUT = [3, 27, 23] as const;
const CLASSES = 3;
const SPEC = `model wide_tiles {
  input ${INPUT.join('x')}
  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu
  conv(96, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 96, 3, 3, 2, 2, 1, 1)  relu
  conv(96, 128, 1, 1)  bn(128)  relu
  conv(128, 40, 1, 1)  bn(40)  relu
  view(-1)  linear(${40 * 4 * 3}, ${CLASSES})  logsoftmax
}`;

// The 256-tall tile conv4's weight gradient would take has its own test (emu-conv-mma-kxk-wgrad-tile.test.ts), and so
// do the 64-row warp twins of the 8-warp tiles (emu-conv-mma-warp64-tiles.test.ts).
const VARIANTS = { wide: { tallTiles: false, warp64Tiles: false }, narrow: { wideTiles: false } } as const;
let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
let dirs: EmuVariants<keyof typeof VARIANTS>['dirs'];
beforeAll(() => {
  builds = buildEmuVariants(SPEC, 'wide_tiles.model', VARIANTS);
  dirs = builds.dirs;
}, 300_000);
afterAll(() => builds?.remove());

/** report.txt's tile cell of each bf16 conv kernel, by kernel name. */
function tiles(dir: string): Map<string, string> {
  const rows = readFileSync(join(dir, 'report.txt'), 'utf8').split('\n').filter((l) => /^\s+k\d+_conv_(infer|fwd_fused|dgrad_fused|wgrad_fused)\s+\|/.test(l));
  return new Map(rows.map((l) => [l.split('|')[0].trim(), l.split('|')[2]?.trim() ?? '']));
}

describe('the wide bf16 conv tiles on emu', () => {
  it('report.txt: the k×k forwards and data gradients, every weight gradient and the 1×1 convs\' least-traffic tiles are 8-warp and 96-wide ones, the narrow build none', () => {
    const wide = tiles(dirs.wide), narrow = tiles(dirs.narrow);
    const tileOf = (name: string) => [...wide].find(([k]) => k.startsWith(name))?.[1] ?? `no ${name} in report.txt`;
    expect(tileOf('k1_conv_fwd_fused')).toMatch(/^128×96×32 tile, 8 warps \(4×2\) of 32×48/); // the stem: 96 channels
    expect(tileOf('k4_conv_fwd_fused')).toMatch(/^128×128×32 tile, 8 warps \(4×2\) of 32×64/);
    expect(tileOf('k4_conv_dgrad_fused')).toMatch(/^128×96×32 tile, 8 warps/); // N = the 96 input channels
    expect(tileOf('k7_conv_fwd_fused')).toMatch(/^64×96×32 tile, 4 warps \(2×2\) of 32×48/); // 48 rows: no statistics padding
    expect(tileOf('k7_conv_dgrad_fused')).toMatch(/^128×128×32 tile, 8 warps/); // stride 2: taps skipped
    expect(tileOf('k1_conv_infer')).toMatch(/^64×96×32 tile, 4 warps \(2×2\) of 32×48/);
    // Weight gradients: M = C·R·S taps, N = K (the 8-warp blocks' bias sums run over 256 threads' items).
    expect(tileOf('k1_conv_wgrad_fused')).toMatch(/^128×96×32 tile, 8 warps \(4×2\) of 32×48/); // M = 363, N = 96
    expect(tileOf('k4_conv_wgrad_fused')).toMatch(/^128×128×32 tile, 8 warps \(4×2\) of 32×64/);
    expect(tileOf('k7_conv_wgrad_fused')).toMatch(/^128×96×32 tile, 8 warps \(4×2\) of 32×48/);
    expect(tileOf('k9_conv_wgrad_fused')).toMatch(/^128×128×32 tile, 8 warps \(4×2\) of 32×64/); // 1×1: M = 96, N = 128
    // 1×1 forwards and data gradients: the tile that reads A (x, or dY' and y) the fewest times, here once.
    expect(tileOf('k9_conv_fwd_fused')).toMatch(/^128×128×32 tile, 8 warps \(4×2\) of 32×64/); // 128 rows (4 images' 32), 128 columns
    expect(tileOf('k9_conv_dgrad_fused')).toMatch(/^64×96×32 tile, 4 warps \(2×2\) of 32×48/); // 48 rows, 96 columns
    expect(tileOf('k12_conv_fwd_fused')).toMatch(/^128×48×32 tile, 4 warps \(4×1\) of 32×48/); // 40 columns: a partial tile
    expect(tileOf('k12_conv_infer')).toMatch(/^64×64×32 tile, 4 warps \(2×2\) of 32×32/); // 48 rows, 40 columns: both partial
    expect(tileOf('k12_conv_dgrad_fused')).toMatch(/^128×128×32 tile, 8 warps/);
    expect(wide.size).toBe(19); // 5 inference, 5 training forwards, 4 data gradients, 5 weight gradients
    expect(narrow.size).toBe(wide.size);
    for (const [kernel, tile] of narrow) expect(tile, kernel).toMatch(/4 warps/);
    for (const tile of narrow.values()) expect(tile).not.toMatch(/32×48/);
  });

  it('inference, one step\'s gradients and three SGD steps are bitwise those of the 4-warp tiles', async () => {
    const n = 3; // below the grids' maximum of 4
    const next = rng(53);
    const images = uniform(n * INPUT[0] * INPUT[1] * INPUT[2], -1.5, 1.5, next);
    const labels = Int32Array.from({ length: n }, (_, i) => (2 * i + 1) % CLASSES);
    const [wide, narrow] = await Promise.all([dirs.wide, dirs.narrow].map((d) => load(d, { device: 'emu', seed: 19 })));
    try {
      randomizeAffine(wide, rng(59)); // non-trivial BN γ and β (init leaves β at 0)
      const grads = await expectSameGradients(wide, narrow, images, labels);
      expect(grads.length).toBe(20); // 5 convs, 4 BNs and the linear, weights and biases: all compared
      // The comparison means something: the stem's gradient (through both wide data gradients) is not all zero.
      expect(wide.getGradient('conv1.weight').some((v) => v !== 0)).toBe(true);
      await expectSameSteps(wide, narrow, images, labels, n);
    } finally {
      await Promise.all([wide, narrow].map((m) => m.dispose()));
    }
  }, 300_000);
});
