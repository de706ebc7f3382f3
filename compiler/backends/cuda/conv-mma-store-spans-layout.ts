// Where the span stores (conv-mma-store-spans.ts) keep a block's spans in shared memory, chosen by pricing the
// span writes' banks by the emulator's rules (runtime/include/nincc/device/emu/profile.h: a warp instruction of
// 2-byte stores takes one wavefront per distinct 4-byte word in its busiest bank). A span is 8 consecutive NCHW
// planes of one image, copied out 16 bytes a lane; in shared memory it takes `slots` 16-byte chunks: the plane's
// positions, and on odd planes (NIN's 7×7: a span of 49 chunks, every other one starting 16 bytes into a sector)
// one more, so that the chunks can sit at their sector's phase (slot 0 or 1 of a sector pair) and a copy
// instruction's lanes pair up into whole sectors. Chunk k of the block's spans lies at k ^ (((k >> 3) & 1) · xor):
// a permutation inside each aligned group of 8 chunks (the 8 lanes of a 16-byte copy phase read one such group,
// so the copy stays conflict-free), which on 7×7 moves the 4 channels of a write (49 words apart: banks 0, 17, 2,
// 19 + 4–5 words each) onto distinct banks.

/** The shared layout of the spans: 16-byte chunks a span, and the XOR of the odd 8-chunk groups' chunk indices. */
export interface SpanLayout {
  readonly slots: number;
  readonly xor: number;
}

/** Where a span's first chunk sits within its first sector pair: 0 or 1 (planes of an odd count only). */
const PHASES = (positions: number) => (positions % 2 === 1 ? [0, 1] : [0]);

/** Chunks a span takes: its positions, and on odd planes one more for the sector phase. */
export const spanSlots = (positions: number) => positions + (positions % 2);

/** The shared element of logical element `e` (a C++ expression when `e` is): chunk e / 8 permuted within its group of 8. */
export const spanElement = (e: number, xor: number) => e ^ (((e >> 6) & 1) * (xor << 3));

/**
 * The extra wavefronts of every span write instruction of a block (`spans` spans of `positions`-position planes):
 * each writes positions p0…p0+7 of channels 2j + half (j = 0…3) of one span, 16-bit each (spanWrite). Positions past
 * the plane write the sink (64 elements past the spans) at their would-be bank, except the one sharing its word with
 * the plane's last position, which rewrites that position's value (no second word in that bank).
 */
export function spanWriteConflicts(positions: number, layout: SpanLayout, spans: number): number {
  let extra = 0;
  for (let span = 0; span < spans; span++)
    for (const phase of PHASES(positions))
      for (let half = 0; half < 2; half++)
        for (let p0 = 0; p0 < positions; p0 += 8) {
          const perBank = new Map<number, Set<number>>();
          for (let j = 0; j < 4; j++)
            for (let t = 0; t < 8; t++) {
              const e = (span * layout.slots + phase) * 8 + (2 * j + half) * positions + p0 + t;
              const p = p0 + t;
              const at = p < positions ? spanElement(e, layout.xor) : p === positions && e % 2 === 1 ? spanElement(e - 1, layout.xor) : (1 << 24) + (spanElement(e, layout.xor) % 64);
              const word = at >> 1;
              perBank.set(word % 32, (perBank.get(word % 32) ?? new Set()).add(word));
            }
          extra += Math.max(...[...perBank.values()].map((s) => s.size)) - 1;
        }
  return extra;
}

/** The XORs tried, in order: none first (6×6 needs none), then each 3-bit one. */
const XORS = [0, 2, 4, 6, 1, 3, 5, 7];

/**
 * The first layout whose span writes are conflict-free, or undefined. `swizzled` false keeps to the unswizzled
 * layout of even planes (the spans before odd planes took them: ablation `swizzledSpans`).
 */
export function spanLayout(positions: number, spans: number, swizzled: boolean): SpanLayout | undefined {
  if (!swizzled && positions % 2 === 1) return undefined;
  const candidates = (swizzled ? XORS : [0]).map((xor) => ({ slots: spanSlots(positions), xor }));
  return candidates.find((layout) => spanWriteConflicts(positions, layout, spans) === 0);
}
