// usage: node rep.mjs DIST DIR '[1,28,28]' mode reps
// mode b1first: 16 b1 calls then reps b16 calls; b16only: reps b16 calls compared with the first
const [dist, dir, shapeText, mode = 'b1first', repsText = '6'] = process.argv.slice(2);
const { load } = await import(`${dist}/runtime/model.js`);
const shape = JSON.parse(shapeText);
const m = await load(dir, { device: 'cpu', seed: 1 });
const per = shape.reduce((a, b) => a * b, 1);
let s = 12345; const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
const x = new Float32Array(16 * per).map(() => 2 * rnd() - 1);
let ref;
if (mode === 'b1first') {
  const ys = [];
  for (let i = 0; i < 16; i++) ys.push(await m.infer(x.subarray(i * per, (i + 1) * per), 1));
  ref = new Float32Array(ys.length * ys[0].length); ys.forEach((y, i) => ref.set(y, i * y.length));
} else ref = (await m.infer(x, 16)).slice();
const n = ref.length / 16;
const out = [];
for (let rep = 0; rep < Number(repsText); rep++) {
  const y16 = await m.infer(x, 16);
  let worst = 0, wi = -1;
  for (let i = 0; i < 16; i++) for (let j = 0; j < n; j++) { const d = Math.abs(ref[i * n + j] - y16[i * n + j]); if (d > worst) { worst = d; wi = i; } }
  out.push(`${worst.toExponential(2)}@${wi}`);
}
console.log(mode, out.join(' '));
