// CUDA BN finalize kernels (forward: batch mean/var → scale/shift; backward: dγ, dβ) that read the
// per-tile partials [n][tile][C] a sector at a time: a block takes 8 adjacent channels (one 32-byte
// sector of a partial row) and FINALIZE_ROW_LANES rows at once, then a fixed tree merges the rows.
import { cppDouble, params, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';
import type { PlanLaunch } from '../../emit/plan.js';

/** Channels per block: one 32-byte sector of a partial row. */
const FINALIZE_CHANNELS = 8;

/**
 * Partial rows a block reads at once (threadIdx.y). One block per channel used to read one float per
 * sector, so each sector of the partials was fetched by 8 blocks (NIN b128: 77 MB for 9 MB of partials);
 * 8 channels × 128 rows reads whole sectors with 1024 loads in flight per block.
 */
export const FINALIZE_ROW_LANES = 128;

const launch = (C: number): PlanLaunch => ({ grid: [Math.ceil(C / FINALIZE_CHANNELS), 1, 1], block: [FINALIZE_CHANNELS, FINALIZE_ROW_LANES, 1], shared: 0 });

/** Prologue: this thread's channel `ch` (`live` when < C), row lane `row`, slot `t` in the shared trees. */
const columnThread = (C: number) => [
  'const int lane_c = int(threadIdx.x), row = int(threadIdx.y);',
  `const int ch = int(blockIdx.x) * ${FINALIZE_CHANNELS} + lane_c, t = row * ${FINALIZE_CHANNELS} + lane_c;`,
  `const bool live = ch < ${C};`,
];

/**
 * Sums each `sums` array's per-thread value in shared memory over the row lanes in a fixed tree order;
 * afterwards `array[lane_c]` holds the channel's total for every thread (synchronised).
 */
const rowTree = (sums: readonly string[]) => [
  ...sums.map((a) => `nincc::st(&${a}[t], ${a}_own);`),
  '__syncthreads();',
  `for (int s = ${FINALIZE_ROW_LANES / 2}; s > 0; s >>= 1) {`,
  '  if (row < s) {',
  ...sums.map((a) => `    nincc::st(&${a}[t], nincc::ld(&${a}[t]) + nincc::ld(&${a}[t + s * ${FINALIZE_CHANNELS}]));`),
  '  }',
  '  __syncthreads();',
  '}',
];

/** `for` over this thread's partial rows `part` (row, row + lanes, …) of n·tiles. */
const partLoop = (tiles: number) => `for (long long part = row; part < (long long)n * ${tiles}; part += ${FINALIZE_ROW_LANES})`;

export function bnFinalize(k: KernelStep, c: Consts<'bn_finalize'>): CudaKernel {
  // Two passes in float64 over the tiles' (mean, M2), no division per tile: the mean Σ nₜ·meanₜ / M, then
  // M2 = Σ M2ₜ + nₜ·(meanₜ − mean)² (the parallel-variance formula at the known mean; a plain
  // Σy² − Mμ² would cancel badly). Row lane 0 turns them into scale/shift and the running statistics.
  const tiles = Math.ceil(c.HW / 32);
  const names = ['st_mean', 'st_m2', 'gamma', 'beta', { name: 'running_mean', out: true }, { name: 'running_var', out: true }, { name: 'save_mean', out: true }, { name: 'save_invstd', out: true }, { name: 'scale', out: true }, { name: 'shift', out: true }];
  const tileCount = `double(min(32, ${c.HW} - int(part % ${tiles}) * 32))`;
  const body = [
    `NINCC_SHARED(double, wsum, ${FINALIZE_CHANNELS * FINALIZE_ROW_LANES});`,
    `NINCC_SHARED(double, m2sum, ${FINALIZE_CHANNELS * FINALIZE_ROW_LANES});`,
    ...columnThread(c.C),
    `const double count = double(n) * ${c.HW}.0;`,
    'double wsum_own = 0.0;',
    `if (live) ${partLoop(tiles)} wsum_own += ${tileCount} * double(nincc::ld(&st_mean[part * ${c.C} + ch]));`,
    ...rowTree(['wsum']),
    'const double mean = nincc::ld(&wsum[lane_c]) / count;',
    'double m2sum_own = 0.0;',
    `if (live) ${partLoop(tiles)} {`,
    `  const double delta = double(nincc::ld(&st_mean[part * ${c.C} + ch])) - mean;`,
    `  m2sum_own += double(nincc::ld(&st_m2[part * ${c.C} + ch])) + ${tileCount} * delta * delta;`,
    '}',
    ...rowTree(['m2sum']),
    'if (row != 0 || !live) return;',
    'const double m2_all = nincc::ld(&m2sum[lane_c]);',
    'const double biased_var = m2_all / count;',
    'const double unbiased_var = count > 1.0 ? m2_all / (count - 1.0) : 0.0;',
    `const float invstd = float(1.0 / sqrt(biased_var + ${cppDouble(c.eps)}));`,
    'nincc::st(&save_mean[ch], float(mean));',
    'nincc::st(&save_invstd[ch], invstd);',
    `nincc::st(&running_mean[ch], float((1.0 - ${cppDouble(c.momentum)}) * double(nincc::ld(&running_mean[ch])) + ${cppDouble(c.momentum)} * mean));`,
    `nincc::st(&running_var[ch], float((1.0 - ${cppDouble(c.momentum)}) * double(nincc::ld(&running_var[ch])) + ${cppDouble(c.momentum)} * unbiased_var));`,
    'const float sc = invstd * nincc::ld(&gamma[ch]);',
    'nincc::st(&scale[ch], sc);',
    'nincc::st(&shift[ch], float(double(nincc::ld(&beta[ch])) - mean * double(sc)));',
  ];
  return { params: params(k, names), body, launch: launch(c.C), fused: `BN finalize: batch mean/var → scale/shift, running statistics (${FINALIZE_CHANNELS} channels × ${FINALIZE_ROW_LANES} partial rows per block)` };
}

export function bnBackwardFinalize(k: KernelStep, c: Consts<'bn_bwd_finalize'>): CudaKernel {
  const tiles = Math.ceil(c.HW / 32);
  const names = ['st_dz', 'st_dzx', { name: 'dgamma', out: true }, { name: 'dbeta', out: true }];
  const body = [
    `NINCC_SHARED(double, sdz, ${FINALIZE_CHANNELS * FINALIZE_ROW_LANES});`,
    `NINCC_SHARED(double, sdzx, ${FINALIZE_CHANNELS * FINALIZE_ROW_LANES});`,
    ...columnThread(c.C),
    'double sdz_own = 0.0, sdzx_own = 0.0;',
    `if (live) ${partLoop(tiles)} { sdz_own += double(nincc::ld(&st_dz[part * ${c.C} + ch])); sdzx_own += double(nincc::ld(&st_dzx[part * ${c.C} + ch])); }`,
    ...rowTree(['sdz', 'sdzx']),
    'if (row == 0 && live) { nincc::st(&dbeta[ch], float(nincc::ld(&sdz[lane_c]))); nincc::st(&dgamma[ch], float(nincc::ld(&sdzx[lane_c]))); }',
  ];
  return { params: params(k, names), body, launch: launch(c.C), fused: `BN backward finalize: dγ = Σdz·x̂, dβ = Σdz (${FINALIZE_CHANNELS} channels × ${FINALIZE_ROW_LANES} partial rows per block)` };
}
