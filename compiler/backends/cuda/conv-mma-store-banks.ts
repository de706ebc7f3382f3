// The bank conflicts of the staged bf16 output stores' shared piece (conv-mma-store-staged.ts), priced by the
// emulator's rules (runtime/include/nincc/device/emu/profile.h): a warp's 2-byte accesses take one wavefront
// per distinct 4-byte word in the busiest bank; 16-byte ones go in phases of 8 lanes, one wavefront when their
// 16-byte units fall in 8 distinct bank groups (unit mod 8). The lane → element maps are those the generator writes.

/** Extra wavefronts of one warp access of 2-byte elements at `offsets` (bf16 index per lane). */
function wordConflicts(offsets: readonly number[]): number {
  const words = new Map<number, Set<number>>();
  for (const o of offsets) {
    const word = Math.floor(o / 2);
    words.set(word % 32, (words.get(word % 32) ?? new Set()).add(word));
  }
  return Math.max(...[...words.values()].map((s) => s.size)) - 1;
}

/** Extra wavefronts of one warp access of 16-byte units at `units` (per lane), in phases of 8 lanes. */
function unitConflicts(units: readonly number[]): number {
  let extra = 0;
  for (let p = 0; p < 32; p += 8) {
    const groups = new Map<number, Set<number>>();
    for (const u of units.slice(p, p + 8)) groups.set(u % 8, (groups.get(u % 8) ?? new Set()).add(u));
    extra += Math.max(...[...groups.values()].map((s) => s.size)) - 1;
  }
  return extra;
}

const lanes = Array.from({ length: 32 }, (_, l) => l);

/** Extra wavefronts over one 32-row part of a warp with channel pitch `pitch` (bf16): the 8 writes, then the vector or the 8 scalar reads. */
export function stagedConflicts(pitch: number): { writes: number; vectorReads: number; scalarReads: number } {
  let writes = 0, scalarReads = 0;
  for (let half = 0; half < 2; half++)
    for (let j = 0; j < 4; j++) writes += wordConflicts(lanes.map((l) => (2 * (l % 4) + half) * pitch + 16 * Math.floor(j / 2) + 8 * (j % 2) + Math.floor(l / 4)));
  const vectorReads = unitConflicts(lanes.map((l) => ((l % 8) * pitch + 8 * Math.floor(l / 8)) / 8));
  for (let c8 = 0; c8 < 8; c8++) scalarReads += wordConflicts(lanes.map((l) => c8 * pitch + l));
  return { writes, vectorReads, scalarReads };
}
