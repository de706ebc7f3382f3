// Whole-model A/B of two built artifacts of one spec (say, built by two checkouts whose kernel headers
// differ): both loaded in one process, infer() called on A and B alternately, call by call, the order
// swapping each round; prints each one's median wall time and process CPU time (on one thread, the
// time the kernels ran rather than the time other processes held the core) and B/A, with `uptime`.
// With --train, trainStep (lr 0.01, momentum 0.9, weight decay 5e-4) on one fixed batch instead, and
// both engines' losses after their first steps (same seed, so they differ only by rounding).
//   node dist/bench/cpu/artifact-ab.js DIR_A DIR_B [--batch 1] [--calls 300] [--train]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { load } from '../../runtime/model.js';
import { median } from './report.js';
import { refuseStaleAddon } from '../addon-fresh.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { batch: { type: 'string', default: '1' }, calls: { type: 'string', default: '300' }, train: { type: 'boolean', default: false } } });
if (positionals.length !== 2) {
  console.error('usage: node dist/bench/cpu/artifact-ab.js DIR_A DIR_B [--batch N] [--calls N] [--train]');
  process.exit(2);
}

async function main(): Promise<void> {
  refuseStaleAddon();
  const batch = Number(values.batch), calls = Number(values.calls);
  const models = await Promise.all(positionals.map((dir) => load(dir, { device: 'cpu', seed: 1 })));
  try {
    const x = new Float32Array(batch * models[0].info.input.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
    const labels = Int32Array.from({ length: batch }, (_, i) => i % models[0].info.classes);
    const step = async (v: number): Promise<number | undefined> =>
      values.train ? (await models[v].trainStep(x, labels, { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 })).loss : (await models[v].infer(x), undefined);
    const wall: number[][] = [[], []], cpu: number[][] = [[], []], losses: number[][] = [[], []];
    const what = values.train ? 'trainStep' : 'infer';
    console.log(`A = ${positionals[0]}, B = ${positionals[1]}: ${what} batch ${batch}, ${calls} calls each, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(default)'}`);
    console.log(execFileSync('uptime', { encoding: 'utf8' }).trimEnd());
    for (let i = 0; i < calls + 3; i++) {
      for (const v of i % 2 ? [1, 0] : [0, 1]) {
        const c0 = process.cpuUsage(), t0 = performance.now();
        const loss = await step(v);
        const t = performance.now() - t0, c = process.cpuUsage(c0);
        if (loss !== undefined && losses[v].length < 5) losses[v].push(loss);
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
    if (values.train) {
      const gap = Math.max(...losses[0].map((l, i) => Math.abs(l - losses[1][i])));
      console.log(`losses of the first ${losses[0].length} steps: A ${losses[0].join(' ')}; B ${losses[1].join(' ')}; max |A - B| ${gap.toExponential(2)}`);
    }
  } finally {
    for (const m of models) m.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
