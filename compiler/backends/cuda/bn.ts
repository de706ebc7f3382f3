// CUDA kernels of the BN and ReLU family in the fused training program (compiler/lower/train-fused.ts):
// statistics and the generic apply/rebuild kernels for patterns without a fused
// path. Statistics are warp reductions written as per-tile partials that a finalize kernel (bn-finalize-columns.ts) sums in a
// fixed order: no float atomics (docs/design.md §4, §5).
import { applyPending, backwardStats, channelTiles, element, forwardStats, inputParams, params, perElement, rebuildGradient, rebuildParams, statsParams, loadFloat, storeFloat, tileSlot, fusedText, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';

/** The per-channel tile prologue: channel `ch` of this warp, position `j`, flat index `at` in the batch. */
export const channelTile = (C: number, HW: number) => [
  'const int img = int(blockIdx.z);',
  `const int ch = int(blockIdx.y) * 8 + int(threadIdx.y), j = int(blockIdx.x) * 32 + int(threadIdx.x);`,
  `if (img >= n || ch >= ${C}) return;  // uniform over the warp (one channel)`,
  ...tilePosition(C, HW),
];

/** `valid` and `at` of position `j` of channel `ch` of image `img`. */
const tilePosition = (C: number, HW: number) => [`const bool valid = j < ${HW};`, `const long long at = ((long long)img * ${C} + ch) * ${HW} + (valid ? j : 0);`];

export function bnStats(k: KernelStep, c: Consts<'bn_stats'>): CudaKernel {
  const body = [...channelTile(c.C, c.HW), 'const float v = valid ? nincc::ld(&x[at]) : 0.0f;', ...forwardStats('v', 'valid', `min(32, ${c.HW} - int(blockIdx.x) * 32)`, tileSlot(c.C, c.HW))];
  return { params: params(k, ['x', { name: 'st_mean', out: true }, { name: 'st_m2', out: true }]), body, launch: channelTiles(c.C, c.HW), fused: 'BN statistics of a buffer no conv produced' };
}

export function actApply(k: KernelStep, c: Consts<'act_apply'>): CudaKernel {
  const body = [...element(c.C * c.HW), `const long long at = (long long)img * ${c.C * c.HW} + i;`, 'float v = nincc::ld(&x[at]);', ...applyPending(c, 'v', `i / ${c.HW}`), 'nincc::st(&y[at], v);'];
  return { params: params(k, ['x', ...inputParams(c), { name: 'y', out: true }]), body, launch: perElement(c.C * c.HW), fused: fusedText([c.inBn && 'BN scale/shift', c.inRelu && 'ReLU']) + ' (materialized for a consumer without the prologue)' };
}

export function actBackwardStats(k: KernelStep, c: Consts<'act_bwd_stats'>): CudaKernel {
  const f = { ...c, outStats: true };
  const body = [...channelTile(c.C, c.HW), 'const float d = valid ? nincc::ld(&g[at]) : 0.0f;', ...backwardStats(f, 'd', 'at', 'ch', 'valid', tileSlot(c.C, c.HW))];
  return { params: params(k, ['g', ...statsParams(f)]), body, launch: channelTiles(c.C, c.HW), fused: 'Σdz, Σdz·x̂ partials of a materialized value' };
}

/** A concat's gradient slice for a branch end with a pending BN (concat_take), and that BN's partials of it in the same pass. */
export function concatTakeStats(k: KernelStep, c: Consts<'concat_take_stats'>): CudaKernel {
  const f = { ...c, outStats: true };
  const body = [
    ...channelTile(c.C, c.HW),
    `const float d = valid ? nincc::ld(&g[((long long)img * ${c.total} + ${c.offset} + ch) * ${c.HW} + j]) : 0.0f;`,
    'if (valid) nincc::st(&dx[at], d);',
    ...backwardStats(f, 'd', 'at', 'ch', 'valid', tileSlot(c.C, c.HW)),
  ];
  return { params: params(k, ['g', { name: 'dx', out: true }, ...statsParams(f)]), body, launch: channelTiles(c.C, c.HW), fused: `channels ${c.offset}…${c.offset + c.C - 1} of the concat's gradient + the branch end's BN partials Σdz, Σdz·x̂` };
}

/**
 * Elements of an image each grad_rebuild thread rebuilds, a block's width apart (so each load stays
 * coalesced): a plane of the early layers is tens of thousands of 256-thread blocks at one element each,
 * over a hundred waves whose latency no other work hides (runtime/profile/time-model.ts); eight loads in
 * flight per thread and an eighth of the blocks.
 */
export const REBUILD_PER_THREAD = 8;

export function gradRebuild(k: KernelStep, c: Consts<'grad_rebuild'>): CudaKernel {
  const count = c.C * c.HW;
  const launch = perElement(count);
  const width = launch.block[0];
  const body = [
    'const int img = int(blockIdx.z);',
    'if (img >= n) return;',
    ...(c.gBn ? [`const float inv_m = 1.0f / float((long long)n * ${c.HW});`] : []),
    `const int first = int(blockIdx.x) * ${width * REBUILD_PER_THREAD} + int(threadIdx.x);`,
    'NINCC_UNROLL',
    `for (int r = 0; r < ${REBUILD_PER_THREAD}; ++r) {`,
    `  const int i = first + r * ${width};`,
    `  if (i < ${count}) {`,
    ...[`const long long at = (long long)img * ${count} + i;`, `float d = ${loadFloat('g', 'at', c.gBf16)};`, ...rebuildGradient(c, 'd', 'at', `i / ${c.HW}`), storeFloat('dx', 'at', 'd', c.bf16)].map((s) => `    ${s}`),
    '  }',
    '}',
  ];
  return {
    params: params(k, [{ name: 'g', bf16: c.gBf16 }, ...rebuildParams(c), { name: 'dx', out: true, bf16: c.bf16 }]),
    body,
    launch: { ...launch, grid: [Math.ceil(count / (width * REBUILD_PER_THREAD)), 1, 1] },
    fused: fusedText([c.gRelu && 'dReLU', c.gBn && 'dBN']) + ` (for a consumer without the prologue; ${REBUILD_PER_THREAD} elements per thread${c.gBf16 ? '; g read as bf16' : ''}${c.bf16 ? '; stored bf16' : ''})`,
  };
}
