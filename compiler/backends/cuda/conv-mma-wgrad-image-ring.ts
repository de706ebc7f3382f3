// A weight gradient's dY' (B) copied whole images at a time into a ring of two shared slots, where its plane is too
// short for a row of 32 positions to be whole sectors (NIN's 7×7: 49 bf16 positions, 98 bytes a plane, the planes
// 98 bytes apart, so a slice's row is one or two runs off the sector grid). A block's BN output channels of one image
// are one contiguous run of BN·P·Q elements in dY' (channels follow each other in NCHW), so a warp copying it reads
// whole, aligned sectors; each slice then stages B from the ring with conv-mma-wgrad-coalesced-staging.ts's lanes along
// positions, each lane reading the bf16 its global load read before. dY' must be plain bf16 (no rebuild, no
// dReLU: the ring holds the raw values), so B's values, the bias gradient's sums and the k order are unchanged
// (bitwise `wgradImageRing: false`). docs/design.md §4.1.
import { conflicted } from './conv-mma-wgrad-halo-banks.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { BK } from './conv-mma-tile.js';

/** The ring's shape: `positions` (P·Q) a plane, `rows` (the tile's BN) planes an image slot, slots `slotPitch` bf16 apart. */
export interface ImageRing {
  readonly positions: number;
  readonly rows: number;
  readonly slotPitch: number;
}

/** The ring's bytes: two slots of bf16. */
export const ringBytes = (r: ImageRing) => 2 * r.slotPitch * 2;

/**
 * The B staging's shared-memory wavefronts beyond one per instruction: a warp reads one row's 32 consecutive
 * positions, which cross into the other slot where the slice runs into the next image (either slot first).
 * The copy's stores are consecutive elements of one slot: conflict-free.
 */
export function ringReadConflicts(r: ImageRing): number {
  const words = new Int32Array(32), bankWord = new Int32Array(32);
  let conflicts = 0;
  for (let row = 0; row < r.rows; row++) {
    for (let tail = 1; tail < Math.min(BK, r.positions + 1); tail++) {
      for (const first of [0, 1]) {
        for (let lane = 0; lane < BK; lane++) {
          words[lane] = lane < tail ? first * r.slotPitch + row * r.positions + r.positions - tail + lane : (1 - first) * r.slotPitch + row * r.positions + lane - tail;
        }
        if (conflicted(words, BK, bankWord)) conflicts++;
      }
    }
  }
  return conflicts;
}

/**
 * The ring of a weight gradient whose dY' is plain bf16 on planes of at least BK positions (a slice then reaches at
 * most two images), staged along positions, where it fits the static shared memory beside the tiles (`tileBytes`):
 * the smallest even slot pitch ≥ rows·positions whose B staging meets no bank conflict (within 64 elements of it).
 */
export function chooseImageRing(positions: number, rows: number, tileBytes: number): ImageRing | undefined {
  if (positions < BK) return undefined;
  for (let slotPitch = rows * positions + ((rows * positions) & 1); slotPitch < rows * positions + 64; slotPitch += 2) {
    const ring = { positions, rows, slotPitch };
    if (tileBytes + ringBytes(ring) > STATIC_SHARED_BYTES) return undefined;
    if (ringReadConflicts(ring) === 0) return ring;
  }
  return undefined;
}

/** Before the slice loop: the ring and the next image it takes (the split's first). */
export function ringPrologue(r: ImageRing): string[] {
  return [
    `NINCC_SHARED(nincc::bf16, bring, ${2 * r.slotPitch});  // dY' of the block's ${r.rows} channels, two images (slots ${r.slotPitch} bf16 apart)`,
    `int ring_next = int(lo / ${r.positions});  // the next image to copy into the ring`,
  ];
}

/**
 * Per slice, before B's staging: every image the slice reaches and the ring lacks copied into slot image % 2 (which held
 * image − 2, done with since the previous slice's barrier), then a barrier; the same for every thread. Every thread
 * runs the copy loop equally often; the planes past K's channels are not read, the positions outside the split are
 * (a split's first and last image: contiguous runs, never read back).
 */
export function ringCopy(r: ImageRing, K: number, threads: number): string[] {
  const rounds = Math.ceil((r.rows * r.positions) / threads) * threads;
  return [
    `const int ring_last = int((min(j0 + ${BK}, hi) - 1) / ${r.positions});  // the image of the slice's last position`,
    'if (ring_next <= ring_last) {',
    `  const int run = min(${r.rows}, ${K} - n0) * ${r.positions};  // the image's planes of channels n0… below K: one contiguous run of dY'`,
    '  for (; ring_next <= ring_last; ++ring_next) {',
    `    const long long run0 = ((long long)ring_next * ${K} + n0) * ${r.positions};`,
    '    // Every lane loads and stores each round (the emulator pairs a lane\'s k-th access with its neighbours\'): a spare',
    '    // repeats the run\'s last element. The whole image, also positions outside the split (never read from the ring).',
    `    for (int i = t; i < ${rounds}; i += ${threads}) {`,
    '      const int e = min(i, run - 1);',
    `      nincc::st(&bring[(ring_next & 1) * ${r.slotPitch} + e], nincc::ld(&g[run0 + e]));`,
    '    }',
    '  }',
    '  __syncthreads();',
    '}',
  ];
}

/** B's element for slice offset `ko` of row `row` (channel `kout`) from the ring: stageAlongPositions' perElement. */
export function ringElement(r: ImageRing, K: number): string[] {
  return [
    'const long long j = j0 + ko, jr = min(j, hi - 1);  // every lane reads (past hi: the split\'s last position), as the emulator pairs lanes\' k-th reads',
    `const float rv = nincc::bf16_to_float(nincc::ld(&bring[int(jr / ${r.positions} & 1) * ${r.slotPitch} + row * ${r.positions} + int(jr % ${r.positions})]));`,
    `if (kout < ${K} && j < hi) v = rv;`,
  ];
}
