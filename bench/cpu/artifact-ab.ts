// Whole-model A/B of two built artifacts of one spec (say, built by two checkouts whose kernel headers
// differ): both loaded in one process, infer() called on A and B alternately, call by call, the order
// swapping each round; prints each one's median wall time and process CPU time (on one thread, the
// time the kernels ran rather than the time other processes held the core) and B/A, with `uptime`.
//   node dist/bench/cpu/artifact-ab.js DIR_A DIR_B [--batch 1] [--calls 300]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { load } from '../../runtime/model.js';
import { median } from './report.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { batch: { type: 'string', default: '1' }, calls: { type: 'string', default: '300' } } });
if (positionals.length !== 2) {
  console.error('usage: node dist/bench/cpu/artifact-ab.js DIR_A DIR_B [--batch N] [--calls N]');
  process.exit(2);
}

async function main(): Promise<void> {
  const batch = Number(values.batch), calls = Number(values.calls);
  const models = await Promise.all(positionals.map((dir) => load(dir, { device: 'cpu', seed: 1 })));
  try {
    const x = new Float32Array(batch * models[0].info.input.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
    const wall: number[][] = [[], []], cpu: number[][] = [[], []];
    console.log(`A = ${positionals[0]}, B = ${positionals[1]}: batch ${batch}, ${calls} calls each, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(default)'}`);
    console.log(execFileSync('uptime', { encoding: 'utf8' }).trimEnd());
    for (let i = 0; i < calls + 3; i++) {
      for (const v of i % 2 ? [1, 0] : [0, 1]) {
        const c0 = process.cpuUsage(), t0 = performance.now();
        await models[v].infer(x);
        const t = performance.now() - t0, c = process.cpuUsage(c0);
        if (i >= 3) {
          wall[v].push(t);
          cpu[v].push((c.user + c.system) / 1000);
        }
      }
    }
    console.log(execFileSync('uptime', { encoding: 'utf8' }).trimEnd());
    const [wa, wb, ca, cb] = [median(wall[0]), median(wall[1]), median(cpu[0]), median(cpu[1])];
    console.log(`median wall ms: A ${wa.toFixed(4)}  B ${wb.toFixed(4)}  B/A ${(wb / wa).toFixed(3)}`);
    console.log(`median CPU ms:  A ${ca.toFixed(4)}  B ${cb.toFixed(4)}  B/A ${(cb / ca).toFixed(3)}`);
  } finally {
    for (const m of models) m.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
