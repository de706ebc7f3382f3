// Which cpu inference blocks (k×k conv → 1x1 → 1x1 → max pool, or no pool) run as one region in bands of output rows
// (runtime/include/nincc/cpu/block_band.h, issue #19). Below as many images as threads, each layer splitting its
// work its own way moves about half of the block's activations between the cores at each layer boundary; nin-fashion
// at batch 1 on 2 threads loses ≈ 24 µs a call to it (bench/RESULTS.md i19J). A band keeps them in one core, at the
// price of the conv rows two bands' pool windows share, computed by both. The region pays where the block's middle
// activations at batch 1 fit one core's L2 (else they leave the core anyway) and the shared rows are few.
import type { OpConsts } from '../lower/ops.js';
import type { Program } from '../lower/program-ir.js';
import { chooseConvAlgorithm, type ConvConsts, outputTileRows } from './cpu-conv-algorithm.js';

/**
 * A core's L2, the smaller of current x86 server cores' (Zen 2/3, Skylake-SP and later Xeons: 512 KiB to 2 MiB; the VM
 * here does not report its own): a band's middle activations stay in the core below it.
 */
export const bandL2Bytes = 512 << 10;
/**
 * The most of the block's conv rows recomputed (the bands' shared rows, at 2 threads) the region takes: a fifth, under
 * the share of nin-fashion's 2-thread call lost to activations crossing the cores (≈ 24 of 104 µs, bench/RESULTS.md i19J).
 */
export const maxSharedRowsFraction = 1 / 5;

export interface MaxPoolWindow {
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly P: number;
  readonly R: number;
  readonly sh: number;
  readonly ph: number;
  readonly ceil?: boolean;
}

export interface BlockBandChoice {
  readonly fuse: boolean;
  readonly why: string;
}

/**
 * The conv rows that `bands` bands compute, over the plane's rows, less one: the share recomputed. A band computes the
 * rows its pool windows read, widened to whole tiles of `tileRows` (Winograd's output tiles; block_band.h whole_tiles).
 */
export function sharedRowsFraction(pool: MaxPoolWindow, tileRows = 1, bands = 2): number {
  let computed = 0;
  for (let b = 0; b < bands; b++) {
    // The first bands the longer (block_band.h band).
    const [begin, end] = [Math.ceil((pool.P * b) / bands), Math.ceil((pool.P * (b + 1)) / bands)];
    if (end <= begin) continue;
    const first = Math.max(0, begin * pool.sh - pool.ph), last = (end - 1) * pool.sh - pool.ph + pool.R;
    computed += Math.min(pool.H, Math.ceil(last / tileRows) * tileRows) - Math.floor(first / tileRows) * tileRows;
  }
  return computed / pool.H - 1;
}

/**
 * Whether a block whose k×k conv is `conv` (BN folded, ReLU), read only by two 1x1 convs K -> K (the same) and a max
 * pool `pool` over its output (no pool: a 1x1 window of stride 1), runs as one banded region. `on` false: the ablation
 * cpuBlockBands.
 */
export function chooseBlockBands(conv: ConvConsts, pool: MaxPoolWindow, on: boolean): BlockBandChoice {
  if (!on) return { fuse: false, why: 'the ablation cpuBlockBands is off' };
  // Without a pool the bands keep only the conv → pair boundary in one core (the next layer reads both bands), and
  // split the conv by rows, not by the even pixel chunks of its own kernel.
  if (pool.R === 1 && pool.sh === 1)
    return { fuse: false, why: 'it has no max pool: nin-fashion\'s third block in bands measured slower at batch 1 on 2 threads (140.9 against 135.3 µs a call, bench/RESULTS.md i19K)' };
  if (pool.ceil || pool.ph >= pool.R) return { fuse: false, why: 'its max pool has ceil-mode windows or padding as wide as its window' };
  const middle = conv.K * pool.H * pool.W * 4;
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  if (middle > bandL2Bytes) return { fuse: false, why: `its middle activations at batch 1 (${kib(middle)}) outgrow a core's L2 (${kib(bandL2Bytes)})` };
  const shared = sharedRowsFraction(pool, outputTileRows(chooseConvAlgorithm(conv).algorithm));
  const pct = (f: number) => `${(100 * f).toFixed(1)} %`;
  if (shared > maxSharedRowsFraction) return { fuse: false, why: `2 bands recompute ${pct(shared)} of its conv rows, over ${pct(maxSharedRowsFraction)}` };
  return { fuse: true, why: `its middle activations at batch 1 (${kib(middle)}) fit a core's L2 (${kib(bandL2Bytes)}) and 2 bands recompute ${pct(shared)} of its conv rows (at most ${pct(maxSharedRowsFraction)})` };
}

/** The block's three convs and its pool as a region step's constants hold them (lower/infer.ts). */
export function blockConvs(c: OpConsts['block_band_infer']): { readonly convs: readonly [ConvConsts, ConvConsts, ConvConsts]; readonly pool: MaxPoolWindow } {
  const bounds = { ...(c.maxBatch !== undefined && { maxBatch: c.maxBatch }), ...(c.l3Bytes !== undefined && { l3Bytes: c.l3Bytes }) };
  const pointwise = { C: c.K, H: c.P, W: c.Q, K: c.K, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0, ...bounds };
  const first = { C: c.C, H: c.H, W: c.W, K: c.K, R: c.R, S: c.S, sh: c.sh, sw: c.sw, ph: c.ph, pw: c.pw, ...bounds };
  return { convs: [first, pointwise, pointwise], pool: { C: c.K, H: c.P, W: c.Q, P: c.MP, R: c.mR, sh: c.msh, ph: c.mph } };
}

/** report.txt's lines on the inference program's block regions, with why each was chosen. */
export function blockBandReport(programs: readonly Program[]): string[] {
  const steps = programs.filter((p) => p.name === 'infer').flatMap((p) => p.steps);
  const lines = steps.flatMap((s) => {
    if (s.op !== 'block_band_infer') return [];
    const { convs, pool } = blockConvs(s.consts);
    const pooled = pool.R !== 1 || pool.sh !== 1;
    return [`  ${s.kernel}: a ${s.consts.R}x${s.consts.S} conv, two 1x1 convs${pooled ? ' and a max pool' : ''} in bands of output rows, one a thread below as many images as threads (the layers one after the other from there); ${chooseBlockBands(convs[0], pool, true).why}.`];
  });
  return lines.length === 0 ? [] : ['CPU inference block regions (runtime/include/nincc/cpu/block_band.h; the ablation cpuBlockBands turns them off):', ...lines];
}
