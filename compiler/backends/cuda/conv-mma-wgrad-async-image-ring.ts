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
// false`. docs/design.md §4.1.
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
  const lastRows = channels % rows;
  if ((channels * positions) % CHUNK !== 0 || (rows * positions) % CHUNK !== 0 || (lastRows * positions) % CHUNK !== 0) return undefined;
  for (let stages = MAX_STAGES; stages >= 2; stages--) {
    const slots = imagesReached(stages * BK, positions);
    for (let slotPitch = rows * positions; slotPitch < rows * positions + 64; slotPitch += CHUNK) {
      const ring = { stages, slots, rows, positions, slotPitch };
      if (STATIC_SHARED_BYTES + asyncImageRingBytes(ring) > BLOCK_SHARED_BYTES) break;
      if (asyncImageRingReadConflicts(ring) === 0) return ring;
    }
  }
  return undefined;
}

/** report.txt's words. */
export const asyncImageRingWords = (r: AsyncImageRing) =>
  `dY' copied whole images of the block's ${r.rows} channels by cp.async (16-byte chunks) into ${r.slots} image slots in dynamic shared memory (${asyncImageRingBytes(r)} B), ${r.stages - 1} slices in flight, B staged from there`;

/**
 * The ring's declaration, the issue lambda (every image slice jj reaches that is not yet issued, into slot image %
 * slots: every thread the same number of copies, a spare repeating the run's last, as the emulator pairs a lane's k-th
 * access with its neighbours'), and the first S − 1 slices issued, one group each, the first waited for.
 */
export function asyncImageRingPrologue(r: AsyncImageRing, K: number, threads: number): string[] {
  const rounds = Math.ceil((r.rows * r.positions) / CHUNK / threads) * threads;
  return [
    `NINCC_DYNAMIC_SHARED(nincc::bf16, bring);  // dY''s image slots, the launch's ${asyncImageRingBytes(r)} B: ${r.slots} × ${r.rows} channels × ${r.positions} positions (${r.slotPitch} bf16 apart)`,
    `int ring_next = int(lo / ${r.positions});  // the next image to issue`,
    `auto issue = [&](long long jj) {  // the images slice jj reaches that are not yet in flight (none past hi)`,
    '  if (jj >= hi) return;',
    `  const int last = int((min(jj + ${BK}, hi) - 1) / ${r.positions});`,
    `  const int chunks = min(${r.rows}, ${K} - n0) * ${r.positions} / ${CHUNK};  // the image's planes of channels n0… below K: one run of whole 16-byte copies`,
    '  for (; ring_next <= last; ++ring_next) {',
    `    const long long run0 = ((long long)ring_next * ${K} + n0) * ${r.positions};`,
    `    for (int i = t; i < ${rounds}; i += ${threads}) {`,
    '      const int q = min(i, chunks - 1);',
    `      nincc::cp_async_cg(&bring[(ring_next % ${r.slots}) * ${r.slotPitch} + q * ${CHUNK}], g + run0 + q * ${CHUNK});`,
    '    }',
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

/** At the start of iteration it (slice j0): slice j0 + (S−1)·32's new images in flight. */
export const asyncImageRingIssue = (r: AsyncImageRing) => [`issue(j0 + ${(r.stages - 1) * BK});`, 'nincc::cp_async_commit();'];

/** Before iteration it's closing barrier: slice it + 1's images have landed (its group is S − 1 from the newest). */
export const asyncImageRingLand = (r: AsyncImageRing) => [`nincc::cp_async_wait_group<${r.stages - 2}>();  // the next slice's images have landed (the barrier below shows them to all)`];

/** B's element for slice offset `ko` of row `row` (channel `kout`) from its image's slot: stageAlongPositions' perElement. */
export function asyncImageRingElement(r: AsyncImageRing, K: number): string[] {
  return [
    'const long long j = j0 + ko, jr = min(j, hi - 1);  // every lane reads (past hi: the split\'s last position)',
    `const float rv = nincc::bf16_to_float(nincc::ld(&bring[int(jr / ${r.positions} % ${r.slots}) * ${r.slotPitch} + row * ${r.positions} + int(jr % ${r.positions})]));`,
    `if (kout < ${K} && j < hi) v = rv;`,
  ];
}
