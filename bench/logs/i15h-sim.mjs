// Simulate A-staging shared wavefronts from the halo in the natural k order, for candidate element orders/layouts.
import { slicePlane, planePitch, paddedAt, paddedRows, paddedColumns } from '../../dist/compiler/backends/cuda/conv-mma-wgrad-halo.js';
const geoms = {
  k11: { C: 96, H: 28, W: 28, P: 28, Q: 28, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2, positions: 256 },
  test: { C: 20, H: 9, W: 8, P: 9, Q: 8, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1, positions: 32 },
  k21: { C: 256, H: 14, W: 14, P: 14, Q: 14, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1, positions: 64 },
};
// wavefronts of one instruction: lanes -> list of [byteAddr, bytes]
function wf(acc, bytes) {
  const phaseLanes = bytes <= 4 ? 32 : 128 / bytes;
  let w = 0, ph = 0;
  for (let p = 0; p < 32 / phaseLanes; p++) {
    const words = new Set();
    for (let l = p * phaseLanes; l < (p + 1) * phaseLanes; l++) { const a = acc[l]; if (a === undefined) continue; for (let x = Math.floor(a / 4); x <= Math.floor((a + bytes - 1) / 4); x++) words.add(x); }
    if (!words.size) continue;
    const bank = new Array(32).fill(0); for (const x of words) bank[x & 31]++;
    w += Math.max(...bank); ph++;
  }
  return [w, ph];
}
// scheme(taps[4], bases[8], e) -> per-lane byte addresses list of instructions: [{acc: [32], bytes}]
export function run(g, layout, scheme) {
  const RS = g.R * g.S, PQ = g.P * g.Q;
  let W = 0, P = 0, n = 0;
  for (let j0 = 0; j0 < PQ; j0 += 8) {
    const { first, length } = slicePlane(g, layout, Math.floor(j0 / g.Q), Math.floor((j0 + g.positions - 1) / g.Q));
    const pitch = planePitch(layout, length);
    for (let sl = 0; sl < g.positions / 32; sl++) {
      const bases = [];
      for (let q = 0; q < 8; q++) { const f = []; for (let e = 0; e < 4; e++) { const j = j0 + 32 * sl + 4 * q + e, pq = j % PQ; f.push(paddedAt(layout, Math.floor(j / PQ), Math.floor(pq / g.Q) * g.sh, (pq % g.Q) * g.sw) - first); } bases.push(f); }
      for (let crs0 = 0; crs0 < RS * 4; crs0 += 1) {
        const taps = [0, 1, 2, 3].map((i) => Math.floor((crs0 + i) / RS) * pitch + (Math.floor((crs0 + i) / g.S) % g.R) * layout.columns + ((crs0 + i) % g.S));
        for (const ins of scheme(taps, bases)) { const [w, ph] = wf(ins.acc, ins.bytes); W += w; P += ph; n++; }
      }
    }
  }
  return { wf: W, extra: W - P, n };
}
// natural: 4 two-byte loads, lane (i,q) at element taps[i] + bases[q][e]
export const natural = (taps, bases) => [0, 1, 2, 3].map((e) => ({ bytes: 2, acc: Array.from({ length: 32 }, (_, l) => 2 * (taps[l >> 3] + bases[l & 7][e])) }));
export const rotated = (taps, bases) => [0, 1, 2, 3].map((e) => ({ bytes: 2, acc: Array.from({ length: 32 }, (_, l) => { const q = l & 7; return 2 * (taps[l >> 3] + bases[q][(e + q) % 4]); }) }));
export const rotated2 = (taps, bases) => [0, 1, 2, 3].map((e) => ({ bytes: 2, acc: Array.from({ length: 32 }, (_, l) => { const q = l & 7; return 2 * (taps[l >> 3] + bases[q][(e + (q >> 1)) % 4]); }) }));
export const rotated3 = (taps, bases) => [0, 1, 2, 3].map((e) => ({ bytes: 2, acc: Array.from({ length: 32 }, (_, l) => { const q = l & 7, i = l >> 3; return 2 * (taps[i] + bases[q][(e + q + i) % 4]); }) }));
export const words3 = (taps, bases) => [0, 1, 2].map((k) => ({ bytes: 4, acc: Array.from({ length: 32 }, (_, l) => 4 * (Math.floor((taps[l >> 3] + bases[l & 7][0]) / 2) + k)) }));
export { geoms };
