// A weight gradient's operand rows staged along positions (conv-mma-wgrad-coalesced-staging.ts) through a per-row window
// of shared memory loaded in whole sectors, where a channel plane is not a whole number of sectors (NIN's 14×14: 392
// bytes, 7×7: 98): there a slice's 32 positions of a row are 64 bytes off the sector grid, three sectors touched for two
// needed. Each warp loads its own rows' positions from where the row's window ends up to the first sector boundary at or
// past the slice's end (or the plane's end, or the split's), in rounds of 32 lanes on 64-byte spans of the sector grid,
// so an instruction touches only the sectors its bytes need; the 0–15 positions past the slice wait in the window for
// the next slice. The window holds WINDOW positions a row, position j at j % WINDOW: a slice's 32 and those 15. The
// staging then reads each lane's bf16 from the window where it read global memory, the same warp (a warp barrier
// between): operands, bias gradient and k order unchanged, bitwise the staging from global memory. Only raw bf16 rows
// (x of a 1×1 stride-1 unpadded conv, its pending BN/ReLU applied when staged; a dY' needing no rebuild). Opt-in
// (`wgradSectorWindows: true`): each row's positions cost a shared store and a shared read more, which made NIN's 14×14
// and 7×7 1×1 weight gradients shared-bound and slower (k34's wavefronts 6.82M → 15.52M). docs/design.md §4.1.
import { BK } from './conv-mma-tile.js';
import type { CoalescedRows } from './conv-mma-wgrad-coalesced-staging.js';

/** A sector is 32 bytes: 16 bf16. */
const SECTOR = 16;
/** Positions a row's window holds: a slice's BK and up to SECTOR − 1 loaded past it. */
export const WINDOW = BK + SECTOR;

/** The shared memory a window of `rows` rows takes. */
export const windowBytes = (rows: number) => rows * WINDOW * 2;

/** Whether rows of planes of `positions` bf16 are off the sector grid (a window helps). */
export const offSectorGrid = (positions: number) => positions % SECTOR !== 0;

/** One operand's window: its shared array's name, the source buffer, its channels, and the plane's positions. */
export interface SectorWindow {
  readonly name: string;
  readonly source: string;
  readonly channels: number;
  readonly positions: number;
  readonly rows: CoalescedRows;
}

/** Before the slice loop: the window and each lane's frontier, for the warp's row `lane`, relative to `lo`. */
export function windowPrologue(w: SectorWindow): string[] {
  return [
    `NINCC_SHARED(nincc::bf16, ${w.name}, ${w.rows.rows * WINDOW});  // ${WINDOW} positions of each of the ${w.rows.rows} rows, position j at j % ${WINDOW}`,
    `int ${w.name}_f = 0;  // lane l: the first position (from lo) of the warp's row l not yet in the window`,
  ];
}

/**
 * Per slice, before the operand's staging: each warp's rows, one at a time (the whole warp, a uniform loop), loaded up
 * to the first sector boundary at or past the slice's last position, at most twice (into the next image); every lane
 * runs both rounds of a chunk. Then a warp barrier: the staging's lanes read what others stored.
 */
export function windowLoad(w: SectorWindow): string[] {
  const { perWarp } = w.rows, P = w.positions, row = `warp * ${perWarp} + i`;
  return [
    `// ${w.name}: the warp's rows loaded in whole sectors up to the slice's end (conv-mma-wgrad-sector-window.ts).`,
    `for (int i = 0; i < ${perWarp}; ++i) {`,
    `  const int row = ${row};`,
    `  const bool live = ${w.rows.live('row')};`,
    `  const long long ch = live ? ${w.rows.channel('row')} : 0;`,
    `  long long f = lo + nincc::shfl(${w.name}_f, i);`,
    `  const long long need = min(j0 + ${BK}, hi);`,
    '  while (f < need) {',
    `    const long long img = f / ${P}, base = (img * ${w.channels} + ch) * ${P} - img * ${P};  // position j of the row is at base + j`,
    `    const long long e = min(min(need + ((-(base + need)) & ${SECTOR - 1}), (img + 1) * ${P}), hi);  // a sector boundary, the plane's end or the split's`,
    `    const long long a = f - ((base + f) & ${SECTOR - 1});  // the sector holding f: rounds on the sector grid`,
    `    const int rounds = int(e - a + ${BK - 1}) / ${BK};  // 1 or 2, the same for the whole warp`,
    '    for (int k = 0; k < rounds; ++k) {',
    '      // Every lane loads and stores (the emulator pairs a lane\'s k-th access with its neighbours\'): one outside [f, e)',
    '      // repeats its nearest neighbour inside, the same bytes to the same place.',
    `      const long long j = min(max(a + ${BK} * k + lane, f), e - 1);`,
    `      if (live) nincc::st(&${w.name}[row * ${WINDOW} + int(j % ${WINDOW})], nincc::ld(&${w.source}[base + j]));`,
    '    }',
    '    f = e;',
    '  }',
    `  if (lane == i) ${w.name}_f = int(f - lo);`,
    '}',
    'nincc::sync_warp();',
  ];
}

/**
 * The operand's element for slice offset `ko` of row `row` from the window where `live` and j < hi, then `after` (a
 * pending transform). Every lane reads (past hi: the split's last position), as the emulator pairs lanes' k-th reads.
 */
export function windowElement(w: SectorWindow, live: string, after: readonly string[] = []): string[] {
  return [
    'const long long j = j0 + ko;',
    `const float wv = nincc::bf16_to_float(nincc::ld(&${w.name}[row * ${WINDOW} + int(min(j, hi - 1) % ${WINDOW})]));`,
    `if (${live} && j < hi) {`,
    '  v = wv;',
    ...after.map((line) => `  ${line}`),
    '}',
  ];
}
