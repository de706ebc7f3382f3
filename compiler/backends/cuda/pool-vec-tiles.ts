// CUDA pooling forward (max and average; training with the pending BN+ReLU applied on load, and
// inference) that reads each input element once: a block copies a segment of the input — whole
// consecutive planes of one image, or a band of rows of one plane — into shared memory with coalesced
// loads, applying the pending transform there, then computes the segment's outputs from the tile.
import { params, inputParams, fusedText, loadFloat, storeFloat, BLOCK, type Consts, type CudaKernel } from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';
import type { PlanLaunch } from '../../emit/plan.js';
import { divisor, poolWindow } from './pool.js';

type ForwardOp = 'maxpool_fwd_fused' | 'avgpool_fwd_fused' | 'maxpool_fwd_infer' | 'avgpool_fwd';

/**
 * The most input floats a block stages (16 KB). One thread per output used to read every window from
 * global memory: overlapping 3×3/2 windows and stride-2 lanes made NIN's first pool load 6.3× its input's
 * sectors (bench/logs/profile-nin-h100-b128-bf16-i15lm.out: 28.45M for 4.48M).
 */
export const POOL_TILE_FLOATS = 4096;

/** Segments each block takes in turn: a plane of the early layers is one segment, and 12,288 of them are 12 waves of one-segment blocks. */
export const POOL_SEGMENTS_PER_BLOCK = 4;

/** How a layer's input splits into segments: `planes` whole planes each, or bands of `bandRows` output rows of one plane. */
export interface PoolSegments {
  /** Whole planes (they are contiguous in NCHW, so the tile is one run of the input), else bands of one plane. */
  readonly wholePlanes: boolean;
  readonly planes: number;
  readonly bandRows: number;
  readonly bands: number;
  /** Segments per image. */
  readonly count: number;
  /** Floats of the largest segment's tile. */
  readonly tileFloats: number;
}

/** Input rows output rows p0 … p0+rows−1 read (windows clipped to the image). */
const bandInputRows = (c: Consts<ForwardOp>, p0: number, rows: number) => Math.min(c.H, (p0 + rows - 1) * c.sh - c.ph + c.R) - Math.max(0, p0 * c.sh - c.ph);

export function poolSegments(c: Consts<ForwardOp>): PoolSegments {
  const plane = c.H * c.W;
  if (plane <= POOL_TILE_FLOATS) {
    const planes = Math.min(c.C, Math.floor(POOL_TILE_FLOATS / plane));
    return { wholePlanes: true, planes, bandRows: c.P, bands: 1, count: Math.ceil(c.C / planes), tileFloats: planes * plane };
  }
  // The widest band whose rows fit, then bands of equal height (the last takes the remainder).
  let most = 1;
  while (most < c.P && (most * c.sh + c.R) * c.W <= POOL_TILE_FLOATS) most += 1;
  const bands = Math.ceil(c.P / most);
  const bandRows = Math.ceil(c.P / bands);
  let tileRows = 0;
  for (let b = 0; b < bands; ++b) tileRows = Math.max(tileRows, bandInputRows(c, b * bandRows, Math.min(bandRows, c.P - b * bandRows)));
  return { wholePlanes: false, planes: 1, bandRows, bands, count: c.C * bands, tileFloats: Math.max(1, tileRows) * c.W };
}

/**
 * Elements a sector holds (`sectorAligned`, switch poolSectorRuns): a segment's input (src…) and its outputs (from
 * seg_base) are each one contiguous run (whole planes of one image, or a band of rows of one plane), and the staging
 * and output loops start at the sector holding the run's first element, so that each warp loads or stores 32
 * consecutive elements from a sector boundary (fp32: 4 whole sectors; bf16: 2) instead of runs that straddle one more
 * wherever a segment starts inside a sector (NIN's 14² and 7² planes: five and 83 planes a segment). The lanes before
 * the run and those past its end load (and stage) or compute (and store) its first or last element again (the same
 * bytes: no sector added), so that the loops are uniform in each warp and every lane runs the access as often whatever
 * the segment's offset (the emulator pairs a site's k-th executions by each lane, docs/profile.md).
 */
const sectorOutputs = (bf16: boolean) => (bf16 ? 16 : 8);

export function poolForwardTiled(k: KernelStep, c: Consts<ForwardOp>, max: boolean, argmax = max, sectorAligned = true): CudaKernel {
  // A training max pool read only by convs stores its output in bf16 (lower/train-fused.ts bf16Pooled).
  const bf16 = 'bf16' in c && c.bf16 === true;
  // A training pool may read a conv's output stored in bf16 (lower/train-fused.ts bf16ConvOut), widened as it is staged.
  const xBf16 = 'xBf16' in c && c.xBf16 === true;
  // Torch7 floor or ceil mode (P×Q from the compiler; windows clipped to the image); max: -inf padding,
  // ties to the first maximum, NaN wins, the argmax (h·W + w in the plane, −1 for none) kept for the
  // backward; avg: count_include_pad. The same per-element arithmetic, in the same window order, as one
  // thread per output reading global memory: the same bits.
  const seg = poolSegments(c);
  // 48 KB is the most static shared memory a block may declare: a single window row set wider than that (W in the thousands) has no tile.
  if (seg.tileFloats * 4 > 48 * 1024) throw new Error(`${k.kernel}: a ${c.R}-row window over ${c.W} columns needs ${seg.tileFloats * 4} bytes of shared tile, over the 48 KB a block may declare`);
  const plane = c.H * c.W;
  const out = c.C * c.P * c.Q;
  const body = [
    `NINCC_SHARED(float, tile, ${seg.tileFloats});`,
    ...(c.inBn ? [`NINCC_SHARED(float, seg_scale, ${seg.planes});`, `NINCC_SHARED(float, seg_shift, ${seg.planes});`] : []),
    'const int img = int(blockIdx.z), t = int(threadIdx.x);',
    'if (img >= n) return;',
    `for (int s = int(blockIdx.x) * ${POOL_SEGMENTS_PER_BLOCK}; s < min((int(blockIdx.x) + 1) * ${POOL_SEGMENTS_PER_BLOCK}, ${seg.count}); ++s) {`,
    `  const int ch0 = s / ${seg.bands} * ${seg.planes}, planes = min(${seg.planes}, ${c.C} - ch0);`,
    `  const int p0 = s % ${seg.bands} * ${seg.bandRows}, rows_out = min(${seg.bandRows}, ${c.P} - p0);`,
    seg.wholePlanes
      ? `  const int r0 = 0, r1 = ${c.H};  // whole planes, one contiguous run`
      : `  const int r0 = max(p0 * ${c.sh} - ${c.ph}, 0), r1 = min((p0 + rows_out - 1) * ${c.sh} - ${c.ph} + ${c.R}, ${c.H});`,
    `  const int rows_in = max(r1 - r0, 0), per_plane = rows_in * ${c.W};`,
    `  const ${xBf16 ? 'nincc::bf16' : 'float'}* src = x + (long long)img * ${c.C * plane} + (long long)ch0 * ${plane} + r0 * ${c.W};`,
    '  __syncthreads();  // the previous segment is done with the tile',
    ...(c.inBn ? ['  if (t < planes) { nincc::st(&seg_scale[t], nincc::ld(&in_scale[ch0 + t])); nincc::st(&seg_shift[t], nincc::ld(&in_shift[ch0 + t])); }', '  __syncthreads();'] : []),
    ...(sectorAligned
      ? [
          `  const int src_lead = int((${c.C * plane}LL * img + (long long)ch0 * ${plane} + r0 * ${c.W}) % ${sectorOutputs(xBf16)});  // src's elements before it in its sector`,
          `  for (int e_warp = t / 32 * 32 - src_lead; e_warp < planes * per_plane && planes * per_plane > 0; e_warp += ${BLOCK}) {  // from the sector holding src[0]: a warp loads whole sectors`,
          '    const int e = min(max(e_warp + t % 32, 0), planes * per_plane - 1);  // a lane before src[0] or past the run loads and stages its first or last element again',
        ]
      : [`  for (int e = t; e < planes * per_plane; e += ${BLOCK}) {`]),
    `    float v = ${loadFloat('src', 'e', xBf16)};`,
    ...(c.inBn ? ['    const int pl = e / per_plane;', '    v = nincc::ffma(v, nincc::ld(&seg_scale[pl]), nincc::ld(&seg_shift[pl]));'] : []),
    ...(c.inRelu ? ['    v = v > 0.0f ? v : 0.0f;'] : []),
    '    nincc::st(&tile[e], v);',
    '  }',
    '  __syncthreads();',
    ...(sectorAligned
      ? [
          `  const long long seg_base = (long long)img * ${out} + (long long)ch0 * ${c.P * c.Q} + p0 * ${c.Q};  // the segment's outputs: one contiguous run from here`,
          `  for (int o_warp = t / 32 * 32 - int(seg_base % ${sectorOutputs(bf16)}); o_warp < planes * rows_out * ${c.Q}; o_warp += ${BLOCK}) {  // from the sector holding seg_base: a warp stores whole sectors`,
          `    const int o = min(max(o_warp + t % 32, 0), planes * rows_out * ${c.Q} - 1);  // a lane before seg_base or past the run stores its first or last output again`,
        ]
      : [`  for (int o = t; o < planes * rows_out * ${c.Q}; o += ${BLOCK}) {`]),
    `    const int pl = o / (rows_out * ${c.Q}), p = p0 + o / ${c.Q} % rows_out, q = o % ${c.Q};`,
    ...poolWindow(c).map((s) => `    ${s}`),
    ...(max ? ['    float best = -INFINITY;', '    int best_at = -1;'] : ['    float sum = 0.0f;']),
    '    for (int h = h0; h < h1; ++h)',
    '      for (int u = w0; u < w1; ++u) {',
    `        const float e = nincc::ld(&tile[pl * per_plane + (h - r0) * ${c.W} + u]);`,
    ...(max ? [`        if (best_at < 0 || e > best || e != e) { best = e; best_at = h * ${c.W} + u; }`] : ['        sum += e;']),
    '      }',
    `    const long long at = (long long)img * ${out} + (long long)(ch0 + pl) * ${c.P * c.Q} + p * ${c.Q} + q;`,
    ...(max ? [`    ${storeFloat('y', 'at', 'best', bf16)}`, ...(argmax ? ['    nincc::st(&argmax[at], best_at);'] : [])] : [`    nincc::st(&y[at], sum / ${divisor(c)});`]),
    '  }',
    '}',
  ];
  const names = [{ name: 'x', bf16: xBf16 }, ...inputParams(c), { name: 'y', out: true, bf16 }, ...(argmax ? [{ name: 'argmax', out: true, int: true }] : [])];
  const launch: PlanLaunch = { grid: [Math.ceil(seg.count / POOL_SEGMENTS_PER_BLOCK), 1, 1], batchAxis: 2, block: [BLOCK, 1, 1], shared: 0 };
  const segText = seg.bands > 1 ? `bands of ${seg.bandRows} output rows` : `${seg.planes} plane${seg.planes > 1 ? 's' : ''}`;
  return {
    params: params(k, names),
    body,
    launch,
    fused: fusedText([`${max ? 'max' : 'average'} pooling from a shared tile (${segText} per segment, ${POOL_SEGMENTS_PER_BLOCK} segments per block)`, c.inBn && 'prologue: BN scale/shift', c.inRelu && 'prologue: ReLU']),
  };
}
