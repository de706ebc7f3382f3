// ciU: the emulated run time of an emu artifact, to weigh a cheaper emu compile (-O1) against a slower run.
// node bench/logs/ciU-emu-run-ab.mjs DIR [REPS]: REPS (default 5) forward+backward steps at batch 3 on the emu
// device after one warm-up; prints this process's CPU seconds (all threads) and wall seconds for the REPS.
import { load } from '../../dist/runtime/model.js';
const [dir, reps = '5'] = process.argv.slice(2);
const m = await load(dir, { device: 'emu', seed: 1 });
const n = 3;
const images = new Float32Array(n * m.imageElements).map((_, i) => Math.sin(i * 0.37));
const labels = new Int32Array(n).map((_, i) => i % 2);
await m.forwardBackward(images, labels);
const cpu0 = process.cpuUsage(), t0 = performance.now();
for (let i = 0; i < Number(reps); i++) await m.forwardBackward(images, labels);
const cpu = process.cpuUsage(cpu0);
console.log(`${dir}: ${reps} forward+backward at batch ${n}: ${((cpu.user + cpu.system) / 1e6).toFixed(2)} cpu s, ${((performance.now() - t0) / 1000).toFixed(2)} wall s`);
m.dispose();
