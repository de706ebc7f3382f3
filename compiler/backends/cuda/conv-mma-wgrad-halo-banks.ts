// The bank-conflict padding of a weight gradient's input halo (conv-mma-wgrad-halo.ts): the gap after each
// image and the residue of the channel planes' pitch, chosen by counting, for every way a warp's A
// staging instruction can meet the halo, the shared-memory wavefronts it takes beyond one (the
// emulator's rule, runtime/include/nincc/device/emu/profile.h: 32 banks of 4 bytes, lanes on one word
// share it). A stageAlongK instruction reads 4 consecutive taps × 8 consecutive positions; which addresses
// those are depends only on the staging's start within an image, the group's offset e in the staging (a staging
// covers `positions`, one or more slices) and the first tap's place in its channel's R·S taps (the planes' pitch is even, so a block's first channel does
// not move the words' pairing). The halo's stores are conflict-free by construction (consecutive elements,
// a plane's gap at most 32 elements).
import { BK } from './conv-mma-tile.js';
import { HALO_MAX_BYTES, haloSize, paddedAt, paddedColumns, paddedRows, planePitch, slicePlane, type Geometry, type Halo, type HaloLayout } from './conv-mma-wgrad-halo.js';

/** Whether one warp instruction's bf16 element addresses (`count` of them in `words`, overwritten) take more than one wavefront. */
export function conflicted(words: Int32Array, count: number, bankWord: Int32Array): boolean {
  bankWord.fill(-1);
  for (let i = 0; i < count; i++) {
    const word = words[i] >> 1;
    const bank = word & 31;
    if (bankWord[bank] === -1) bankWord[bank] = word;
    else if (bankWord[bank] !== word) return true; // two words in one bank; lanes on one word share it
  }
  return false;
}

/**
 * Whether any A staging instruction meets a bank conflict in layout `l`: over every staging start, group and
 * first tap (see the file's note), stopping at the first. A group's addresses depend only on its first
 * position, its staging's first element and the planes' pitch: the stagings of many positions share those
 * (a longer one's starts within a row mostly do), so each such group is checked once. `witnesses` holds the
 * (staging start, group, first tap) of conflicts found in other layouts of the search, checked first: a
 * layout's neighbours tend to conflict at the same place, and the search then stops early (it is the compile's
 * largest cost); a conflict found is added to it.
 */
export function stagingConflicts(g: Geometry, l: HaloLayout, positions: number, witnesses: [number, number, number][] = []): boolean {
  const RS = g.R * g.S, PQ = g.P * g.Q;
  const words = new Int32Array(32), bankWord = new Int32Array(32), bases = new Int32Array(8), taps = new Int32Array(4);
  const stagingOf = (j0: number) => {
    const { first, length } = slicePlane(g, l, Math.floor(j0 / g.Q), Math.floor((j0 + positions - 1) / g.Q));
    return { first, pitch: planePitch(l, length) };
  };
  const groupBases = (j0: number, e: number, first: number) => {
    for (let lane = 0; lane < 8; lane++) {
      const j = j0 + 8 * e + lane, pq = j % PQ;
      bases[lane] = paddedAt(l, Math.floor(j / PQ), Math.floor(pq / g.Q) * g.sh, (pq % g.Q) * g.sw) - first;
    }
  };
  const tapConflicts = (crs0: number, pitch: number) => {
    for (let i = 0; i < 4; i++) taps[i] = Math.floor((crs0 + i) / RS) * pitch + (Math.floor((crs0 + i) / g.S) % g.R) * l.columns + ((crs0 + i) % g.S);
    for (let i = 0; i < 32; i++) words[i] = taps[i >> 3] + bases[i & 7];
    return conflicted(words, 32, bankWord);
  };
  for (const [j0, e, crs0] of witnesses) {
    const { first, pitch } = stagingOf(j0);
    groupBases(j0, e, first);
    if (tapConflicts(crs0, pitch)) return true;
  }
  const checked = new Map<string, Uint8Array>(); // per (staging start, pitch): the group starts already checked
  for (let j0 = 0; j0 < PQ; j0++) {
    const { first, pitch } = stagingOf(j0);
    const staging = `${first} ${pitch}`;
    const seen = checked.get(staging) ?? new Uint8Array(PQ + positions);
    checked.set(staging, seen);
    for (let e = 0; e < positions / 8; e++) {
      if (seen[j0 + 8 * e]) continue;
      seen[j0 + 8 * e] = 1;
      groupBases(j0, e, first);
      for (let crs0 = 0; crs0 < RS; crs0++) {
        if (!tapConflicts(crs0, pitch)) continue;
        witnesses.push([j0, e, crs0]);
        return true;
      }
    }
  }
  return false;
}

/**
 * The shared wavefronts beyond one that the stores of the halo staging of `h.positions` positions from `j0` take
 * (haloStaging's copy loop, term for term: element i of `loop` per channel to channel cl = min(i / loop, channels − 1),
 * offset at = i − cl·loop, stored at cl·pitch + at; warp w's lanes on i = 32w + lane + k·threads in round k). The
 * kernel loops over the whole staging (`loop` = its length) also where the split's end cuts it short; `loop` is a
 * parameter so a test can price a shorter one, which skips plane − loop elements at every plane's end.
 */
export function stagingStoreConflicts(g: Geometry, h: Halo, threads: number, j0: number, loop?: number): number {
  const { first, length } = slicePlane(g, h.layout, Math.floor(j0 / g.Q), Math.floor((j0 + h.positions - 1) / g.Q));
  const pitch = planePitch(h.layout, length), perChannel = loop ?? length;
  const staged = Math.ceil((h.channels * perChannel) / threads) * threads;
  const words = new Int32Array(32), perBank = new Int32Array(32);
  let extra = 0;
  for (let round = 0; round < staged; round += threads)
    for (let warp = 0; warp < threads; warp += 32) {
      for (let lane = 0; lane < 32; lane++) {
        const i = round + warp + lane, cl = Math.min(Math.floor(i / perChannel), h.channels - 1);
        words[lane] = cl * pitch + i - cl * perChannel;
      }
      extra += wavefronts(words, perBank) - 1;
    }
  return extra;
}

/** The wavefronts one warp instruction's 32 bf16 element addresses (sorted in place) take: the most distinct words on one bank. */
function wavefronts(elements: Int32Array, perBank: Int32Array): number {
  perBank.fill(0);
  elements.sort();
  let most = 0;
  for (let i = 0; i < elements.length; i++) {
    const word = elements[i] >> 1;
    if (i > 0 && elements[i - 1] >> 1 === word) continue; // lanes on one word share it
    most = Math.max(most, ++perBank[word & 31]);
  }
  return most;
}

/** A stem's row pitch (HaloLayout.exactPlane) and its byte limit (conv-mma-stem-wgrad-layout.ts). */
export interface StemPitch {
  readonly columns: number;
  readonly maxBytes: number;
  /** The plane residues to try (all even ones from 16 where absent) and Halo.group. */
  readonly residues?: readonly number[];
  readonly group?: number;
  /** Row tiles of one channel each (Halo.channelTiles). */
  readonly channelTiles?: boolean;
}

/**
 * The layer's halo, or undefined where no layout is free of conflicts or the halo exceeds HALO_MAX_BYTES (a stem's `maxBytes`)
 * (the layer then keeps the global gather): the first conflict-free layout among image gaps 0, the one that
 * makes crossing into the next image move the addresses as a row wrap does, then (`allGaps`) the rest, each
 * with every even plane residue from 16 on. A staging of several slices has many more groups to check, so
 * conv-mma-wgrad-halo-span.ts tries only the first two gaps for those: the compile stays well under a second.
 */
export function chooseHalo(g: Geometry, bm: number, threads: number, positions: number = BK, allGaps = true, stem?: StemPitch): Halo | undefined {
  const rows = paddedRows(g), columns = stem?.columns ?? paddedColumns(g), exactPlane = stem !== undefined;
  const maxBytes = stem?.maxBytes ?? HALO_MAX_BYTES;
  const unpadded = haloSize(g, { rows, columns, imageGap: 0, planeResidue: 0 }, bm, threads, positions, 1, stem?.channelTiles);
  if (unpadded.elements * 2 > maxBytes) return undefined; // too large before any padding: no search
  const rowWrap = g.sh * columns - (g.Q - 1) * g.sw;
  const crossing = rows * columns - (g.P - 1) * g.sh * columns - (g.Q - 1) * g.sw;
  const likeRowWrap = (((rowWrap - crossing) % 64) + 64) % 64;
  const gaps = [0, likeRowWrap, ...(allGaps ? Array.from({ length: 64 }, (_, i) => i).filter((i) => i !== 0 && i !== likeRowWrap) : [])];
  const residues = stem?.residues ?? Array.from({ length: 32 }, (_, i) => (16 + 2 * i) % 64);
  const group = stem?.group;
  const witnesses: [number, number, number][] = [];
  for (const imageGap of gaps) {
    for (const planeResidue of residues) {
      const layout = { rows, columns, imageGap, planeResidue, ...(exactPlane ? { exactPlane } : {}) };
      if (stagingConflicts(g, layout, positions, witnesses)) continue;
      const { channels, plane, elements } = haloSize(g, layout, bm, threads, positions, group, stem?.channelTiles);
      const bytes = elements * 2;
      return bytes <= maxBytes ? { layout, positions, channels, plane, elements, bytes, ...(group ? { group } : {}), ...(stem?.channelTiles ? { channelTiles: true } : {}) } : undefined;
    }
  }
  return undefined;
}
