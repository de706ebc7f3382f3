// Training faults: Ctrl-C mid-epoch, a full disk, a NaN loss, an unusable run directory; and determinism.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../runtime/io/safetensors.js';
import { nincc, root } from './cli-run.js';

const mini = join(root, 'test/data/fashion-mnist-mini');
const work = mkdtempSync(join(tmpdir(), 'nincc-faults-'));
const artifact = join(work, 'artifact');
const common = ['--data', mini, '--limit', '1280', '--batch', '64', '--seed', '5'];
const logOf = (dir: string) => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; loss: number; top1: number; trainTop1: number });
const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('reliability: training faults', () => {
  let straight: string;
  beforeAll(() => {
    expect(nincc(['build', 'models/nin-fashion.model', '-o', artifact, '-q']).code).toBe(0);
    straight = join(work, 'straight');
    expect(nincc(['train', artifact, ...common, '--epochs', '2', '-o', straight, '-q']).code).toBe(0);
  });

  it('two runs with the same seed give bitwise the same weights and losses', () => {
    const again = join(work, 'again');
    expect(nincc(['train', artifact, ...common, '--epochs', '2', '-o', again, '-q']).code).toBe(0);
    expect(logOf(again).map((l) => [l.loss, l.top1])).toEqual(logOf(straight).map((l) => [l.loss, l.top1]));
    expect(digest(join(again, 'checkpoint.safetensors'))).toBe(digest(join(straight, 'checkpoint.safetensors')));
  });

  it('SIGINT finishes the step, checkpoints mid-epoch and exits 130; --resume continues with the same losses', async () => {
    const run = join(work, 'interrupted');
    const child = spawn(process.execPath, [join(root, 'bin/nincc'), 'train', artifact, ...common, '--epochs', '2', '-o', run], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const started = Date.now();
    // The non-TTY progress bar prints a line per tenth of an epoch: interrupt a few steps into epoch 1.
    while (!/epoch 1\/2 \[[^\]]*\] [1-9]\d*\/20/.test(stderr)) {
      if (Date.now() - started > 60_000) throw new Error(`no progress seen: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const stoppedAt = /stopped in epoch 1 after step (\d+) of 20/.exec(stderr);
    expect(stoppedAt, stderr).not.toBeNull();
    const meta = readSafetensors(join(run, 'checkpoint.safetensors')).metadata;
    expect(meta).toMatchObject({ epoch: '0', step: stoppedAt![1] });
    expect(readdirSync(run).filter((f) => f.includes('.tmp'))).toEqual([]);

    const resumed = nincc(['train', artifact, ...common, '--epochs', '2', '-o', run, '--resume', '-q']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`in epoch 1 after step ${stoppedAt![1]}`);
    expect(logOf(run).map((l) => [l.epoch, l.loss, l.trainTop1, l.top1])).toEqual(logOf(straight).map((l) => [l.epoch, l.loss, l.trainTop1, l.top1]));
    expect(digest(join(run, 'checkpoint.safetensors'))).toBe(digest(join(straight, 'checkpoint.safetensors')));
  });

  it('a full disk at checkpoint time is reported and the previous checkpoint stays intact', () => {
    const run = join(work, 'full-disk');
    expect(nincc(['train', artifact, ...common, '--epochs', '1', '-o', run, '-q']).code).toBe(0);
    const before = digest(join(run, 'checkpoint.safetensors'));
    const r = nincc(['train', artifact, ...common, '--epochs', '2', '-o', run, '--resume', '-q'], { env: { NINCC_FAULT_WRITE: 'ENOSPC' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nincc train: cannot write the checkpoint .*checkpoint\.safetensors: .*ENOSPC.*; the previous checkpoint is intact/);
    expect(digest(join(run, 'checkpoint.safetensors'))).toBe(before);
    expect(readSafetensors(join(run, 'checkpoint.safetensors')).metadata.epoch).toBe('1');
    expect(readdirSync(run).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('a NaN loss stops training with the epoch and step, keeps the last checkpoint and hints at the learning rate', () => {
    const run = join(work, 'nan');
    expect(nincc(['train', artifact, ...common, '--epochs', '1', '-o', run, '-q']).code).toBe(0);
    const file = join(run, 'checkpoint.safetensors');
    const { tensors, metadata } = readSafetensors(file);
    (tensors.get('linear32.weight')!.data as Float32Array)[3] = NaN;
    writeSafetensors(file, tensors, metadata);
    const poisoned = digest(file);
    const r = nincc(['train', artifact, ...common, '--epochs', '2', '-o', run, '--resume', '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nincc train: the loss became NaN at epoch 2, step 1: training stopped and the last checkpoint');
    expect(r.stderr).toContain('try a smaller learning rate (lr 0.05)');
    expect(digest(file)).toBe(poisoned);
  });

  it('an unusable run directory is a clear error', () => {
    const file = join(work, 'plain-file');
    writeFileSync(file, 'x');
    const r = nincc(['train', artifact, ...common, '--epochs', '1', '-o', join(file, 'run'), '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nincc train: cannot create the run directory ${join(file, 'run')}:`);
  });
});
