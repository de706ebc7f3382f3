// A weight gradient's plain bf16 dY' (B) through an S-stage cp.async ring (issue #15): each stage holds one slice's
// window of the block's BN channel rows, the slice's 32 positions widened to whole copies of `chunk` positions
// (16, 8 or 4 bytes), so slice j0 + (S−1)·32 is copied global → shared while slice j0 is staged and multiplied, and
// the load → barrier → compute loop no longer waits on dY''s global latency. A chunk never crosses a plane (P·Q is a
// multiple of the chunk, so position j and dY''s element of j share their residue mod the chunk: every copy is aligned,
// past the split or K's channels a zero fill). B is then staged from the window along positions where it read global
// memory (conv-mma-wgrad-coalesced-staging.ts): the same bf16 values, the same k order and bias sums, so the result is
// bitwise that of `wgradAsyncRing: false`. Stage it % S is made visible by the wait at the end of iteration it − 1 and
// the barrier that already closes it; stage (it + S − 1) % S, refilled at the start of iteration it, was last read
// before that barrier. The copies' stores are consecutive 16-byte runs and a row's 32 reads 64 contiguous bytes:
// conflict-free. Where two stages do not fit beside the kernel's static shared memory (the k×k weight gradients' input
// halos), the ring may take dynamic shared memory instead (`dynamic`: the launch asks for its bytes, above 48 KiB a
// block where need be; the runtime raises the kernel's limit, runtime/core/cuda_device.cc). docs/design.md §4.1.
import { BK } from './conv-mma-tile.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';

export const MAX_STAGES = 4;
/** The most shared memory, static and dynamic, a block may have on every arch the kernels compile for (sm_80: 163 KiB; sm_90: 227 KiB). */
export const BLOCK_SHARED_BYTES = 163 * 1024;

/** The ring: `stages` windows of `rows` rows, each `window` positions copied `chunk` positions (bf16) at a time. */
export interface AsyncRing {
  readonly stages: number;
  readonly rows: number;
  readonly chunk: number; // positions a copy: 8, 4 or 2 (16, 8 or 4 bytes)
  readonly window: number; // BK + chunk: a slice's positions from the chunk holding its first
  readonly dynamic?: true; // in the launch's dynamic shared memory (asyncRingBytes of it), not a static declaration
}

export const asyncRingStageBytes = (r: AsyncRing) => r.rows * r.window * 2;
export const asyncRingBytes = (r: AsyncRing) => r.stages * asyncRingStageBytes(r);
/** The launch's dynamic shared memory: the ring's bytes where it lives there. */
export const asyncRingDynamicBytes = (r: AsyncRing | undefined) => (r?.dynamic ? asyncRingBytes(r) : 0);

/**
 * The ring for B rows of a plain bf16 dY' on planes of `positions` (P·Q), beside `besideBytes` of static shared memory:
 * the widest chunk dividing the plane (a copy stays in one plane and aligned) and the most stages (2–4) that fit in
 * static shared memory; else, with `dynamic`, all 4 stages in dynamic shared memory where they and 48 KiB of static
 * stay within BLOCK_SHARED_BYTES. Undefined where no chunk of at least 4 bytes divides the plane (NIN's 7×7: conv-mma-wgrad-async-image-ring.ts)
 * or no ring fits.
 */
export function chooseAsyncRing(positions: number, rows: number, besideBytes: number, dynamic = false): AsyncRing | undefined {
  const chunk = [8, 4, 2].find((c) => positions % c === 0);
  if (!chunk) return undefined;
  const window = BK + chunk, stageBytes = rows * window * 2;
  const stages = Math.min(MAX_STAGES, Math.floor((STATIC_SHARED_BYTES - besideBytes) / stageBytes));
  if (stages >= 2) return { stages, rows, chunk, window };
  // Beside static shared memory of at most 48 KiB, whatever the kernel declares besides what `besideBytes` counts.
  return dynamic && STATIC_SHARED_BYTES + MAX_STAGES * stageBytes <= BLOCK_SHARED_BYTES ? { stages: MAX_STAGES, rows, chunk, window, dynamic: true } : undefined;
}

/** report.txt's words; `use`: how B is taken from the ring. */
export const asyncRingWords = (r: AsyncRing, use = 'B staged from there') =>
  `dY' copied by cp.async (${r.chunk * 2}-byte chunks) into a ${r.stages}-stage ring of slice windows (${asyncRingStageBytes(r)} B a stage${r.dynamic ? ', in dynamic shared memory' : ''}), ${r.stages - 1} slices in flight, ${use}`;

const copy = (r: AsyncRing) => (r.chunk === 8 ? 'nincc::cp_async_cg' : `nincc::cp_async_ca<${r.chunk * 2}>`);

/**
 * The ring's declaration, the issue lambda (slice jj into stage st: every thread the same number of copies, a spare
 * repeating the last, as the emulator pairs a lane's k-th access with its neighbours'), and the first S − 1 slices
 * issued, one group each (empty past hi), the first waited for (the loop's first barrier comes after its B staging).
 * `aligned`: every slice starts on a 16-byte chunk (conv-mma-wgrad-ring-fragments.ts), so a window's last chunk is never read and
 * not copied, and an 8-lane phase of the 16-byte copies takes two rows 4 apart (320 bytes: their words 16 banks apart), where
 * rows r and r + 1 (80 bytes apart) would share 4 banks; 8-byte copies (4-position chunks in 80-byte windows,
 * conv-mma-wgrad-taps-ring.ts) likewise, a 16-lane phase two rows 4 apart, 8 chunks each.
 */
export function asyncRingPrologue(r: AsyncRing, K: number, positions: number, threads: number, aligned = false): string[] {
  const per = (aligned ? BK : r.window) / r.chunk, items = r.rows * per, rounds = Math.ceil(items / threads) * threads;
  return [
    r.dynamic
      ? `NINCC_DYNAMIC_SHARED(nincc::bf16, bring);  // dY''s ring, the launch's ${asyncRingBytes(r)} B: ${r.stages} stages × ${r.rows} rows × ${r.window} positions`
      : `NINCC_SHARED(nincc::bf16, bring, ${r.stages * r.rows * r.window});  // dY''s ring: ${r.stages} stages × ${r.rows} rows × ${r.window} positions`,
    `auto issue = [&](long long jj, int st) {  // the window of slice jj: positions from jj's chunk on`,
    `  const long long base = jj - jj % ${r.chunk};`,
    `  for (int i = t; i < ${rounds}; i += ${threads}) {`,
    aligned && r.chunk === 4
      ? `    const int q = min(i, ${items - 1}), l = q % 32, b = q / 32, row = b / 2 * 8 + b % 2 * 2 + l / 16 + l % 16 / 8 * 4, c = l % 8;  // 32 copies: 4 rows × 8 chunks, a 16-lane phase rows 4 apart`
      : aligned
      ? `    const int q = min(i, ${items - 1}), l = q % 32, row = q / 32 * 8 + l % 8 / 4 * 4 + l / 8, c = l % 4;  // 32 copies: 8 rows × 4 chunks`
      : `    const int q = min(i, ${items - 1}), row = q / ${per}, c = q % ${per};`,
    `    const long long jc = base + c * ${r.chunk};`,
    `    const bool in = n0 + row < ${K} && jc < hi;  // else a zero fill (positions past the split are never read)`,
    `    const long long at = in ? (jc / ${positions} * ${K} + n0 + row) * ${positions} + jc % ${positions} : 0;`,
    `    ${copy(r)}(&bring[(st * ${r.rows} + row) * ${r.window} + c * ${r.chunk}], g + at, in ? ${r.chunk * 2} : 0);`,
    '  }',
    '};',
    'NINCC_UNROLL',
    `for (int s = 0; s < ${r.stages - 1}; ++s) {  // the first ${r.stages - 1} slices in flight`,
    `  if (lo + s * ${BK} < hi) issue(lo + s * ${BK}, s);`,
    '  nincc::cp_async_commit();',
    '}',
    `nincc::cp_async_wait_group<${r.stages - 2}>();  // the first slice has landed`,
    '__syncthreads();',
  ];
}

/** At the start of iteration `it` (slice j0): slice j0 + (S−1)·32 in flight, into the stage iteration it − 1 read. */
export function asyncRingIssue(r: AsyncRing): string[] {
  return [
    `if (j0 + ${(r.stages - 1) * BK} < hi) issue(j0 + ${(r.stages - 1) * BK}, int((it + ${r.stages - 1}) % ${r.stages}));`,
    'nincc::cp_async_commit();',
  ];
}

/** Before iteration it's closing barrier: slice it + 1 has landed (its group is S − 1 from the newest). */
export const asyncRingLand = (r: AsyncRing) => [`nincc::cp_async_wait_group<${r.stages - 2}>();  // the next slice's window has landed (the barrier below shows it to all)`];

/** B's element for slice offset `ko` of row `row` (channel `kout`) from stage it % S: stageAlongPositions' perElement. */
export function asyncRingElement(r: AsyncRing, K: number): string[] {
  return [
    'const long long j = j0 + ko, jr = min(j, hi - 1);  // every lane reads (past hi: the split\'s last position, in the window)',
    `const float rv = nincc::bf16_to_float(nincc::ld(&bring[(int(it % ${r.stages}) * ${r.rows} + row) * ${r.window} + int(jr - (j0 - j0 % ${r.chunk}))]));`,
    `if (kout < ${K} && j < hi) v = rv;`,
  ];
}
