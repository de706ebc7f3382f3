// A k×k weight gradient's plain bf16 dY' (B) copied whole images at a time by cp.async, S − 1 slices ahead, into a
// ring of image slots in the launch's dynamic shared memory (issue #15): for planes that no 4-byte copy divides
// (NIN's 7×7: 49 positions, 98 bytes), where the slice-window ring (conv-mma-wgrad-async-ring.ts) has no aligned
// copy. A block's BN output channels of one image are one contiguous run of BN·P·Q elements of dY' (NCHW), so where
// K·P·Q and BN·P·Q are multiples of 8 every run starts on a 16-byte boundary and is whole 16-byte copies: the loads
// touch only the sectors the run's bytes need, and, issued slices ahead, they overlap the block's own compute (the
// profile model's unpipelined term: docs/profile.md). At the start of iteration it every image that slice
// it + S − 1 reaches and no earlier slice did is issued into slot image % slots; the slots hold every image from
// slice it's first to slice it + S − 1's last (`slots` counts them), so none is overwritten while read. One commit an
// iteration keeps the slice-window ring's group count: the wait before the loop's closing barrier lands slice
// it + 1's images. B is then staged from the slots along positions as from global memory
// (conv-mma-wgrad-coalesced-staging.ts): the same bf16 values, k order and bias sums, bitwise `wgradAsyncImageRing:
// false`. A 1×1 weight gradient on such planes (NIN's k34/k37) takes several operands into one ring the same way
// (chooseImageRings): x (A) and the rebuild's bf16 g and y (B), each its own slots, so none of its staging reads
// global memory off the sector grid. docs/design.md §4.1.
import { conflicted } from './conv-mma-wgrad-halo-banks.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { BK } from './conv-mma-tile.js';
import { BLOCK_SHARED_BYTES, MAX_STAGES } from './conv-mma-wgrad-async-ring.js';

/** Elements a 16-byte copy moves. */
const CHUNK = 8;

/** The ring: `slots` images of `rows` planes of `positions` (P·Q) bf16, `slotPitch` apart; `stages` − 1 slices in flight. */
export interface AsyncImageRing {
  readonly stages: number;
  readonly slots: number;
  readonly rows: number;
  readonly positions: number;
  readonly slotPitch: number;
}

export const asyncImageRingBytes = (r: AsyncImageRing) => r.slots * r.slotPitch * 2;

/** The most images `span` consecutive positions reach on planes of `positions`. */
const imagesReached = (span: number, positions: number) => Math.ceil((span - 1) / positions) + 1;

/**
 * Bank conflicts of B's staging reads: a warp reads one row's 32 consecutive positions, which cross from one slot
 * into the next (or from the last slot into the first) where the slice runs into the next image.
 */
export function asyncImageRingReadConflicts(r: Omit<AsyncImageRing, 'stages'>): number {
  const words = new Int32Array(BK), bankWord = new Int32Array(32);
  let conflicts = 0;
  for (let slot = 0; slot < r.slots; slot++) {
    const next = (slot + 1) % r.slots;
    for (let row = 0; row < r.rows; row++) {
      for (let tail = 1; tail < Math.min(BK, r.positions + 1); tail++) {
        for (let lane = 0; lane < BK; lane++) {
          words[lane] = lane < tail ? slot * r.slotPitch + row * r.positions + r.positions - tail + lane : next * r.slotPitch + row * r.positions + lane - tail;
        }
        if (conflicted(words, BK, bankWord)) conflicts++;
      }
    }
  }
  return conflicts;
}

/**
 * The ring for B rows (`rows`, the tile's BN) of a plain bf16 dY' of `channels` (K) on planes of `positions`: only an
 * odd plane (an even one has the slice-window ring's aligned copies, and keeps its own path with that ring switched
 * off), where the runs are whole 16-byte copies (K·P·Q, BN·P·Q and the last column tile's run multiples of 8 elements), the most
 * stages (2–4) whose slots, at the least slot pitch (a multiple of 8) whose reads meet no bank conflict, fit with
 * 48 KiB of static shared memory in BLOCK_SHARED_BYTES.
 */
export function chooseAsyncImageRing(positions: number, rows: number, channels: number): AsyncImageRing | undefined {
  if (positions % 2 === 0) return undefined;
  const rings = chooseImageRings(positions, [{ source: 'g', channels, rows, first: 'n0' }]);
  return rings && { stages: rings.stages, slots: rings.slots, rows, positions, slotPitch: rings.operands[0].slotPitch };
}

/** report.txt's words. */
export const asyncImageRingWords = (r: AsyncImageRing) =>
  `dY' copied whole images of the block's ${r.rows} channels by cp.async (16-byte chunks) into ${r.slots} image slots in dynamic shared memory (${asyncImageRingBytes(r)} B), ${r.stages - 1} slices in flight, B staged from there`;

/** One operand a ring may hold: its global bf16 `source`, its `channels`, and the block's `rows` of them from channel `first` (an expression). */
export interface ImageOperand {
  readonly source: string;
  readonly channels: number;
  readonly rows: number;
  readonly first: string;
}

/** An operand in the ring: its slots `slotPitch` bf16 apart from `offset` (a multiple of a 16-byte copy). */
export interface RingOperand extends ImageOperand {
  readonly slotPitch: number;
  readonly offset: number;
}

/** A ring of several operands' image slots, `stages` − 1 slices in flight. */
export interface ImageRings {
  readonly stages: number;
  readonly slots: number;
  readonly positions: number;
  readonly operands: readonly RingOperand[];
}

export const imageRingsBytes = (r: ImageRings) => r.operands.reduce((bytes, o) => bytes + r.slots * o.slotPitch * 2, 0);

/** The operand's least slot pitch (a multiple of 8) whose staging reads meet no bank conflict, or undefined. */
function conflictFreePitch(positions: number, rows: number, slots: number): number | undefined {
  for (let slotPitch = rows * positions; slotPitch < rows * positions + 64; slotPitch += CHUNK) {
    if (asyncImageRingReadConflicts({ slots, rows, positions, slotPitch }) === 0) return slotPitch;
  }
  return undefined;
}

/** Whether every run of the operand (its blocks' rows of an image, the last column tile's too) is whole, aligned 16-byte copies. */
const wholeCopies = (o: ImageOperand, positions: number) =>
  (o.channels * positions) % CHUNK === 0 && (o.rows * positions) % CHUNK === 0 && ((o.channels % o.rows) * positions) % CHUNK === 0;

/**
 * A ring holding all of `operands` on planes of `positions`, where every run is whole 16-byte copies: the most stages (2–4) whose slots, each operand at its least
 * conflict-free pitch, fit with 48 KiB of static shared memory in BLOCK_SHARED_BYTES; else undefined.
 */
export function chooseImageRings(positions: number, operands: readonly ImageOperand[]): ImageRings | undefined {
  if (operands.length === 0 || !operands.every((o) => wholeCopies(o, positions))) return undefined;
  for (let stages = MAX_STAGES; stages >= 2; stages--) {
    const slots = imagesReached(stages * BK, positions);
    const pitches = operands.map((o) => conflictFreePitch(positions, o.rows, slots));
    if (pitches.some((p) => p === undefined)) continue;
    const placed: RingOperand[] = [];
    operands.forEach((o, i) => placed.push({ ...o, slotPitch: pitches[i]!, offset: placed.reduce((at, p) => at + slots * p.slotPitch, 0) }));
    const ring = { stages, slots, positions, operands: placed };
    if (STATIC_SHARED_BYTES + imageRingsBytes(ring) <= BLOCK_SHARED_BYTES) return ring;
  }
  return undefined;
}

/** The k×k weight gradient's one-operand ring (dY' from `g`, the block's channels from n0) as a ring of operands. */
const asRings = (r: AsyncImageRing, K: number): ImageRings => ({
  stages: r.stages,
  slots: r.slots,
  positions: r.positions,
  operands: [{ source: 'g', channels: K, rows: r.rows, first: 'n0', slotPitch: r.slotPitch, offset: 0 }],
});

/** report.txt's words for a ring of operands (`names`: what each operand is, in order). */
export const imageRingsWords = (r: ImageRings, names: readonly string[]) =>
  `${names.join(', ')} copied whole images of the block's channels by cp.async (16-byte chunks) into ${r.slots} image slots each in dynamic shared memory (${imageRingsBytes(r)} B), ${r.stages - 1} slices in flight, staged from there`;

/**
 * The ring's declaration, the issue lambda (every image slice jj reaches that is not yet issued, into slot image %
 * slots, for each operand: every thread the same number of copies, a spare repeating the run's last, as the emulator
 * pairs a lane's k-th access with its neighbours'), and the first S − 1 slices issued, one group each, the first waited for.
 */
export function imageRingsPrologue(r: ImageRings, threads: number): string[] {
  const copies = r.operands.flatMap((o) => {
    const rounds = Math.ceil((o.rows * r.positions) / CHUNK / threads) * threads;
    return [
      '  {',
      `    const int chunks = min(${o.rows}, ${o.channels} - ${o.first}) * ${r.positions} / ${CHUNK};  // the image's planes of channels ${o.first}… below ${o.channels}: one run of whole 16-byte copies`,
      `    const long long run0 = ((long long)ring_next * ${o.channels} + ${o.first}) * ${r.positions};`,
      `    for (int i = t; i < ${rounds}; i += ${threads}) {`,
      '      const int q = min(i, chunks - 1);',
      `      nincc::cp_async_cg(&bring[${o.offset ? `${o.offset} + ` : ''}(ring_next % ${r.slots}) * ${o.slotPitch} + q * ${CHUNK}], ${o.source} + run0 + q * ${CHUNK});`,
      '    }',
      '  }',
    ];
  });
  return [
    `NINCC_DYNAMIC_SHARED(nincc::bf16, bring);  // the image slots, the launch's ${imageRingsBytes(r)} B: ${r.operands.map((o) => `${o.source}: ${r.slots} × ${o.rows} channels × ${r.positions} positions (${o.slotPitch} bf16 apart)`).join('; ')}`,
    `int ring_next = int(lo / ${r.positions});  // the next image to issue`,
    `auto issue = [&](long long jj) {  // the images slice jj reaches that are not yet in flight (none past hi)`,
    '  if (jj >= hi) return;',
    `  const int last = int((min(jj + ${BK}, hi) - 1) / ${r.positions});`,
    '  for (; ring_next <= last; ++ring_next) {',
    ...copies.map((line) => `  ${line}`),
    '  }',
    '};',
    'NINCC_UNROLL',
    `for (int s = 0; s < ${r.stages - 1}; ++s) {  // the first ${r.stages - 1} slices in flight`,
    `  issue(lo + s * ${BK});`,
    '  nincc::cp_async_commit();',
    '}',
    `nincc::cp_async_wait_group<${r.stages - 2}>();  // the first slice's images have landed`,
    '__syncthreads();',
  ];
}

/** The k×k weight gradient's ring's prologue. */
export const asyncImageRingPrologue = (r: AsyncImageRing, K: number, threads: number) => imageRingsPrologue(asRings(r, K), threads);

/** Operand `o`'s value (as a float) of row `row` at position `jr` (within the split) from its image's slot. */
export const imageRingsValue = (r: ImageRings, o: RingOperand, row: string, jr: string) =>
  `nincc::bf16_to_float(nincc::ld(&bring[${o.offset ? `${o.offset} + ` : ''}int(${jr} / ${r.positions} % ${r.slots}) * ${o.slotPitch} + ${row} * ${r.positions} + int(${jr} % ${r.positions})]))`;

/** At the start of iteration it (slice j0): slice j0 + (S−1)·32's new images in flight. */
export const asyncImageRingIssue = (r: Pick<ImageRings, 'stages'>) => [`issue(j0 + ${(r.stages - 1) * BK});`, 'nincc::cp_async_commit();'];

/** Before iteration it's closing barrier: slice it + 1's images have landed (its group is S − 1 from the newest). */
export const asyncImageRingLand = (r: Pick<ImageRings, 'stages'>) => [`nincc::cp_async_wait_group<${r.stages - 2}>();  // the next slice's images have landed (the barrier below shows them to all)`];

/** B's element for slice offset `ko` of row `row` (channel `kout`) from its image's slot: stageAlongPositions' perElement. */
export function asyncImageRingElement(r: AsyncImageRing, K: number): string[] {
  const rings = asRings(r, K);
  return [
    'const long long j = j0 + ko, jr = min(j, hi - 1);  // every lane reads (past hi: the split\'s last position)',
    `const float rv = ${imageRingsValue(rings, rings.operands[0], 'row', 'jr')};`,
    `if (kout < ${K} && j < hi) v = rv;`,
  ];
}

/**
 * A rebuilt dY' stored through the slots of a B operand `g` that the staging reads once an element a block (g, or y)
 * (`dyOut` of a 1×1 weight gradient: its first row tile's blocks store dY', bf16, for the data gradient): where a
 * position's image lies whole in the split, the lane that read the operand there writes dY' over it in the slot, else
 * (a split's partial first or last image) to `dst` as before.
 */
export function ringDyStore(r: ImageRings, g: RingOperand, dst: string, value: string): string {
  return `if (blockIdx.x == 0) { const long long img = j / ${r.positions}; if (img * ${r.positions} >= lo && (img + 1) * ${r.positions} <= hi) nincc::st(&bring[${g.offset ? `${g.offset} + ` : ''}int(img % ${r.slots}) * ${g.slotPitch} + row * ${r.positions} + int(j % ${r.positions})], nincc::to_bf16(${value})); else nincc::st(&${dst}[at], nincc::to_bf16(${value})); }`;
}

/**
 * After the slice's MMA (its staging's slot writes shown by the barrier before it; the loop's closing barrier orders these
 * reads before the next issue refills a slot): the first row tile's blocks copy each image this slice completed, whole in
 * the split, from the operand's slot to `dst` (the image's run of the block's channels, whole 16-byte stores).
 */
export function ringDyCopyOut(r: ImageRings, g: RingOperand, dst: string, threads: number): string[] {
  const rounds = Math.ceil((g.rows * r.positions) / CHUNK / threads) * threads;
  return [
    `if (blockIdx.x == 0) {  // dY' of the images this slice completed, from ${g.source}'s slots in whole 16-byte runs`,
    `  const long long end = min(j0 + ${BK}, hi);`,
    `  for (long long img = j0 / ${r.positions}; img * ${r.positions} < end; ++img) {`,
    `    if ((img + 1) * ${r.positions} > end || img * ${r.positions} < lo) continue;  // not completed here, or not whole in the split`,
    `    const int chunks = min(${g.rows}, ${g.channels} - ${g.first}) * ${r.positions} / ${CHUNK};`,
    `    const long long run0 = (img * ${g.channels} + ${g.first}) * ${r.positions};`,
    `    for (int i = t; i < ${rounds}; i += ${threads}) {`,
    '      const int q = min(i, chunks - 1);',
    `      nincc::st(reinterpret_cast<int4*>(${dst} + run0) + q, nincc::ld(reinterpret_cast<const int4*>(&bring[${g.offset ? `${g.offset} + ` : ''}int(img % ${r.slots}) * ${g.slotPitch}]) + q));`,
    '    }',
    '  }',
    '}',
  ];
}
