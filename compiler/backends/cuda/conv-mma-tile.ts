// What the bf16 tensor-core convolutions (conv-mma.ts forward, conv-mma-grad.ts data and weight gradients)
// share: the tile configurations and their choice, the XOR-swizzled shared-memory layout of a staged
// operand (rows × 32 k in bf16, four 16-byte chunks per row), the two staging loops (lanes across rows or
// along k, whichever runs along the operand's addresses) and their common k order, and the main loop's
// ldmatrix + mma.m16n8k16 k-steps over a staged slice. Every kernel stages both GEMM operands as rows of
// the reduced index: A's rows are D's rows (M), B's rows D's columns (N).
export const THREADS = 128; // 4 warps
export const BK = 32; // k per staged slice: two mma k-steps, four 16-byte chunks per shared row

/** A tile configuration: BM×BN of D per block, warps laid out warpsM×warpsN, each (mt·16)×(nt·8). */
export interface MmaTile {
  readonly bm: number;
  readonly bn: number;
  readonly warpsM: number;
  readonly warpsN: number;
  readonly nt: number; // n8 mma tiles per warp
  readonly mt?: number; // m16 mma tiles per warp: absent, 2 (a 32-row warp); 4 in the 64-row warp tiles (conv-mma-warp64-tile.ts)
}

/** The warp's m16 tiles (2 unless the tile says otherwise) and its rows. */
export const warpM16 = (t: MmaTile) => t.mt ?? 2;
export const warpRows = (t: MmaTile) => 16 * warpM16(t);

// nt = 8 (a warp of 32×64, 64 accumulators per thread) gives the 128×64 and 64×128 tiles: each staged
// operand element feeds 64 or 128 columns of D rather than 32 or 64, a quarter less staging per MMA.
export const CANDIDATES: readonly MmaTile[] = [
  ...[1, 2, 4, 8].map((nt) => ({ bm: 64, bn: 2 * 8 * nt, warpsM: 2, warpsN: 2, nt })),
  ...[1, 2, 4, 8].map((nt) => ({ bm: 128, bn: 8 * nt, warpsM: 4, warpsN: 1, nt })),
];

/**
 * The tiles a k×k (R·S > 1) forward or data gradient, or any weight gradient, may also take: 8-warp blocks (256 threads, warps
 * 4×2 of 32×8·nt) up to 128×128, and 96-wide ones (nt = 6) for 96-channel layers. Each block re-reads its
 * BN×K slice of the weights and its BM×K of the gathered operand (R·S reads per input element), so the
 * global sectors per MAC fall with (BM + BN)/(BM·BN): a 96-channel layer's 128×32 tile becomes 128×96,
 * each gathered element feeding three times the columns (bench/RESULTS.md #15 has the measured
 * sectors). Listed after CANDIDATES so that a tie keeps the 4-warp tile.
 */
export const WIDE_CANDIDATES: readonly MmaTile[] = [
  ...CANDIDATES,
  { bm: 64, bn: 96, warpsM: 2, warpsN: 2, nt: 6 },
  { bm: 128, bn: 48, warpsM: 4, warpsN: 1, nt: 6 },
  ...[2, 4, 6, 8].map((nt) => ({ bm: 128, bn: 2 * 8 * nt, warpsM: 4, warpsN: 2, nt })),
];

/** Threads of a block with this tile: one warp per (mt·16)×8·nt piece of it. */
export const tileThreads = (t: MmaTile) => t.warpsM * t.warpsN * 32;

/**
 * The layer's tile among `candidates`: the least padded work (tiles · BM · BN, so 96 output channels take
 * 32-wide tiles, not 64), then the least operand staging per unit of work ((BM + BN) / (BM · BN): bigger,
 * squarer tiles).
 */
export function chooseMmaTile(rows: number, cols: number, candidates: readonly MmaTile[] = CANDIDATES): MmaTile {
  const work = (t: MmaTile) => Math.ceil(rows / t.bm) * t.bm * Math.ceil(cols / t.bn) * t.bn;
  const staging = (t: MmaTile) => (t.bm + t.bn) / (t.bm * t.bn);
  return [...candidates].sort((a, b) => work(a) - work(b) || staging(a) - staging(b))[0];
}

/**
 * The tile of a GEMM bound by reading its operands (a 1×1 forward or data gradient: A rows are whole
 * planes of x or dY, B the small W): the least operand traffic over the grid,
 * ⌈rows/BM⌉·⌈cols/BN⌉·(BM·aReads + BN·bReads) per k (each block reads its A rows and B rows once;
 * `aReads`, `bReads` the buffers read per element); of equal traffic, chooseMmaTile's pick, else the
 * first candidate. With WIDE_CANDIDATES a 96-column layer takes one 128×96 tile (8 warps) and reads A
 * once, instead of three 32-wide tiles that each re-read it (and re-apply its pending BN/ReLU); a
 * 256- or 384-column layer reads A ⌈K/128⌉ times rather than ⌈K/32⌉.
 */
export function chooseTrafficTile(rows: number, cols: number, aReads: number, bReads: number, candidates: readonly MmaTile[] = CANDIDATES): MmaTile {
  const traffic = (t: MmaTile) => Math.ceil(rows / t.bm) * Math.ceil(cols / t.bn) * (t.bm * aReads + t.bn * bReads);
  const first = chooseMmaTile(rows, cols, candidates);
  return [...candidates].sort((a, b) => traffic(a) - traffic(b) || (a === first ? -1 : b === first ? 1 : 0))[0];
}

/** report.txt's words for a tile. */
export const tileWords = (t: MmaTile) => `${t.bm}×${t.bn}×${BK} tile, ${t.warpsM * t.warpsN} warps (${t.warpsM}×${t.warpsN}) of ${warpRows(t)}×${t.nt * 8}`;

/**
 * Index of 16-byte chunk `chunk` (0..3) of shared row `row` in a tile of 4 chunks per row. The XOR with
 * bits 1..2 of the row puts the 8 rows that one ldmatrix matrix (or one 8-lane phase of 16-byte stores)
 * touches on 8 distinct 16-byte bank groups: rows r and r+1 fill one 128-byte line, and the 4 line
 * pairs see the 4 chunks in different places. Without it, 8 rows' same chunk fall on 2 bank groups: 4-way conflicts.
 */
export const swizzled = (row: string, chunk: string) => `(${row}) * 4 + ((${chunk}) ^ (((${row}) >> 1) & 3))`;

/** Eight positions' values `vs[0..7]` → one 16-byte chunk of bf16 pairs (the lower position in the low half, as mma reads them). */
export const packChunk = (dst: string) =>
  `nincc::st(&${dst}, int4{int(nincc::to_bf16x2(vs[1], vs[0])), int(nincc::to_bf16x2(vs[3], vs[2])), int(nincc::to_bf16x2(vs[5], vs[4])), int(nincc::to_bf16x2(vs[7], vs[6]))});`;

/**
 * The shared operand tiles, the thread's warp coordinates and zeroed accumulators (`m0`/`n0` are the kernel's).
 * `aTile` false: no A tile (a kernel whose A fragments come from elsewhere, conv-mma-taps-halo.ts); `bStages`: B's
 * tiles, more than one for a cp.async ring (conv-mma-b-ring.ts).
 */
export function mmaPrologue(t: MmaTile, aTile = true, bStages = 1): string[] {
  return [
    ...(aTile ? [`NINCC_SHARED(int4, as, ${t.bm * 4});  // A: ${t.bm} rows (D's rows) × ${BK} k in bf16, 4 swizzled 16-byte chunks per row`] : []),
    `NINCC_SHARED(int4, bs, ${bStages * t.bn * 4});  // B: ${bStages > 1 ? `${bStages} stages of ` : ''}${t.bn} rows (D's columns) × ${BK} k in bf16, likewise`,
    'const int t = int(threadIdx.x), lane = t % 32, warp = t / 32;',
    `const int wm = warp % ${t.warpsM}, wn = warp / ${t.warpsM};`,
    `float acc[${warpM16(t)}][${t.nt}][4];`,
    'NINCC_UNROLL',
    `for (int i = 0; i < ${warpM16(t) * t.nt * 4}; ++i) acc[i / ${t.nt * 4}][i / 4 % ${t.nt}][i % 4] = 0.0f;`,
  ];
}

/**
 * How one staged operand is read: `perRow` runs once per staged row (it sees `row`, 0..rows−1 of the
 * tile), `perElement` sets `float v` (zero-initialised) for k offset `ko` (0..31) of the slice starting at `k0`.
 */
export interface Staging {
  readonly perRow: readonly string[];
  readonly perElement: readonly string[];
}

/**
 * The slice's k order in shared memory: position p of a staged row (chunk p / 8, element p % 8) holds k
 * offset ko(p) = p / 4 + 8·(p % 4). A permutation of the 32 k of a slice changes nothing in A·B as
 * long as both operands use it; this one lets stageAlongK give the 8 lanes of a row 8 consecutive k per
 * load (one 32-byte sector) while each lane still packs four k into the bf16 pairs of one half-chunk.
 */
const K_OFFSET_ACROSS_ROWS = '2 * chunk + e / 4 + 8 * (e % 4)';
export const K_OFFSET_ALONG_K = 'quarter + 8 * e';
/** stageAlongK's k order where the other operand's fragments come straight from k-contiguous rows (conv-mma-wgrad-ring-fragments.ts): position p holds k offset p. */
export const K_OFFSET_NATURAL = '4 * quarter + e';

/**
 * The per-element code written out once per element `e` rather than as a loop: a GPU runs the unrolled
 * loop as that many load instructions, each with its own predicate, and the emulator's profile groups a
 * warp's accesses by source line — one line per element keeps a lane that skips element e (a padding
 * tap) from being paired with its neighbours' element e + 1.
 */
export function unrolled(count: number, kOffset: string, perElement: readonly string[]): string[] {
  return Array.from({ length: count }, (_, e) => [
    `  {  // element ${e}`,
    `    const int e = ${e}, ko = ${kOffset};`,
    '    float v = 0.0f;',
    ...perElement.map((line) => `    ${line}`),
    `    vs[${e}] = v;`,
    '  }',
  ]).flat();
}

/**
 * Stages `rows` rows with consecutive lanes on consecutive rows, each thread one 16-byte chunk (eight
 * positions) of one row: coalesced when the operand's addresses run along its rows (the output
 * positions of a forward's A, the input positions of a data gradient's A, the channels of a 1×1 W).
 */
export function stageAcrossRows(tile: string, rows: number, s: Staging, threads = THREADS): string[] {
  return [
    'NINCC_UNROLL',
    `for (int q = t; q < ${rows * 4}; q += ${threads}) {`,
    `  const int row = q % ${rows}, chunk = q / ${rows};`,
    ...s.perRow.map((line) => `  ${line}`),
    '  float vs[8];',
    ...unrolled(8, K_OFFSET_ACROSS_ROWS, s.perElement),
    `  ${packChunk(`${tile}[${swizzled('row', 'chunk')}]`)}`,
    '}',
  ];
}

/**
 * Stages `rows` rows with eight consecutive lanes on one row, lane `quarter` (0..7) loading k offsets
 * quarter + 8·e (e = 0..3): each load instruction reads 8 consecutive k of 4 rows, so it is coalesced
 * when the operand's addresses run along k (a forward's weights, both operands of the weight gradient).
 * Each lane stores its four values as one 8-byte half-chunk (positions 4·quarter..4·quarter + 3); a
 * 16-lane phase writes two rows that share one 128-byte line under the swizzle, so the stores are
 * conflict-free. `q` (the item) is in scope for perElement. `kOffset`: K_OFFSET_NATURAL stages the slice's k in their
 * own order instead (the lane's four k contiguous). `unrollBy`: the items unrolled that many at a time, not all of them.
 */
export function stageAlongK(tile: 'as' | 'bs', rows: number, s: Staging, threads = THREADS, kOffset = K_OFFSET_ALONG_K, unrollBy?: number): string[] {
  return [
    unrollBy === undefined ? 'NINCC_UNROLL' : `NINCC_UNROLL_BY(${unrollBy})`,
    `for (int q = t; q < ${rows * 8}; q += ${threads}) {`,
    '  const int row = q / 8, quarter = q % 8;',
    ...s.perRow.map((line) => `  ${line}`),
    '  float vs[4];',
    ...unrolled(4, kOffset, s.perElement),
    `  nincc::st(reinterpret_cast<int2*>(&${tile}[${swizzled('row', 'quarter / 2')}]) + quarter % 2, int2{int(nincc::to_bf16x2(vs[1], vs[0])), int(nincc::to_bf16x2(vs[3], vs[2]))});`,
    '}',
  ];
}

/**
 * The two mma k-steps over a staged 32-deep slice: A and B fragments by ldmatrix, acc += A·B. `aAt`: where
 * lane l's ldmatrix row of A's m16 tile `mt` and 16-byte chunk `chunk` lies, when not in the A tile `as`.
 * `steps` (a C++ expression, 1 or 2): the k-steps this slice runs, where its second 16 k are all zero padding
 * (conv-mma-stem-s2d.ts s2dSteps); skipping an MMA of zeros leaves every accumulator bitwise what it was.
 * `bStage`: the int4 offset in `bs` of the B tile to read (a ring's stage, conv-mma-b-ring.ts). `bAt`: where lane l's
 * ldmatrix row of B (`row`, 16-byte chunk `chunk`) lies, when not in the B tile (conv-mma-wgrad-ring-fragments.ts). `aTrans`: `aAt`'s
 * rows are k rows of 8 M rows each, loaded by ldmatrix.trans (conv-mma-wgrad-taps-halo.ts: lane l gives k row l % 8 of matrix l / 8).
 */
export function mmaSlice(t: MmaTile, aAt?: string, steps?: string, bStage?: string, bAt?: string, aTrans = false): string[] {
  const WN = t.nt * 8, MT = warpM16(t);
  return [
    'NINCC_UNROLL',
    `for (int ks = 0; ks < ${BK / 16}; ++ks) {`,
    ...(steps ? [`  if (ks >= ${steps}) break;  // the slice's k-steps past this are zero padding`] : []),
    '  // ldmatrix.x4: lane l gives row l % 8 of matrix l / 8; matrices (rows +0/+8) × (k +0/+8) are A registers 0..3.',
    `  uint32_t frag_a[${MT}][4];`,
    '  NINCC_UNROLL',
    `  for (int mt = 0; mt < ${MT}; ++mt) {`,
    ...(aAt
      ? aTrans ? [`    nincc::ldmatrix_trans<4>(frag_a[mt], ${aAt});`] : ['    const int chunk = 2 * ks + lane / 16;', `    nincc::ldmatrix<4>(frag_a[mt], ${aAt});`]
      : [`    const int row = wm * ${16 * MT} + mt * 16 + lane % 8 + 8 * (lane / 8 % 2), chunk = 2 * ks + lane / 16;`, `    nincc::ldmatrix<4>(frag_a[mt], &as[${swizzled('row', 'chunk')}]);`]),
    '  }',
    '  // ldmatrix.x2 of B rows (D columns) × k: lane l gets column l / 4, k pair 2·(l % 4): the B fragment (lanes 16..31 repeat 0..15).',
    `  uint32_t frag_b[${t.nt}][2];`,
    '  NINCC_UNROLL',
    `  for (int nt = 0; nt < ${t.nt}; ++nt) {`,
    `    const int row = wn * ${WN} + nt * 8 + lane % 8, chunk = 2 * ks + lane / 8 % 2;`,
    `    nincc::ldmatrix<2>(frag_b[nt], ${bAt ?? `&bs[${bStage ? `${bStage} + ` : ''}${swizzled('row', 'chunk')}]`});`,
    '  }',
    '  NINCC_UNROLL',
    `  for (int mt = 0; mt < ${MT}; ++mt)`,
    '    NINCC_UNROLL',
    `    for (int nt = 0; nt < ${t.nt}; ++nt) nincc::mma_bf16_m16n8k16(acc[mt][nt], frag_a[mt], frag_b[nt], acc[mt][nt]);`,
    '}',
  ];
}
