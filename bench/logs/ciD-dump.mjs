// (round 17, bench/logs/ciD-times.md) node bench/logs/ciD-dump.mjs DIST_ROOT ARTIFACT OUT.json [BATCH]: one cpu artifact's inference outputs, one training step's loss and
// gradients and the tensors after an SGD step, as sha256 of their float32 bytes (bitwise A/B of two builds).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
const [dist, dir, out, batchArg] = process.argv.slice(2);
const { load } = await import(`${dist}/runtime/model.js`);
const n = Number(batchArg ?? 2);
let s = 12345;
const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
const hash = (a) => createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex').slice(0, 16);
const m = await load(dir, { device: 'cpu', seed: 7 });
const images = Float32Array.from({ length: n * m.imageElements }, () => next() * 3 - 1.5);
const labels = Int32Array.from({ length: n }, () => Math.floor(next() * m.info.classes));
const r = { infer: hash(await m.infer(images)) };
const one = await m.infer(images.subarray(0, m.imageElements));
r.infer1 = hash(one);
const fb = await m.forwardBackward(images, labels);
r.loss = fb.loss;
r.output = hash(fb.output);
for (const t of m.info.params) r[`grad ${t.name}`] = hash(m.getGradient(t.name));
await m.trainStep(images, labels, { lr: 0.05, weightDecay: 5e-4, momentum: 0.9 });
await m.trainStep(images, labels, { lr: 0.05, weightDecay: 5e-4, momentum: 0.9 });
for (const t of m.tensorNames()) r[`after 2 steps ${t}`] = hash(m.getTensor(t));
r.inferAfter = hash(await m.infer(images));
m.dispose();
writeFileSync(out, JSON.stringify(r, null, 1));
console.log(`${dir}: ${Object.keys(r).length} entries, loss ${r.loss}`);
