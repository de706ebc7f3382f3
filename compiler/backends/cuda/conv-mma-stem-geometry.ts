// The geometry of the few-channels stem's shared band (conv-mma-stem-band.ts says what the band is): the padded
// planes Z, a GEMM row's base in them, and the window of Z a block's rows and taps reach, for a given row pitch.
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { BK, type MmaTile } from './conv-mma-tile.js';

/** The most input channels the band path stages all at once: the few-channel stems (RGB, RGBA). */
export const STEM_MAX_CHANNELS = 4;

/** A strided k×k conv's shape, as the forward's constants give it. */
export interface StemConv {
  readonly C: number;
  readonly H: number;
  readonly W: number;
  readonly P: number;
  readonly Q: number;
  readonly R: number;
  readonly S: number;
  readonly sh: number;
  readonly sw: number;
  readonly ph: number;
  readonly pw: number;
}

export interface StemBand {
  readonly rows: number; // GEMM rows per image (P·Q, padded to 32-row statistics tiles, or to whole blocks)
  readonly zw: number; // ZW: the row pitch of a padded plane (at least its (Q − 1)·sw + S columns)
  readonly zhw: number; // ZHW: Z elements per image
  readonly window: number; // Z elements a block's rows and taps reach, the most over the grid's blocks
  readonly bytes: number; // the band's shared memory: C × window bf16
}

/** Whether a conv is a few-channels strided stem the band path may take (and would gain from: R·S > 1 taps overlap across positions). */
export const isStem = (c: Pick<StemConv, 'C' | 'R' | 'S' | 'sh' | 'sw'>) => c.C <= STEM_MAX_CHANNELS && c.R * c.S > 1 && (c.sh > 1 || c.sw > 1);

/** Base Z index of GEMM row m, as the kernel computes it (bandBase). */
export function stemBase(m: number, rows: number, c: StemConv, zw: number, zhw: number): number {
  const img = Math.floor(m / rows);
  const pos = Math.min(m % rows, c.P * c.Q - 1);
  return img * zhw + Math.floor(pos / c.Q) * c.sh * zw + (pos % c.Q) * c.sw;
}

/** The narrowest row pitch of Z: a padded output row's columns. */
export const leastPitch = (c: StemConv) => (c.Q - 1) * c.sw + c.S;

/**
 * The band of a stem with tile `tile` over `maxBatch` images of `rows` GEMM rows each, Z's rows `zw` ≥ leastPitch
 * apart (columns past the padded row are zero and never read), or undefined where the band, the operand tiles and
 * `otherShared` bytes would pass the static shared-memory limit.
 */
export function bandWith(c: StemConv, tile: MmaTile, rows: number, maxBatch: number, zw: number, otherShared: number): StemBand | undefined {
  const zhw = ((c.P - 1) * c.sh + c.R) * zw;
  const reach = (c.R - 1) * zw + c.S - 1;
  let window = 0;
  for (let m0 = 0; m0 < maxBatch * rows; m0 += tile.bm) {
    window = Math.max(window, stemBase(m0 + tile.bm - 1, rows, c, zw, zhw) - stemBase(m0, rows, c, zw, zhw) + reach + 1);
  }
  const bytes = c.C * window * 2;
  const operands = (tile.bm + tile.bn) * BK * 2;
  return operands + otherShared + bytes <= STATIC_SHARED_BYTES ? { rows, zw, zhw, window, bytes } : undefined;
}

