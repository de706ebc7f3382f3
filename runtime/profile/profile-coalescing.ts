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
}

export const COALESCING_COUNTERS = [
  'global_load_requested_bytes',
  'global_load_ideal_sectors',
  'global_store_requested_bytes',
  'global_store_ideal_sectors',
  'async_copy_requested_bytes',
  'async_copy_ideal_sectors',
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
    store: direction(c.global_store_requested_bytes, c.global_store_sectors, c.global_store_ideal_sectors),
  };
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
      .map((d) => `${d}s ${k[d].sectors.toLocaleString('en-US')} sectors for ${k[d].idealSectors.toLocaleString('en-US')} needed (+${(100 * k[d].excess).toFixed(1)}%, efficiency ${(100 * k[d].efficiency).toFixed(1)}%)`);
    const extra = k.load.sectors - k.load.idealSectors + k.store.sectors - k.store.idealSectors;
    if (parts.length > 0) rows.push({ extra, line: `${kernel}: ${parts.join('; ')}` });
  }
  return rows.sort((a, b) => b.extra - a.extra).map((r) => r.line);
}
