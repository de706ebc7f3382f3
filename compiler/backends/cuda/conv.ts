// The CUDA convolution kernels (part of codegen-cuda): the forward as an implicit GEMM per image in
// 32×32 output tiles, shared by inference (BN folded, ReLU in the epilogue) and training (the input's
// pending BN+ReLU applied while staging, per-tile BN statistics in the epilogue); the data and weight
// gradients with the dBN·dReLU rebuild in their prologues; and the ordered sum of the weight-gradient
// splits. Each stages 16-deep slices of both GEMM operands in shared memory; thread (tx, ty) of the
// 32×8 block owns column tx and rows ty + 8i, i < 4, so each warp is one row (one channel).
// Memory is reached through nincc::ld/st and FMAs through nincc::ffma (the plain instructions under
// nvcc), so a profiled emu launch counts them at their line (docs/profile.md).
import {
  applyPending,
  cppDouble,
  backwardStats,
  flat,
  forwardStats,
  inputParams,
  outputPlace,
  params,
  rebuildGradient,
  rebuildParams,
  statsParams,
  tileSlot,
  fusedText,
  type Consts,
  type CudaKernel,
} from './parts.js';
import type { KernelStep } from '../../lower/program-ir.js';
import type { ConvShape } from '../../lower/ops.js';
import { addBackwardOf, addBackwardOfDgrad, addBackwardParams, addBackwardText, endsSum, endsText } from './residual.js';

/**
 * report.txt's tile configuration of these fp32 SIMT kernels (issue #15, acceptance 3): each block a 32×32 tile of
 * the output, 8 warps of 32 columns × 4 rows (4 outputs a thread: rows ty + 8·i), the reduction in k slices of 16.
 */
const simtTile = (m: string, n: number, k: string) => `32×32×16 tile (fp32 SIMT), 8 warps of 32×4 (4 outputs a thread), M = ${m}, N = ${n}, K = ${k}`;

/** Loads a 16×32 tile of a GEMM operand into shared memory with the whole 256-thread block. */
const tileLoop = (inner: string[]) => ['for (int slot = t; slot < 16 * 32; slot += 256) {', '  const int kk = slot / 32, col = slot % 32;', ...inner.map((s) => `  ${s}`), '}'];

/** acc[i] += A[kk][ty + 8i] · B[kk][tx] over the 16-deep slice in shared memory. */
const tileProduct = (a: string, bm: string) => [
  'NINCC_UNROLL',
  'for (int kk = 0; kk < 16; ++kk) {',
  `  const float bv = nincc::ld(&${bm}[kk][tx]);`,
  '  NINCC_UNROLL',
  `  for (int i = 0; i < 4; ++i) acc[i] = nincc::ffma(nincc::ld(&${a}[kk][ty + 8 * i]), bv, acc[i]);`,
  '}',
];

type StemConsts = { readonly C: number; readonly u8Mean?: readonly number[]; readonly u8Std?: readonly number[] };

/** The x parameter: float activations, or the uint8 images of a stem conv (ops.ts u8Input). */
const inputParam = (c: StemConsts) => (c.u8Mean ? { name: 'x', u8: true } : 'x');

/** Image img's input: `xi`, its C·H·W floats, or its H·W·C bytes for a stem conv. */
const imageInput = (c: StemConsts & { readonly H: number; readonly W: number }, img: string) =>
  `const ${c.u8Mean ? 'unsigned char' : 'float'}* xi = x + (long long)${img} * ${c.C * c.H * c.W};`;

/**
 * A stem conv's table of the loader's value of each byte per channel, (v/255 − mean)/std in double rounded
 * once to float (runtime/imagenet/donkey.ts cropToTensor), built by the block into shared memory before its
 * first load: the float path's exact values at a shared-memory read per load, with no float image written.
 */
function stemTable(c: StemConsts): string[] {
  if (!c.u8Mean || !c.u8Std) return [];
  const list = (xs: readonly number[]) => xs.map(cppDouble).join(', ');
  return [
    `NINCC_SHARED_2D(float, lut, ${c.C}, 256);  // lut[ch][v]: byte v of channel ch, normalised`,
    '{',
    `  const double mean[${c.C}] = {${list(c.u8Mean)}}, stdev[${c.C}] = {${list(c.u8Std)}};`,
    `  for (int e = t; e < ${c.C * 256}; e += 256) nincc::st(&lut[e / 256][e % 256], float((double(e % 256) / 255.0 - mean[e / 256]) / stdev[e / 256]));`,
    '}',
    '__syncthreads();',
  ];
}

/**
 * Whether a conv's taps at one offset, (ph, pw), read every input element exactly once over its output positions:
 * stride 1 and an output plane the input's size. Then a conv whose input is a residual block's sum computed on load
 * (conv_fwd_fused sumInput) can store that sum whole from the blocks of its first channel tile.
 */
export const centreTapCoversInput = (c: ConvShape) => c.sh === 1 && c.sw === 1 && c.P === c.H && c.Q === c.W && c.ph < c.R && c.pw < c.S;

/** The residual sum a conv_fwd_fused computes as it loads (sumInput), for endsSum. */
const sumOf = (c: Consts<'conv_fwd_fused'>) => ({ aBn: c.aBn === true, aRelu: c.aRelu === true, bBn: c.bBn === true, bRelu: c.bRelu === true, relu: c.sumRelu === true });

/** Whether a forward computes its input, a residual block's output, as it loads (lower/train-fused.ts addInNextConv). */
export const summedInput = (c: Consts<'conv_fwd_fused' | 'conv_infer'>): c is Consts<'conv_fwd_fused'> => 'sumInput' in c && c.sumInput === true;

/** The kernel parameters of x: its two branch ends and their pending BN's scale/shift when it is a residual sum, else x. */
export const inputEnds = <X>(c: Consts<'conv_fwd_fused' | 'conv_infer'>, x: X): (X | string)[] => {
  if (!summedInput(c)) return [x];
  const e = sumOf(c);
  return ['xa', ...(e.aBn ? ['xa_scale', 'xa_shift'] : []), 'xb', ...(e.bBn ? ['xb_scale', 'xb_shift'] : [])];
};

/** report.txt's words for a forward that computes its input as it loads. */
export const sumInputText = (c: Consts<'conv_fwd_fused' | 'conv_infer'>) => summedInput(c) && `prologue: the ${endsText(sumOf(c))} of the block before (its first channel tile stores the sum)`;

/**
 * The input element at (ch, h, u) of image img, `v`: a residual block's output relu?(xa' + xb') computed from its two
 * branch ends (residual.ts endsSum, add_apply's arithmetic: the same bits), stored to x_out where `first` holds: each
 * element once, by the blocks of the first output-channel tile at the tap (ph, pw) only (centreTapCoversInput).
 */
export function sumInput(c: Consts<'conv_fwd_fused'>, first: string): string[] {
  return [
    '{',
    `  const long long xe = (long long)img * ${c.C * c.H * c.W} + (ch * ${c.H} + h) * ${c.W} + u;`,
    ...endsSum(sumOf(c), 'xe', 'x', 'sum').map((s) => `  ${s}`),
    '  v = sum;',
    `  if (${first}) nincc::st(&x_out[xe], sum);  // the block output, for its other readers`,
    '}',
  ];
}

/**
 * xs[kk][col] = X_col[crs][position] of image xi: the input at tap (r, s) of channel ch for output
 * position `pos`, with the input's pending BN+ReLU applied; 0 in the padding (Torch pads the activation).
 */
function gatherInput(c: Consts<'conv_fwd_fused' | 'conv_infer' | 'conv_wgrad_fused'>, pos: string): string[] {
  const PQ = c.P * c.Q, CRS = c.C * c.R * c.S, RS = c.R * c.S;
  const load = 'sumInput' in c && c.sumInput
    ? sumInput(c, `k0 == 0 && r == ${c.ph} && s == ${c.pw}`)
    : [
        c.u8Mean
          ? `v = nincc::ld(&lut[ch][nincc::ld(&xi[(h * ${c.W} + u) * ${c.C} + ch])]);  // uint8 NHWC, normalised on load`
          : `v = nincc::ld(&xi[(ch * ${c.H} + h) * ${c.W} + u]);`,
      ];
  return [
    'float v = 0.0f;',
    `if (crs < ${CRS} && ${pos} < ${PQ}) {`,
    `  const int ch = crs / ${RS}, r = crs / ${c.S} % ${c.R}, s = crs % ${c.S};`,
    `  const int h = ${pos} / ${c.Q} * ${c.sh} - ${c.ph} + r, u = ${pos} % ${c.Q} * ${c.sw} - ${c.pw} + s;`,
    `  if (h >= 0 && h < ${c.H} && u >= 0 && u < ${c.W}) {`,
    ...load.map((s) => `    ${s}`),
    ...applyPending(c, 'v', 'ch').map((s) => `    ${s}`),
    '  }',
    '}',
    'nincc::st(&xs[kk][col], v);',
  ];
}

export function convForward(k: KernelStep, c: Consts<'conv_fwd_fused' | 'conv_infer'>): CudaKernel {
  // Y[K][PQ] = W[K][CRS] · X_col[CRS][PQ] per image in 32×32 tiles (as conv_infer), the input's pending
  // BN+ReLU applied while staging X_col (padding stays 0: Torch pads the activation), and when a BN
  // follows, each warp (one output channel, 32 positions) writes its tile's mean and M2.
  // At inference the output may be a slice of a concat's buffer, and the epilogue may add a shortcut (laid out as y).
  const PQ = c.P * c.Q, CRS = c.C * c.R * c.S, RS = c.R * c.S;
  const o = outputPlace(c);
  const summed = summedInput(c);
  if (summed && !centreTapCoversInput(c)) throw new Error(`internal error: ${k.kernel} adds its input as it loads, but its taps at (${c.ph}, ${c.pw}) do not reach every input element once`);
  const names = [...inputEnds(c, inputParam(c)), ...inputParams(c), 'w', ...(c.bias ? ['b'] : []), ...(o.residual ? ['r'] : []), { name: 'y', out: true }, ...(summed ? [{ name: 'x_out', out: true }] : []), ...(c.stats ? [{ name: 'st_mean', out: true }, { name: 'st_m2', out: true }] : [])];
  const body = [
    'NINCC_SHARED_2D(float, ws, 16, 33);  // ws[kk][m] = W[k0 + m][c0 + kk]',
    'NINCC_SHARED_2D(float, xs, 16, 32);  // xs[kk][j] = X_col[c0 + kk][j0 + j], pending transform applied',
    'const int img = int(blockIdx.z);',
    'if (img >= n) return;',
    'const int tx = int(threadIdx.x), ty = int(threadIdx.y), t = ty * 32 + tx;',
    'const int j0 = int(blockIdx.x) * 32, k0 = int(blockIdx.y) * 32;',
    ...stemTable(c),
    ...(summed ? [] : [imageInput(c, 'img')]),
    'float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};',
    `for (int c0 = 0; c0 < ${CRS}; c0 += 16) {`,
    ...tileLoop([
      'const int crs = c0 + kk, k = k0 + col, j = j0 + col;',
      `nincc::st(&ws[kk][col], (k < ${c.K} && crs < ${CRS}) ? nincc::ld(&w[(long long)k * ${CRS} + crs]) : 0.0f);`,
      ...gatherInput(c, 'j'),
    ]).map((s) => `  ${s}`),
    '  __syncthreads();',
    ...tileProduct('ws', 'xs').map((s) => `  ${s}`),
    '  __syncthreads();',
    '}',
    'NINCC_UNROLL',
    'for (int i = 0; i < 4; ++i) {',
    '  const int k = k0 + ty + 8 * i, j = j0 + tx;',
    // Only where K leaves a partial tile: the guard that can never fire made ptxas spill 8 B on sm_90 in
    // ResNet's 64-channel convs (scripts/check-spills.ts, bench/logs/cuda-spills-all.out).
    ...(c.K % 32 === 0 ? [] : [`  if (k >= ${c.K}) continue;  // uniform over the warp: a warp is one row ty`]),
    `  const bool valid = j < ${PQ};`,
    `  float v = acc[i]${c.bias ? ' + nincc::ld(&b[k])' : ''};`,
    ...(o.residual ? [`  if (valid) v += nincc::ld(&r[(long long)img * ${c.K * PQ} + (long long)k * ${PQ} + j]);  // the residual block's shortcut`] : []),
    ...(c.relu ? ['  v = v > 0.0f ? v : 0.0f;  // inference: the ReLU after a folded BN'] : []),
    `  if (valid) nincc::st(&y[(long long)img * ${o.total * PQ} + (long long)${o.offset ? `(${o.offset} + k)` : 'k'} * ${PQ} + j], v);`,
    ...(c.stats ? forwardStats('v', 'valid', `min(32, ${PQ} - j0)`, tileSlot(c.K, PQ, 'k')).map((s) => `  ${s}`) : []),
    '}',
  ];
  const fused = fusedText(['implicit-GEMM conv', c.u8Mean && 'prologue: uint8 NHWC images normalised on load', sumInputText(c), c.inBn && 'prologue: previous BN scale/shift', c.inRelu && 'prologue: ReLU', c.bias && 'bias', o.residual && 'epilogue: residual add', o.total !== c.K && 'epilogue: concat slice in place', c.relu && 'epilogue: ReLU', c.stats && 'epilogue: per-tile BN statistics (mean, M2)']);
  return { params: params(k, names), body, launch: { grid: [Math.ceil(PQ / 32), Math.ceil(c.K / 32), 1], batchAxis: 2, block: [32, 8, 1], shared: 0 }, fused, tile: simtTile(`N·${PQ}`, c.K, `${CRS}`) };
}

export function convBackwardData(k: KernelStep, c: Consts<'conv_dgrad_fused'>): CudaKernel {
  // dX[C][HW] = Σ_{k,r,s} W[k][c][r][s] · dY[k][p][q] with h = p·sh − ph + r (taps whose h + ph − r is
  // not a multiple of the stride contribute nothing). dY is rebuilt on load from the gradient of the
  // conv's (pending) output value; the epilogue writes dX and the partials of the input's pending BN,
  // or, where the input is a residual add's output and this is its last gradient, the add's backward.
  const HW = c.H * c.W, PQ = c.P * c.Q, KRS = c.K * c.R * c.S, RS = c.R * c.S;
  const add = addBackwardOfDgrad(c);
  if (add && c.outStats) throw new Error(`internal error: ${k.kernel} writes the partials of its input's BN and a residual add's backward`);
  const names = ['g', ...rebuildParams(c), 'w', ...(c.addend ? ['g_add'] : []), { name: 'dx', out: true }, ...statsParams(c), ...(add ? addBackwardParams(add) : [])];
  const body = [
    'NINCC_SHARED_2D(float, ws, 16, 33);  // ws[kk][m] = W[k][c0 + m][r][s] for reduce index e0 + kk = (k, r, s)',
    'NINCC_SHARED_2D(float, gs, 16, 32);  // gs[kk][j] = dY[k][p][q] at the tap that reaches position j0 + j',
    'const int img = int(blockIdx.z);',
    'if (img >= n) return;',
    'const int tx = int(threadIdx.x), ty = int(threadIdx.y), t = ty * 32 + tx;',
    'const int j0 = int(blockIdx.x) * 32, c0 = int(blockIdx.y) * 32;',
    ...(c.gBn ? [`const float inv_m = 1.0f / float((long long)n * ${PQ});`] : []),
    'float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};',
    `for (int e0 = 0; e0 < ${KRS}; e0 += 16) {`,
    ...tileLoop([
      'const int e = e0 + kk, ch = c0 + col, j = j0 + col;',
      `const int kout = e / ${RS}, rs = e % ${RS}, r = rs / ${c.S}, s = rs % ${c.S};`,
      `nincc::st(&ws[kk][col], (e < ${KRS} && ch < ${c.C}) ? nincc::ld(&w[((long long)kout * ${c.C} + ch) * ${RS} + rs]) : 0.0f);`,
      'float d = 0.0f;',
      `if (e < ${KRS} && j < ${HW}) {`,
      `  const int hp = j / ${c.W} + ${c.ph} - r, up = j % ${c.W} + ${c.pw} - s;`,
      `  if (hp >= 0 && up >= 0 && hp % ${c.sh} == 0 && up % ${c.sw} == 0 && hp / ${c.sh} < ${c.P} && up / ${c.sw} < ${c.Q}) {`,
      `    const long long at = (long long)img * ${c.K * PQ} + (long long)kout * ${PQ} + (hp / ${c.sh}) * ${c.Q} + up / ${c.sw};`,
      '    d = nincc::ld(&g[at]);',
      ...rebuildGradient(c, 'd', 'at', 'kout').map((s) => `    ${s}`),
      '  }',
      '}',
      'nincc::st(&gs[kk][col], d);',
    ]).map((s) => `  ${s}`),
    '  __syncthreads();',
    ...tileProduct('ws', 'gs').map((s) => `  ${s}`),
    '  __syncthreads();',
    '}',
    'NINCC_UNROLL',
    'for (int i = 0; i < 4; ++i) {',
    '  const int ch = c0 + ty + 8 * i, j = j0 + tx;',
    `  if (ch >= ${c.C}) continue;  // uniform over the warp`,
    `  const bool valid = j < ${HW};`,
    `  const long long at = (long long)img * ${c.C * HW} + (long long)ch * ${HW} + j;`,
    ...(c.addend ? ["  if (valid) acc[i] += nincc::ld(&g_add[at]);  // another reader's gradient of the same input"] : []),
    // The add's backward: dX (the add's whole gradient, this conv's the last) masked by the block's ReLU is dz, both ends' gradient.
    ...(add
      ? ['  {', '    float d = acc[i];', ...addBackwardOf(add, tileSlot(c.C, HW), 'dx').map((s) => `    ${s}`), '  }']
      : ['  if (valid) nincc::st(&dx[at], acc[i]);', ...backwardStats(c, 'acc[i]', 'at', 'ch', 'valid', tileSlot(c.C, HW)).map((s) => `  ${s}`)]),
    '}',
  ];
  const fused = fusedText(['implicit-GEMM dgrad', c.gRelu && 'prologue: dReLU', c.gBn && 'prologue: dBN (dy rebuilt from y, dγ, dβ)', c.addend && "epilogue: + another reader's gradient", c.outStats && 'epilogue: Σdz, Σdz·x̂ partials of the input BN', add && `epilogue: the ${addBackwardText(add)} of the block before`]);
  return { params: params(k, names), body, launch: { grid: [Math.ceil(HW / 32), Math.ceil(c.C / 32), 1], batchAxis: 2, block: [32, 8, 1], shared: 0 }, fused, tile: simtTile(`N·${HW}`, c.C, `${KRS}`) };
}

export function convBackwardWeight(k: KernelStep, c: Consts<'conv_wgrad_fused'>): CudaKernel {
  // dW[K][CRS] = Σ_images Σ_pq dY[k][pq] · X_col[crs][pq] for the images of split blockIdx.z, into
  // partials[split]; dY rebuilt on load (prologue), X_col with the input's pending transform. The
  // blocks of column 0 also sum dY per row for the bias. wgrad_reduce adds the splits in order.
  const PQ = c.P * c.Q, CRS = c.C * c.R * c.S, RS = c.R * c.S;
  const names = ['g', ...rebuildParams(c), inputParam(c), ...inputParams(c), { name: 'wpart', out: true }, { name: 'bpart', out: true }];
  const body = [
    'NINCC_SHARED_2D(float, gs, 16, 33);  // gs[kk][m] = dY[k0 + m][pq0 + kk]',
    'NINCC_SHARED_2D(float, xs, 16, 32);  // xs[kk][j] = X_col[crs0 + j][pq0 + kk]',
    'const int tx = int(threadIdx.x), ty = int(threadIdx.y), t = ty * 32 + tx;',
    'const int crs0 = int(blockIdx.x) * 32, k0 = int(blockIdx.y) * 32, split = int(blockIdx.z);',
    `const int first = int((long long)split * n / ${c.splits}), last = int((long long)(split + 1) * n / ${c.splits});`,
    ...(c.gBn ? [`const float inv_m = 1.0f / float((long long)n * ${PQ});`] : []),
    ...stemTable(c),
    'float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};',
    'float bias_acc = 0.0f;  // row k0 + t of dY summed, in the blocks of column 0',
    'for (int img = first; img < last; ++img) {',
    `  ${imageInput(c, 'img')}`,
    `  for (int pq0 = 0; pq0 < ${PQ}; pq0 += 16) {`,
    ...tileLoop([
      'const int pq = pq0 + kk, kout = k0 + col, crs = crs0 + col;',
      'float d = 0.0f;',
      `if (pq < ${PQ} && kout < ${c.K}) {`,
      `  const long long at = (long long)img * ${c.K * PQ} + (long long)kout * ${PQ} + pq;`,
      '  d = nincc::ld(&g[at]);',
      ...rebuildGradient(c, 'd', 'at', 'kout').map((s) => `  ${s}`),
      '}',
      'nincc::st(&gs[kk][col], d);',
      ...gatherInput(c, 'pq'),
    ]).map((s) => `    ${s}`),
    '    __syncthreads();',
    ...(c.bias ? ['    if (blockIdx.x == 0 && t < 32) for (int kk = 0; kk < 16; ++kk) bias_acc += nincc::ld(&gs[kk][t]);'] : []),
    ...tileProduct('gs', 'xs').map((s) => `    ${s}`),
    '    __syncthreads();',
    '  }',
    '}',
    'NINCC_UNROLL',
    'for (int i = 0; i < 4; ++i) {',
    '  const int kout = k0 + ty + 8 * i, crs = crs0 + tx;',
    `  if (kout < ${c.K} && crs < ${CRS}) nincc::st(&wpart[(long long)split * ${c.K * CRS} + (long long)kout * ${CRS} + crs], acc[i]);`,
    '}',
    `if (blockIdx.x == 0 && t < 32 && k0 + t < ${c.K}) nincc::st(&bpart[split * ${c.K} + k0 + t], bias_acc);`,
  ];
  const fused = fusedText(['implicit-GEMM wgrad (split over the batch)', c.u8Mean && 'prologue: uint8 NHWC images normalised on load', c.gRelu && 'prologue: dReLU', c.gBn && 'prologue: dBN', c.inBn && 'prologue: input BN scale/shift', c.inRelu && 'prologue: input ReLU', c.bias && 'bias gradient']);
  return { params: params(k, names), body, launch: { grid: [Math.ceil(CRS / 32), Math.ceil(c.K / 32), c.splits], block: [32, 8, 1], shared: 0 }, fused, tile: `${simtTile(`${CRS}`, c.K, `N·${PQ}`)} in ${c.splits} batch splits` };
}

/**
 * Weights each wgrad_reduce thread sums, a block's width apart (coalesced): the largest layer's 3.5 M
 * weights at one per thread are 14 k blocks, waves whose latency nothing hides (runtime/profile/time-model.ts).
 */
export const REDUCE_PER_THREAD = 8;

export function wgradReduce(k: KernelStep, c: Consts<'wgrad_reduce'>): CudaKernel {
  const names = ['wpart', 'bpart', { name: 'dw', out: true }, ...(c.bias ? [{ name: 'db', out: true }] : [])];
  const launch = flat(c.count);
  const width = launch.block[0];
  const body = [
    `const long long first = (long long)blockIdx.x * ${width * REDUCE_PER_THREAD} + threadIdx.x;`,
    'NINCC_UNROLL',
    `for (int r = 0; r < ${REDUCE_PER_THREAD}; ++r) {`,
    `  const long long i = first + r * ${width};`,
    `  if (i < ${c.count}) {`,
    '    float s = 0.0f;',
    `    for (int split = 0; split < ${c.splits}; ++split) s += nincc::ld(&wpart[(long long)split * ${c.count} + i]);`,
    '    nincc::st(&dw[i], s);',
    '  }',
    ...(c.bias ? [`  if (i < ${c.K}) {  // the bias: K ≤ count, so these i cover it`, '    float s = 0.0f;', `    for (int split = 0; split < ${c.splits}; ++split) s += nincc::ld(&bpart[split * ${c.K} + i]);`, '    nincc::st(&db[i], s);', '  }'] : []),
    '}',
    '(void)n;',
  ];
  return { params: params(k, names), body, launch: { ...launch, grid: [Math.max(1, Math.ceil(c.count / (width * REDUCE_PER_THREAD))), 1, 1] }, fused: `the weight-gradient splits summed in order (${REDUCE_PER_THREAD} weights per thread)` };
}
