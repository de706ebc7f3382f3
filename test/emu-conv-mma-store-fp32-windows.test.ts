// The fp32 epilogue stores in sector-aligned windows (compiler/backends/cuda/conv-mma-store-fp32-windows.ts): the
// block's n8 tile of inference's fp32 y, channel-major in shared memory, stored by lanes on consecutive words from each
// run's sector, against the per-warp staging's 32 rows a channel an instruction (`fp32StoreWindows: false`). Only
// where each value is written from changes: both builds must agree bitwise (a training step, three SGD steps,
// inference), and the emulator's profile must show the same bytes in fewer store sectors with no bank conflict added.
// Five inference convs on planes none a multiple of 8 positions (the last 7×7, as NIN's last block), batch 3 on grids for 4.
// CI checks the compiled kernels (no build, ~2 s); the emu builds run with NINCC_TEST_FULL=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { coalescing } from '../runtime/profile/profile-coalescing.js';
import { buildEmuVariants, compileEmuVariant, type EmuVariants } from './reference/emu-variants.js';
import { sameStepsProfiledInference } from './reference/same-training.js';

const INPUT = [16, 9, 11] as const;
const CLASSES = 3;
// emu-conv-mma-store-fp32-staged.test.ts's spec (a strided 3×3 without BN, whose training y stays fp32), then a 2×1
// conv whose padding makes 7×7 outputs (49 positions, as NIN's last block).
const SPEC = `model windows32 {
  input ${INPUT.join('x')}
  conv(16, 48, 3, 3, 1, 1, 1, 1)  bn(48)  relu
  conv(48, 128, 3, 3, 1, 1, 0, 0)  bn(128)  relu
  conv(128, 32, 1, 1, 1, 1, 0, 0)  bn(32)  relu
  conv(32, 40, 3, 3, 2, 2, 1, 1)  relu
  conv(40, 64, 2, 1, 1, 1, 2, 2)  bn(64)  relu
  view(-1)  linear(3136, ${CLASSES})  logsoftmax
}`;

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-store-fp32-windows.test.ts: the emu builds, the bitwise comparison and the profiled stores run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const VARIANTS = { on: {}, off: { fp32StoreWindows: false } } as const;
const convForwards = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(infer|fwd_fused)$/.test(k.name)).map((k) => [k.name, k]));

describe('the fp32 store windows (compiled, no build)', () => {
  it('every inference conv stores its block\'s n8 tile of fp32 y in windows (the training forward\'s fp32 y, k10, keeps the per-warp runs); fp32StoreWindows: false keeps the per-warp runs; the same tiles', () => {
    const on = convForwards(compileEmuVariant(SPEC, 'windows32.model', VARIANTS.on)), off = convForwards(compileEmuVariant(SPEC, 'windows32.model', VARIANTS.off));
    const windows = [...on].filter(([, k]) => /sector-aligned windows/.test(k.fused ?? '')).map(([name]) => name).sort();
    expect(windows).toEqual(['k10_conv_infer', 'k12_conv_infer', 'k1_conv_infer', 'k4_conv_infer', 'k7_conv_infer']);
    for (const name of windows) {
      const body = on.get(name)!.body.join('\n');
      expect(body, name).toMatch(/a warp's window: 32 words, 4 whole sectors/);
      expect(body, name).not.toMatch(/one channel a store/);
      expect(off.get(name)!.body.join('\n'), name).toMatch(/for \(int c8 = 0; c8 < 8; \+\+c8\) \{  \/\/ one channel a store: 32 consecutive positions, 128 contiguous bytes/);
    }
    for (const [name, k] of on) expect(k.tile, name).toBe(off.get(name)!.tile);
  });
});

describe.runIf(FULL)('the fp32 store windows on emu (NINCC_TEST_FULL=1)', () => {
  let builds: EmuVariants<keyof typeof VARIANTS> | undefined;
  beforeAll(() => {
    builds = buildEmuVariants(SPEC, 'windows32.model', VARIANTS);
  }, 600_000);
  afterAll(() => builds?.remove());

  it('one training step, three SGD steps and inference: bitwise those of the per-warp staging; the same bytes in fewer store sectors, no conflict added', async () => {
    const { on: pOn, off: pOff } = await sameStepsProfiledInference(builds!.dirs, INPUT, CLASSES); // batch 3, below the grids' 4
    const convs = [...pOn.keys()].filter((k) => /_conv_infer$/.test(k));
    expect(convs.length, convs.join()).toBe(5);
    for (const name of convs) {
      const a = pOn.get(name)!, b = pOff.get(name)!;
      const [ca, cb] = [coalescing(a as never), coalescing(b as never)];
      console.log(`${name}: store sectors ${cb.store.sectors} → ${ca.store.sectors} (ideal ${cb.store.idealSectors} → ${ca.store.idealSectors}), conflicts ${b.shared_bank_conflicts} → ${a.shared_bank_conflicts}`);
      expect(ca.store.requestedBytes, name).toBe(cb.store.requestedBytes);
      expect(ca.store.sectors, name).toBeLessThan(cb.store.sectors);
      expect(a.shared_bank_conflicts, name).toBeLessThanOrEqual(b.shared_bank_conflicts);
    }
  }, 900_000);
});
