// Data-parallel training under mpirun (docs/distributed.md): two CPU ranks on the shipped Fashion-MNIST
// subset stay bitwise in step, their reduced gradient is the weighted sum of single-process gradients,
// runs repeat bitwise, a killed rank ends the run within seconds, and --resume continues with 1 or 2 ranks.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadLabelledImages } from '../runtime/dataset.js';
import { shardOf } from '../runtime/distributed/data-parallel.js';
import { readSafetensors } from '../runtime/io/safetensors.js';
import { load } from '../runtime/model.js';
import { nincc, root } from './cli-run.js';

// One OpenMP thread everywhere: the ranks' and this process's kernels then sum in the same order.
process.env.OMP_NUM_THREADS = '1';
const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMP_NUM_THREADS: '1' };
const haveMpi = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
const mini = join(root, 'test/data/fashion-mnist-mini');
const work = mkdtempSync(join(tmpdir(), 'nincc-dist-'));
const artifact = join(work, 'artifact');
const common = ['--data', mini, '--limit', '384', '--batch', '32', '--seed', '7', '--test-limit', '100', '-q'];
// Ranks yield their core while they wait in a collective: CI has two cores and other test files beside.
const mpi = ['--oversubscribe', '--bind-to', 'none', '--mca', 'mpi_yield_when_idle', '1'];

/** `mpirun -np 2 nincc ARGS` in the background, once rank 0 has said it is training: the mpirun child, its stderr so far, and its exit code. */
async function startTwoRanks(args: readonly string[]): Promise<{ child: ChildProcess; stderr: () => string; exited: Promise<number | null> }> {
  const child = spawn('mpirun', [...mpi, '-np', '2', process.execPath, join(root, 'bin/nincc'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const started = Date.now();
  while (!text.includes('training nin_fashion')) {
    if (Date.now() - started > 90_000) throw new Error(`training never started: ${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, stderr: () => text, exited };
}

interface Row { epoch: number; loss: number; images: number }
const readLog = (dir: string): Row[] =>
  existsSync(join(dir, 'log.jsonl')) ? readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row) : [];

function mpirun(np: number, args: readonly string[]) {
  const r = spawnSync('mpirun', [...mpi, '-np', String(np), process.execPath, join(root, 'bin/nincc'), ...args], { env, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!haveMpi)('nincc train under mpirun (2 CPU ranks)', () => {
  beforeAll(() => {
    const r = nincc(['build', 'models/nin-fashion.model', '-o', artifact, '-q']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('trains an epoch with the weights compared after every step, and a second run is bitwise the same', () => {
    const runs = ['a', 'b'].map((name) => {
      const run = join(work, `twice-${name}`);
      const r = mpirun(2, ['train', artifact, ...common, '--limit', '192', '--epochs', '1', '--sync-check', '1', '-o', run]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('2 ranks of 16 images each');
      return run;
    });
    const [a, b] = runs.map((run) => readFileSync(join(run, 'checkpoint.safetensors')));
    expect(a.equals(b)).toBe(true);
    expect(readLog(runs[0])).toHaveLength(1);
    expect(readLog(runs[0])[0]).toMatchObject({ epoch: 1, images: 192 });
    expect(readLog(runs[0])[0].loss).toBe(readLog(runs[1])[0].loss);
  });

  it('the reduced gradient is the sum of the two ranks\' single-process gradients, weighted by their shares; rank 0\'s id reaches rank 1', async () => {
    const out = join(work, 'reduced.f32');
    const count = 25; // shares of 12 and 13 images: the weights differ
    const r = spawnSync('mpirun', [...mpi, '-np', '2', process.execPath, join(root, 'test/distributed/gradient-rank.mjs'), artifact, mini, String(count), out], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const reduced = new Float32Array(new Uint8Array(readFileSync(out)).buffer);

    const set = loadLabelledImages(mini, 'train', undefined, count);
    const single: Float32Array[] = [];
    const weights: number[] = [];
    for (const rank of [0, 1]) {
      const model = await load(artifact, { seed: 7 });
      const transformed = loadLabelledImages(mini, 'train', model.plan.transform, count);
      const shard = shardOf({ images: transformed.images, labels: transformed.labels, count }, rank, 2);
      await model.forwardBackward(shard.images, shard.labels);
      single.push(model.readSpace('grad', 0, model.info.spaces.grad));
      weights.push(shard.count / count);
      await model.dispose();
    }
    expect(set.count).toBe(count);
    expect(weights).toEqual([12 / 25, 13 / 25]);
    const expected = new Float32Array(reduced.length);
    for (let i = 0; i < expected.length; i++) expected[i] = Math.fround(Math.fround(single[0][i] * weights[0]) + Math.fround(single[1][i] * weights[1]));
    expect(reduced.length).toBe(single[0].length);
    expect(reduced.some((g) => g !== 0)).toBe(true);
    let mismatches = 0;
    for (let i = 0; i < expected.length; i++) if (!Object.is(reduced[i], expected[i])) mismatches++;
    expect(mismatches).toBe(0);

    // The unique-id exchange a GPU reducer needs: both ranks hold rank 0's bytes, which depend on its pid.
    const ids = [0, 1].map((rank) => readFileSync(`${out}.id${rank}`));
    expect(ids[0].length).toBe(128);
    expect(ids[1].equals(ids[0])).toBe(true);
    expect(ids[0].equals(Buffer.alloc(128))).toBe(false);
  });

  it('reducing buckets while backward runs gives bitwise the checkpoint of reducing them after it', () => {
    // Small buckets: nin-fashion's 139,274 gradient floats in 5 buckets, the last layers' final long before backward ends.
    const [overlapped, after] = [[], ['--no-overlap']].map((flag, i) => {
      const run = join(work, `overlap-${i}`);
      const r = mpirun(2, ['train', artifact, '--data', mini, '--limit', '96', '--batch', '32', '--seed', '7', '--no-test', '-q', '--epochs', '1', '--bucket-elements', '16384', ...flag, '-o', run]);
      expect(r.code, r.stderr).toBe(0);
      return readFileSync(join(run, 'checkpoint.safetensors'));
    });
    expect(overlapped.equals(after)).toBe(true);
  });

  it('a stopped rank (SIGSTOP) ends the run within --rank-timeout and a few seconds, naming the rank', async () => {
    const run = join(work, 'stopped');
    const args = ['train', artifact, ...common, '--limit', '960', '--epochs', '3', '--rank-timeout', '2', '-o', run];
    const { child, stderr, exited } = await startTwoRanks(args);
    await new Promise((r) => setTimeout(r, 500)); // inside the epoch (30 steps)
    const rank1 = rankPid(child.pid!, 1);
    process.kill(rank1, 'SIGSTOP');
    const stoppedAt = Date.now();
    const hung = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(hung);
    const seconds = (Date.now() - stoppedAt) / 1000;
    try {
      process.kill(rank1, 'SIGKILL'); // only if mpirun left it behind
    } catch {
      // gone, as it should be
    }
    expect(code).not.toBe(0);
    expect(stderr()).toContain('rank 0 of 2: rank 1 has sent no heartbeat for');
    expect(seconds).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(7);
  });

  it('kill -9 of rank 1 mid-epoch ends the run within 10 s naming the rank; --resume continues with 1 rank and with 2', async () => {
    const run = join(work, 'killed');
    const args = ['train', artifact, ...common, '--epochs', '3', '-o', run];
    const child = spawn('mpirun', [...mpi, '-np', '2', process.execPath, join(root, 'bin/nincc'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const started = Date.now();
    while (readLog(run).length < 1) {
      if (Date.now() - started > 90_000) throw new Error(`epoch 1 never finished: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 200)); // into epoch 2
    const rank1 = rankPid(child.pid!, 1);
    process.kill(rank1, 'SIGKILL');
    const killedAt = Date.now();
    const code = await exited;
    const seconds = (Date.now() - killedAt) / 1000;
    expect(code).not.toBe(0);
    expect(seconds).toBeLessThan(10);
    expect(stderr).toMatch(/rank 1 .*exited on signal 9/s);
    const done = readLog(run).length;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(3);
    expect(readSafetensors(join(run, 'checkpoint.safetensors')).metadata.epoch).toBe(String(done));

    const copy = join(work, 'killed-copy');
    cpSync(run, copy, { recursive: true });
    const one = nincc([...args, '--resume'], { env: { OMP_NUM_THREADS: '1' } });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stderr).toContain(`after epoch ${done}`);
    expect(readLog(run).map((l) => l.epoch)).toEqual([1, 2, 3]);
    const two = mpirun(2, [...args.slice(0, -2), '-o', copy, '--resume']);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stderr).toContain(`after epoch ${done}`);
    expect(readLog(copy).map((l) => l.epoch)).toEqual([1, 2, 3]);
  });

  it('SIGINT to rank 1 alone stops both ranks after the same step; rank 0 checkpoints mid-epoch and --resume finishes the epoch', async () => {
    const run = join(work, 'interrupted');
    const args = ['train', artifact, '--data', mini, '--limit', '960', '--batch', '32', '--seed', '7', '--no-test', '-q', '--epochs', '1', '-o', run];
    const { child, stderr, exited } = await startTwoRanks(args);
    await new Promise((r) => setTimeout(r, 500)); // both ranks inside the epoch (30 steps)
    process.kill(rankPid(child.pid!, 1), 'SIGINT');
    // Ranks that disagree about stopping would wait for each other for ever.
    const hung = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(hung);
    expect(code, `the ranks did not stop together: ${stderr()}`).toBe(130);
    expect(stderr()).toContain('nincc train: stopped; resume with');
    const meta = readSafetensors(join(run, 'checkpoint.safetensors')).metadata;
    expect(meta.epoch).toBe('0');
    expect(Number(meta.step)).toBeGreaterThan(0);
    expect(Number(meta.step)).toBeLessThan(30);
    const resumed = mpirun(2, [...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`in epoch 1 after step ${meta.step}`);
    expect(readLog(run)).toMatchObject([{ epoch: 1, images: 960 }]);
  });

  it('refuses at start a rank whose weights or options differ from rank 0\'s', async () => {
    // Two run directories whose checkpoints (after "epoch 1") differ in one weight.
    const base = join(work, 'start-same');
    const other = join(work, 'start-tampered');
    const model = await load(artifact, { seed: 7 });
    mkdirSync(base);
    mkdirSync(other);
    await model.save(join(base, 'checkpoint.safetensors'), { epoch: '1', seed: '7' }, { optimizer: true });
    const w = model.getTensor('conv1.weight');
    w[0] += 1;
    model.setTensor('conv1.weight', w);
    await model.save(join(other, 'checkpoint.safetensors'), { epoch: '1', seed: '7' }, { optimizer: true });
    await model.dispose();
    const rank = (dir: string) => ['-np', '1', process.execPath, join(root, 'bin/nincc'), 'train', artifact, ...common, '--epochs', '2', '--resume', '-o', dir];
    const r = spawnSync('mpirun', [...mpi, ...rank(base), ':', ...rank(other)], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('rank 1 starts from different weights than rank 0');
    // The same weights, but rank 1 was told another number of epochs.
    const options = spawnSync('mpirun', [...mpi, ...rank(base), ':', ...rank(base).slice(0, -5), '--epochs', '3', '--resume', '-o', base], { env, encoding: 'utf8', timeout: 60_000 });
    expect(options.status).not.toBe(0);
    expect(options.stderr).toContain('rank 1 got different training options (batch, epochs, seed, data, resume) than rank 0');
  });

  it('asking for ranks without Open MPI names the packages to install', () => {
    const r = nincc(['train', artifact, ...common, '-o', join(work, 'nompi')], { env: { OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_RANK: '0', NINCC_MPI_LIBRARY: 'libmpi-absent.so.40' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('apt-get install openmpi-bin libopenmpi-dev');
  });
});

/** The pid of mpirun's child that is rank `rank` (its environment says so). */
function rankPid(mpirunPid: number, rank: number): number {
  const children = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => parentOf(pid) === mpirunPid);
  for (const pid of children) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    if (environ.includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return pid;
  }
  throw new Error(`no child of mpirun ${mpirunPid} is rank ${rank} (children: ${children.join(', ')})`);
}

/** The parent pid from /proc/PID/stat (the field after the state, past the parenthesised name), or -1 once the process is gone. */
function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}
