// Whole-model inference A/B of built artifacts (say, two checkouts' builds of one spec), each in a
// process of its own so one library's spinning pool workers never share the cores with the other's:
// round by round, the order swapping each round, every artifact runs CALLS infer() calls at one batch
// after three warm-up calls; prints each round's median in microseconds, then each artifact's median
// of the round medians and its ratio to the first artifact's, and their lower quartile (report.ts) and its ratio, with `uptime` before and after.
// An argument ending in .onnx runs that model on onnxruntime-node instead (2 intra-op threads, its
// default spinning), input [batch, 1, 28, 28]-shaped from the model's first input.
// With --rt the child processes run under `chrt -f 20` (SCHED_FIFO; root only): the other processes
// on a shared machine then wait while the timed runs hold the cores, so 2-thread times approach an
// idle machine's (on the 2-core VM with load 7-10, nin-fashion batch 1: onnxruntime 0.147 ms, as in
// Round 10's idle run, against 0.22-0.32 ms without).
// --preempt BUSY_US/IDLE_US (with --rt) runs bench/cpu/preemptor.cc meanwhile, pinned to the last CPU at
// SCHED_FIFO 30: it takes that core from the timed threads for BUSY_US of every BUSY_US + IDLE_US, as a
// neighbour's spinning pool would. A positional NAME=VALUE:DIR runs DIR with that environment variable
// set (say NINCC_POOL_CALLER_SPIN_US=50:DIR against DIR, the same artifact). --neighbour US runs, untimed before
// each call, one OpenMP parallel region of about US microseconds in a process of the child's own
// (bench/cpu/omp-neighbour.cc, libgomp's default spin after it), as bench/cpu.ts's interleaved pass runs PyTorch;
// --before [quiet:]FILE.onnx runs, untimed before each call, that model on onnxruntime in the same process
// (quiet: its spin-wait off, as that pass has it; else its defaults, as the third pass).
//   node dist/bench/cpu/cpu-small-ab.js DIR_A DIR_B... [--batch 1] [--calls 2000] [--rounds 5] [--rt] [--preempt 1000/1000] [--neighbour 2000] [--before quiet:M.onnx]
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { load } from '../../runtime/model.js';
import { lowerQuartile, median } from './report.js';
import { medianMicros } from './call-micros.js';
import { buildTool, ortSession, startNeighbour, startPreemptor } from './ab-neighbours.js';
import { refuseStaleAddon } from '../addon-fresh.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    batch: { type: 'string', default: '1' },
    calls: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    rt: { type: 'boolean', default: false },
    preempt: { type: 'string' },
    neighbour: { type: 'string' },
    'neighbour-exe': { type: 'string' },
    before: { type: 'string' },
    child: { type: 'boolean', default: false },
  },
});

async function childOrt(file: string, batch: number, calls: number, before?: () => Promise<unknown>): Promise<void> {
  // NINCC_AB_ORT_SPINNING=0 (NINCC_AB_ORT_SPINNING=0:FILE.onnx) turns its idle spin-wait off, as bench/cpu.ts's first pass does.
  const session = await ortSession(file, batch, process.env.NINCC_AB_ORT_SPINNING !== '0');
  console.log((await medianMicros(session.run, calls, before)).toFixed(1));
  await session.release();
}

// In a child: the median microseconds of CALLS infer() calls on one artifact, printed alone; `before`, untimed, ahead of each.
async function child(dir: string, batch: number, calls: number, before?: () => Promise<unknown>): Promise<void> {
  if (dir.endsWith('.onnx')) return childOrt(dir, batch, calls, before);
  const m = await load(dir, { device: 'cpu', seed: 1 });
  try {
    const x = new Float32Array(batch * m.info.input.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
    console.log((await medianMicros(() => m.infer(x), calls, before)).toFixed(1));
  } finally {
    m.dispose();
  }
}

/** An argument's directory and the environment its child runs with (NAME=VALUE:DIR sets one variable). */
function subject(arg: string): { dir: string; env: NodeJS.ProcessEnv } {
  const m = /^([A-Z_][A-Z0-9_]*)=([^:]*):(.+)$/.exec(arg);
  return m ? { dir: m[3], env: { ...process.env, [m[1]]: m[2] } } : { dir: arg, env: process.env };
}

function parent(args: string[], batch: number, calls: number, rounds: number, rt: boolean, preempt: string | undefined, neighbour: string | undefined, before: string | undefined): void {
  refuseStaleAddon(); // the children load this package's addon
  const script = fileURLToPath(import.meta.url);
  const dirs = args.map(subject);
  const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trimEnd();
  if (preempt && !rt) throw new Error('--preempt needs --rt (the preemptor outranks the timed processes only then)');
  const neighbourArgs = [...(neighbour ? ['--neighbour', neighbour, '--neighbour-exe', buildTool('omp-neighbour', ['-fopenmp'])] : []), ...(before ? ['--before', before] : [])];
  const stop = preempt ? startPreemptor(preempt) : () => {};
  console.log(`infer batch ${batch}, ${calls} calls a round, ${rounds} rounds, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(default)'}${rt ? ', chrt -f 20' : ''}${preempt ? `, preemptor ${preempt} us on CPU ${cpus().length - 1} at chrt -f 30` : ''}${neighbour ? `, before each call an OpenMP neighbour's ${neighbour} us region` : ''}${before ? `, before each call one onnxruntime run of ${before}` : ''}`);
  args.forEach((d, i) => console.log(`  ${String.fromCharCode(65 + i)} = ${d}`));
  console.log(uptime());
  const rows: number[][] = dirs.map(() => []);
  try {
    for (let r = 0; r < rounds; r++) {
      const order = dirs.map((_, i) => i);
      if (r % 2) order.reverse();
      for (const i of order) {
        const childArgs = [script, dirs[i].dir, '--child', '--batch', String(batch), '--calls', String(calls), ...neighbourArgs];
        const options = { encoding: 'utf8', env: dirs[i].env } as const;
        const out = rt ? execFileSync('chrt', ['-f', '20', process.execPath, ...childArgs], options) : execFileSync(process.execPath, childArgs, options);
        rows[i].push(Number(out.trim()));
      }
    }
  } finally {
    stop(); // a FIFO spinner left behind would hold a core of a shared machine
  }
  const base = median(rows[0]), baseQuartile = lowerQuartile(rows[0]);
  rows.forEach((row, i) => {
    const m = median(row), q = lowerQuartile(row);
    console.log(`${String.fromCharCode(65 + i)}: median of rounds ${m.toFixed(1)} us  (${row.map((v) => v.toFixed(1)).join(', ')})  /A ${(m / base).toFixed(3)}; lower quartile ${q.toFixed(1)} us /A ${(q / baseQuartile).toFixed(3)}`);
  });
  console.log(uptime());
}

const batch = Number(values.batch), calls = Number(values.calls);
if (values.child) {
  const neighbour = values.neighbour && values['neighbour-exe'] ? startNeighbour(values['neighbour-exe'], values.neighbour) : undefined;
  // --before [quiet:]FILE.onnx: that session's run, in this process, ahead of each call (bench/cpu.ts's interleaving).
  const beforeOnnx = values.before ? /^(quiet:)?(.+)$/.exec(values.before)! : undefined;
  (beforeOnnx ? ortSession(beforeOnnx[2], batch, !beforeOnnx[1]) : Promise.resolve(undefined))
    .then((session) => child(positionals[0], batch, calls, neighbour?.region ?? session?.run).finally(() => session?.release()))
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    })
    .finally(() => neighbour?.stop());
} else if (positionals.length < 2) {
  console.error('usage: node dist/bench/cpu/cpu-small-ab.js [NAME=VALUE:]DIR_A [NAME=VALUE:]DIR_B... [--batch N] [--calls N] [--rounds N] [--rt] [--preempt BUSY_US/IDLE_US] [--neighbour US] [--before [quiet:]FILE.onnx]');
  process.exit(2);
} else {
  parent(positionals, batch, calls, Number(values.rounds), values.rt, values.preempt, values.neighbour, values.before);
}
