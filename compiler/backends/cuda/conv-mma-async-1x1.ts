// The 1×1 bf16 inference forward's A operand (fp32 x) through an S-stage cp.async ring (issue #15): x's slice k0 + (S−1)·32 is
// copied global → shared asynchronously while slice k0 is converted (pending BN/ReLU, bf16, the swizzled A tile)
// and multiplied, so the global latency of x overlaps S − 1 slices of work instead of stalling every slice.
// Each thread converts exactly the copies it issued, so cp.async.wait_group alone (no extra barrier) makes
// them visible to it; the A tile it writes is the one the per-slice gather wrote (the same values in the same
// k order), so the result is bitwise that of the unpipelined loop (ablation `asyncPipeline`).
import { applyPending, type Consts } from './parts.js';
import { BK, packChunk, swizzled, warpM16, type MmaTile } from './conv-mma-tile.js';
import type { SliceRing } from './conv-mma-slice-ring.js';
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';

const MAX_STAGES = 4;

/** The ring's shape: `stages` slices of x, each 32 channels × `groups` 16-byte runs of `positions` consecutive positions. */
interface AsyncRing {
  readonly stages: number;
  readonly positions: number; // positions per 16-byte copy: 4 fp32
  readonly groups: number; // BM / positions
  readonly stageBytes: number;
}

/**
 * The ring for a 1×1 stride-1 unpadded forward whose every 16-byte copy lies inside one channel's plane and is
 * 16-byte aligned (PQ and each image's rows a multiple of the positions a copy holds), and that stays spill-free, with the most stages
 * (2–4) that fit beside the A and B tiles in static shared memory; undefined otherwise (the per-slice gather).
 */
export function asyncRing(c: Consts<'conv_fwd_fused' | 'conv_infer'>, tile: MmaTile, rows: number, xBf16: boolean, threads: number): SliceRing | undefined {
  const r = asyncRingShape(c, tile, rows, xBf16);
  if (!r) return undefined;
  // Issued first, into the stage the last iteration converted; each thread then waits for and converts its own copies (no barrier).
  return { operand: 'A', stages: r.stages, words: asyncRingWords(r), prologue: asyncPrologue(r, c, rows, threads), issue: asyncIssue(r, c), wait: asyncSlice(r, c, rows, threads), drain: [] };
}

function asyncRingShape(c: Consts<'conv_fwd_fused' | 'conv_infer'>, tile: MmaTile, rows: number, xBf16: boolean): AsyncRing | undefined {
  if (c.R * c.S !== 1 || c.sh !== 1 || c.sw !== 1 || c.ph !== 0 || c.pw !== 0) return undefined;
  // Training's bf16 x (runs of 8 positions, 4 stages) took 178 and 234 registers on NIN's 256-thread 1×1 blocks
  // (ptxas sm_90; 102 and 126 without): 1 block an SM rather than 2, so the profile model predicted its forwards 25 % slower (NIN b128
  // H100: 74.0 → 93.8 µs, 71.2 → 89.7; bench/RESULTS.md, i15S). fp32 x on a warp of 64 accumulators (the 128×128
  // tiles' 32×64) spilled 4 bytes on sm_80 and sm_90 (scripts/check-spills.ts). Those keep the gather.
  if (xBf16 || warpM16(tile) * tile.nt * 4 >= 64) return undefined;
  const positions = 4;
  const PQ = c.P * c.Q;
  if (PQ % positions !== 0 || rows % positions !== 0 || tile.bm % (8 * positions) !== 0) return undefined;
  const stageBytes = BK * tile.bm * 4;
  const tiles = (tile.bm + tile.bn) * BK * 2;
  const stages = Math.min(MAX_STAGES, Math.floor((STATIC_SHARED_BYTES - tiles) / stageBytes));
  return stages >= 2 ? { stages, positions, groups: tile.bm / positions, stageBytes } : undefined;
}

/** report.txt's words. */
const asyncRingWords = (r: AsyncRing) => `x staged by cp.async in a ${r.stages}-stage ring (${r.stageBytes / 1024} KiB a stage), ${r.stages - 1} slices in flight`;

/**
 * Where 16-byte run `g` of channel `ko` of stage `st` lies (int4 units). The XOR on bits 1..2 of g by bits
 * 1..2 of ko puts the 8 lanes of a 16-byte phase (4 chunks × 2 groups, below) on 8 distinct bank groups,
 * for the copies' stores and the conversion's loads alike.
 */
const ringAt = (r: AsyncRing, st: string, ko: string) => `((${st}) * ${BK} + (${ko})) * ${r.groups} + (g ^ ((((${ko}) >> 1) & 3) << 1))`;

/** The thread's items: q = 4·g + chunk, g a run of `positions` rows, chunk one of A's 16-byte chunks (8 k offsets). */
const items = (r: AsyncRing, threads: number, rows: number, PQ: number) => [
  'NINCC_UNROLL',
  `for (int q = t; q < ${4 * r.groups}; q += ${threads}) {`,
  '  const int chunk = q % 4, g = q / 4;',
  `  const long long m = m0 + g * ${r.positions};`,
  `  const int img = int(m / ${rows}), pq = int(m % ${rows});`,
  `  const bool live = img < n && pq < ${PQ};  // whole runs: PQ and the rows are multiples of ${r.positions}`,
];

/** A's k offset of element e (0..7) of chunk `chunk`: conv-mma-tile.ts's order across rows. */
const K_OFFSET = '2 * chunk + e / 4 + 8 * (e % 4)';

/** The ring's declaration, the issue lambda and the first S − 1 slices issued (after m0 and n0 are known). */
function asyncPrologue(r: AsyncRing, c: Consts<'conv_fwd_fused' | 'conv_infer'>, rows: number, threads: number): string[] {
  const PQ = c.P * c.Q;
  return [
    `NINCC_SHARED(int4, xr, ${(r.stages * r.stageBytes) / 16});  // x's ring: ${r.stages} stages × ${BK} channels × ${r.groups} runs of ${r.positions} positions`,
    '// Issue slice kk of x into stage st: 8 copies of 16 bytes an item; src-size 0 zero-fills padding rows, images past n and channels past C.',
    'auto issue = [&](int kk, int st) {',
    ...items(r, threads, rows, PQ).map((s) => `  ${s}`),
    '    NINCC_UNROLL',
    '    for (int e = 0; e < 8; ++e) {',
    `      const int ko = ${K_OFFSET}, ch = kk + ko;`,
    `      const bool in = live && ch < ${c.C};`,
    `      nincc::cp_async_cg(&xr[${ringAt(r, 'st', 'ko')}], in ? x + ((long long)img * ${c.C} + ch) * ${PQ} + pq : x, in ? 16 : 0);`,
    '    }',
    '  }',
    '};',
    'NINCC_UNROLL',
    `for (int s = 0; s < ${r.stages - 1}; ++s) {  // the first ${r.stages - 1} slices in flight; one group each, empty past K`,
    `  if (s * ${BK} < ${c.C}) issue(s * ${BK}, s);`,
    '  nincc::cp_async_commit();',
    '}',
  ];
}

/** The main loop's A staging for slice k0 (iteration `it`) opens with slice k0 + (S−1)·32 issued into the stage the last iteration freed. */
const asyncIssue = (r: AsyncRing, c: Consts<'conv_fwd_fused' | 'conv_infer'>) => [
  `// Stage A from the ring: slice k0 + ${r.stages - 1}·${BK} goes in flight, then slice k0 (this thread's own copies) is waited for and converted.`,
  `if (k0 + ${(r.stages - 1) * BK} < ${c.C}) issue(k0 + ${(r.stages - 1) * BK}, (it + ${r.stages - 1}) % ${r.stages});  // the stage the last iteration converted`,
  'nincc::cp_async_commit();',
];

/** Then waits until slice k0's group has landed and converts it into the swizzled A tile `as`. */
function asyncSlice(r: AsyncRing, c: Consts<'conv_fwd_fused' | 'conv_infer'>, rows: number, threads: number): string[] {
  const PQ = c.P * c.Q, E = r.positions, S = r.stages;
  const unpack = [`    const float4 f = nincc::load_float4(reinterpret_cast<const float*>(&xr[${ringAt(r, 'it % ' + S, 'ko')}]));`, '    raw[e][0] = f.x; raw[e][1] = f.y; raw[e][2] = f.z; raw[e][3] = f.w;'];
  return [
    `nincc::cp_async_wait_group<${S - 1}>();  // all but the newest ${S - 1} groups: slice k0 has landed`,
    ...items(r, threads, rows, PQ),
    `  float raw[8][${E}];  // element e of the chunk (channel k0 + ko) at the run's ${E} positions, the pending transform applied`,
    '  NINCC_UNROLL',
    '  for (int e = 0; e < 8; ++e) {',
    `    const int ko = ${K_OFFSET}, ch = k0 + ko;`,
    ...unpack,
    '    NINCC_UNROLL',
    `    for (int p = 0; p < ${E}; ++p) {`,
    '      float v = 0.0f;',
    `      if (live && ch < ${c.C}) {  // padding stays 0, as in the gather`,
    '        v = raw[e][p];',
    ...applyPending(c, 'v', 'ch').map((s) => `        ${s}`),
    '      }',
    '      raw[e][p] = v;',
    '    }',
    '  }',
    '  // Odd runs write their positions pair-swapped, so a 16-byte store phase (8 lanes) reaches 8 bank groups.',
    '  const bool odd = (g & 1) != 0;',
    '  NINCC_UNROLL',
    `  for (int p = 0; p < ${E}; ++p) {`,
    '    float vs[8];',
    '    NINCC_UNROLL',
    '    for (int e = 0; e < 8; ++e) vs[e] = odd ? raw[e][p ^ 1] : raw[e][p];',
    `    const int row = g * ${E} + (p ^ int(odd));`,
    `    ${packChunk(`as[${swizzled('row', 'chunk')}]`)}`,
    '  }',
    '}',
  ];
}
