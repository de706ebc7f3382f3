// `node bench/logs/i15k-epilogue-conflicts.mjs C K RS BM BN warpsM warpsN MT NT 0 PITCH` (i15k): // Bank conflicts of the tap-major epilogue's band writes and reads (the emulator's rule), every block of a layer.
const [C, K, RS, BM, BN, warpsM, warpsN, MT, NT] = process.argv.slice(2).map(Number);
const threads = warpsM * warpsN * 32, UNITS = (C / 8) * RS, CRS = C * RS, pitch = +process.argv[11], columns = warpsN * 8;
const waves = (words) => { const u = [...new Set(words)]; const b = new Array(32).fill(0); for (const w of u) b[((w % 32) + 32) % 32]++; return Math.max(...b); };
let wr = 0, rd = 0;
for (let m0 = 0; m0 < Math.ceil(CRS / BM) * BM; m0 += BM) {
  const u0 = m0 / 8, u1 = Math.min(u0 + BM / 8, UNITS), crs0 = Math.floor(u0 / RS) * 8 * RS;
  const dwRow = (r) => { for (let o = Math.floor(u0 / RS); ; ++o) { const first = Math.max(u0, o * RS), taps = Math.min(u1, (o + 1) * RS) - first; if (r < 8 * taps) return (8 * o + Math.floor(r / taps)) * RS + first - o * RS + (r % taps); r -= 8 * taps; } };
  for (let w = 0; w < threads / 32; w++) {
    const wm = w % warpsM, wn = Math.floor(w / warpsM);
    for (let i = 0; i < MT * 2; i++) for (let half = 0; half < 2; half++) {
      const words = [];
      for (let lane = 0; lane < 32; lane++) {
        const m = m0 + wm * 16 * MT + 16 * Math.floor(i / 2) + 8 * (i % 2) + (lane >> 2), u = m >> 3;
        const live = u < UNITS, crs = (8 * Math.floor(u / RS) + (m % 8)) * RS + (u % RS);
        words.push(live ? (wn * 8 + 2 * (lane % 4) + half) * pitch + crs - crs0 : columns * pitch + lane);
      }
      wr += waves(words) - 1;
    }
    for (let q0 = w * 32; q0 < columns * BM; q0 += threads) {
      const words = [];
      for (let lane = 0; lane < 32; lane++) { const q = q0 + lane, cl = Math.floor(q / BM), crs = dwRow(Math.min(q % BM, 8 * (u1 - u0) - 1)); words.push(cl * pitch + crs - crs0); }
      rd += waves(words) - 1;
    }
  }
}
const cols = Math.ceil(K / BN);
console.log('per column tile and nt: writes', wr, 'reads', rd, '→ total ×', cols * NT, '=', (wr + rd) * cols * NT);
