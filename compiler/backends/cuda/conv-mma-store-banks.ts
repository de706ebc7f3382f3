// The bank conflicts of the staged bf16 output stores' shared piece (conv-mma-store-staged.ts), priced by the
// emulator's rules (runtime/include/nincc/device/emu/profile.h): a warp's 4-byte accesses take one wavefront per
// distinct word in the busiest bank; 16-byte ones go in phases of 8 lanes, one wavefront when their 16-byte units
// fall in 8 distinct bank groups (unit mod 8). The lane → word maps are those the generator writes, for a row of
// `rowWords` words (STAGED_ROW_WORDS).

function extraWavefronts(keys: readonly number[], banks: number): number {
  const seen = new Map<number, Set<number>>();
  for (const k of keys) seen.set(k % banks, (seen.get(k % banks) ?? new Set()).add(k));
  return Math.max(...[...seen.values()].map((s) => s.size)) - 1;
}

const lanes = Array.from({ length: 32 }, (_, l) => l);

/** Extra wavefronts over one 32-row part of a warp: the 4 pair writes, then the 16-byte row reads. */
export function stagedConflicts(rowWords: number): { writes: number; reads: number } {
  let writes = 0, reads = 0;
  for (let j = 0; j < 4; j++) writes += extraWavefronts(lanes.map((l) => (16 * Math.floor(j / 2) + 8 * (j % 2) + Math.floor(l / 4)) * rowWords + (l % 4)), 32);
  const units = lanes.map((l) => (l * rowWords) / 4);
  for (let p = 0; p < 32; p += 8) reads += extraWavefronts(units.slice(p, p + 8), 8);
  return { writes, reads };
}
