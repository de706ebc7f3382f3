// The tap-major halo (conv-mma-taps-halo.ts) staged from whole sectors: its staging gives a lane one position
// and 8 channels (one 16-byte chunk), so a load instruction reads 32 consecutive padded positions of one
// plane — on NIN's 28-, 14- and 7-wide rows a run of 26…56 bytes that starts anywhere in a sector and
// shares its end sectors with the next instruction's run (k31's data gradient: +15% load sectors over those its
// bytes need, bench/logs/i15M-profile-nin-h100-b128-bf16-uniform.out). Here each group's source is read in
// runs that start on a sector: per image, the block's live positions of the group's 32 planes — the 32
// planes as one contiguous run where the whole image is live (NCHW: they are consecutive), else each
// plane's positions as its own run from the sector holding its first — consecutive lanes on consecutive
// elements, into B's tile (free until the slice's B staging), then a barrier, and from there into the halo as
// before: a lane reads its position's 8 channels (consecutive lanes, consecutive elements of one plane:
// one wavefront), applies the pending transform and writes one 16-byte chunk. The halo's padding is zeroed
// once per block; only live positions are written after. Same values in the same places: bitwise the
// staging it replaces (test/emu-conv-mma-taps-runs.test.ts). An opt-in (`tapsRuns: true`): NIN's loads reach full
// coalescing, but the pass through B's tile adds shared wavefronts to shared-bound kernels (bench/RESULTS.md, i15M).
//
// Every loop gives every lane of a warp the same trip count (lanes past a run load a live element of it
// and write a slot nothing reads): the emulator's profile pairs a warp's k-th executions of a site, and
// a GPU runs the tail as one predicated instruction either way.
import { swizzled } from './conv-mma-tile.js';
import { TAPS_GROUP, type TapsPlan } from './conv-mma-taps-halo.js';
import { isOptedIn, type Ablations } from '../../ablations.js';

const SECTOR = 32;

/** How a layer's runs fit B's tile: elements of `bytes`, `perSector` a sector, a plane's run at most `rowPitch` of them. */
export interface TapsRuns {
  readonly bytes: 2 | 4;
  readonly perSector: number;
  readonly rowPitch: number; // raw elements a plane's run may take: a whole number of sectors
  readonly positions: number; // the most positions of a plane one round stages: rowPitch less a sector's lead-in
  readonly whole: boolean; // an image's 32 planes fit B's tile as one run
}

/**
 * The runs of a tap-major halo whose source elements are `bytes` wide, staged through B's tile of `bShared`
 * bytes; undefined unless the build opts in (`tapsRuns: true`: compiler/ablations.ts OPT_INS says why), the halo's 16-byte stores would conflict (a padded row pitch not ≡ the source's
 * row width mod 8: consecutive positions across a row break then miss distinct bank groups) or a run
 * would not fit.
 */
export function tapsRuns(p: TapsPlan, bShared: number, bytes: 2 | 4, ablations: Ablations | undefined): TapsRuns | undefined {
  const c = p.view;
  if (!isOptedIn(ablations, 'tapsRuns') || (p.geometry.pitchW - c.srcW) % 8 !== 0) return undefined;
  const perSector = SECTOR / bytes, capacity = bShared / bytes;
  const rowPitch = Math.floor(capacity / TAPS_GROUP / perSector) * perSector;
  const positions = rowPitch - perSector + 1;
  if (positions < 1) return undefined;
  // The whole image's run is loaded in whole warps of 16-byte units.
  return { bytes, perSector, rowPitch, positions, whole: Math.ceil((TAPS_GROUP * c.srcH * c.srcW * bytes) / 16 / 32) * 32 * 16 <= bShared };
}

/** The flat source index f = image·HW + position of Z index `z` clamped to a live one: the first at or after it (`first`), else the last at or before. */
function liveAt(p: TapsPlan, z: string, first: boolean): string[] {
  const { view: c, geometry: g } = p;
  const hw = c.srcH * c.srcW;
  const within = first
    ? `sp < 0 ? 0 : sp >= ${c.srcH} ? ${hw} : su < 0 ? sp * ${c.srcW} : su >= ${c.srcW} ? (sp + 1) * ${c.srcW} : sp * ${c.srcW} + su`
    : `sp < 0 ? -1 : sp >= ${c.srcH} ? ${hw - 1} : su < 0 ? sp * ${c.srcW} - 1 : su >= ${c.srcW} ? sp * ${c.srcW} + ${c.srcW - 1} : sp * ${c.srcW} + su`;
  return [
    '{',
    `  const long long z = ${z};`,
    `  const int img = int(z / ${g.pitchImage}), i = int(z % ${g.pitchImage}) / ${g.pitchW}, j = int(z % ${g.pitchImage}) % ${g.pitchW};`,
    `  const int sp = i - ${c.oh}, su = j - ${c.ow};`,
    `  ${first ? 'f_lo' : 'f_hi'} = (long long)img * ${hw} + (${within});`,
    '}',
  ];
}

/** After tapsPrologue: the halo zeroed (its padding stays so) and the block's live source range [f_lo, f_hi]. */
export function tapsRunsPrologue(p: TapsPlan, threads: number): string[] {
  const { view: c, geometry: g } = p;
  return [
    '// The runs write live positions only: zero the halo once, so that its padding and images past the batch read 0.',
    'NINCC_UNROLL_BY(4)',
    `for (int q = t; q < ${g.window * 4}; q += ${threads}) nincc::st(&taps_halo[q], int4{0, 0, 0, 0});`,
    '__syncthreads();',
    '// The live source positions the window reaches, as f = image·HW + position: one range, since Z rises with f.',
    'long long f_lo, f_hi;',
    ...liveAt(p, 'halo_start', true),
    ...liveAt(p, `halo_start + ${g.window - 1}`, false),
    `f_hi = min(f_hi, (long long)n * ${c.srcH * c.srcW} - 1);`,
  ];
}

/**
 * At the first slice of each group: the group's 32 planes over [f_lo, f_hi], round by round (one image's
 * positions, at most `positions` of them unless the image is whole), through B's tile `bs` into the halo.
 * `src` is the source buffer (`bytes` wide: bf16 or fp32), `transform` the pending transform of `float v` of
 * channel `ch`, `perChannel` run per element before it (as stageTapsHalo's).
 */
export function stageTapsRuns(p: TapsPlan, r: TapsRuns, threads: number, src: string, transform: (ch: string) => string[], perChannel: (ch: string) => string[]): string[] {
  const { view: c, geometry: g } = p;
  const RS = c.R * c.S, hw = c.srcH * c.srcW, se = r.perSector;
  const raw = r.bytes === 2 ? 'nincc::bf16' : 'float';
  // 16-byte units: the runs start on a sector and the arena's buffers on 64 bytes (lower/memory.ts), a tensor of
  // 32-channel groups ends on one, so no unit crosses its end.
  const vec = 16 / r.bytes, wholeUnits = Math.ceil((TAPS_GROUP * hw) / vec / 32) * 32;
  const toFloat = (x: string) => (r.bytes === 2 ? `nincc::bf16_to_float(${x})` : x);
  // Where channel ko's position `p` sits in the raw run: one run of the 32 planes (plane c0 of an image starts on
  // a sector: the channels and c0 are multiples of 32), or a run per plane of row_pitch elements from the sector
  // holding its position pa.
  const rawAt = (ko: string) => `(whole ? ${ko} * ${hw} : ${ko} * row_pitch + int((plane0 + (long long)${ko} * ${hw} + pa) % ${se}) - pa) + p`;
  const element = (e: number) => [
    `      {  // element ${e}`,
    `        const int ko = 2 * chunk + ${Math.floor(e / 4)} + ${8 * (e % 4)};`,
    ...perChannel('c0 + ko').map((s) => `        ${s}`),
    `        float v = ${toFloat(`nincc::ld(&raw[${rawAt('ko')}])`)};`,
    ...transform('(c0 + ko)').map((s) => `        ${s}`),
    `        vs[${e}] = v;`,
    '      }',
  ];
  return [
    `if (k0 % ${TAPS_GROUP * RS} == 0) {`,
    `  // Stage the halo: channels k0 / ${RS} … + ${TAPS_GROUP - 1} from sector-aligned runs of their planes, through B's tile, channels innermost, rounded to bf16 once.`,
    `  const int c0 = k0 / ${RS};`,
    `  ${raw}* const raw = reinterpret_cast<${raw}*>(&bs[0]);  // B's tile: its last reads ended at the previous slice's closing barrier`,
    '  for (long long f = f_lo; f <= f_hi;) {',
    `    const int img = int(f / ${hw}), pa = int(f % ${hw}), pb = int(min(f_hi - (long long)img * ${hw}, ${hw - 1}LL));`,
    `    const bool whole = ${r.whole ? `pa == 0 && pb == ${hw - 1}` : 'false'};  // the image's 32 planes as one run`,
    `    const int len = whole ? ${hw} : min(${r.positions}, pb - pa + 1);`,
    `    const long long plane0 = ((long long)img * ${c.channels} + c0) * ${hw};  // plane c0 of image img`,
    `    const int row_pitch = (len + ${2 * se - 2}) / ${se} * ${se};  // a plane's run: len from any place in a sector, whole sectors`,
    `    const int units = row_pitch / ${vec};  // 16-byte units of a plane's run`,
    `    const int count = whole ? ${wholeUnits} : ${TAPS_GROUP} * units;`,
    `    for (int q = t; q < count; q += ${threads}) {  // unit q of the raw run: ${vec} elements, one 16-byte load`,
    '      long long at;  // its first element, clamped into the run (a unit past it loads a live one into a slot nothing reads)',
    `      if (whole) at = min(plane0 + (long long)q * ${vec}, plane0 + ${TAPS_GROUP * hw - vec});`,
    '      else {',
    `        const long long first = plane0 + (long long)(q / units) * ${hw} + pa, last = first + len - 1;`,
    `        at = min(max(first - first % ${se} + (long long)(q % units) * ${vec}, first - first % ${vec}), last - last % ${vec});`,
    '      }',
    `      nincc::st(reinterpret_cast<int4*>(raw) + q, nincc::ld(reinterpret_cast<const int4*>(${src}) + at / ${vec}));`,
    '    }',
    '    __syncthreads();',
    '    const int span = (len + 31) / 32 * 32;  // positions padded to whole warps: every lane takes a turn, the padding repeats the last',
    `    for (int q = t; q < span * 4; q += ${threads}) {`,
    '      const int p = pa + min(q % span, len - 1), chunk = q / span;',
    `      const int z = int((long long)img * ${g.pitchImage} + (p / ${c.srcW} + ${c.oh}) * ${g.pitchW} + p % ${c.srcW} + ${c.ow} - halo_start);`,
    '      float vs[8];',
    ...Array.from({ length: 8 }, (_, e) => element(e)).flat(),
    `      nincc::st(&taps_halo[${swizzled('z', 'chunk')}], int4{int(nincc::to_bf16x2(vs[1], vs[0])), int(nincc::to_bf16x2(vs[3], vs[2])), int(nincc::to_bf16x2(vs[5], vs[4])), int(nincc::to_bf16x2(vs[7], vs[6]))});`,
    '    }',
    '    __syncthreads();  // the halo is ready, or B\'s tile free for the next round',
    '    f += len;',
    '  }',
    '}',
  ];
}

/** report.txt's words. */
export const tapsRunsWords = (r: TapsRuns) =>
  `the halo read in sector-aligned runs of its planes (${r.whole ? "a whole image's 32 planes as one" : `at most ${r.positions} positions of a plane`}) through B's tile`;
