// Coalescing from profile counters (runtime/profile/profile-coalescing.ts): efficiency and the excess
// over the fewest sectors, on the counts of runtime/emu-test/test_profile.cc's hand-worked copies.
import { describe, expect, it } from 'vitest';
import { belowFullCoalescing, coalescing, onlyAtTileFloor, type CoalescingCounts } from '../runtime/profile/profile-coalescing.js';

// 32 warp instructions each way of 128 bytes (4096 requested, 128 sectors needed), as copy_* in test_profile.cc.
const copy = (loadSectors: number, extra: Partial<CoalescingCounts> = {}): CoalescingCounts => ({
  global_load_sectors: loadSectors,
  global_load_requested_bytes: 4096,
  global_load_ideal_sectors: 128,
  global_store_sectors: 128,
  global_store_requested_bytes: 4096,
  global_store_ideal_sectors: 128,
  async_copy_sectors: 0,
  async_copy_requested_bytes: 0,
  async_copy_ideal_sectors: 0,
  ...extra,
});

describe('coalescing', () => {
  it('gives efficiency as requested / (sectors · 32) and the excess over the fewest sectors', () => {
    const offset = coalescing(copy(160)); // misaligned by one float: 5 sectors for 4
    expect(offset.load).toEqual({ requestedBytes: 4096, sectors: 160, idealSectors: 128, efficiency: 0.8, excess: 0.25 });
    expect(offset.store.efficiency).toBe(1);
    expect(offset.store.excess).toBe(0);
    expect(coalescing(copy(1024)).load.efficiency).toBe(0.125); // stride 8 floats: 32 sectors for 4
    expect(coalescing(copy(1024)).load.excess).toBe(7);
  });

  it('counts cp.async with the loads, and a kernel that moves nothing as fully coalesced', () => {
    const k = coalescing(copy(128, { async_copy_sectors: 96, async_copy_requested_bytes: 3072, async_copy_ideal_sectors: 96 }));
    expect(k.load).toEqual({ requestedBytes: 7168, sectors: 224, idealSectors: 224, efficiency: 1, excess: 0 });
    const none = coalescing(copy(0, { global_load_requested_bytes: 0, global_load_ideal_sectors: 0 }));
    expect(none.load).toMatchObject({ efficiency: 1, excess: 0 });
  });

  it('lists the kernels below full coalescing, most extra sectors first; a broadcast (low efficiency, fewest sectors) is not one', () => {
    const broadcast = copy(128, { global_load_requested_bytes: 128 * 4, global_load_ideal_sectors: 128 }); // one float per warp instruction
    expect(coalescing(broadcast).load.efficiency).toBe(0.125);
    const lines = belowFullCoalescing([
      { kernel: 'k_offset', coalescing: coalescing(copy(160)) },
      { kernel: 'k_broadcast', coalescing: coalescing(broadcast) },
      { kernel: 'k_stride8', coalescing: coalescing(copy(1024)) },
      { kernel: 'k_sampled', coalescing: coalescing(copy(128.4)) }, // rounding of scaled counts, under 0.5%
    ]);
    expect(lines).toEqual([
      'k_stride8: loads 1,024 sectors for 128 needed (+700.0%, efficiency 12.5%)',
      'k_offset: loads 160 sectors for 128 needed (+25.0%, efficiency 80.0%)',
    ]);
  });

  it("splits a store excess at the blocks' own sectors: below them the tile's cut runs (inherent), above them the instructions'", () => {
    // 128 ideal store sectors: the blocks' outputs span 136 (runs ending inside sectors), the instructions touch 160.
    const staged = coalescing(copy(128, { global_store_sectors: 160, global_store_block_sectors: 136 }));
    expect(staged.store).toMatchObject({ blockSectors: 136, tileExcess: 8 / 128, instructionExcess: 24 / 128 });
    expect(onlyAtTileFloor(staged)).toBe(false);
    const windows = coalescing(copy(128, { global_store_sectors: 136, global_store_block_sectors: 136 }));
    expect(windows.store).toMatchObject({ tileExcess: 8 / 128, instructionExcess: 0 });
    expect(onlyAtTileFloor(windows)).toBe(true);
    expect(onlyAtTileFloor(coalescing(copy(160, { global_store_sectors: 136, global_store_block_sectors: 136 })))).toBe(false); // its loads are not full
    expect(belowFullCoalescing([{ kernel: 'k_windows', coalescing: windows }])).toEqual([
      "k_windows: stores 136 sectors for 128 needed (+6.3%, efficiency 94.1%: +6.3% where the tile cuts the outputs' runs off the sector grid, +0.0% from the instructions)",
    ]);
    // A block storing one sector from several instructions (4-byte partials of one sector) has fewer own sectors than the ideal: no tile excess.
    expect(coalescing(copy(128, { global_store_sectors: 160, global_store_block_sectors: 64 })).store).toMatchObject({ tileExcess: 0, instructionExcess: 32 / 128 });
    // Counters from before the block sectors existed: no split.
    expect(coalescing(copy(128)).store.tileExcess).toBeUndefined();
  });
});

