// The neighbours bench/cpu/cpu-small-ab.ts can run beside its timed calls, to time them as bench/cpu.ts's
// interleaved passes meet them: an onnxruntime session, an OpenMP process (bench/cpu/omp-neighbour.cc) and a
// FIFO thread taking one core at intervals (bench/cpu/preemptor.cc).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import { packageRoot } from '../../compiler/package-root.js';

/** An onnxruntime session of `file` (2 intra-op threads, its idle spin-wait on or off) and one run of it at `batch`. */
export async function ortSession(file: string, batch: number, spinning: boolean): Promise<{ run: () => Promise<unknown>; release: () => Promise<void> }> {
  const quiet = spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } };
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: 'sequential', ...quiet });
  const dims = (session.inputMetadata[0] as { readonly shape: readonly (number | string)[] }).shape.slice(1).map(Number);
  const x = new Float32Array(batch * dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, [batch, ...dims]) };
  return { run: () => session.run(feeds), release: () => session.release() };
}

/** The neighbour process (--neighbour): a function that runs one region of it and resolves on its reply, and its stop. */
export function startNeighbour(exe: string, us: string): { region: () => Promise<unknown>; stop: () => void } {
  const child = spawn(exe, [us], { stdio: ['pipe', 'pipe', 'inherit'] });
  const replies = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    region: async () => {
      child.stdin.write('go\n');
      if ((await replies.next()).done) throw new Error('the OpenMP neighbour exited');
    },
    stop: () => child.stdin.end(),
  };
}

/** bench/cpu/NAME.cc built into a fresh temporary folder; its path. */
export function buildTool(name: string, flags: string[]): string {
  const exe = join(mkdtempSync(join(tmpdir(), `nincc-${name}-`)), name);
  execFileSync('g++', ['-O2', ...flags, join(packageRoot(), `bench/cpu/${name}.cc`), '-o', exe]);
  return exe;
}

/** Starts bench/cpu/preemptor.cc (BUSY_US/IDLE_US) on the last CPU at SCHED_FIFO 30; returns its stop. */
export function startPreemptor(pattern: string): () => void {
  const m = /^(\d+)\/(\d+)$/.exec(pattern);
  if (!m) throw new Error(`--preempt wants BUSY_US/IDLE_US, got '${pattern}'`);
  const exe = buildTool('preemptor', []);
  const child = spawn('chrt', ['-f', '30', 'taskset', '-c', String(cpus().length - 1), exe, m[1], m[2]], { stdio: 'inherit' });
  return () => child.kill();
}
