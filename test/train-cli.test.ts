// `nincc train/eval/infer` end to end on the shipped Fashion-MNIST subset, including SIGKILL + --resume.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../runtime/io/safetensors.js';
import { writeNpy } from '../runtime/io/npy.js';
import { nincc, root } from './cli-run.js';

const mini = join(root, 'test/data/fashion-mnist-mini');
const work = mkdtempSync(join(tmpdir(), 'nincc-train-'));
const artifact = join(work, 'artifact');
const common = ['--data', mini, '--limit', '1280', '--batch', '64', '--seed', '7', '-q'];

interface Row { epoch: number; loss: number; top1: number; evaluated: number }
const readLog = (dir: string): Row[] =>
  existsSync(join(dir, 'log.jsonl')) ? readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row) : [];

describe('nincc train / eval / infer on the Fashion-MNIST subset', () => {
  beforeAll(() => {
    const r = nincc(['build', 'models/nin-fashion.model', '-o', artifact, '-q']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('trains two epochs, logs each, checkpoints atomically, and the loss falls', () => {
    const run = join(work, 'straight');
    const r = nincc(['train', artifact, ...common, '--epochs', '2', '-o', run]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^top-1 \d+\.\d\d%  top-5 \d+\.\d\d%  \(1000 test images, after epoch 2\)/);
    const log = readLog(run);
    expect(log.map((l) => l.epoch)).toEqual([1, 2]);
    expect(log[1].loss).toBeLessThan(log[0].loss);
    expect(log[1].evaluated).toBe(1000);
    const ckpt = readSafetensors(join(run, 'checkpoint.safetensors'));
    expect(ckpt.metadata.epoch).toBe('2');
    expect(ckpt.tensors.has('conv1.weight')).toBe(true);
    expect(ckpt.tensors.has('optimizer.momentum.conv1.weight')).toBe(true);
    expect(readdirSync(run).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('eval scores every test image with the checkpoint, and infer writes raw outputs', () => {
    const weights = join(work, 'straight', 'checkpoint.safetensors');
    const e = nincc(['eval', artifact, '--weights', weights, '--data', mini, '--json']);
    expect(e.code, e.stderr).toBe(0);
    const scored = JSON.parse(e.stdout) as { top1: number; count: number };
    expect(scored.count).toBe(1000);
    const log = readLog(join(work, 'straight'));
    expect(scored.top1).toBeCloseTo(log[1].top1, 6);

    const npy = join(work, 'x.npy');
    writeNpy(npy, { dtype: '<f4', shape: [3, 1, 28, 28], data: new Float32Array(3 * 784).map((_, i) => Math.sin(i)) });
    const out = join(work, 'y.npy');
    const i = nincc(['infer', artifact, '--weights', weights, '--npy', npy, '-o', out]);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toBe(`wrote ${out} (3×10 float32)\n`);
    const top = nincc(['infer', artifact, '--weights', weights, '--npy', npy]);
    // Once in CI (3247998) this printed nothing; the exit code and stderr say why if it happens again.
    expect(top.code, `exit ${top.code}, stderr: ${top.stderr}`).toBe(0);
    expect(top.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('a run killed with SIGKILL mid-epoch resumes from the last finished epoch with the same losses', async () => {
    const run = join(work, 'killed');
    const child = spawn(process.execPath, [join(root, 'bin/nincc'), 'train', artifact, ...common, '--epochs', '3', '-o', run], { stdio: 'ignore' });
    const started = Date.now();
    while (readLog(run).length < 1) {
      if (Date.now() - started > 120_000) throw new Error('epoch 1 never finished');
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300)); // into epoch 2 (an epoch of 1,280 images takes about a second)
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(readLog(run).map((l) => l.epoch)).toEqual([1]);
    expect(readSafetensors(join(run, 'checkpoint.safetensors')).metadata.epoch).toBe('1');

    const resumed = nincc(['train', artifact, ...common, '--epochs', '3', '-o', run, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .* after epoch 1/);
    const log = readLog(run);
    expect(log.map((l) => l.epoch)).toEqual([1, 2, 3]);

    // An uninterrupted run with the same seed gives exactly the same epochs.
    const straight = join(work, 'uninterrupted');
    expect(nincc(['train', artifact, ...common, '--epochs', '3', '-o', straight]).code).toBe(0);
    expect(readLog(straight).map((l) => [l.loss, l.top1])).toEqual(log.map((l) => [l.loss, l.top1]));
  });

  it('rejects bad arguments with clear messages', () => {
    expect(nincc(['train', artifact, '-o', join(work, 'x')])).toMatchObject({ code: 2, stderr: expect.stringContaining('--data is required') });
    expect(nincc(['train', artifact, '--data', '/nonexistent', '-o', join(work, 'x')]).stderr).toContain('/nonexistent');
    expect(nincc(['eval', join(work, 'nope'), '--data', mini]).stderr).toContain('no such file or directory');
    expect(nincc(['infer', artifact, '--npy', join(work, 'x.npy'), 'img.png']).stderr).toContain('either image files or --npy');
  });
});
