// The 1×1 bf16 training forward's A operand (bf16 x) through an S-stage cp.async ring with the gather's register plan
// (issue #15, opt-in `trainingAsyncRing`): x's slice k0 + (S−1)·32 is copied global → shared raw while slice k0 is
// converted and multiplied. conv-mma-async-1x1.ts has each thread convert its own copies (8 positions × 8 channels
// of raw values live: 178 registers for bf16 x, i15S); here the copies land raw, a barrier makes every thread's
// visible, and each thread converts the items the gather would (one row, 8 channels of k: 8 values live), reading the
// ring one bf16 at a time with lanes on consecutive positions (64 contiguous bytes a warp: one wavefront). The values
// and their k order are the gather's, so the result is bitwise that of the unpipelined loop.
import { applyPending, type Consts } from './parts.js';
import { BK, stageAcrossRows, type MmaTile } from './conv-mma-tile.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import type { SliceRing } from './conv-mma-slice-ring.js';

const MAX_STAGES = 4;
/** Positions a 16-byte copy holds: 8 bf16. */
const RUN = 8;

/** The ring's shape: `stages` slices of x, each BK channels × the tile's BM positions in bf16. */
interface Bf16Ring {
  readonly stages: number;
  readonly stageBytes: number;
}

/**
 * The ring for a 1×1 stride-1 unpadded forward of bf16 x whose every 16-byte copy lies inside one channel's plane and is
 * 16-byte aligned (P·Q, each image's rows and the tile's rows multiples of 8), with the most stages (2–4) that fit beside
 * the A and B tiles in static shared memory; undefined otherwise (the per-slice gather).
 */
export function bf16Ring(c: Consts<'conv_fwd_fused' | 'conv_infer'>, tile: MmaTile, rows: number, xBf16: boolean, threads: number): SliceRing | undefined {
  const r = bf16RingShape(c, tile, rows, xBf16);
  if (!r) return undefined;
  // Issued last, after the wait's barrier has shown every thread past the last iteration's conversion of that stage.
  return { operand: 'A', stages: r.stages, words: bf16RingWords(r), prologue: bf16RingPrologue(r, c, tile.bm, rows, threads), issue: bf16RingIssue(r, c), issueFirst: false, wait: bf16RingSlice(r, c, tile.bm, rows, threads), drain: [] };
}

function bf16RingShape(c: Consts<'conv_fwd_fused' | 'conv_infer'>, tile: MmaTile, rows: number, xBf16: boolean): Bf16Ring | undefined {
  if (!xBf16 || c.R * c.S !== 1 || c.sh !== 1 || c.sw !== 1 || c.ph !== 0 || c.pw !== 0) return undefined;
  if ((c.P * c.Q) % RUN !== 0 || rows % RUN !== 0 || tile.bm % RUN !== 0) return undefined;
  const stageBytes = BK * tile.bm * 2;
  const tiles = (tile.bm + tile.bn) * BK * 2;
  const stages = Math.min(MAX_STAGES, Math.floor((STATIC_SHARED_BYTES - tiles) / stageBytes));
  return stages >= 2 ? { stages, stageBytes } : undefined;
}

/** report.txt's words. */
const bf16RingWords = (r: Bf16Ring) => `bf16 x copied raw by cp.async into a ${r.stages}-stage ring (${r.stageBytes / 1024} KiB a stage), ${r.stages - 1} slices in flight, converted by the gather's items`;

/** Where channel `ko` (0..31) at tile row `row` of stage `st` lies in the ring (bf16 units). */
const ringAt = (bm: number, st: string, ko: string, row: string) => `((${st}) * ${BK} + (${ko})) * ${bm} + (${row})`;

/** The ring's declaration, the issue lambda and the first S − 1 slices issued (after m0 and n0 are known). */
function bf16RingPrologue(r: Bf16Ring, c: Consts<'conv_fwd_fused' | 'conv_infer'>, bm: number, rows: number, threads: number): string[] {
  const PQ = c.P * c.Q, runs = bm / RUN;
  return [
    `NINCC_SHARED(nincc::bf16, xr, ${r.stages * BK * bm});  // x's ring: ${r.stages} stages × ${BK} channels × ${bm} positions, raw`,
    `// Issue slice kk of x into stage st: ${BK}·${runs} copies of ${RUN} positions, consecutive lanes on consecutive runs of one`,
    '// channel (contiguous in global and shared memory); src-size 0 zero-fills padding rows, images past n and channels past C.',
    'auto issue = [&](int kk, int st) {',
    '  NINCC_UNROLL',
    `  for (int i = t; i < ${BK * runs}; i += ${threads}) {`,
    `    const int ko = i / ${runs}, g = i % ${runs};`,
    `    const long long m = m0 + g * ${RUN};`,
    `    const int img = int(m / ${rows}), pq = int(m % ${rows});`,
    `    const bool in = img < n && pq < ${PQ} && kk + ko < ${c.C};`,
    `    nincc::cp_async_cg(&xr[${ringAt(bm, 'st', 'ko', `g * ${RUN}`)}], in ? x + ((long long)img * ${c.C} + kk + ko) * ${PQ} + pq : x, in ? 16 : 0);`,
    '  }',
    '};',
    'NINCC_UNROLL',
    `for (int s = 0; s < ${r.stages - 1}; ++s) {  // the first ${r.stages - 1} slices in flight; one group each, empty past C`,
    `  if (s * ${BK} < ${c.C}) issue(s * ${BK}, s);`,
    '  nincc::cp_async_commit();',
    '}',
  ];
}

/**
 * The main loop's A staging for slice k0 (iteration `it`): wait for slice k0's group, a barrier (every thread's copies
 * visible), the gather's items converted from the ring into the A tile.
 */
function bf16RingSlice(r: Bf16Ring, c: Consts<'conv_fwd_fused' | 'conv_infer'>, bm: number, rows: number, threads: number): string[] {
  const PQ = c.P * c.Q, S = r.stages;
  return [
    `nincc::cp_async_wait_group<${S - 2}>();  // all but the newest ${S - 2} groups: slice k0 has landed`,
    '__syncthreads();  // every thread\'s copies of it',
    '// Stage A from the ring: rows are output positions (consecutive lanes on consecutive positions), the pending transform applied.',
    ...stageAcrossRows('as', bm, {
      perRow: ['const long long m = m0 + row;', `const int img = int(m / ${rows}), pq = int(m % ${rows});`, `const bool live = img < n && pq < ${PQ};`],
      perElement: [
        'const int ch = k0 + ko;',
        `if (live && ch < ${c.C}) {`,
        `  v = nincc::bf16_to_float(nincc::ld(&xr[${ringAt(bm, `it % ${S}`, 'ko', 'row')}]));`,
        ...applyPending(c, 'v', 'ch').map((s) => `  ${s}`),
        '}',
      ],
    }, threads),
  ];
}

/** Slice k0 + (S−1)·32 issued into the stage the last iteration converted (every thread is past that conversion: the barrier). */
const bf16RingIssue = (r: Bf16Ring, c: Consts<'conv_fwd_fused' | 'conv_infer'>) => [
  `if (k0 + ${(r.stages - 1) * BK} < ${c.C}) issue(k0 + ${(r.stages - 1) * BK}, (it + ${r.stages - 1}) % ${r.stages});`,
  'nincc::cp_async_commit();',
];
