// The conflict-free A staging in the positions' own k order of the weight gradients with B from their dY' ring
// (compiler/backends/cuda/conv-mma-wgrad-natural-staging.ts): the halo layouts chosen for it are free of bank conflicts
// under its bank check, the layouts chosen for stageAlongK's order are not (so the check and the row pitch matter), and
// its stores (8 rows × one 16-byte chunk a 16-lane phase) are conflict-free. No build; the emulator's counts of the
// kernels are test/profile-conv-mma.test.ts's (no conflicts in any tensor-core gradient).
import { describe, expect, it } from 'vitest';
import { swizzled } from '../compiler/backends/cuda/conv-mma-tile.js';
import { chooseHaloSpan } from '../compiler/backends/cuda/conv-mma-wgrad-halo-span.js';
import { paddedColumns, type Geometry } from '../compiler/backends/cuda/conv-mma-wgrad-halo.js';
import { chooseNaturalHalo, naturalStagingConflicts, naturalStagingFits } from '../compiler/backends/cuda/conv-mma-wgrad-natural-staging.js';

/** test/data/conv-mma.model's layer 4 (3×3 pad 1 on 20×9×8) and NIN's k11 (5×5 pad 2, 96 channels on 28×28). */
const LAYERS: { name: string; g: Geometry; bm: number; threads: number }[] = [
  { name: 'conv-mma.model k4', g: { C: 20, H: 9, W: 8, P: 9, Q: 8, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 }, bm: 64, threads: 128 },
  { name: "NIN's k11", g: { C: 96, H: 28, W: 28, P: 28, Q: 28, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 }, bm: 256, threads: 256 },
];
const STATIC_ROOM = 24 * 1024;

describe('A in the positions\' order, 16 taps × one chunk a load instruction', () => {
  for (const { name, g, bm, threads } of LAYERS) {
    it(`${name}: a halo free of conflicts for it, where rows of the padded width are not (nor, on k11, stageAlongK's layout)`, () => {
      expect(naturalStagingFits(bm, threads)).toBe(true);
      const h = chooseNaturalHalo(g, bm, threads, true, STATIC_ROOM)!;
      expect(h).toBeDefined();
      expect(naturalStagingConflicts(g, h.layout, h.positions)).toBe(false);
      // The same staging on rows of the padded width, no gaps: conflicts (the check can fail).
      expect(naturalStagingConflicts(g, { ...h.layout, columns: paddedColumns(g), imageGap: 0, planeResidue: 16 }, h.positions)).toBe(true);
      if (name === "NIN's k11") {
        const alongK = chooseHaloSpan(g, bm, threads, true)!;
        expect(naturalStagingConflicts(g, alongK.layout, alongK.positions)).toBe(true);
      }
    });
  }

  it('the stores: each 16-lane phase (8 rows, one 16-byte chunk, two 8-byte halves) lands on 32 distinct banks', () => {
    // The kernel's `as[swizzled(row, chunk)]` in int4 units, its half `quarter % 2` 8 bytes on; rows 16·group + lane / 2.
    const swz = (row: number, chunk: number) => row * 4 + (chunk ^ ((row >> 1) & 3));
    expect(swizzled('row', 'chunk')).toBe('(row) * 4 + ((chunk) ^ (((row) >> 1) & 3))');
    for (let group = 0; group < 16; group++)
      for (let chunk = 0; chunk < 4; chunk++)
        for (let phase = 0; phase < 2; phase++) {
          const banks = new Set<number>();
          for (let lane = 16 * phase; lane < 16 * phase + 16; lane++) {
            const byte = swz(16 * group + (lane >> 1), chunk) * 16 + (lane & 1) * 8;
            banks.add((byte / 4) % 32).add((byte / 4 + 1) % 32);
          }
          expect(banks.size).toBe(32);
        }
  });
});
