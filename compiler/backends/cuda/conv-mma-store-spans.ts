// The bf16 output stores of the tensor-core convs (conv-mma.ts forward y, conv-mma-grad.ts data gradient dX) on
// blocks of whole images: the 8 channels of an n8 tile of one image are 8 consecutive NCHW planes, one contiguous
// span of 8·PQ bf16. The per-warp staging (conv-mma-store-staged.ts) stores a channel's 32 rows a warp instruction:
// on planes that are not whole sectors (NIN's 7×7: 98 bytes) most 64-byte runs straddle 3 sectors, and a padded
// image's last 17 positions take stores of 34 bytes. Here every warp writes its accumulators of n8 tile
// `nt`, rounded to bf16, into a span-major copy in the dead operand tiles (span s's chunk k of 8 elements at slot
// s·slots + phase + k, permuted as conv-mma-store-spans-layout.ts chose so that the writes hit distinct banks), the
// block waits, and copies the spans out 16 bytes a lane, lanes on the slots: a span's first chunk sits at its
// sector's phase (0, or 1 where it starts 16 bytes into one: odd planes), so lane pairs fill whole sectors and a
// 784-byte 7×7 span touches only its 25. The values are the same rounded bf16 the staged stores wrote (a pure
// data-movement change). docs/design.md §4.1.
import { spanLayout, type SpanLayout } from './conv-mma-store-spans-layout.js';

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

/** A block's spans: where they go and how shared memory holds them. */
export interface Spans extends SpanTarget {
  readonly layout: SpanLayout;
}

/** Spans of one n8 tile a block holds: whole images (by spansOf) times the warps along its columns. */
const spanCount = (t: SpanTarget) => (t.blockRows / t.rows) * t.warpsN;

/** Where the padding rows' writes go (spanWrite): 128 bytes, one word a bank, on a 128-byte boundary past the spans. */
const sinkElement = (t: Spans) => Math.ceil((spanCount(t) * t.layout.slots * 8) / 64) * 64;

/** Bytes of the block's spans of one n8 tile and the sink past them. */
export const spansBytes = (t: Spans) => (sinkElement(t) + 64) * 2;

/**
 * The spans, where they apply: a block's rows are whole images (each 32-row part in one image), whole 8-channel
 * tiles (every span is 8 planes), spans that start on 16 bytes (`planesAligned`: each plane index the renderer
 * passes times the positions is a multiple of 8, or a plane is), a layout whose writes are conflict-free
 * (`swizzled`: odd planes too, through the swizzled sector-phased slots), and the dead buffer of `bytes` holds them.
 */
export function spansOf(t: SpanTarget, bytes: number, planesAligned: boolean, swizzled: boolean): Spans | undefined {
  if (!(t.rows % 32 === 0 && t.blockRows % t.rows === 0 && t.columns % 8 === 0 && (planesAligned || t.positions % 8 === 0))) return undefined;
  const layout = spanLayout(t.positions, spanCount(t), swizzled);
  const spans = layout && { ...t, layout };
  return spans && spansBytes(spans) <= bytes ? spans : undefined;
}

/** The block's spans, as bf16, in shared buffer `buffer` (an int4 array of the kernel). */
export const spansBuffer = (buffer: string) => `nincc::bf16* const spans = reinterpret_cast<nincc::bf16*>(&${buffer}[0]);  // the block's spans of one n8 tile in bf16 (dead operand tiles)`;

/** The shared element of logical element `e` (C++): its chunk moved within its group of 8 (conv-mma-store-spans-layout.ts). */
const swizzle = (t: Spans, e: string) => (t.layout.xor ? `(${e}) ^ ((${e}) >> 6 & 1) * ${t.layout.xor * 8}` : e);

/** The sector phase of the span at image `img`, column `col` (C++): 1 where it starts 16 bytes into a sector (odd planes only). */
const phaseOf = (t: Spans, img: string, col: string) => (t.positions % 2 ? `int((${t.plane(img, col)}) * ${t.positions} >> 3 & 1)` : '0');

/**
 * Accumulator value `v` of block row `blockRow` (a C++ expression), column 2·(l%4) + half of the warp's n8 tile:
 * into its span, rounded to bf16. One instruction's lanes write 4 channels × 8 positions (rows `rows8`… + 7, the
 * same for every lane) of one span, 16-bit each. An 8-row group wholly past the plane (image padding) is skipped by
 * the whole warp; in a group that straddles its end, the padding rows' lanes write the sink, each at the bank its
 * position would have in the span (the next channel's first positions, which no lane of the instruction writes), so
 * that every lane runs the store as often (the emulator's warp instructions, docs/profile.md) with no conflict added;
 * on odd planes the padding position sharing a word with the plane's last one rewrites that one's value (fetched
 * from lane − 4), since a sink word in the same bank would be a second word there.
 */
export function spanWrite(t: Spans, blockRow: string, rows8: string, v: string): string {
  const span = `(${blockRow}) / ${t.rows} * ${t.warpsN} + wn`;
  const pos = `(${blockRow}) % ${t.rows}`;
  const phase = phaseOf(t, `int(m0 / ${t.rows}) + (${rows8}) / ${t.rows}`, `n0 + wn * ${t.warpCols} + nt * 8`);
  const e = `((${span}) * ${t.layout.slots} + ${phase}) * 8 + (2 * (lane % 4) + half) * ${t.positions} + ${pos}`;
  const sink = `${sinkElement(t)} + (${swizzle(t, 'span_e')}) % 64`;
  if (t.positions % 2 === 0) return `if ((${rows8}) % ${t.rows} < ${t.positions}) { const int span_e = ${e}; nincc::st(&spans[${pos} < ${t.positions} ? ${swizzle(t, 'span_e')} : ${sink}], nincc::to_bf16(${v})); }`;
  const last = t.positions & ~7; // the straddling group's first row
  return (
    `if ((${rows8}) % ${t.rows} < ${t.positions}) { const int span_e = ${e}; ` +
    `const float mate = (${rows8}) % ${t.rows} == ${last} ? nincc::shfl_up(${v}, 4) : ${v}; ` +
    `const bool rewrite = ${pos} == ${t.positions} && (span_e & 1); ` +
    `nincc::st(&spans[${pos} < ${t.positions} ? ${swizzle(t, 'span_e')} : rewrite ? ${swizzle(t, 'span_e - 1')} : ${sink}], nincc::to_bf16(rewrite ? mate : ${v})); }`
  );
}

/**
 * After every warp wrote n8 tile `nt` (the block waits): thread t copies the t-th 16-byte slot of the block's spans
 * laid end to end to its span's place (image first/rows + span/warpsN, column n0 + (span % warpsN)·WN + 8·nt). A
 * slot beside its span's chunks (the phase's other slot of an odd plane's half sector) copies its sector mate's
 * chunk again: the same bytes, no sector added, and every lane stores as often.
 */
export function spansStore(t: Spans): string[] {
  const { slots, xor } = t.layout;
  const piece = t.positions % 2 ? `min(max(slot - phase, 0), ${t.positions - 1})` : 'slot';
  const chunk = xor ? `(span * ${slots} + phase + piece) ^ ((span * ${slots} + phase + piece) >> 3 & 1) * ${xor}` : `span * ${slots} + phase + piece`;
  return [
    '__syncthreads();  // every warp\'s columns of this n8 tile are in the spans',
    `for (int i16 = int(threadIdx.x); i16 < ${spanCount(t) * slots}; i16 += ${t.threads}) {  // consecutive lanes on consecutive 16-byte slots`,
    `  const int span = i16 / ${slots}, slot = i16 % ${slots};`,
    `  const int img = int(m0 / ${t.rows}) + span / ${t.warpsN}, col = n0 + span % ${t.warpsN} * ${t.warpCols} + nt * 8;`,
    `  const int phase = ${phaseOf(t, 'img', 'col')}, piece = ${piece};`,
    `  if (img < n && col < ${t.columns}) nincc::st(reinterpret_cast<int4*>(&${t.dst}[(long long)(${t.plane('img', 'col')}) * ${t.positions}]) + piece, nincc::ld(reinterpret_cast<const int4*>(spans) + (${chunk})));`,
    '}',
    '__syncthreads();  // the spans are rewritten for the next n8 tile',
  ];
}
