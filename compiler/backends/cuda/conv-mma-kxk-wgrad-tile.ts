// The tile of a k×k (R·S > 1) bf16 weight gradient (conv-mma-grad.ts): M = C·R·S taps, N = K channels. Every
// block reads its BN channels of dY' for each of the split's positions once per M tile, so dY' is read
// ⌈C·R·S/BM⌉ times over; with the input halo (conv-mma-wgrad-halo.ts) A costs a block only the input rows of
// the ≈ BM/(R·S) channels its taps span, so dY' is most of the global traffic (NIN b128's 5×5: 19 row tiles
// of 128 re-read 25.7M floats of dY' each). A 256-tall tile of 16 warps (8×2 of 32×64, the 128×128 tile's
// warps, 64 accumulators per thread) halves those re-reads. Its staging loops, shared layout and k order are
// the others' (only the thread count changes), so every output sums the same slices in the same order: a
// tall build is bitwise a 128×128 one (`tallTiles: false`). docs/design.md §4.1.
import { BK, chooseMmaTile, type MmaTile } from './conv-mma-tile.js';

export const TALL_WGRAD_TILE: MmaTile = { bm: 256, bn: 128, warpsM: 8, warpsN: 2, nt: 8 };

/**
 * Global reads of a k×k weight gradient's tile per staged slice of BK positions, in elements: each of the
 * ⌈CRS/BM⌉·⌈K/BN⌉ blocks reads its BN rows of dY' (`bReads` buffers each) and the input rows of the channels
 * its BM taps span (up to ⌈(BM − 1)/RS⌉ + 1 of them, each ≈ `inputRows` padded rows of `columns` per slice).
 */
export function wgradSliceReads(t: MmaTile, CRS: number, K: number, RS: number, bReads: number, inputElements: number): number {
  const blocks = Math.ceil(CRS / t.bm) * Math.ceil(K / t.bn);
  const channels = Math.min(Math.ceil((t.bm - 1) / RS) + 1, Math.ceil(CRS / RS));
  return blocks * (t.bn * BK * bReads + channels * inputElements);
}

/**
 * A k×k weight gradient's tile: the tall tile where it reads less than the wide tiles' pick (the least padded
 * work, conv-mma-tile.ts) — only with the input halo (`inputElements`: the padded input elements one
 * channel's slice stages; a gathered A reads every tap's input, which the tall tile does not cut) and at
 * least 128 output channels (a narrower layer would pad the 128-wide tile). Otherwise the wide tiles' pick.
 */
export function chooseKxkWgradTile(CRS: number, K: number, RS: number, bReads: number, inputElements: number | undefined, candidates: readonly MmaTile[]): MmaTile {
  const wide = chooseMmaTile(CRS, K, candidates);
  if (inputElements === undefined || K < TALL_WGRAD_TILE.bn || CRS <= wide.bm) return wide;
  return wgradSliceReads(TALL_WGRAD_TILE, CRS, K, RS, bReads, inputElements) < wgradSliceReads(wide, CRS, K, RS, bReads, inputElements) ? TALL_WGRAD_TILE : wide;
}
