// The CPU benchmark's PyTorch column: bench/cpu/torch_runner.py in a python3 child process, driven one
// request at a time (so its runs interleave with nincc's and never overlap them). Where python3 has no
// torch, `npm run bench:cpu` installs Debian's python3-torch first (scripts/install-torch.sh) or says why not;
// NINCC_BENCH_TORCH=0 leaves the column out.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../compiler/package-root.js';

export type Layout = 'nchw' | 'channels_last';
export const LAYOUTS: readonly Layout[] = ['nchw', 'channels_last'];

type Reply = Record<string, unknown> & { ok: boolean; error?: string };

/**
 * The python that imports torch, or why none does (the bench prints it instead of a PyTorch column):
 * NINCC_BENCH_PYTHON, else python3 on PATH, else Debian's /usr/bin/python3 (where python3-torch installs,
 * which a pyenv or venv python3 earlier on PATH does not see).
 */
export function torchAvailable(): { ok: true; python: string } | { ok: false; reason: string } {
  if (process.env.NINCC_BENCH_TORCH === '0') return { ok: false, reason: 'NINCC_BENCH_TORCH=0 turns it off' };
  const candidates = process.env.NINCC_BENCH_PYTHON ? [process.env.NINCC_BENCH_PYTHON] : ['python3', '/usr/bin/python3'];
  const reasons: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return { ok: true, python };
    reasons.push(`${python}: ${r.error ? r.error.message : `cannot import torch (${r.stderr.trim().split('\n').pop()})`}`);
  }
  return { ok: false, reason: reasons.join('; ') };
}

export class TorchEngine {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly replies: AsyncIterator<string>;
  private stderr = '';

  constructor(python: string, threads: number) {
    // OMP_NUM_THREADS as nincc's; PyTorch's own spin behaviour otherwise (its OpenMP's default).
    this.child = spawn(python, [join(packageRoot(), 'bench/cpu/torch_runner.py')], { env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.replies = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  private async request(message: Record<string, unknown>): Promise<Reply> {
    this.child.stdin.write(JSON.stringify(message) + '\n');
    const line = await this.replies.next();
    if (line.done) throw new Error(`the PyTorch runner exited: ${this.stderr.trim()}`);
    const reply = JSON.parse(line.value) as Reply;
    if (!reply.ok) throw new Error(`PyTorch runner, ${String(message.op)}: ${reply.error}`);
    return reply;
  }

  /** Builds the model in both layouts from the artifact's model.json and the weights; says torch's version and threads. */
  async load(name: string, artifact: string, weights: string, threads: number): Promise<string> {
    const r = await this.request({ op: 'load', name, model: join(artifact, 'model.json'), weights, threads });
    return `PyTorch ${String(r.torch)} (torch.get_num_threads() ${String(r.threads)}, oneDNN ${r.mkldnn ? 'on' : 'off'})`;
  }

  /** Eval-mode output of a batch, for the agreement check. */
  async infer(name: string, layout: Layout, images: Float32Array, batch: number, shape: readonly number[], work: string): Promise<Float32Array> {
    const input = join(work, `torch-in-${name}-${batch}.f32`);
    const output = join(work, `torch-out-${name}-${batch}.f32`);
    writeFileSync(input, images);
    await this.request({ op: 'infer', name, layout, input, batch, shape, output });
    const bytes = readFileSync(output);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  /** Registers a case and runs it once; a training case gives its loss (for the agreement check). */
  async prepareCase(c: { id: string; name: string; layout: Layout; what: 'infer' | 'train'; batch: number; shape: readonly number[]; images: Float32Array; labels?: readonly number[]; momentum?: number; weightDecay?: number; work: string }): Promise<number | undefined> {
    const input = join(c.work, `torch-case-${c.id}.f32`);
    writeFileSync(input, c.images);
    const r = await this.request({ op: 'case', id: c.id, name: c.name, layout: c.layout, what: c.what, batch: c.batch, shape: c.shape, input, labels: c.labels, momentum: c.momentum, weightDecay: c.weightDecay });
    return typeof r.loss === 'number' ? r.loss : undefined;
  }

  /** Seconds per run, timed in the runner around the call alone. */
  async time(id: string, runs: number): Promise<number[]> {
    return (await this.request({ op: 'time', id, runs })).seconds as number[];
  }

  close(): void {
    this.child.stdin.end();
  }
}
