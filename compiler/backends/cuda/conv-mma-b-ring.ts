// B's operand of a bf16 tensor-core main loop through an S-stage cp.async ring (issue #15): the slices of a bf16
// weight copy (conv-weight-bf16.ts: 16-byte chunks already in the staged k order) are copied global → shared
// S − 1 slices ahead of the one multiplied, so their latency overlaps the MMAs of the slices before instead of
// stalling each slice behind its plain loads. B is the operand a k×k tap-major kernel (conv-mma-taps-halo.ts)
// loads every slice: the halo is staged once per R·S slices, but every block re-reads the layer's whole weight
// copy, most of its loaded sectors. A copy needs no registers for its data (the reason i15S's A ring in
// the 1×1 forward, which converts what it copies, doubled their registers): only the ring's extra shared memory.
// Chunk q of a stage holds the chunk the plain staging (stageWeightsBf16) would store at the same swizzled place,
// zero-filled (src-size 0) for rows past B, so the products and their k order are bitwise those of the plain loop.
// Shared by the forward (conv-mma.ts: the k×k convs' and, switch `stemS2dBRing`, the space-to-depth stem's) and the
// data gradient (conv-mma-grad.ts); any loop that stages a bf16 copy per slice may take it.
import { BK, swizzled } from './conv-mma-tile.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import type { KSpan, SliceRing } from './conv-mma-slice-ring.js';

const MAX_STAGES = 4;

/**
 * A slice's live mma k-steps (of its two 16-deep ones) as a C++ expression of the slice's first k, where some slices
 * skip the second (the space-to-depth stem's last channel group: conv-mma-stem-s2d.ts s2dSteps): the skipped k-step's
 * two chunks are never read, so they are not copied (no sector, no shared store), as the plain staging skips them.
 */
export type LiveSteps = (k: string) => string;

/** The ring's shape: `stages` B tiles of `rowsInTile` rows × BK k in bf16 (4 swizzled 16-byte chunks a row), one after another in `bs`. */
interface BRing {
  readonly stages: number;
  readonly rowsInTile: number;
}

/**
 * The ring with the most stages (2–4) that fit beside `otherShared` bytes of the kernel's other shared arrays, for a copy
 * of `rows` rows (B's) and a reduction `depth` deep; undefined where 2 do not.
 */
export function chooseBRing(rowsInTile: number, otherShared: number, rows: number, depth: number, threads: number, span?: KSpan, liveSteps?: LiveSteps): SliceRing | undefined {
  const stages = Math.min(MAX_STAGES, Math.floor((STATIC_SHARED_BYTES - otherShared) / (rowsInTile * BK * 2)));
  if (stages < 2) return undefined;
  const r: BRing = { stages, rowsInTile };
  // A split's range of the reduction (conv-mma-dgrad-splits.ts), else the whole.
  const k = span ?? { lo: '0', hi: `${depth}` };
  // Issued at the loop's top: the last iteration's closing barrier freed the stage; its own barrier follows the wait.
  return { operand: 'B', stages, words: bRingWords(r), prologue: bRingPrologue(r, rows, k, threads, liveSteps), issue: bRingIssue(r, k), wait: [bRingWait(r)], slot: bRingStage(r), drain: ['nincc::cp_async_wait_all();  // the empty groups past the reduction'] };
}

/** The int4 offset in `bs` of the stage slice `it` is multiplied from (a C++ expression). */
const bRingStage = (r: BRing, it = 'it') => `(${it}) % ${r.stages} * ${r.rowsInTile * 4}`;

/** report.txt's words. */
const bRingWords = (r: BRing) => `B staged by cp.async from the bf16 copy in a ${r.stages}-stage ring (${(r.rowsInTile * BK * 2) / 1024} KiB a stage), ${r.stages - 1} slices in flight`;

/**
 * After n0 is known: the issue lambda (slice `kk` of the copy `wb` of `rows` rows into stage `st`, consecutive
 * threads on consecutive chunks as the plain staging) and the first S − 1 slices of the range `k` issued.
 */
function bRingPrologue(r: BRing, rows: number, k: KSpan, threads: number, liveSteps?: LiveSteps): string[] {
  return [
    '// Issue slice kk of B into stage st: 16-byte chunks of the bf16 copy; src-size 0 zero-fills rows past B.',
    'auto issue_b = [&](int kk, int st) {',
    '  NINCC_UNROLL',
    `  for (int q = t; q < ${r.rowsInTile * 4}; q += ${threads}) {`,
    '    const int row = q / 4, chunk = q % 4;',
    ...(liveSteps ? [`    if (chunk >= 2 * ${liveSteps('kk')}) continue;  // a skipped k-step's chunks: never read, not copied`] : []),
    `    const bool in = n0 + row < ${rows};`,
    `    nincc::cp_async_cg(&bs[st * ${r.rowsInTile * 4} + ${swizzled('row', 'chunk')}], in ? reinterpret_cast<const int4*>(wb) + ((long long)(kk / ${BK}) * ${rows} + n0 + row) * 4 + chunk : reinterpret_cast<const int4*>(wb), in ? 16 : 0);`,
    '  }',
    '};',
    'NINCC_UNROLL',
    `for (int s = 0; s < ${r.stages - 1}; ++s) {  // the first ${r.stages - 1} slices in flight; one group each, empty past the reduction`,
    k.lo === '0' ? `  if (s * ${BK} < ${k.hi}) issue_b(s * ${BK}, s);` : `  if (${k.lo} + s * ${BK} < ${k.hi}) issue_b(${k.lo} + s * ${BK}, s);`,
    '  nincc::cp_async_commit();',
    '}',
  ];
}

/**
 * At the top of iteration `it` (slice k0): slice k0 + (S−1)·BK goes in flight into the stage slice k0 − BK was
 * multiplied from (free since the last iteration's closing barrier).
 */
function bRingIssue(r: BRing, k: KSpan): string[] {
  return [
    `if (k0 + ${(r.stages - 1) * BK} < ${k.hi}) issue_b(k0 + ${(r.stages - 1) * BK}, (it + ${r.stages - 1}) % ${r.stages});  // the stage the last iteration multiplied from`,
    'nincc::cp_async_commit();',
  ];
}

/** Before the barrier that precedes the MMAs: this thread's copies of slice k0 have landed (the barrier then makes every thread's visible). */
const bRingWait = (r: BRing) => `nincc::cp_async_wait_group<${r.stages - 1}>();  // all but the newest ${r.stages - 1} groups: slice k0 has landed`;
