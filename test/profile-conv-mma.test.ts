// `nincc profile --precision bf16` on the bf16 tensor-core convs (compiler/backends/cuda/conv-mma.ts forward,
// conv-mma-grad.ts data and weight gradients): the MMA counts of a layer against the counts worked out by hand
// from its GEMM shapes and tiles, and no shared-memory bank conflicts in any tensor-core conv (the XOR
// swizzle), on test/data/conv-mma.model.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileReport } from '../runtime/profile/run-profile.js';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { nincc, root } from './cli-run.js';
import { withEnv } from './reference/env.js';

describe('nincc profile of the bf16 tensor-core conv', () => {
  let work: string;
  let json: ProfileReport;
  let report: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nincc-profile-mma-'));
    // Built without --gpu, so the weight gradients keep the lowering's default split counts, which the hand counts
    // below assume (a profile of the spec builds for its GPU's counts: lower/wgrad-splits-waves.ts). In this
    // process and without the cpu library, which the profile never runs (its g++ compile was most of the build).
    const dir = join(work, 'build/conv_mma-emu');
    const file = join(root, 'test/data/conv-mma.model');
    const source = readFileSync(file, 'utf8');
    const model = compileSpec(source, file, { device: 'emu' }).model!;
    withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, source, { outDir: dir, target: 'emu', precision: 'bf16', maxBatch: 32, withoutCpuLibrary: true }));
    const r = nincc(['profile', dir, '--batch', '32', '--json'], { cwd: work, env: { NINCC_NVCC: '0' }, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    json = JSON.parse(r.stdout) as ProfileReport;
    report = readFileSync(join(work, 'build/conv_mma-emu/report.txt'), 'utf8');
  }, 300_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const kernel = (name: string) => {
    const k = json.kernels.find((x) => x.kernel === name);
    if (!k) throw new Error(`no kernel ${name} in the profile`);
    return k;
  };

  it('layer 1 (11×11 stride 4) makes exactly the MMAs of its GEMM rounded up to its tiles', () => {
    // conv(3, 20, 11, 11, 4, 4, 2, 2) on 3×39×35: 20×9×8 outputs. Inference folds the batch into M with no
    // padding: M = 32·72 = 2304, N = 20. The stem runs as a 3×3 conv over x space-to-depth by 4×4
    // (conv-mma-stem-s2d.ts): K = 64·3·3 = 576 (its 3·16 = 48 channels padded to 64), 18 slices of 32, for
    // 3·11·11 = 363 useful; the second group's 9 slices hold 16 live channels and run one of their two 16-deep
    // k-steps (s2dLastSteps): 432 deep. The tile report.txt names, 128×8×32, rounds M and N to 18·128 = 2304 and
    // 3·8 = 24; one mma.m16n8k16 does 16·8·16 of it.
    expect(report).toMatch(/^  k1_conv_infer +\| .* \| 128×8×32 tile.*K = 576.*reduction 432 for 363 useful/m);
    expect(kernel('k1_conv_infer').counts.mma_bf16_m16n8k16).toBe((2304 * 24 * 432) / (16 * 8 * 16));
    // Training pads each image's 72 positions to 96 rows (whole 32-row statistics tiles): M = 32·96 = 3072.
    expect(report).toMatch(/^  k1_conv_fwd_fused +\| .* \| 128×8×32 tile.*K = 576.*reduction 432 for 363 useful/m);
    expect(kernel('k1_conv_fwd_fused').counts.mma_bf16_m16n8k16).toBe((3072 * 24 * 432) / (16 * 8 * 16));
  });

  it('the tensor-core convs use no FFMA for the product and have no shared-memory bank conflicts', () => {
    const convs = json.kernels.filter((k) => /_conv_(infer|fwd_fused)$/.test(k.kernel));
    expect(convs.length).toBe(8);
    for (const k of convs) {
      expect(k.counts.mma_bf16_m16n8k16, k.kernel).toBeGreaterThan(0);
      expect(k.counts.shared_load_wavefronts, k.kernel).toBeGreaterThan(0);
      expect(k.counts.shared_bank_conflicts, k.kernel).toBe(0);
    }
    // Layer 1's input has nothing pending: no FFMA at all (the pending BN of later layers is an FFMA per staged element).
    expect(kernel('k1_conv_fwd_fused').counts.ffma).toBe(0);
  });

  it('layer 4 (3×3 pad 1) data and weight gradients make exactly the MMAs of their GEMMs rounded up to their tiles', () => {
    // conv(20, 24, 3, 3, 1, 1, 1, 1) on 20×9×8 at batch 32. Data gradient: its input has a pending BN, so
    // each image's 72 positions are padded to 96 rows (whole statistics tiles): M = 32·96 = 3072, N = C = 20,
    // K = 24·3·3 = 216. Its tile, 128×8×32, rounds them to 3072, 24 and 7·32 = 224.
    expect(report).toMatch(/^  k4_conv_dgrad_fused +\| .* \| 128×8×32 tile/m);
    expect(kernel('k4_conv_dgrad_fused').counts.mma_bf16_m16n8k16).toBe((3072 * 24 * 224) / (16 * 8 * 16));
    // Weight gradient: M = C·R·S = 180, N = K = 24, the reduction over 32·72 = 2304 positions in 6 splits
    // (lower/train-fused.ts wgradSplits: 4 for layer 1's 7,260 weights, ⌊4·7260/4320⌋ = 6 for these 4,320) of
    // 384 = 12 slices of 32. Its tile, 64×32×32, rounds M to 192 and N to 32; each split does all of M × N.
    expect(report).toMatch(/^  k4_conv_wgrad_fused +\| .* \| 64×32×32 tile, .* in 6 splits/m);
    expect(kernel('k4_conv_wgrad_fused').counts.mma_bf16_m16n8k16).toBe((6 * (192 * 32 * 384)) / (16 * 8 * 16));
  });

  it('layer 7 (1×1) weight gradient: its staged loads need exactly the hand-counted sectors, and touch only those a misaligned plane adds', () => {
    // conv(24, 13, 1, 1) on 24×9×8, relu after it, layer 4's BN+ReLU pending on its input. M = C = 24, N = K
    // = 13, tile 64×16 (one block per split), the 32·72 = 2304 positions in 32 splits of 72 (one image each):
    // slices of 32, 32 and 8 positions. Both operands are staged one row a warp instruction, lane l on
    // position l of the slice (conv-mma-wgrad-coalesced-staging.ts); the rows' channel parameters once a block.
    // Needed sectors (⌈bytes / 32⌉ an instruction) per block:
    // - A, x in bf16: 24 rows × (64 + 64 + 16 bytes: 2 + 2 + 1) = 120; the pending BN's in_scale and in_shift,
    //   warp 0's 16 channels (64 bytes, 2) and warp 1's 8 (1): 2 · 3 = 6;
    // - B, g in fp32: 13 rows × (128 + 128 + 32 bytes: 4 + 4 + 1) = 117; its ReLU rebuilt from y in bf16
    //   (g_y): 13 × 5 = 65.
    const needed = 120 + 6 + 117 + 65;
    // And once, by the tile's last split (conv-mma-last-cta-wgrad.ts; a sampled profile counts it too): each of the
    // 32 splits' 13 columns of 24 partials (96 bytes, 3 sectors, whole: rows of 96 bytes) and its 13 bias
    // partials (52 bytes: 2 needed, 2 or 3 touched).
    const tail = 32 * 13 * 3;
    const biasTail = 32 * 2;
    expect(report).toMatch(/^  k7_conv_wgrad_fused +\| .* \| 64×16×32 tile, .* in 32 splits/m);
    const counts = kernel('k7_conv_wgrad_fused').counts;
    expect(counts.global_load_ideal_sectors).toBe(32 * needed + tail + biasTail);
    // Touched: a bf16 plane is 144 bytes, so every other plane starts 16 bytes into a sector and its 32- and
    // 32-position slices take 3 sectors each instead of 2 (+2 a row): x's 12 odd channels (+24), and g_y's
    // planes (image·13 + k) of odd index, 6 or 7 of the 13 by the image's parity (+12 or +14). fp32 g's 288-byte
    // planes stay whole sectors. So each block touches 344 or 346; the profile runs some blocks and scales.
    expect(counts.global_load_sectors).toBeGreaterThanOrEqual(32 * (needed + 24 + 12) + tail + biasTail);
    expect(counts.global_load_sectors).toBeLessThanOrEqual(32 * (needed + 24 + 14) + tail + 32 * 3);
    // The staging with eight lanes on each of four rows (wgradCoalesced: false) made 15,552 here: 486 a block.
  });

  it('layer 7 (1×1) data gradient takes the tile of least operand traffic, and makes exactly its MMAs', () => {
    // conv(24, 13, 1, 1): M = 32·96 = 3072 (layer 4's pending BN: rows padded per image to whole statistics
    // tiles), N = C = 24, K = 13 in one 32-deep slice. A reads dY and y (the ReLU rebuilt): per k, 128×32 tiles
    // move 24·1·(2·128 + 32) = 6,912 operand rows where chooseMmaTile's 128×8 moves 24·3·(2·128 + 8) = 19,008
    // (conv-mma-tile.ts chooseTrafficTile). 128×32 rounds N to 32.
    expect(report).toMatch(/^  k7_conv_dgrad_fused +\| .* \| 128×32×32 tile/m);
    expect(kernel('k7_conv_dgrad_fused').counts.mma_bf16_m16n8k16).toBe((3072 * 32 * 32) / (16 * 8 * 16));
  });

  it('the tensor-core gradients have no shared-memory bank conflicts', () => {
    const grads = json.kernels.filter((k) => /_conv_(dgrad|wgrad)_fused$/.test(k.kernel));
    expect(grads.length).toBe(7); // layer 1 needs no data gradient
    for (const k of grads) {
      expect(k.counts.mma_bf16_m16n8k16, k.kernel).toBeGreaterThan(0);
      expect(k.counts.shared_load_wavefronts, k.kernel).toBeGreaterThan(0);
      expect(k.counts.shared_bank_conflicts, k.kernel).toBe(0);
    }
  });
});

