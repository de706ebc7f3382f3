// A/B of the batch split (issue #19, schedule/cpu-infer-split-batch.ts): one artifact loaded twice, once with
// NINCC_SPLIT_BATCH=0 (each layer splits its own work across the threads) and once as built (a batch of N >= T
// images runs as T slices, one per thread), beside onnxruntime-node on the same ONNX (its spinning off, as in
// bench:cpu's interleaved pass: its spinning threads would take the cores from the engine after it),
// interleaved in rounds, the order rotating; per engine and batch, the medians of the rounds' wall and process CPU
// time per call and of each round's per-layer/engine wall ratio (> 1: faster than per-layer), `uptime` before and after. Outputs are checked first: the split's against the unsplit run's, bitwise, and both
// against onnxruntime's.
//   npx tsc -p tsconfig.json && node dist/bench/cpu/cpu-infer-split-ab.js [SPEC=models/nin-fashion.model] [ROUNDS=15] [CALLS=20]
import { execSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { packageRoot } from '../../compiler/package-root.js';
import { load } from '../../runtime/model.js';
import { images, prepareSubject } from './subjects.js';
import { refuseStaleAddon } from '../addon-fresh.js';

const [spec = 'models/nin-fashion.model', roundsArg = '15', callsArg = '20'] = process.argv.slice(2);
const rounds = Number(roundsArg), calls = Number(callsArg);
const threads = availableParallelism();
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const uptime = () => execSync('uptime').toString().trim();

async function main(): Promise<void> {
  refuseStaleAddon();
  const subject = await prepareSubject(resolve(packageRoot(), spec), join(tmpdir(), 'nincc-split-ab'), 16, 1);
  process.env.NINCC_SPLIT_BATCH = '0';
  const perLayer = await load(subject.dir, { device: 'cpu', weights: subject.weights });
  process.env.NINCC_SPLIT_BATCH = '2';
  const split2 = await load(subject.dir, { device: 'cpu', weights: subject.weights });
  delete process.env.NINCC_SPLIT_BATCH;
  const split = await load(subject.dir, { device: 'cpu', weights: subject.weights });
  const session = await ort.InferenceSession.create(subject.onnx, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } });
  console.log(`${subject.name}: ${threads} threads (OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? 'unset'}), ${rounds} rounds of ${calls} calls per engine, interleaved`);
  console.log(uptime());
  for (const batch of [1, 2, 3, 16]) {
    const x = images(batch, subject.model.input, 100 + batch);
    const a = await perLayer.infer(x), b = await split.infer(x);
    const o = (await session.run({ images: new ort.Tensor('float32', x, [batch, ...subject.model.input]) })).output.data as Float32Array;
    let bitwise = a.length === b.length, ortGap = 0;
    for (let i = 0; i < a.length; ++i) {
      if (a[i] !== b[i]) bitwise = false;
      ortGap = Math.max(ortGap, Math.abs(b[i] - o[i]));
    }
    const feeds = { images: new ort.Tensor('float32', x, [batch, ...subject.model.input]) };
    const engines: [string, () => Promise<unknown>][] = [
      ['per-layer', () => perLayer.infer(x)],
      ['split', () => split.infer(x)],
      ['split 2/thr', () => split2.infer(x)],
      ['onnxruntime', () => session.run(feeds)],
    ];
    const wall = new Map<string, number[]>(), cpu = new Map<string, number[]>();
    // The order rotates each round, so no engine always follows the same one (whose threads may still be running).
    for (let r = 0; r < rounds; ++r)
      for (const [name, run] of engines.map((_, i) => engines[(i + r) % engines.length])) {
        const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
        for (let i = 0; i < calls; ++i) await run();
        const t1 = process.hrtime.bigint(), c1 = process.cpuUsage(c0);
        (wall.get(name) ?? wall.set(name, []).get(name)!).push(Number(t1 - t0) / 1e3 / calls);
        (cpu.get(name) ?? cpu.set(name, []).get(name)!).push((c1.user + c1.system) / calls);
      }
    const base = median(wall.get('onnxruntime')!);
    // Each round's ratio to the per-layer run of the same round: the load's drift between rounds cancels.
    const paired = (name: string) => median(wall.get(name)!.map((w, r) => wall.get('per-layer')![r] / w));
    console.log(`batch ${batch}: split output ${bitwise ? 'bitwise equal to' : 'DIFFERS from'} per-layer's; max |split - onnxruntime| ${ortGap.toExponential(2)}`);
    for (const [name] of engines) {
      const w = median(wall.get(name)!), c = median(cpu.get(name)!);
      console.log(`  ${name.padEnd(12)} wall ${w.toFixed(1).padStart(8)} µs/call  cpu ${c.toFixed(1).padStart(8)} µs/call  ${(base / w).toFixed(2)}x onnxruntime  ${((batch * 1e6) / w).toFixed(0)} img/s  per-layer/this by round ${paired(name).toFixed(2)}`);
    }
  }
  console.log(uptime());
  await perLayer.dispose();
  await split.dispose();
  await split2.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
