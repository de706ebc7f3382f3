// The smaller tiles a 1×1 bf16 weight gradient may take where its default tile's grid is too small for the GPU
// (compiler/lower/wgrad-tile-waves.ts chooses, per layer, by the GPU's waves; consts.waveTile is the index here).
// Each is a CANDIDATES tile of 4 warps: fewer registers (NIN's k4/k7, sm_90: 166 → 128) so more blocks a SM too.
// A tile only changes which block computes an element of dW, not the order it is summed in: dW's bits stay the same.
import { CANDIDATES, type MmaTile } from './conv-mma-tile.js';

export const WAVE_WGRAD_TILES: readonly MmaTile[] = CANDIDATES.filter((t) => t.bm === 64 && (t.bn === 32 || t.bn === 16));

/** The tile consts.waveTile names, or undefined where there is none (or the kernel is not 1×1). */
export function waveWgradTile(c: { waveTile?: number; R: number; S: number }): MmaTile | undefined {
  if (c.waveTile === undefined || c.R * c.S !== 1) return undefined;
  const tile = WAVE_WGRAD_TILES[c.waveTile];
  if (!tile) throw new Error(`conv-mma-wgrad-wave-tiles.ts: no wave tile ${c.waveTile} (there are ${WAVE_WGRAD_TILES.length})`);
  return tile;
}
