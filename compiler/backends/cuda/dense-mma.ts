// The bf16 tensor-core linear layer (precision bf16): forward and inference Y = X·Wᵀ (+ b, + ReLU), data
// gradient dX = G·W and weight gradient dW = Gᵀ·X (+ db = Σ_img G) as mma.m16n8k16 GEMMs with fp32
// accumulation, from conv-mma-tile.ts's staged-operand layout and main loop. Operands are the fp32
// activations and master weights, rounded to bf16 while staging: each weight is read once or twice per use
// (the batch is one or two M tiles), so a bf16 copy (conv-weight-bf16.ts, which pays off for a conv's weights
// re-read by every M tile) would cost a read and a write more than it saves. K is never split: the forward's
// and data gradient's K is the layer width, the weight gradient's the batch, each reduced by one block in
// k order, so results are bitwise repeatable without a reduction pass. fp32 keeps dense.ts.
import { params, fusedText, type Consts, type CudaKernel } from './parts.js';
import { BK, CANDIDATES, mmaPrologue, mmaSlice, stageAcrossRows, stageAlongK, swizzled, tileThreads, tileWords, type MmaTile } from './conv-mma-tile.js';
import type { KernelStep } from '../../lower/program-ir.js';

/** Blocks that fill the GPU once: about one per SM of an A100 (108) or H100 (132). */
const FILL_BLOCKS = 128;

/**
 * The tile of a small, memory-bound GEMM: each block stages (BM + BN) rows of k per slice, and the blocks
 * run in ⌈blocks / FILL_BLOCKS⌉ waves, so the time goes as waves · (BM + BN). A 128 × 1000 forward then takes
 * 64×16 (126 blocks, 80 rows per slice) over 128×64 (16 blocks, 192 rows) or 64×128 (16 blocks, 192).
 * Ties keep the candidate listed first.
 */
export function chooseDenseTile(rows: number, cols: number): MmaTile {
  const cost = (t: MmaTile) => Math.ceil((Math.ceil(rows / t.bm) * Math.ceil(cols / t.bn)) / FILL_BLOCKS) * (t.bm + t.bn);
  return [...CANDIDATES].sort((a, b) => cost(a) - cost(b))[0];
}

/**
 * Stages `rows` rows of a row-major [·][depth] fp32 matrix (`src`, rows from `r0`, rows past `limit` zero)
 * in k's natural order: eight lanes a row, lane `quarter` loading k0 + 4·quarter … + 3 as one 16-byte float4
 * (a warp reads four whole 128-byte rows) and storing them as one 8-byte half-chunk, as stageAlongK stores.
 * The float4 path needs depth % 4 = 0 and a 16-byte-aligned `src` (parameters are packed, so the kernel
 * checks: `vec`); otherwise, and for a ragged last slice, four scalar loads.
 */
function stageRowsVector(tile: 'as' | 'bs', rows: number, src: string, r0: string, limit: string, depth: number, threads: number): string[] {
  const scalar = [
    `      if (kk + e < ${depth}) f[e] = nincc::ld(&p[e]);`,
  ];
  return [
    'NINCC_UNROLL',
    `for (int q = t; q < ${rows * 8}; q += ${threads}) {`,
    '  const int row = q / 8, quarter = q % 8, kk = k0 + 4 * quarter;',
    '  float f[4] = {0.0f, 0.0f, 0.0f, 0.0f};',
    `  if (${r0} + row < ${limit} && kk < ${depth}) {`,
    `    const float* p = ${src} + (long long)(${r0} + row) * ${depth} + kk;`,
    ...(depth % 4 === 0
      ? [
          `    if (vec_${src}) {  // 16 bytes: kk < depth implies kk + 3 < depth`,
          '      const float4 v = nincc::ld(reinterpret_cast<const float4*>(p));',
          '      f[0] = v.x; f[1] = v.y; f[2] = v.z; f[3] = v.w;',
          '    } else {',
          '      NINCC_UNROLL',
          '      for (int e = 0; e < 4; ++e)',
          ...scalar,
          '    }',
        ]
      : ['    NINCC_UNROLL', '    for (int e = 0; e < 4; ++e)', ...scalar]),
    '  }',
    `  nincc::st(reinterpret_cast<int2*>(&${tile}[${swizzled('row', 'quarter / 2')}]) + quarter % 2, int2{int(nincc::to_bf16x2(f[1], f[0])), int(nincc::to_bf16x2(f[3], f[2]))});`,
    '}',
  ];
}

/** Whether a float4 may be read from `name`: depth % 4 = 0 (checked by the caller) and 16-byte alignment. */
const vectorCheck = (name: string) => `const bool vec_${name} = (reinterpret_cast<unsigned long long>(${name}) & 15) == 0;`;

/**
 * The epilogue: accumulator element i of tile (mt, nt) of lane l is D[row][col], row = 32·wm + 16·mt + l/4 +
 * 8·(i/2), col = WN·wn + 8·nt + 2·(l%4) + i%2 (the m16n8k16 C layout), stored to out[row·cols + col] with the
 * per-column bias and the ReLU applied. A lane's two columns are adjacent: one 8-byte store where cols is
 * even and `out` 8-byte aligned (parameters and gradients are packed, so the kernel checks), so four lanes
 * fill a 32-byte sector of a row.
 */
function storeTile(t: MmaTile, out: string, rowLimit: string, cols: number, bias: string | undefined, relu: boolean): string[] {
  const WN = t.nt * 8;
  const value = (half: number) => `acc[j / 2][nt][2 * (j % 2) + ${half}]${bias ? ` + bias${half}` : ''}`;
  return [
    ...(cols % 2 === 0 ? [`const bool pairs = (reinterpret_cast<unsigned long long>(${out}) & 7) == 0;`] : []),
    'NINCC_UNROLL',
    `for (int nt = 0; nt < ${t.nt}; ++nt) {`,
    `  const int col = n0 + wn * ${WN} + nt * 8 + 2 * (lane % 4);  // and col + 1`,
    `  if (col >= ${cols}) continue;`,
    ...(bias ? [`  const float bias0 = nincc::ld(&${bias}[col]), bias1 = col + 1 < ${cols} ? nincc::ld(&${bias}[col + 1]) : 0.0f;`] : []),
    '  NINCC_UNROLL',
    '  for (int j = 0; j < 4; ++j) {  // j = 2·mt + i/2: row 16·mt + 8·(i/2) + l/4 of the warp',
    '    const int row = m0 + wm * 32 + 16 * (j / 2) + 8 * (j % 2) + lane / 4;',
    `    if (row >= ${rowLimit}) continue;`,
    `    float d0 = ${value(0)}, d1 = ${value(1)};`,
    ...(relu ? ['    d0 = d0 > 0.0f ? d0 : 0.0f;', '    d1 = d1 > 0.0f ? d1 : 0.0f;'] : []),
    `    float* p = ${out} + (long long)row * ${cols} + col;`,
    ...(cols % 2 === 0
      ? ['    if (pairs) {  // cols even: col + 1 < cols too', '      nincc::st(reinterpret_cast<float2*>(p), float2{d0, d1});', '      continue;', '    }']
      : []),
    '    nincc::st(p, d0);',
    `    if (col + 1 < ${cols}) nincc::st(p + 1, d1);`,
    '  }',
    '}',
  ];
}

/** The block's corner of D and its k loop around the staging `stage` and the two mma k-steps. */
function mainLoop(t: MmaTile, depth: string, stage: readonly string[]): string[] {
  return [
    `const int m0 = int(blockIdx.x) * ${t.bm}, n0 = int(blockIdx.y) * ${t.bn};`,
    `for (int k0 = 0; k0 < ${depth}; k0 += ${BK}) {`,
    ...stage.map((s) => `  ${s}`),
    '  __syncthreads();',
    ...mmaSlice(t).map((s) => `  ${s}`),
    '  __syncthreads();',
    '}',
  ];
}

const launch = (t: MmaTile, rows: number, cols: number) => ({ grid: [Math.ceil(rows / t.bm), Math.ceil(cols / t.bn), 1] as [number, number, number], block: [tileThreads(t), 1, 1] as [number, number, number], shared: 0 });

/** y = x·wᵀ (+ b) (+ ReLU): M = the batch, N = out, K = in; both operands are rows along k, staged with 16-byte loads. */
export function linearForwardMma(k: KernelStep, c: Consts<'linear_fwd' | 'linear_infer'>, maxBatch: number): CudaKernel {
  const t = chooseDenseTile(maxBatch, c.out);
  const threads = tileThreads(t);
  const names = ['x', 'w', ...(c.bias ? ['b'] : []), { name: 'y', out: true }];
  const body = [
    ...mmaPrologue(t),
    `if (int(blockIdx.x) * ${t.bm} >= n) return;  // the grid is sized for the largest batch`,
    ...(c.in % 4 === 0 ? [vectorCheck('x'), vectorCheck('w')] : []),
    ...mainLoop(t, String(c.in), [
      '// Stage A: rows of x (images), B: rows of w (outputs), eight lanes a row, each a float4 of consecutive k.',
      ...stageRowsVector('as', t.bm, 'x', 'm0', 'n', c.in, threads),
      ...stageRowsVector('bs', t.bn, 'w', 'n0', String(c.out), c.in, threads),
    ]),
    ...storeTile(t, 'y', 'n', c.out, c.bias ? 'b' : undefined, c.relu),
  ];
  return {
    params: params(k, names),
    body,
    launch: launch(t, maxBatch, c.out),
    fused: fusedText(['bf16 tensor-core GEMM (mma.m16n8k16, fp32 accumulate), x and w rounded to bf16 while staging (16-byte loads)', c.bias && 'bias', c.relu && 'epilogue: ReLU']),
    tile: `${tileWords(t)}, M = N (batch), N = ${c.out}, K = ${c.in}`,
  };
}

/**
 * dx = g·w: M = the batch, N = in, K = out. A (rows of g) runs along k: eight lanes a row; B (columns of w,
 * w[o][i] for one i) runs across rows: consecutive lanes on consecutive i, 128 contiguous bytes a warp load.
 * Both use conv-mma-tile.ts's permuted k order, as the conv kernels that mix the two stagings do.
 */
export function linearBackwardDataMma(k: KernelStep, c: Consts<'linear_bwd_data'>, maxBatch: number): CudaKernel {
  const t = chooseDenseTile(maxBatch, c.in);
  const threads = tileThreads(t);
  const body = [
    ...mmaPrologue(t),
    `if (int(blockIdx.x) * ${t.bm} >= n) return;  // the grid is sized for the largest batch`,
    ...mainLoop(t, String(c.out), [
      '// Stage A: rows of g (images), eight lanes along each row\'s outputs.',
      ...stageAlongK('as', t.bm, {
        perRow: ['const int img = m0 + row;'],
        perElement: ['const int o = k0 + ko;', `if (img < n && o < ${c.out}) v = nincc::ld(&g[(long long)img * ${c.out} + o]);`],
      }, threads),
      '// Stage B: columns of w (inputs i), consecutive lanes on consecutive i.',
      ...stageAcrossRows('bs', t.bn, {
        perRow: ['const int i = n0 + row;'],
        perElement: ['const int o = k0 + ko;', `if (i < ${c.in} && o < ${c.out}) v = nincc::ld(&w[(long long)o * ${c.in} + i]);`],
      }, threads),
    ]),
    ...storeTile(t, 'dx', 'n', c.in, undefined, false),
  ];
  return {
    params: params(k, ['g', 'w', { name: 'dx', out: true }]),
    body,
    launch: launch(t, maxBatch, c.in),
    fused: 'bf16 tensor-core GEMM (mma.m16n8k16, fp32 accumulate), g and w rounded to bf16 while staging',
    tile: `${tileWords(t)}, M = N (batch), N = ${c.in}, K = ${c.out}`,
  };
}

/**
 * dw = gᵀ·x: M = out, N = in, K = the batch, both operands columns of batch-major matrices (across rows:
 * consecutive lanes on consecutive outputs or inputs). The blocks of the first column of tiles also sum db
 * in image order, in fp32 as dense.ts does (the same values bit for bit).
 */
export function linearBackwardWeightMma(k: KernelStep, c: Consts<'linear_bwd_weight'>): CudaKernel {
  const t = chooseDenseTile(c.out, c.in);
  const threads = tileThreads(t);
  const names = ['x', 'g', { name: 'dw', out: true }, ...(c.bias ? [{ name: 'db', out: true }] : [])];
  const body = [
    ...mmaPrologue(t),
    ...mainLoop(t, 'n', [
      '// Stage A: columns of g (outputs o), consecutive lanes on consecutive o.',
      ...stageAcrossRows('as', t.bm, {
        perRow: ['const int o = m0 + row;'],
        perElement: ['const int img = k0 + ko;', `if (o < ${c.out} && img < n) v = nincc::ld(&g[(long long)img * ${c.out} + o]);`],
      }, threads),
      '// Stage B: columns of x (inputs i), consecutive lanes on consecutive i.',
      ...stageAcrossRows('bs', t.bn, {
        perRow: ['const int i = n0 + row;'],
        perElement: ['const int img = k0 + ko;', `if (i < ${c.in} && img < n) v = nincc::ld(&x[(long long)img * ${c.in} + i]);`],
      }, threads),
    ]),
    ...storeTile(t, 'dw', String(c.out), c.in, undefined, false),
    ...(c.bias
      ? [
          'if (blockIdx.y == 0) {',
          `  for (int r = t; r < ${t.bm}; r += ${threads}) {`,
          '    const int o = m0 + r;',
          `    if (o >= ${c.out}) break;`,
          '    float s = 0.0f;',
          `    for (int img = 0; img < n; ++img) s += nincc::ld(&g[(long long)img * ${c.out} + o]);`,
          '    nincc::st(&db[o], s);',
          '  }',
          '}',
        ]
      : []),
  ];
  return {
    params: params(k, names),
    body,
    launch: launch(t, c.out, c.in),
    fused: fusedText(['bf16 tensor-core GEMM (mma.m16n8k16, fp32 accumulate), g and x rounded to bf16 while staging', c.bias && 'bias gradient (fp32, image order)']),
    tile: `${tileWords(t)}, M = ${c.out}, N = ${c.in}, K = N (batch)`,
  };
}
