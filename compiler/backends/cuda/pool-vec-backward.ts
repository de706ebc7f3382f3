// CUDA pooling backward (max and average, training) that reads the output gradient (and argmax) once: a
// block copies the output rows a run of 32-position tiles of one input plane needs into shared memory,
// coalesced, then each warp gathers its tiles' input gradients from there and writes the input BN's
// Σdz, Σdz·x̂ partials in channelTiles' [n][tile][C] layout, as one thread per input position did.
import { BLOCK, loadFloat, params, statsParams, storeFloat, fusedText, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';
import type { PlanLaunch } from '../../emit/plan.js';
import { firstWindowRow, lastWindowRow, poolGather } from './pool.js';
import { POOL_SEGMENTS_PER_BLOCK } from './pool-vec-tiles.js';

type BackwardOp = 'maxpool_bwd_fused' | 'avgpool_bwd_fused';

/** The most output elements a block stages (8 KB of g, 8 KB of argmax). */
export const POOL_BWD_TILE_OUTPUTS = 2048;

const WARPS = BLOCK / 32;

/**
 * Segments a block takes in turn: POOL_SEGMENTS_PER_BLOCK, or enough for 4 tiles per warp where planes are
 * small (NIN's last pool: a 6×6 plane is 2 tiles, and a block of 4 such segments 8 tiles for 8 warps, 4
 * times the waves of the channel-grouped kernel before it).
 */
const segmentsPerBlock = (tiles: number) => Math.max(POOL_SEGMENTS_PER_BLOCK, Math.ceil((4 * WARPS) / tiles));

/** Output rows (first, count) the input positions jA … jB of a plane read (count 0: in no window). */
function outputRows(c: Consts<BackwardOp>, jA: number, jB: number): { first: number; count: number } {
  const hA = Math.floor(jA / c.W), hB = Math.floor(jB / c.W);
  const first = hA + c.ph - c.R + 1 <= 0 ? 0 : Math.floor((hA + c.ph - c.R + c.sh) / c.sh);
  const last = Math.min(Math.floor((hB + c.ph) / c.sh), c.P - 1);
  return { first, count: Math.max(0, last - first + 1) };
}

/** A plane's 32-position tiles split into segments of `tiles` tiles (the last takes the rest) whose output rows fit the stage. */
export interface PoolBackwardSegments {
  readonly tiles: number;
  readonly perPlane: number;
  /** Output elements of the largest segment's rows. */
  readonly stageOutputs: number;
}

export function poolBackwardSegments(c: Consts<BackwardOp>): PoolBackwardSegments {
  const HW = c.H * c.W, planeTiles = Math.ceil(HW / 32);
  const largest = (tiles: number) => {
    let most = 0;
    for (let t0 = 0; t0 < planeTiles; t0 += tiles) most = Math.max(most, outputRows(c, t0 * 32, Math.min((t0 + tiles) * 32, HW) - 1).count * c.Q);
    return most;
  };
  let tiles = planeTiles;
  while (tiles > 1 && largest(tiles) > POOL_BWD_TILE_OUTPUTS) tiles = Math.ceil(tiles / 2);
  return { tiles, perPlane: Math.ceil(planeTiles / tiles), stageOutputs: Math.max(1, largest(tiles)) };
}

export function poolBackwardTiled(k: KernelStep, c: Consts<BackwardOp>, max: boolean): CudaKernel {
  // Gather, not scatter: each input position sums the output gradients of the windows that hold it (max:
  // whose argmax it is) in poolGather's order, the same bits as from global memory; then the epilogue's BN
  // partials for the input value, its per-channel parameters loaded once per segment.
  const HW = c.H * c.W, planeTiles = Math.ceil(HW / 32);
  const seg = poolBackwardSegments(c);
  if (seg.stageOutputs * 8 > 48 * 1024) throw new Error(`${k.kernel}: a 32-position tile of ${c.W}-wide rows reads ${seg.stageOutputs} outputs, over the 48 KB of shared memory a block may declare`);
  const segments = c.C * seg.perPlane;
  const perBlock = segmentsPerBlock(seg.tiles);
  const stats = c.outStats
    ? [
        '  {',
        '    float dz = 0.0f, dzx = 0.0f;',
        '    if (valid) {',
        `      const float yv = ${loadFloat('e_y', 'at', c.eyBf16)};`,
        `      dz = ${c.outRelu ? 'nincc::ffma(yv, e_sc, e_sh) > 0.0f ? d : 0.0f' : 'd'};`,
        '      dzx = dz * ((yv - e_mu) * e_is);',
        '    }',
        '    dz = nincc::warp_sum(dz);',
        '    dzx = nincc::warp_sum(dzx);',
        `    const long long slot = ((long long)img * ${planeTiles} + tile) * ${c.C} + ch;`,
        '    if (lane == 0) { nincc::st(&e_dz[slot], dz); nincc::st(&e_dzx[slot], dzx); }',
        '  }',
      ]
    : [];
  const body = [
    `NINCC_SHARED(float, g_stage, ${seg.stageOutputs});`,
    ...(max ? [`NINCC_SHARED(int, arg_stage, ${seg.stageOutputs});`] : []),
    `const int img = int(blockIdx.z), lane = int(threadIdx.x), warp = int(threadIdx.y), t = warp * 32 + lane;`,
    'if (img >= n) return;',
    `for (int s = int(blockIdx.x) * ${perBlock}; s < min((int(blockIdx.x) + 1) * ${perBlock}, ${segments}); ++s) {`,
    `  const int ch = s / ${seg.perPlane}, tile0 = s % ${seg.perPlane} * ${seg.tiles}, tile_end = min(tile0 + ${seg.tiles}, ${planeTiles});`,
    `  const int hA = tile0 * 32 / ${c.W}, hB = (min(tile_end * 32, ${HW}) - 1) / ${c.W};`,
    `  const int p0 = ${firstWindowRow(c, 'hA')}, staged = max(${lastWindowRow(c, 'hB')} - p0 + 1, 0) * ${c.Q};`,
    `  const long long rows_at = ((long long)img * ${c.C} + ch) * ${c.P * c.Q} + (long long)p0 * ${c.Q};`,
    '  __syncthreads();  // the previous segment is done with the stage',
    `  for (int e = t; e < staged; e += ${BLOCK}) {`,
    `    nincc::st(&g_stage[e], ${loadFloat('g', 'rows_at + e', c.gBf16)});`,
    ...(max ? ['    nincc::st(&arg_stage[e], nincc::ld(&argmax[rows_at + e]));'] : []),
    '  }',
    // The epilogue's per-channel parameters, loaded only by warps with a tile in this segment.
    ...(c.outStats
      ? [
          `  float ${c.outRelu ? 'e_sc = 0.0f, e_sh = 0.0f, ' : ''}e_mu = 0.0f, e_is = 0.0f;`,
          `  if (tile0 + warp < tile_end) { ${c.outRelu ? 'e_sc = nincc::ld(&e_scale[ch]); e_sh = nincc::ld(&e_shift[ch]); ' : ''}e_mu = nincc::ld(&e_mean[ch]); e_is = nincc::ld(&e_invstd[ch]); }`,
        ]
      : []),
    '  __syncthreads();',
    `  for (int tile = tile0 + warp; tile < tile_end; tile += ${WARPS}) {  // uniform over the warp`,
    '    const int j = tile * 32 + lane;',
    `    const bool valid = j < ${HW};`,
    `    const long long at = ((long long)img * ${c.C} + ch) * ${HW} + (valid ? j : 0);`,
    `    const int h = j / ${c.W}, u = j % ${c.W};`,
    '    float d = 0.0f;',
    '    if (valid) {',
    ...poolGather(c, max, { g: 'g_stage', argmax: 'arg_stage', p0: 'p0' }).map((line) => `      ${line}`),
    `      ${storeFloat('dx', 'at', 'd', c.dxBf16)}${c.dxBf16 ? '  // rounded: the partials below take d unrounded' : ''}`,
    '    }',
    ...stats.map((line) => `  ${line}`),
    '  }',
    '}',
  ];
  const names = [{ name: 'g', bf16: c.gBf16 }, ...(max ? [{ name: 'argmax', int: true }] : []), { name: 'dx', out: true, bf16: c.dxBf16 }, ...statsParams(c)];
  const launch: PlanLaunch = { grid: [Math.ceil(segments / perBlock), 1, 1], batchAxis: 2, block: [32, WARPS, 1], shared: 0 };
  return {
    params: params(k, names),
    body,
    launch,
    fused: fusedText([
      `${max ? 'max' : 'average'} pooling backward from staged output rows (${seg.tiles} tiles of 32 positions per segment, ${perBlock} segments per block)`,
      c.outStats && 'epilogue: Σdz, Σdz·x̂ partials of the input BN',
      c.gBf16 && 'g read as bf16',
      c.dxBf16 && 'dx stored bf16',
    ]),
  };
}
