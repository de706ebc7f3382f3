// The input halo of a few-channels strided stem's weight gradient (NIN's 11×11/4 on 3 channels): the k×k
// wgrad halo (conv-mma-wgrad-halo.ts) with a row pitch and an exact plane residue of its own, and a byte limit
// of what static shared memory the operand tiles leave (the gather it replaces was L2-bound: NIN's stem read
// each input element ~R·S/(sh·sw) ≈ 7.6 times per row tile through L2). A warp's A instruction reads 4
// consecutive taps × 8 positions; at stride 4 the 8 lanes are 2 words apart, so 4 taps of one kernel row
// fill 16 consecutive banks, and a group whose last tap starts the next kernel row (or channel) is free only
// where that row's (plane's) offset puts its 8 words in the other 16 banks. The stride-1 search
// (conv-mma-wgrad-halo-banks.ts) finds no conflict-free layout for NIN's stem at its 8 narrowest pitches (a group that
// also crosses an output row needs a third placement); where it finds none, the rows are pitched ≡ S − 3 + 32 and
// the planes ≡ (R − 1)·pitch + S − 3 + 32 (mod 64), which serves the kernel-row and channel crossings: the emulator
// counts 0 conflicts for NIN b128's stem (bench/logs/i15B-profile-stem-h100-b128-bf16.out), where the per-tap gather
// was L2-bound (84.08M → 48.40M sectors, 269.5 → 156.9 µs).
// A's values are still those of the gather (bitwise). docs/design.md §4.1 "Stem band".
import { STATIC_SHARED_BYTES } from './conv-mma-halo.js';
import { BK, type MmaTile } from './conv-mma-tile.js';
import { isStem } from './conv-mma-stem-geometry.js';
import { HALO_POSITIONS, chooseHaloSpan, stagedPerPosition } from './conv-mma-wgrad-halo-span.js';
import { haloSize, paddedColumns, paddedRows, type Geometry, type Halo, type HaloLayout } from './conv-mma-wgrad-halo.js';
import type { StemPitch } from './conv-mma-wgrad-halo-banks.js';
import { isOn, type Ablations } from '../../ablations.js';

/** Row pitches the conflict-free search tries past the padded row. */
const PITCHES = 8;

/** The static shared memory a halo may take beside tile `tile`'s operand tiles. */
const haloBytesBeside = (tile: MmaTile) => STATIC_SHARED_BYTES - (tile.bm + tile.bn) * BK * 2;

/** The conflict-free halo (chooseHaloSpan) at the narrowest of the `pitches` row pitches from the padded row on that has one, within haloBytesBeside (`planes`: StemPitch's). */
export function pitchedHalo(g: Geometry, tile: MmaTile, threads: number, span: boolean, pitches: number, planes?: Pick<StemPitch, 'residues' | 'group' | 'channelTiles'>): Halo | undefined {
  for (let columns = paddedColumns(g); columns < paddedColumns(g) + pitches; columns++) {
    const halo = chooseHaloSpan(g, tile.bm, threads, span, { columns, maxBytes: haloBytesBeside(tile), ...planes });
    if (halo) return halo;
  }
  return undefined;
}

/** The row-crossing layout the file's note derives, for a stem's geometry. */
export function stemCrossingLayout(g: Geometry): HaloLayout {
  const least = paddedColumns(g), want = (g.S - 3 + 32) & 63;
  const columns = least + ((want - least) & 63);
  return { rows: paddedRows(g), columns, imageGap: 0, planeResidue: ((g.R - 1) * columns + g.S - 3 + 32) & 63, exactPlane: true };
}

/**
 * Whether the stem's row tiles may each be one channel (`channelTiles`, Halo.channelTiles): R·S taps fit a tile's BM
 * rows and padding every channel's taps to BM adds no tile (NIN's 121 taps in 128: 3 tiles of 363 rows either way).
 * Then a block stages one plane, not the two a tile across a channel's end reads, in half the shared memory, which
 * leaves room for a longer staging: fewer of the R − sh rows every staging repeats (NIN: 5 planes of 128 positions
 * staged a slice's blocks → 3 planes of more).
 */
export const channelTilesFit = (g: Geometry, bm: number) => g.R * g.S <= bm && g.C === Math.ceil((g.C * g.R * g.S) / bm);

/**
 * The stem's halo for tile `tile` (`threads` staging): a conflict-free layout at one of the narrowest pitches, else
 * stemCrossingLayout with the staging length of least elements per position that fits; undefined for a conv that is no stem.
 * `channelTiles` (switch stemWgradChannelTiles): row tiles of one channel each where channelTilesFit; `longer` (switch
 * stemWgradLongStagings): with them, stagings of up to 16 slices (stemPositions).
 */
/**
 * The staging lengths a stem's crossing layout tries: HALO_POSITIONS, and with row tiles of one channel (`longer`, switch
 * stemWgradLongStagings) 16 slices too, which one plane leaves room for (NIN: 22.4 padded elements copied a position
 * against 256's 27.3; 32 slices' plane, 40 KB, does not fit beside the tiles).
 */
const stemPositions = (longer: boolean): readonly number[] => (longer ? [...HALO_POSITIONS, 16 * BK] : HALO_POSITIONS);

export function stemWgradHalo(g: Geometry, tile: MmaTile, threads: number, span: boolean, channelTiles = false, longer = false): Halo | undefined {
  if (!isStem(g)) return undefined;
  const aligned = channelTiles && channelTilesFit(g, tile.bm);
  const maxBytes = haloBytesBeside(tile);
  const pitched = pitchedHalo(g, tile, threads, span, PITCHES, aligned ? { channelTiles: true } : undefined);
  if (pitched) return pitched;
  const layout = stemCrossingLayout(g);
  const byCost = (span ? stemPositions(aligned && longer) : [BK]).map((positions) => ({ positions, cost: stagedPerPosition(g, layout, positions) })).sort((a, b) => a.cost - b.cost || a.positions - b.positions);
  for (const { positions } of byCost) {
    const { channels, plane, elements } = haloSize(g, layout, tile.bm, threads, positions, 1, aligned);
    if (elements * 2 <= maxBytes) return { layout, positions, channels, plane, elements, bytes: elements * 2, ...(aligned ? { channelTiles: true } : {}) };
  }
  return undefined;
}

/**
 * The resident blocks a SM that the launch bounds of a stem's weight gradient on row tiles of one channel ask for
 * (switch stemWgradThreeBlocks), or undefined: 3, with its dY' rebuild (one row pair an iteration) and its A staging
 * (one item of 4 rows an iteration) rolled. Unrolled, ptxas takes 222 registers (NIN's stem: R 2); held to 3 blocks it
 * has 168, and spilled while those loops were unrolled (their loads hoisted for latency: 56 bytes on sm_90 with both
 * unrolled; 32 on sm_80 with the rebuild alone rolled) and none with both rolled. Its splits are then chosen again at
 * R 3 (one wave), and the model's unpipelined share of the shorter phase falls from 1/2 to 1/3.
 */
export const stemWgradResidentBlocks = (ablations: Ablations | undefined): number | undefined => (isOn(ablations, 'stemWgradThreeBlocks') ? 3 : undefined);
