// nin-fashion built with the ablation cpuPairBands off (/tmp/i19C-nf-A) and on (/tmp/i19C-nf-B): the same images, the same bits? (branch i19C; run from the repository root after tsc)
import { load } from '../../dist/runtime/model.js';
const [a, b] = [await load('/tmp/i19C-nf-A', { device: 'cpu', seed: 5 }), await load('/tmp/i19C-nf-B', { device: 'cpu', seed: 5 })];
let s = 12345;
const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
for (const n of [1, 2, 3, 16]) {
  const x = Float32Array.from({ length: n * 784 }, () => next() * 4 - 2);
  const [ya, yb] = [await a.infer(x), await b.infer(x)];
  const ua = new Uint32Array(ya.buffer, ya.byteOffset, ya.length), ub = new Uint32Array(yb.buffer, yb.byteOffset, yb.length);
  let diff = 0;
  for (let i = 0; i < ua.length; i++) diff += ua[i] !== ub[i];
  console.log(`batch ${n}: ${ya.length} outputs, ${diff} differ in bits, finite ${yb.every(Number.isFinite)}, first ${ya[0]} ${yb[0]}`);
}
await a.dispose(); await b.dispose();
