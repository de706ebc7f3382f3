// What the bf16 tensor-core convolutions (conv-mma.ts forward, conv-mma-grad.ts data and weight gradients)
// share: the tile configurations and their choice, the XOR-swizzled shared-memory layout of a staged
// operand (rows × 32 k in bf16, four 16-byte chunks per row), the packing of eight fp32 values into one
// chunk, and the main loop's ldmatrix + mma.m16n8k16 k-steps over a staged slice. Every kernel stages
// both GEMM operands the same way, as rows of the reduced index: A's rows are D's rows (M), B's rows D's columns (N).

export const THREADS = 128; // 4 warps
export const BK = 32; // k per staged slice: two mma k-steps, four 16-byte chunks per shared row

/** A tile configuration: BM×BN of D per block, warps laid out warpsM×warpsN, each 32×(nt·8). */
export interface MmaTile {
  readonly bm: number;
  readonly bn: number;
  readonly warpsM: number;
  readonly warpsN: number;
  readonly nt: number; // n8 mma tiles per warp (the warp's M is always two m16 tiles: 32 rows)
}

const CANDIDATES: readonly MmaTile[] = [
  ...[1, 2, 4].map((nt) => ({ bm: 64, bn: 2 * 8 * nt, warpsM: 2, warpsN: 2, nt })),
  ...[1, 2, 4].map((nt) => ({ bm: 128, bn: 8 * nt, warpsM: 4, warpsN: 1, nt })),
];

/**
 * The layer's tile: the least padded work (tiles · BM · BN, so 96 output channels take 32-wide tiles,
 * not 64), then the least operand staging per unit of work ((BM + BN) / (BM · BN): bigger, squarer tiles).
 */
export function chooseMmaTile(rows: number, cols: number): MmaTile {
  const work = (t: MmaTile) => Math.ceil(rows / t.bm) * t.bm * Math.ceil(cols / t.bn) * t.bn;
  const staging = (t: MmaTile) => (t.bm + t.bn) / (t.bm * t.bn);
  return [...CANDIDATES].sort((a, b) => work(a) - work(b) || staging(a) - staging(b))[0];
}

/** report.txt's words for a tile. */
export const tileWords = (t: MmaTile) => `${t.bm}×${t.bn}×${BK} tile, ${THREADS / 32} warps (${t.warpsM}×${t.warpsN}) of 32×${t.nt * 8}`;

/**
 * Index of 16-byte chunk `chunk` (0..3) of shared row `row` in a tile of 4 chunks per row. The XOR with
 * bits 1..2 of the row puts the 8 rows that one ldmatrix matrix (or one 8-lane phase of 16-byte stores)
 * touches on 8 distinct 16-byte bank groups: rows r and r+1 fill one 128-byte line, and the 4 line
 * pairs see the 4 chunks in different places. Without it, 8 rows' same chunk fall on 2 bank groups: 4-way conflicts.
 */
export const swizzled = (row: string, chunk: string) => `(${row}) * 4 + ((${chunk}) ^ (((${row}) >> 1) & 3))`;

/** Eight consecutive k values `v[0..7]` → one 16-byte chunk of bf16 pairs (lower k in the low half, as mma reads them). */
export const packChunk = (dst: string) =>
  `nincc::st(&${dst}, int4{int(nincc::to_bf16x2(v[1], v[0])), int(nincc::to_bf16x2(v[3], v[2])), int(nincc::to_bf16x2(v[5], v[4])), int(nincc::to_bf16x2(v[7], v[6]))});`;

/** The shared operand tiles, the thread's warp coordinates and zeroed accumulators (`m0`/`n0` are the kernel's). */
export function mmaPrologue(t: MmaTile): string[] {
  return [
    `NINCC_SHARED(int4, as, ${t.bm * 4});  // A: ${t.bm} rows (D's rows) × ${BK} k in bf16, 4 swizzled 16-byte chunks per row`,
    `NINCC_SHARED(int4, bs, ${t.bn * 4});  // B: ${t.bn} rows (D's columns) × ${BK} k in bf16, likewise`,
    'const int t = int(threadIdx.x), lane = t % 32, warp = t / 32;',
    `const int wm = warp % ${t.warpsM}, wn = warp / ${t.warpsM};`,
    `float acc[2][${t.nt}][4];`,
    'NINCC_UNROLL',
    `for (int i = 0; i < ${2 * t.nt * 4}; ++i) acc[i / ${t.nt * 4}][i / 4 % ${t.nt}][i % 4] = 0.0f;`,
  ];
}

/**
 * The loop that stages `rows` rows of an operand into `tile`: consecutive threads take consecutive
 * rows (coalesced along the gathered index), each one 16-byte chunk of eight consecutive k; `load`
 * sets v[e] for `row` and k index `k0 + chunk·8 + e`, declared as `kk`.
 */
export function stageOperand(tile: 'as' | 'bs', rows: number, load: string[]): string[] {
  return [
    'NINCC_UNROLL',
    `for (int q = t; q < ${rows * 4}; q += ${THREADS}) {`,
    `  const int row = q % ${rows}, chunk = q / ${rows};`,
    ...load.map((s) => `  ${s}`),
    `  ${packChunk(`${tile}[${swizzled('row', 'chunk')}]`)}`,
    '}',
  ];
}

/** The two mma k-steps over a staged 32-deep slice: A and B fragments by ldmatrix, acc += A·B. */
export function mmaSlice(t: MmaTile): string[] {
  const WN = t.nt * 8;
  return [
    'NINCC_UNROLL',
    `for (int ks = 0; ks < ${BK / 16}; ++ks) {`,
    '  // ldmatrix.x4: lane l gives row l % 8 of matrix l / 8; matrices (rows +0/+8) × (k +0/+8) are A registers 0..3.',
    '  uint32_t frag_a[2][4];',
    '  NINCC_UNROLL',
    '  for (int mt = 0; mt < 2; ++mt) {',
    '    const int row = wm * 32 + mt * 16 + lane % 8 + 8 * (lane / 8 % 2), chunk = 2 * ks + lane / 16;',
    `    nincc::ldmatrix<4>(frag_a[mt], &as[${swizzled('row', 'chunk')}]);`,
    '  }',
    '  // ldmatrix.x2 of B rows (D columns) × k: lane l gets column l / 4, k pair 2·(l % 4): the B fragment (lanes 16..31 repeat 0..15).',
    `  uint32_t frag_b[${t.nt}][2];`,
    '  NINCC_UNROLL',
    `  for (int nt = 0; nt < ${t.nt}; ++nt) {`,
    `    const int row = wn * ${WN} + nt * 8 + lane % 8, chunk = 2 * ks + lane / 8 % 2;`,
    `    nincc::ldmatrix<2>(frag_b[nt], &bs[${swizzled('row', 'chunk')}]);`,
    '  }',
    '  NINCC_UNROLL',
    '  for (int mt = 0; mt < 2; ++mt)',
    '    NINCC_UNROLL',
    `    for (int nt = 0; nt < ${t.nt}; ++nt) nincc::mma_bf16_m16n8k16(acc[mt][nt], frag_a[mt], frag_b[nt], acc[mt][nt]);`,
    '}',
  ];
}
