// The 64-row warp tiles of the stride-1 k×k bf16 convs (issue #15). With 32-row warps (32×8·nt) a warp loads,
// per 16-deep k-step, 2 A fragments by ldmatrix.x4 and nt B fragments by .x2 (4·2 + 2·nt shared wavefronts)
// for 2·nt MMAs: 1.5 a MMA at 32×64, which bound NIN's k×k main loops by shared memory. A 64-row warp
// (mt = 4 m16 tiles: 4·mt + 2·nt for mt·nt MMAs, 1.0 at 64×64, 128 accumulators a thread) halves A's share.
// A layer's tile is chosen as before (conv-mma-tile.ts, conv-mma-kxk-wgrad-tile.ts), with its halo; then
// its twin takes the same block tile, grid, staging, halo and k order with half the warps, so every output
// sums the same slices in the same order: bitwise the 32-row build (`warp64Tiles: false`).
// docs/design.md §4.1.
import { warpM16, type MmaTile } from './conv-mma-tile.js';
import { isOn, type Ablations } from '../../ablations.js';

/** Shared wavefronts of a warp's A (ldmatrix.x4) and B (.x2) fragments per MMA, of one k-step: 4/nt + 2/mt. */
export const fragmentWavefrontsPerMma = (t: MmaTile) => (4 * warpM16(t) + 2 * t.nt) / (warpM16(t) * t.nt);

/**
 * The 64-row warp twin of an 8- or 16-warp tile of 32-row warps (4×2 → 2×2, 8×2 → 4×2): the same block,
 * half the warps. A tile of fewer warps (its twin would have 2) or of 64-row warps already has none.
 */
export function warp64Twin(t: MmaTile): MmaTile | undefined {
  if (warpM16(t) !== 2 || t.warpsM % 2 !== 0 || t.warpsM * t.warpsN < 8) return undefined;
  return { ...t, warpsM: t.warpsM / 2, mt: 4 };
}

/**
 * A k×k conv's tile with 64-row warps where it has a twin with fewer fragment wavefronts per MMA: only a
 * stride-1 layer (R·S > 1), whose A comes from a shared halo. A strided one (NIN's 11×11/4 stem) gathers A
 * from global memory, is bound by L2 rather than shared memory in the model, and there the emulator prices
 * the gather's padding-skipping loads worse over a thread's more staging rounds (k1's forward went from
 * 38.60M to 44.78M load sectors, 154.0 → 169.5 µs predicted: bench/RESULTS.md #15), so it keeps its warps (its
 * forwards on the space-to-depth form, conv-mma-stem-s2d.ts, are a stride-1 3×3 conv's and pass that shape here; its
 * weight gradient on its own input halo builds A from shared memory and passes stride 1 too: conv-mma-grad.ts wgradPlan,
 * `stemWgradWarp64`). Off with `wideTiles: false` or `warp64Tiles: false`.
 */
export function kxkWarpTile(t: MmaTile, c: { R: number; S: number; sh: number; sw: number }, ablations: Ablations | undefined): MmaTile {
  if (!isOn(ablations, 'wideTiles') || !isOn(ablations, 'warp64Tiles') || c.R * c.S === 1 || c.sh !== 1 || c.sw !== 1) return t;
  const twin = warp64Twin(t);
  return twin && fragmentWavefrontsPerMma(twin) < fragmentWavefrontsPerMma(t) ? twin : t;
}
