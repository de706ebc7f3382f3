// `nincc train` / `nincc eval` / `nincc stats` on a small ImageNet-style folder of real JPEGs, end to end
// on the CPU with a tiny 3x32x32 spec: regime at epoch boundaries, log, checkpoints, classes.txt, resume.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCommandArgs } from '../bin/command.js';
import { statsCommand } from '../bin/commands/stats.js';
import { readSafetensors } from '../runtime/io/safetensors.js';
import { nincc } from './cli-run.js';
import { CLASSES, makeImageNetFolder, type TestFolder } from './imagenet/make-folder.js';
import { TINY_IMAGE_SPEC as SPEC } from './imagenet/tiny-spec.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-imagenet-cli-'));
const artifact = join(work, 'artifact');

interface Row { epoch: number; loss: number; top1: number; top5: number; lr: number; wd: number; images: number; evaluated: number; skipped: number; skippedVal: number; imagesPerSecond: number; seconds: number }
const readLog = (dir: string): Row[] => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);

describe('nincc train / eval / stats on an ImageNet folder', () => {
  let made: TestFolder;
  const common = () => ['--data', made.root, '--seed', '3', '--workers', '2', '-q'];

  beforeAll(async () => {
    made = await makeImageNetFolder(join(work, 'imagenet'));
    writeFileSync(join(work, 'tiny.model'), SPEC);
    // Built as train/eval/infer build a spec for image data by default: uint8 crops (test/u8-default.test.ts has the float path).
    // Relative to its directory, so the generated kernels (which name their spec file) share a cache entry: test/u8-default.test.ts.
    const r = nincc(['build', 'tiny.model', '-o', artifact, '--input', 'u8', '-q'], { cwd: work });
    expect(r.code, r.stderr).toBe(0);
  });

  it('trains epochs of epochSize batches with the regime, logs each epoch, checkpoints and writes classes.txt', () => {
    const run = join(work, 'straight');
    const r = nincc(['train', artifact, ...common(), '-o', run]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^top-1 \d+\.\d\d%  top-5 \d+\.\d\d%  \(4 test images, after epoch 3\)/);
    const log = readLog(run);
    expect(log.map((l) => [l.epoch, l.lr, l.wd, l.images, l.evaluated, l.skippedVal])).toEqual([
      [1, 0.1, 5e-4, 8, 4, 1],
      [2, 0.01, 0, 8, 4, 1],
      [3, 0.01, 0, 8, 4, 1],
    ]);
    for (const l of log) {
      expect(Number.isFinite(l.loss) && l.imagesPerSecond > 0 && l.seconds > 0).toBe(true);
      expect(l.skipped).toBeGreaterThanOrEqual(0);
    }
    expect(r.stderr).toContain(`skipped 1 unreadable validation file: ${made.bad.val[0]}`);
    expect(readFileSync(join(run, 'classes.txt'), 'utf8')).toBe(CLASSES.join('\n') + '\n');
    expect(readSafetensors(join(run, 'checkpoint.safetensors')).metadata.epoch).toBe('3');
  });

  it('resumes from the checkpoint to exactly the epochs of an uninterrupted run', () => {
    const run = join(work, 'resumed');
    expect(nincc(['train', artifact, ...common(), '-o', run, '--epochs', '2']).code).toBe(0);
    const resumed = nincc(['train', artifact, ...common(), '-o', run, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .* after epoch 2/);
    const pick = (rows: Row[]) => rows.map((l) => [l.epoch, l.loss, l.top1, l.top5, l.skipped]);
    expect(pick(readLog(run))).toEqual(pick(readLog(join(work, 'straight'))));
  });

  it('rejects a --sampling rule it does not know, and --limit (a Fashion-MNIST option)', () => {
    expect(nincc(['train', artifact, ...common(), '-o', join(work, 'x'), '--sampling', 'sometimes'])).toMatchObject({ code: 2, stderr: expect.stringContaining("--sampling must be balanced or uniform, got 'sometimes'") });
    expect(nincc(['train', artifact, ...common(), '-o', join(work, 'x'), '--limit', '5'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--limit applies to Fashion-MNIST') });
  });

  it('eval scores every readable validation image with the checkpoint and its classes.txt', () => {
    const weights = join(work, 'straight', 'checkpoint.safetensors');
    const e = nincc(['eval', artifact, '--weights', weights, '--data', join(made.root, 'val'), '--json', '--workers', '2']);
    expect(e.code, e.stderr).toBe(0);
    const scored = JSON.parse(e.stdout) as { top1: number; top5: number; count: number; skipped: number };
    expect(scored).toMatchObject({ count: 4, skipped: 1 });
    const last = readLog(join(work, 'straight'))[2];
    expect(scored.top1).toBe(last.top1);
    expect(scored.top5).toBe(last.top5);
    const text = nincc(['eval', artifact, '--weights', weights, '--data', join(made.root, 'val')]);
    expect(text.stdout).toMatch(/^top-1 \d+\.\d\d%  top-5 \d+\.\d\d%  loss \d+\.\d{4}  \(4 images of .*val; 1 unreadable file not scored\)\n$/);
    expect(text.stderr).toContain(`skipped ${made.bad.val[0]}`);
  });

  it('stops before training, naming the path, on an empty class directory, a missing val/ or a class count the model does not have', () => {
    const empty = join(work, 'empty-class');
    mkdirSync(join(empty, 'train', 'a'), { recursive: true });
    mkdirSync(join(empty, 'val', 'a'), { recursive: true });
    const r1 = nincc(['train', artifact, '--data', empty, '-o', join(work, 'r1'), '-q']);
    expect(r1).toMatchObject({ code: 1, stderr: `nincc train: ${join(empty, 'train', 'a')}: empty class directory (no .JPEG, .jpg, .png, .ppm or .bmp files)\n` });
    const noVal = join(work, 'no-val');
    mkdirSync(join(noVal, 'train', 'a'), { recursive: true });
    const r2 = nincc(['train', artifact, '--data', noVal, '-o', join(work, 'r2'), '-q']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`${join(noVal, 'val')}: missing`);
    const r3 = nincc(['eval', artifact, '--data', join(made.root, 'val'), '--classes', join(work, 'two.txt')]);
    expect(r3).toMatchObject({ code: 1, stderr: `nincc eval: ${join(work, 'two.txt')}: no such class list\n` });
    writeFileSync(join(work, 'two.txt'), 'Zebra\napple\n');
    const r4 = nincc(['eval', artifact, '--data', join(made.root, 'val'), '--classes', join(work, 'two.txt')]);
    expect(r4).toMatchObject({ code: 1, stderr: expect.stringContaining(`${join(made.root, 'val', 'Äpfel')}: class 'Äpfel' is not one of the 2 training classes`) });
  });

  it('stats prints a transform block estimated from random training crops', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      const args = parseCommandArgs(statsCommand, ['--data', made.root, '--samples', '16', '--image-size', '40', '--crop', '32', '--workers', '2', '-q']);
      if (args === 'help') throw new Error('unexpected --help');
      expect(await statsCommand.run(args)).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(out.join('')).toMatch(/^transform \{ mean (0\.\d{14} ?){3}\n {12}std {2}(0\.\d{14} ?){3}\}\n$/);
  });
});
