// Coalescing from the emulator's counters (docs/profile.md): per kernel, the bytes its global warp
// instructions requested against the sectors they touched, and how far it is from full coalescing —
// every instruction touching the fewest sectors its distinct bytes need. Pure functions over counts.

/** The coalescing counters of a kernel's launches (device/emu/profile.h), scaled to the grid. */
export interface CoalescingCounts {
  readonly global_load_sectors: number;
  readonly global_load_requested_bytes: number;
  readonly global_load_ideal_sectors: number;
  readonly global_store_sectors: number;
  readonly global_store_requested_bytes: number;
  readonly global_store_ideal_sectors: number;
  readonly async_copy_sectors: number;
  readonly async_copy_requested_bytes: number;
  readonly async_copy_ideal_sectors: number;
  /** Each block's distinct stored sectors, summed (absent from counters written before it existed). */
  readonly global_store_block_sectors?: number;
}

export const COALESCING_COUNTERS = [
  'global_load_requested_bytes',
  'global_load_ideal_sectors',
  'global_store_requested_bytes',
  'global_store_ideal_sectors',
  'async_copy_requested_bytes',
  'async_copy_ideal_sectors',
  'global_store_block_sectors',
] as const;

/** One direction's traffic: loads (plain and cp.async) or stores. */
export interface Coalescing {
  readonly requestedBytes: number;
  readonly sectors: number;
  /** The fewest sectors the requested bytes could fill, instruction by instruction. */
  readonly idealSectors: number;
  /** requestedBytes / (sectors · 32), ncu's load/store efficiency; 1 when nothing moved. Below 1 also when fully coalesced, if a warp's bytes do not fill whole sectors (a broadcast, a 16-byte row). */
  readonly efficiency: number;
  /** Sectors beyond the ideal, as a fraction of the ideal: 0 is full coalescing. */
  readonly excess: number;
  /**
   * Stores only: each block's distinct stored sectors, summed — the fewest its stores can touch once the tile fixes
   * which outputs a block writes. Of the excess, what lies below it is the outputs' own runs cut off the sector grid
   * (inherent to the shape and the tile: `tileExcess`); what lies above it, sectors a block stores more than once
   * (the instructions' shape: `instructionExcess`, fixable by staging). Each as a fraction of the ideal.
   */
  readonly blockSectors?: number;
  readonly tileExcess?: number;
  readonly instructionExcess?: number;
}

export interface KernelCoalescing {
  readonly load: Coalescing;
  readonly store: Coalescing;
}

const SECTOR_BYTES = 32;

function direction(requestedBytes: number, sectors: number, idealSectors: number): Coalescing {
  return {
    requestedBytes,
    sectors,
    idealSectors,
    efficiency: sectors === 0 ? 1 : requestedBytes / (sectors * SECTOR_BYTES),
    excess: idealSectors === 0 ? 0 : (sectors - idealSectors) / idealSectors,
  };
}

export function coalescing(c: CoalescingCounts): KernelCoalescing {
  return {
    load: direction(
      c.global_load_requested_bytes + c.async_copy_requested_bytes,
      c.global_load_sectors + c.async_copy_sectors,
      c.global_load_ideal_sectors + c.async_copy_ideal_sectors,
    ),
    store: withBlockSectors(direction(c.global_store_requested_bytes, c.global_store_sectors, c.global_store_ideal_sectors), c.global_store_block_sectors),
  };
}

/** A direction's excess split at the blocks' own sectors (`blockSectors`, where the counters have it). */
function withBlockSectors(d: Coalescing, blockSectors: number | undefined): Coalescing {
  if (!blockSectors || d.idealSectors === 0) return d;
  const floor = Math.max(blockSectors, d.idealSectors);
  return { ...d, blockSectors, tileExcess: (Math.min(d.sectors, floor) - d.idealSectors) / d.idealSectors, instructionExcess: Math.max(0, d.sectors - floor) / d.idealSectors };
}

/** Excess below this fraction is rounding of sampled counts, not a pattern (scaled counts are rounded per launch). */
const FULL_WITHIN = 0.005;

export const fullyCoalesced = (d: Coalescing): boolean => d.excess < FULL_WITHIN;

/**
 * The kernels below full coalescing, most extra sectors first, one line each: which direction, the
 * sectors touched against those needed, and the efficiency.
 */
export function belowFullCoalescing(kernels: readonly { readonly kernel: string; readonly coalescing: KernelCoalescing }[]): string[] {
  const rows: { extra: number; line: string }[] = [];
  for (const { kernel, coalescing: k } of kernels) {
    const parts = (['load', 'store'] as const)
      .filter((d) => !fullyCoalesced(k[d]))
      .map((d) => `${d}s ${k[d].sectors.toLocaleString('en-US')} sectors for ${k[d].idealSectors.toLocaleString('en-US')} needed (+${(100 * k[d].excess).toFixed(1)}%, efficiency ${(100 * k[d].efficiency).toFixed(1)}%${splitText(k[d])})`);
    const extra = k.load.sectors - k.load.idealSectors + k.store.sectors - k.store.idealSectors;
    if (parts.length > 0) rows.push({ extra, line: `${kernel}: ${parts.join('; ')}` });
  }
  return rows.sort((a, b) => b.extra - a.extra).map((r) => r.line);
}

/** The store excess's split, where known: at the blocks' own sectors (the tile's) and above them (the instructions'). */
const splitText = (d: Coalescing) =>
  d.tileExcess === undefined || d.instructionExcess === undefined ? '' : `: +${(100 * d.tileExcess).toFixed(1)}% where the tile cuts the outputs' runs off the sector grid, +${(100 * d.instructionExcess).toFixed(1)}% from the instructions`;

/**
 * Whether a kernel's only excess is inherent to its shape and tile: its loads at full coalescing and its stores at
 * its blocks' own sectors (each stored once by its block; the rest is where the outputs' runs end inside sectors).
 */
export const onlyAtTileFloor = (k: KernelCoalescing): boolean =>
  fullyCoalesced(k.load) && !fullyCoalesced(k.store) && k.store.instructionExcess !== undefined && k.store.instructionExcess < FULL_WITHIN;
