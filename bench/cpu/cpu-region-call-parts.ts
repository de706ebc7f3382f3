// Where one cpu infer() call's time goes (issue #19): round by round, the median microseconds of CALLS calls of
// infer(), of the addon's setInput + runInline + getOutput, of runInline alone, of setInput + getOutput alone and
// of the worker-thread run(), in one process; prints each part's median of round medians and its rounds.
//   chrt -f 20 node dist/bench/cpu/cpu-region-call-parts.js DIR [--batch 1] [--calls 3000] [--rounds 5]
import { parseArgs } from 'node:util';
import { load } from '../../runtime/model.js';
import type { NativeModel } from '../../runtime/native.js';
import { median } from './report.js';
import { medianMicros } from './call-micros.js';
import { refuseStaleAddon } from '../addon-fresh.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { batch: { type: 'string', default: '1' }, calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '5' } },
});
if (positionals.length !== 1) {
  console.error('usage: node dist/bench/cpu/cpu-region-call-parts.js DIR [--batch N] [--calls N] [--rounds N]');
  process.exit(2);
}
const batch = Number(values.batch), calls = Number(values.calls), rounds = Number(values.rounds);

refuseStaleAddon();
const m = await load(positionals[0], { device: 'cpu', seed: 1 });
const x = new Float32Array(batch * m.imageElements).map((_, i) => Math.sin(i));
await m.infer(x); // folds the weights first
const native = (m as unknown as { native: NativeModel }).native; // the addon object under the Model, for its parts
const parts: Record<string, () => unknown> = {
  'infer()': () => m.infer(x),
  'setInput+runInline+getOutput': () => {
    native.setInput('infer', 'images', x, batch);
    native.runInline('infer', batch, {}, 0);
    return native.getOutput('infer', 'output', batch);
  },
  'runInline': () => native.runInline('infer', batch, {}, 0),
  'setInput+getOutput': () => {
    native.setInput('infer', 'images', x, batch);
    return native.getOutput('infer', 'output', batch);
  },
  'run() (worker thread)': () => native.run('infer', batch, {}, 0),
};
const rows: Record<string, number[]> = Object.fromEntries(Object.keys(parts).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(parts)) rows[name].push(await medianMicros(run, calls));
console.log(`${positionals[0]}: batch ${batch}, ${calls} calls a round, ${rounds} rounds, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(default)'}`);
for (const [name, row] of Object.entries(rows)) console.log(`${name.padEnd(30)} ${median(row).toFixed(1)} us  (${row.map((v) => v.toFixed(1)).join(', ')})`);
await m.dispose();
