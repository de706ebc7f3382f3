// The bf16 output stores of the tensor-core convs (conv-mma.ts forward y, conv-mma-grad.ts data gradient dX) on
// blocks of whole images: the 8 channels of an n8 tile of one image are 8 consecutive NCHW planes, one contiguous
// span of 8·PQ bf16. The per-warp staging (conv-mma-store-staged.ts) stores a channel's 32 rows a warp instruction:
// on planes that are not whole sectors (NIN's 7×7: 98 bytes) most 64-byte runs straddle 3 sectors, and a padded
// image's last 17 positions take stores of 34 bytes. Here every warp writes its accumulators of n8 tile
// `nt`, rounded to bf16, into a span-major copy in the dead operand tiles (element (channel c, position p) of span
// s at s·8·PQ + c·PQ + p), the block waits, and copies the spans out 16 bytes a lane: each span starts on a
// 16-byte boundary, on a sector when 16·PQ is (PQ even), so a warp instruction's 512 bytes fill whole sectors.
// The values are the same rounded bf16 the staged stores wrote (a pure data-movement change). docs/design.md §4.1.

/** The block's geometry that the spans depend on. */
export interface SpanTarget {
  readonly dst: string; // the bf16 output buffer
  readonly plane: (img: string, col: string) => string; // index of the channel's plane: its first position is plane · positions
  readonly columns: number; // D's columns (channels of this conv's output)
  readonly positions: number; // PQ, or HW for a data gradient
  readonly rows: number; // GEMM rows per image (positions padded to whole 32-row statistics tiles)
  readonly blockRows: number; // BM
  readonly warpsN: number; // warps along the block's columns
  readonly warpCols: number; // WN: columns of a warp
  readonly threads: number;
}

/** Images whose rows a block holds: whole ones by spansFit. */
const imagesPerBlock = (t: SpanTarget) => t.blockRows / t.rows;

/** Elements of the block's spans of one n8 tile. */
const spansElements = (t: SpanTarget) => imagesPerBlock(t) * t.warpsN * 8 * t.positions;

/** Where the padding rows' writes go (spanWrite): 128 bytes, one word a bank, on a 128-byte boundary past the spans. */
const sinkElement = (t: SpanTarget) => Math.ceil(spansElements(t) / 64) * 64;

/** Bytes of the block's spans of one n8 tile and the sink past them. */
export const spansBytes = (t: SpanTarget) => (sinkElement(t) + 64) * 2;

/**
 * Whether the spans apply: a block's rows are whole images (each 32-row part in one image), whole 8-channel
 * tiles (every span is 8 planes), and spans that start on 16 bytes (`planesAligned`: each plane index the
 * renderer passes is a multiple of 8 plus the tile's column, or a plane is a multiple of 8 positions), and the
 * dead buffer of `bytes` holds them.
 */
export function spansFit(t: SpanTarget, bytes: number, planesAligned: boolean): boolean {
  return t.rows % 32 === 0 && t.blockRows % t.rows === 0 && t.columns % 8 === 0 && (planesAligned || t.positions % 8 === 0) && spanWritesConflictFree(t.positions) && spansBytes(t) <= bytes;
}

/**
 * Whether spanWrite's warp instruction (channels 2·(lane%4) + half, 8 consecutive positions) hits distinct banks
 * on planes of `positions`: its 4 channels start `positions` words apart, each covering 4 banks. On 6×6 they fall on
 * banks 0, 4, 8, 12 (no conflict); on NIN's 7×7 (odd: an odd channel starts mid-word) on 0, 17, 2, 19, so two
 * channels share banks (2-way) and the shared-bound k31 forward lost 1 µs in the whole-NIN profile for the sectors
 * it saved (bench/RESULTS.md, i15f).
 */
export function spanWritesConflictFree(positions: number): boolean {
  if (positions % 2 !== 0) return false; // an odd channel's 8 positions would then start mid-word and span 5 words
  const banks = new Set<number>();
  for (let channel = 0; channel < 4; channel++) for (let word = 0; word < 4; word++) banks.add((channel * positions + word) % 32);
  return banks.size === 16;
}

/** The block's spans, as bf16, in shared buffer `buffer` (an int4 array of the kernel). */
export const spansBuffer = (buffer: string) => `nincc::bf16* const spans = reinterpret_cast<nincc::bf16*>(&${buffer}[0]);  // the block's spans of one n8 tile in bf16 (dead operand tiles)`;

/**
 * Accumulator value `v` of block row `blockRow` (a C++ expression), column 2·(l%4) + half of the warp's n8 tile:
 * into its span, rounded to bf16. One instruction's lanes write 4 channels × 8 positions (rows `rows8`… + 7, the
 * same for every lane) of one span, 16-bit each. An 8-row group wholly past the plane (image padding) is skipped by
 * the whole warp; in a group that straddles its end, the padding rows' lanes write the sink, each at the bank its
 * position would have in the span (the next channel's first positions, which no lane of the instruction writes), so
 * that every lane runs the store as often (the emulator's warp instructions, docs/profile.md) with no conflict added.
 */
export function spanWrite(t: SpanTarget, blockRow: string, rows8: string, v: string): string {
  const span = `(${blockRow}) / ${t.rows} * ${t.warpsN} + wn`;
  const pos = `(${blockRow}) % ${t.rows}`;
  const inSpan = `((${span}) * 8 + 2 * (lane % 4) + half) * ${t.positions} + ${pos}`;
  return `if ((${rows8}) % ${t.rows} < ${t.positions}) nincc::st(&spans[${pos} < ${t.positions} ? ${inSpan} : ${sinkElement(t)} + (${inSpan}) % 64], nincc::to_bf16(${v}));`;
}

/**
 * After every warp wrote n8 tile `nt` (the block waits): thread t copies 16 bytes, t-th of the block's spans laid
 * end to end, to its span's place (image first/rows + span/warpsN, column n0 + (span % warpsN)·WN + 8·nt).
 */
export function spansStore(t: SpanTarget): string[] {
  const chunks = imagesPerBlock(t) * t.warpsN * t.positions; // 16-byte pieces: a span of 8·PQ bf16 is PQ of them
  return [
    '__syncthreads();  // every warp\'s columns of this n8 tile are in the spans',
    `for (int i16 = int(threadIdx.x); i16 < ${chunks}; i16 += ${t.threads}) {  // consecutive lanes on consecutive 16 bytes of a span`,
    `  const int span = i16 / ${t.positions}, piece = i16 % ${t.positions};`,
    `  const int img = int(m0 / ${t.rows}) + span / ${t.warpsN}, col = n0 + span % ${t.warpsN} * ${t.warpCols} + nt * 8;`,
    `  if (img < n && col < ${t.columns}) nincc::st(reinterpret_cast<int4*>(&${t.dst}[(long long)(${t.plane('img', 'col')}) * ${t.positions}]) + piece, nincc::ld(reinterpret_cast<const int4*>(spans) + i16));`,
    '}',
    '__syncthreads();  // the spans are rewritten for the next n8 tile',
  ];
}
